"""The current user: `GET /users/me`, its organizations (none), and what the key is (`GET /auth`).

The emulator has one account and one API key, so there is one user, on a personal account with no
organization; limits are the default plan's (none: 0). neonctl reads the organizations to find
the project when `--project-id` is not given: with none, it uses the account's single project;
it reads `/auth` for its analytics.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from neon_emulator.limits import FREE_PLAN_BRANCHES, FREE_PLAN_MAX_CU

if TYPE_CHECKING:
    from neon_emulator.fake import Handler, NeonFake

USER_ID = "local-emulator-user"  # the owner_id of every project
_EMAIL = "local@neon-emulator.invalid"


def current_user(fake: NeonFake, params, query, body):
    return 200, {
        "id": USER_ID,
        "email": _EMAIL,
        "login": _EMAIL,
        "name": "Local",
        "last_name": "Emulator",
        "image": "",
        "auth_accounts": [],
        "plan": "free" if fake.plan == "free" else "launch",
        "active_seconds_limit": 0,
        "projects_limit": 0,
        "branches_limit": FREE_PLAN_BRANCHES if fake.plan == "free" else 0,
        "max_autoscaling_limit": FREE_PLAN_MAX_CU if fake.plan == "free" else 0,
    }


def current_user_organizations(fake: NeonFake, params, query, body):
    return 200, {"organizations": []}


def auth_details(fake: NeonFake, params, query, body):
    return 200, {"account_id": USER_ID, "auth_method": "api_key_user"}


ROUTES: dict[tuple[str, str], Handler] = {
    ("GET", "/users/me"): current_user,
    ("GET", "/users/me/organizations"): current_user_organizations,
    ("GET", "/auth"): auth_details,
}
