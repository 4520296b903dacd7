"""The names of an application's roles, made from its app role's name (`<app>_app`).

Two login roles alternate so that a password rotation never cuts off a client still holding the
previous password: the app role itself and its alternate. Both are members of one NOLOGIN group
role that holds every grant and owns Dapr's tables. The app role stays one of the two login roles
so that stacks made before the group existed keep their Secret, and their pods, as they are.
"""

from __future__ import annotations

# Two characters each, so that every app name that fits its owner role (`<app>_owner`) fits these too.
ALTERNATE_SUFFIX = "_b"
GROUP_SUFFIX = "_g"
LONGEST_SUFFIX = max(len(ALTERNATE_SUFFIX), len(GROUP_SUFFIX))


def alternate_role(app_role: str) -> str:
    """The second login role, the one a rotation switches to from the app role (and back)."""
    return f"{app_role}{ALTERNATE_SUFFIX}"


def group_role(app_role: str) -> str:
    """The NOLOGIN role both login roles are members of: every grant, and Dapr's tables."""
    return f"{app_role}{GROUP_SUFFIX}"
