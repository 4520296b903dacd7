"""Databases: create, get, list, update (rename, new owner), delete; real in the branch's cluster."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from neon_emulator.operations import config_operations
from neon_emulator.servers import SYSTEM_DATABASES
from neon_emulator.state import ApiError, BranchState, now

if TYPE_CHECKING:
    from neon_emulator.fake import Handler, NeonFake



def database_info(fake: NeonFake, branch: BranchState, name: str, owner: str) -> dict[str, Any]:
    """The API Database object of a new database of `branch` (ids are unique within the fake)."""
    stamp = now()
    return {
        "id": next(fake.database_ids),
        "branch_id": branch.id,
        "name": name,
        "owner_name": owner,
        "created_at": stamp,
        "updated_at": stamp,
    }


def list_databases(fake: NeonFake, params, query, body):
    branch = fake.synced_branch(fake.project(params), params["branch_id"])
    return 200, {"databases": list(branch.databases.values())}


def get_database(fake: NeonFake, params, query, body):
    branch = fake.synced_branch(fake.project(params), params["branch_id"])
    return 200, {"database": branch.database(params["database_name"])}


def create_database(fake: NeonFake, params, query, body):
    project = fake.project(params)
    branch = fake.synced_branch(project, params["branch_id"])
    name, owner = body["database"]["name"], body["database"]["owner_name"]
    if not name or len(name) > 63 or name in SYSTEM_DATABASES:
        raise ApiError(400, f"database name {name!r} is reserved or invalid")
    if name in branch.databases:
        raise ApiError(409, f"database {name} already exists")
    if owner not in branch.roles:
        raise ApiError(404, f"role {owner} not found")
    branch.compute.create_database(name, owner)
    database = database_info(fake, branch, name, owner)
    branch.databases[name] = database
    return 201, {"database": database, "operations": config_operations(fake, project, branch)}


def update_database(fake: NeonFake, params, query, body):
    project = fake.project(params)
    branch = fake.synced_branch(project, params["branch_id"])
    database = branch.database(params["database_name"])
    changes = body.get("database", {})
    owner = changes.get("owner_name", database["owner_name"])
    new_name = changes.get("name", database["name"])
    if owner not in branch.roles:
        raise ApiError(404, f"role {owner} not found")
    if new_name != database["name"] and new_name in branch.databases:
        raise ApiError(409, f"database {new_name} already exists")
    if owner != database["owner_name"]:
        branch.compute.set_database_owner(database["name"], owner)
        database["owner_name"] = owner
    if new_name != database["name"]:
        branch.compute.rename_database(database["name"], new_name)
        del branch.databases[database["name"]]
        database["name"] = new_name
        branch.databases[new_name] = database
    database["updated_at"] = now()
    return 200, {"database": database, "operations": config_operations(fake, project, branch)}


def delete_database(fake: NeonFake, params, query, body):
    project = fake.project(params)
    branch = fake.synced_branch(project, params["branch_id"])
    database = branch.databases.get(params["database_name"])
    if database is None:
        return fake.gone(f"database {params['database_name']}")
    branch.compute.drop_database(database["name"])
    del branch.databases[database["name"]]
    return 200, {"database": database, "operations": config_operations(fake, project, branch)}


_DATABASE = "/projects/{project_id}/branches/{branch_id}/databases/{database_name}"
ROUTES: dict[tuple[str, str], Handler] = {
    ("GET", "/projects/{project_id}/branches/{branch_id}/databases"): list_databases,
    ("POST", "/projects/{project_id}/branches/{branch_id}/databases"): create_database,
    ("GET", _DATABASE): get_database,
    ("PATCH", _DATABASE): update_database,
    ("DELETE", _DATABASE): delete_database,
}
