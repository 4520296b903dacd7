"""Branches: create (with inline endpoints), get, list, update, delete, restore, set as default.

Each branch owns one real cluster; a child starts as a physical copy of its parent's (data, roles,
passwords). `init_source: schema-only` empties the user tables; children of a protected branch get
a new password for every role that has one (changed in the cluster too). `parent_lsn` and
`parent_timestamp` are recorded, but the copy is always of the parent's current state. Names are
unique within a project. The default branch, a branch with children and a protected branch
cannot be deleted.

Restore (`POST .../restore`) replaces a branch's cluster with a copy of the source branch's (its
head: the emulator keeps no history, so `source_lsn`, `source_timestamp` and a restore onto itself
answer 501); host and port stay, so the branch's URIs still connect, to the source's data, roles
and passwords. With `preserve_under_name` the old state is first copied to a new branch of that
name, which takes over the branch's children (required when it has any) and becomes the
restored branch's parent; without it the parent is the source. `set_as_default` makes
a branch the project's default.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from neon_emulator import network
from neon_emulator.connections import connection_details
from neon_emulator.endpoints import mark_active, new_endpoint
from neon_emulator.expiry import check_expiry
from neon_emulator.limits import check_branch_count, check_compute_size, check_protected, check_unprotected
from neon_emulator.operations import schedule
from neon_emulator.state import ApiError, BranchState, ProjectState, name_id, new_password, now

if TYPE_CHECKING:
    from neon_emulator.fake import Handler, NeonFake

INIT_SOURCES = ("parent-data", "schema-only")


def branch_info(project: ProjectState, name: str, parent: BranchState | None, init_source: str) -> dict[str, Any]:
    """The API Branch object of a new branch of `project` (a child of `parent` unless None)."""
    stamp = now()
    info: dict[str, Any] = {
        "id": name_id("br-"),
        "project_id": project.id,
        "name": name,
        "current_state": "ready",
        "state_changed_at": stamp,
        "logical_size": 0,
        "creation_source": "console",
        "primary": False,
        "default": False,
        "protected": False,
        "cpu_used_sec": 0,
        "compute_time_seconds": 0,
        "active_time_seconds": 0,
        "written_data_bytes": 0,
        "data_transfer_bytes": 0,
        "created_at": stamp,
        "updated_at": stamp,
        "init_source": init_source,
    }
    if parent is not None:
        info["parent_id"] = parent.id
        info["parent_lsn"] = "0/1F4A2B8"
        info["parent_timestamp"] = stamp
    return info


def _check_name(project: ProjectState, name: str, exclude: str | None = None) -> None:
    if any(b.info["name"] == name and b.id != exclude for b in project.branches.values()):
        raise ApiError(409, f"branch with name {name} already exists")


def list_branches(fake: NeonFake, params, query, body):
    project = fake.project(params)
    search = query.get("search", [""])[0].lower()
    matching = [b for b in project.branches.values() if search in b.info["name"].lower() or search in b.id]
    branches = [b.info for b in matching]
    annotations = {b.id: b.annotation_data() for b in matching if b.annotation}
    return 200, {"branches": branches, "annotations": annotations, "pagination": {}}


def get_branch(fake: NeonFake, params, query, body):
    branch = fake.project(params).branch(params["branch_id"])
    return 200, {"branch": branch.info, "annotation": branch.annotation_data()}


def _check_creation(fake: NeonFake, project: ProjectState, spec: dict[str, Any], endpoints: list[dict[str, Any]]):
    """Refuse a branch creation before anything is made."""
    if spec.get("init_source", "parent-data") not in INIT_SOURCES:
        raise ApiError(400, f"init_source must be parent-data or schema-only, not {spec['init_source']}")
    if sum(1 for e in endpoints if e["type"] == "read_write") > 1:
        raise ApiError(400, "a branch can have only one read_write endpoint")
    for endpoint_spec in endpoints:
        check_compute_size(fake.plan, endpoint_spec)
    check_protected(fake.plan, spec.get("protected", False))
    check_expiry(spec.get("expires_at"), fake.clock())
    check_branch_count(fake.plan, len(project.branches))


def _copy_parent(fake: NeonFake, branch: BranchState, parent: BranchState, init_source: str) -> None:
    """The child's roles, passwords and databases, as its cluster (a copy of the parent's) has them;
    children of a protected branch get a new password for every role whose password is known."""
    if init_source == "schema-only":
        branch.compute.truncate_user_tables(list(parent.databases))
    _copy_catalog(fake, branch, parent)
    if parent.info["protected"]:
        for name, password in branch.passwords.items():
            if password is not None:
                branch.passwords[name] = new_password()
                branch.compute.set_password(name, branch.passwords[name])


def create_branch(fake: NeonFake, params, query, body):
    project = fake.project(params)
    spec = body.get("branch", {})
    endpoint_specs = body.get("endpoints", [])
    parent = fake.synced_branch(project, spec.get("parent_id", project.default_branch.id))
    _check_creation(fake, project, spec, endpoint_specs)
    init_source = spec.get("init_source", "parent-data")
    info = branch_info(project, "", parent, init_source)
    info["name"] = spec.get("name", info["id"])
    _check_name(project, info["name"])
    for key in ("protected", "expires_at", "parent_lsn", "parent_timestamp"):
        if key in spec:
            info[key] = spec[key]
    branch = BranchState(info, fake.computes.branch(parent.compute))
    try:
        _copy_parent(fake, branch, parent, init_source)
    except BaseException:
        branch.compute.stop()
        raise
    project.branches[branch.id] = branch
    operations = [schedule(fake, project, "create_branch", branch.id)]
    endpoints = [new_endpoint(project, branch, endpoint_spec) for endpoint_spec in endpoint_specs]
    operations += [schedule(fake, project, "start_compute", branch.id, e["id"]) for e in endpoints]
    payload: dict[str, Any] = {
        "branch": info,
        "endpoints": endpoints,
        "operations": operations,
        "roles": list(branch.roles.values()),
        "databases": list(branch.databases.values()),
    }
    network.sync(project)
    if any(e["type"] == "read_write" for e in endpoints):
        payload["connection_uris"] = [
            connection_details(branch, db["name"], db["owner_name"])
            for db in branch.databases.values()
            if branch.passwords.get(db["owner_name"])
        ]
    return 201, payload


def update_branch(fake: NeonFake, params, query, body):
    project = fake.project(params)
    branch = project.branch(params["branch_id"])
    changes = body.get("branch", {})
    if "name" in changes:
        _check_name(project, changes["name"], exclude=branch.id)
    if "protected" in changes:
        check_protected(fake.plan, changes["protected"])
    check_expiry(changes.get("expires_at"), fake.clock())
    for key in ("name", "protected"):
        if key in changes:
            branch.info[key] = changes[key]
    if "expires_at" in changes:
        if changes["expires_at"] is None:
            branch.info.pop("expires_at", None)
        else:
            branch.info["expires_at"] = changes["expires_at"]
    branch.info["updated_at"] = now()
    network.sync(project)
    return 200, {"branch": branch.info, "operations": []}


def delete_branch(fake: NeonFake, params, query, body):
    project = fake.project(params)
    branch = project.branches.get(params["branch_id"])
    if branch is None:
        return fake.gone(f"branch {params['branch_id']}")
    if branch.info["default"]:
        raise ApiError(400, "cannot delete the project's default branch")
    children = [b.id for b in project.branches.values() if b.info.get("parent_id") == branch.id]
    if children:
        raise ApiError(400, f"branch {branch.id} has child branches ({', '.join(children)}) and cannot be deleted")
    check_unprotected(branch.info, "delete it")
    operations = []
    for endpoint in project.branch_endpoints(branch.id):
        del project.endpoints[endpoint["id"]]
        operations.append(schedule(fake, project, "suspend_compute", branch.id, endpoint["id"]))
    operations.append(schedule(fake, project, "delete_timeline", branch.id))
    del project.branches[branch.id]
    branch.compute.stop()
    return 200, {"branch": branch.info, "operations": operations}


def _copy_catalog(fake: NeonFake, target: BranchState, source: BranchState) -> None:
    """`target`'s roles, passwords and databases are `source`'s (its cluster was just copied from source's)."""
    target.roles = {name: dict(role, branch_id=target.id) for name, role in source.roles.items()}
    target.passwords = dict(source.passwords)
    target.databases = {
        name: dict(database, branch_id=target.id, id=next(fake.database_ids))
        for name, database in source.databases.items()
    }


def _check_restore(project: ProjectState, branch: BranchState, request: dict[str, Any]) -> None:
    """Refuse a restore before anything changes."""
    check_unprotected(branch.info, "reset or restore it")
    for key in ("source_lsn", "source_timestamp"):
        if key in request:
            raise ApiError(501, f"restore to a point in time ({key}) is not emulated: the emulator keeps no history")
    if request["source_branch_id"] == branch.id:
        raise ApiError(501, "restoring a branch onto its own past is not emulated: the emulator keeps no history")
    has_children = any(b.info.get("parent_id") == branch.id for b in project.branches.values())
    if has_children and not request.get("preserve_under_name"):
        raise ApiError(400, f"branch {branch.id} has child branches: preserve_under_name is required")
    if request.get("preserve_under_name"):
        _check_name(project, request["preserve_under_name"])


def _preserve(fake: NeonFake, project: ProjectState, branch: BranchState, name: str) -> BranchState:
    """A new branch `name` holding a copy of `branch` as it is now; it takes over the branch's children."""
    fake.synced_branch(project, branch.id)  # running, its catalog up to date
    parent = project.branches.get(branch.info.get("parent_id", ""))
    preserved = BranchState(branch_info(project, name, parent, "parent-data"), fake.computes.branch(branch.compute))
    _copy_catalog(fake, preserved, branch)
    for child in project.branches.values():
        if child.info.get("parent_id") == branch.id:
            child.info["parent_id"] = preserved.id
    project.branches[preserved.id] = preserved
    return preserved


def restore_branch(fake: NeonFake, params, query, body):
    project = fake.project(params)
    branch = project.branch(params["branch_id"])
    _check_restore(project, branch, body)
    source = fake.synced_branch(project, body["source_branch_id"])
    operations, parent_id = [], source.id
    if body.get("preserve_under_name"):
        preserved = _preserve(fake, project, branch, body["preserve_under_name"])
        operations.append(schedule(fake, project, "create_branch", preserved.id))
        parent_id = preserved.id  # as on Neon (neonctl shows the parent as the backup branch)
    branch.compute.replace_data(source.compute)
    network.sync(project)  # the copy brought the source's hba rules
    _copy_catalog(fake, branch, source)
    stamp = now()
    branch.info.update(parent_id=parent_id, parent_timestamp=stamp, last_reset_at=stamp, updated_at=stamp)
    operations.append(schedule(fake, project, "create_timeline", branch.id))
    for endpoint in project.branch_endpoints(branch.id):
        mark_active(endpoint)
        operations.append(schedule(fake, project, "start_compute", branch.id, endpoint["id"]))
    return 200, {"branch": branch.info, "operations": operations}


def set_default_branch(fake: NeonFake, params, query, body):
    project = fake.project(params)
    branch = project.branch(params["branch_id"])
    for other in project.branches.values():
        other.info["default"] = other.info["primary"] = other is branch
    branch.info["updated_at"] = now()
    return 200, {"branch": branch.info, "operations": []}


ROUTES: dict[tuple[str, str], Handler] = {
    ("GET", "/projects/{project_id}/branches"): list_branches,
    ("POST", "/projects/{project_id}/branches"): create_branch,
    ("GET", "/projects/{project_id}/branches/{branch_id}"): get_branch,
    ("PATCH", "/projects/{project_id}/branches/{branch_id}"): update_branch,
    ("DELETE", "/projects/{project_id}/branches/{branch_id}"): delete_branch,
    ("POST", "/projects/{project_id}/branches/{branch_id}/restore"): restore_branch,
    ("POST", "/projects/{project_id}/branches/{branch_id}/set_as_default"): set_default_branch,
}
