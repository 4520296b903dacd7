"""Kept so stacks created before the access layer moved to `components.access` refresh and destroy.

Pulumi pickles a dynamic provider by reference (module path and class name) into the state of every
resource, and refresh and destroy run the pickled one: the state of an app role made before the
move names `components.app_role.AppRoleProvider`. New resources name `components.access.app_role`.
"""

from components.access.app_role import AppRoleProvider

__all__ = ["AppRoleProvider"]
