"""Roles: create, get, list, delete, reveal_password, reset_password.

Roles are real in the branch's cluster (neon_emulator.computes). A new role gets a password (in
the response) unless it is `no_login`; `reveal_password` answers 412 when the project does not
store passwords and 404 for a role whose password the fake does not know (NOLOGIN, made with
SQL). A role that owns a database cannot be deleted.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from neon_emulator.operations import config_operations
from neon_emulator.state import ApiError, BranchState, new_password, now

if TYPE_CHECKING:
    from neon_emulator.fake import Handler, NeonFake

RESERVED_ROLES = frozenset({"postgres", "neon_superuser", "cloud_admin", "web_access"})


def role_info(branch: BranchState, name: str) -> dict[str, Any]:
    """The API Role object of a new password role of `branch`."""
    stamp = now()
    return {
        "branch_id": branch.id,
        "name": name,
        "protected": False,
        "authentication_method": "password",
        "created_at": stamp,
        "updated_at": stamp,
    }


def list_roles(fake: NeonFake, params, query, body):
    branch = fake.synced_branch(fake.project(params), params["branch_id"])
    return 200, {"roles": list(branch.roles.values())}


def get_role(fake: NeonFake, params, query, body):
    branch = fake.synced_branch(fake.project(params), params["branch_id"])
    return 200, {"role": branch.role(params["role_name"])}


def create_role(fake: NeonFake, params, query, body):
    project = fake.project(params)
    branch = fake.synced_branch(project, params["branch_id"])
    name = body["role"]["name"]
    if name in RESERVED_ROLES or name.startswith("pg_") or not name or len(name) > 63:
        raise ApiError(400, f"role name {name!r} is reserved or invalid")
    if name in branch.roles:
        raise ApiError(409, f"role {name} already exists")
    password = None if body["role"].get("no_login") else new_password()
    branch.compute.create_role(name, password)
    role = role_info(branch, name)
    if password is None:
        role["authentication_method"] = "no_login"
    branch.roles[name] = role
    branch.passwords[name] = password
    shown = dict(role, password=password) if password else role
    return 201, {"role": shown, "operations": config_operations(fake, project, branch)}


def delete_role(fake: NeonFake, params, query, body):
    project = fake.project(params)
    branch = fake.synced_branch(project, params["branch_id"])
    name = params["role_name"]
    if name not in branch.roles:
        return fake.gone(f"role {name}")
    owned = [db["name"] for db in branch.databases.values() if db["owner_name"] == name]
    if owned:
        raise ApiError(400, f"role {name} owns databases ({', '.join(owned)}) and cannot be deleted")
    branch.compute.drop_role(name)
    role = branch.roles.pop(name)
    branch.passwords.pop(name)
    return 200, {"role": role, "operations": config_operations(fake, project, branch)}


def reveal_password(fake: NeonFake, params, query, body):
    project = fake.project(params)
    branch = fake.synced_branch(project, params["branch_id"])
    branch.role(params["role_name"])
    if not project.info["store_passwords"]:
        raise ApiError(412, "storing passwords is disabled for this project")
    password = branch.passwords[params["role_name"]]
    if password is None:
        raise ApiError(404, f"role {params['role_name']} has no password")
    return 200, {"password": password}


def reset_password(fake: NeonFake, params, query, body):
    project = fake.project(params)
    branch = fake.synced_branch(project, params["branch_id"])
    role = branch.role(params["role_name"])
    if branch.passwords[role["name"]] is None:
        raise ApiError(400, f"role {role['name']} cannot log in")
    password = new_password()
    branch.compute.set_password(role["name"], password)
    branch.passwords[role["name"]] = password
    role["updated_at"] = now()
    return 200, {"role": dict(role, password=password), "operations": config_operations(fake, project, branch)}


_ROLE = "/projects/{project_id}/branches/{branch_id}/roles/{role_name}"
ROUTES: dict[tuple[str, str], Handler] = {
    ("GET", "/projects/{project_id}/branches/{branch_id}/roles"): list_roles,
    ("POST", "/projects/{project_id}/branches/{branch_id}/roles"): create_role,
    ("GET", _ROLE): get_role,
    ("DELETE", _ROLE): delete_role,
    ("GET", f"{_ROLE}/reveal_password"): reveal_password,
    ("POST", f"{_ROLE}/reset_password"): reset_password,
}
