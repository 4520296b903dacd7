"""Projects: create, get, list (search, cursor, org_id), update, delete.

Creating a project makes, as on Neon, the default branch (its cluster copied from the fake's
template), a read_write endpoint, the owner role (password in the response), the database and
`connection_uris`. A project with a protected branch cannot be deleted.
"""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING, Any

from neon_emulator import network
from neon_emulator.branches import branch_info
from neon_emulator.connections import connection_details
from neon_emulator.databases import database_info
from neon_emulator.endpoints import new_endpoint
from neon_emulator.limits import check_compute_size, check_history, check_network
from neon_emulator.operations import schedule
from neon_emulator.roles import RESERVED_ROLES, role_info
from neon_emulator.state import ApiError, BranchState, ProjectState, name_id, new_password, now
from neon_emulator.users import USER_ID

if TYPE_CHECKING:
    from neon_emulator.fake import Handler, NeonFake

# The AWS regions on Neon's regions page (https://neon.com/docs/introduction/regions); the Azure
# regions listed there too are deprecated, and the emulator refuses them like any unknown region.
REGIONS = frozenset(
    {
        "aws-us-east-1",
        "aws-us-east-2",
        "aws-us-west-2",
        "aws-eu-central-1",
        "aws-eu-west-2",
        "aws-ap-southeast-1",
        "aws-ap-southeast-2",
        "aws-sa-east-1",
    }
)
DEFAULT_REGION = "aws-us-east-2"
# The fields of a project that a listing shows (ProjectListItem), besides `active_time`.
_LISTED = (
    "id",
    "platform_id",
    "region_id",
    "name",
    "provisioner",
    "default_endpoint_settings",
    "settings",
    "pg_version",
    "proxy_host",
    "branch_logical_size_limit",
    "branch_logical_size_limit_bytes",
    "store_passwords",
    "cpu_used_sec",
    "creation_source",
    "created_at",
    "updated_at",
    "owner_id",
    "org_id",
    "history_retention_seconds",
)


def _list_item(project: ProjectState) -> dict[str, Any]:
    item = {k: project.info[k] for k in _LISTED if k in project.info}
    item["active_time"] = 0
    return item


def list_projects(fake: NeonFake, params, query, body):
    search = query.get("search", [""])[0].lower()
    limit = int(query.get("limit", ["10"])[0])
    cursor = query.get("cursor", [""])[0]
    org_id = query.get("org_id", [None])[0]
    projects = [
        p
        for p in fake.projects.values()
        if (search in p.info["name"].lower() or search in p.id) and (org_id is None or p.info.get("org_id") == org_id)
    ]
    if cursor:
        ids = [p.id for p in projects]
        projects = projects[ids.index(cursor) + 1 :] if cursor in ids else []
    page = projects[:limit]
    payload: dict[str, Any] = {"projects": [_list_item(p) for p in page], "applications": {}, "integrations": {}}
    if page:
        payload["pagination"] = {"cursor": page[-1].id}
    return 200, payload


def list_shared_projects(fake: NeonFake, params, query, body):
    """Projects other accounts share with this one: the emulator has one account, so none
    (neonctl's `projects list` reads this listing beside the account's own)."""
    return 200, {"projects": []}


def get_project(fake: NeonFake, params, query, body):
    return 200, {"project": fake.project(params).info}


def _project_info(spec: dict[str, Any], region: str) -> dict[str, Any]:
    """The API Project object of a new project from the request's project object."""
    stamp = now()
    project_id = name_id()
    info: dict[str, Any] = {
        "id": project_id,
        "platform_id": "aws",
        "region_id": region,
        "name": spec.get("name", project_id),
        "provisioner": "k8s-neonvm",
        "default_endpoint_settings": copy.deepcopy(spec.get("default_endpoint_settings", {})),
        "settings": copy.deepcopy(spec.get("settings", {})),
        "pg_version": spec.get("pg_version", 17),
        "proxy_host": "127.0.0.1",
        "branch_logical_size_limit": 0,
        "branch_logical_size_limit_bytes": 0,
        "store_passwords": spec.get("store_passwords", True),
        "cpu_used_sec": 0,
        "creation_source": "console",
        "history_retention_seconds": spec.get("history_retention_seconds", 86400),
        "created_at": stamp,
        "updated_at": stamp,
        "consumption_period_start": stamp,
        "consumption_period_end": stamp,
        "active_time_seconds": 0,
        "compute_time_seconds": 0,
        "written_data_bytes": 0,
        "data_transfer_bytes": 0,
        "data_storage_bytes_hour": 0,
        "owner_id": USER_ID,
    }
    if "org_id" in spec:
        info["org_id"] = spec["org_id"]
    return info


def create_project(fake: NeonFake, params, query, body):
    spec = body.get("project", {})
    region = spec.get("region_id", DEFAULT_REGION)
    if region not in REGIONS:
        raise ApiError(400, f"region {region} is not supported")
    check_history(fake.plan, spec.get("history_retention_seconds"))
    check_compute_size(fake.plan, spec.get("default_endpoint_settings", {}))
    check_network(fake.plan, spec.get("settings", {}))
    network.check_settings(spec.get("settings", {}))
    branch_spec = spec.get("branch", {})
    role_name = branch_spec.get("role_name", "neondb_owner")
    database_name = branch_spec.get("database_name", "neondb")
    if role_name in RESERVED_ROLES or role_name.startswith("pg_"):
        raise ApiError(400, f"role name {role_name} is reserved")
    project = ProjectState(_project_info(spec, region))
    compute = fake.computes.fresh()
    branch = BranchState(branch_info(project, branch_spec.get("name", "main"), None, "parent-data"), compute)
    branch.info["default"] = branch.info["primary"] = True
    branch.annotation = dict(branch_spec.get("annotations", {}))
    project.branches[branch.id] = branch
    fake.projects[project.id] = project
    try:
        endpoint = new_endpoint(project, branch, {"type": "read_write"})
        password = new_password()
        compute.create_role(role_name, password)
        branch.roles[role_name] = role_info(branch, role_name)
        branch.passwords[role_name] = password
        compute.create_database(database_name, role_name)
        branch.databases[database_name] = database_info(fake, branch, database_name, role_name)
    except BaseException:
        del fake.projects[project.id]
        compute.stop()
        raise
    network.sync(project)
    operations = [
        schedule(fake, project, "create_timeline", branch.id),
        schedule(fake, project, "start_compute", branch.id, endpoint["id"]),
    ]
    return 201, {
        "project": project.info,
        "connection_uris": [connection_details(branch, database_name, role_name)],
        "roles": [dict(branch.roles[role_name], password=password)],
        "databases": [branch.databases[database_name]],
        "operations": operations,
        "branch": branch.info,
        "endpoints": [endpoint],
    }


def update_project(fake: NeonFake, params, query, body):
    project = fake.project(params)
    changes = body.get("project", {})
    check_history(fake.plan, changes.get("history_retention_seconds"))
    check_network(fake.plan, changes.get("settings", {}))
    network.check_settings(changes.get("settings", {}))
    if "default_endpoint_settings" in changes:
        check_compute_size(fake.plan, changes["default_endpoint_settings"])
        project.info["default_endpoint_settings"] = copy.deepcopy(changes["default_endpoint_settings"])
    if "settings" in changes:
        project.info["settings"] = {**project.info.get("settings", {}), **copy.deepcopy(changes["settings"])}
    for key in ("name", "history_retention_seconds"):
        if key in changes:
            project.info[key] = changes[key]
    project.info["updated_at"] = now()
    network.sync(project)
    return 200, {"project": project.info, "operations": []}


def delete_project(fake: NeonFake, params, query, body):
    project = fake.project(params)
    protected = [b.info["name"] for b in project.branches.values() if b.info["protected"]]
    if protected:
        raise ApiError(400, f"project has protected branches ({', '.join(protected)}) and cannot be deleted")
    del fake.projects[project.id]
    for branch in project.branches.values():
        branch.compute.stop()
    return 200, {"project": project.info}


ROUTES: dict[tuple[str, str], Handler] = {
    ("GET", "/projects"): list_projects,
    ("GET", "/projects/shared"): list_shared_projects,
    ("POST", "/projects"): create_project,
    ("GET", "/projects/{project_id}"): get_project,
    ("PATCH", "/projects/{project_id}"): update_project,
    ("DELETE", "/projects/{project_id}"): delete_project,
}
