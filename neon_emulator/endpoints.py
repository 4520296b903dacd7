"""Endpoints: create, get, list (project, branch), update, delete; start, suspend, restart.

A branch has at most one read_write endpoint, which answers on the branch's cluster (its `host` is
the cluster's direct host); a read_only endpoint answers on a hot standby of that cluster
(`neon_emulator.computes`). An endpoint cannot move to another branch, and the computes of a
protected branch cannot be deleted.

Suspend makes the endpoint `idle` and stops the server it answers on (connections are closed and
refused); start (or restart) brings it back on the same host and port. There is no
wake-on-connect: a suspended read_write endpoint's URIs connect again after start, or after any
API call that reads or changes the branch's roles or databases, since those need the server
(`NeonFake.synced_branch`).
"""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING, Any

from neon_emulator import network
from neon_emulator.limits import check_compute_size, check_unprotected
from neon_emulator.operations import schedule
from neon_emulator.state import ApiError, BranchState, ProjectState, name_id, now

if TYPE_CHECKING:
    from neon_emulator.computes import Compute
    from neon_emulator.fake import Handler, NeonFake

# What PATCH may change.
_UPDATABLE = (
    "autoscaling_limit_min_cu",
    "autoscaling_limit_max_cu",
    "suspend_timeout_seconds",
    "settings",
    "disabled",
    "passwordless_access",
    "name",
    "provisioner",
    "pooler_enabled",
)


def new_endpoint(project: ProjectState, branch: BranchState, spec: dict[str, Any]) -> dict[str, Any]:
    """A new endpoint of `branch` from a request's endpoint object, added to `project`."""
    if spec["type"] == "read_write" and any(e["type"] == "read_write" for e in project.branch_endpoints(branch.id)):
        raise ApiError(400, f"branch {branch.id} already has a read_write endpoint")
    defaults = project.info.get("default_endpoint_settings", {})
    stamp = now()
    endpoint: dict[str, Any] = {
        "host": branch.compute.host,
        "id": name_id("ep-"),
        "project_id": project.id,
        "branch_id": branch.id,
        "autoscaling_limit_min_cu": spec.get(
            "autoscaling_limit_min_cu", defaults.get("autoscaling_limit_min_cu", 0.25)
        ),
        "autoscaling_limit_max_cu": spec.get(
            "autoscaling_limit_max_cu", defaults.get("autoscaling_limit_max_cu", 0.25)
        ),
        "region_id": project.info["region_id"],
        "type": spec["type"],
        "current_state": "active",
        "pooler_enabled": spec.get("pooler_enabled", False),
        "pooler_mode": "transaction",
        "disabled": spec.get("disabled", False),
        "passwordless_access": spec.get("passwordless_access", True),
        "creation_source": "console",
        "created_at": stamp,
        "updated_at": stamp,
        "started_at": stamp,
        "settings": copy.deepcopy(spec.get("settings", {"pg_settings": {}})),
        "proxy_host": "127.0.0.1",
        "suspend_timeout_seconds": spec.get("suspend_timeout_seconds", defaults.get("suspend_timeout_seconds", 0)),
        "provisioner": spec.get("provisioner", "k8s-neonvm"),
    }
    if "name" in spec:
        endpoint["name"] = spec["name"]
    if spec["type"] == "read_only":  # a hot standby of the branch's cluster: writes refused by PostgreSQL
        endpoint["host"] = branch.compute.start_standby(endpoint["id"]).host
    project.endpoints[endpoint["id"]] = endpoint
    return endpoint


def list_endpoints(fake: NeonFake, params, query, body):
    return 200, {"endpoints": list(fake.project(params).endpoints.values())}


def list_branch_endpoints(fake: NeonFake, params, query, body):
    project = fake.project(params)
    branch = project.branch(params["branch_id"])
    return 200, {"endpoints": project.branch_endpoints(branch.id)}


def get_endpoint(fake: NeonFake, params, query, body):
    return 200, {"endpoint": fake.project(params).endpoint(params["endpoint_id"])}


def create_endpoint(fake: NeonFake, params, query, body):
    project = fake.project(params)
    spec = body["endpoint"]
    branch = project.branch(spec["branch_id"])
    if spec.get("region_id", project.info["region_id"]) != project.info["region_id"]:
        raise ApiError(400, f"region_id must be the project's region {project.info['region_id']}")
    check_compute_size(fake.plan, spec)
    endpoint = new_endpoint(project, branch, spec)
    network.sync(project)
    operations = [schedule(fake, project, "start_compute", branch.id, endpoint["id"])]
    return 201, {"endpoint": endpoint, "operations": operations}


def update_endpoint(fake: NeonFake, params, query, body):
    project = fake.project(params)
    endpoint = project.endpoint(params["endpoint_id"])
    changes = body.get("endpoint", {})
    if changes.get("branch_id", endpoint["branch_id"]) != endpoint["branch_id"]:
        raise ApiError(400, "the local emulator cannot move an endpoint to another branch")
    check_compute_size(
        fake.plan,
        {key: changes.get(key, endpoint[key]) for key in ("autoscaling_limit_min_cu", "autoscaling_limit_max_cu")},
    )
    for key in _UPDATABLE:
        if key in changes:
            endpoint[key] = copy.deepcopy(changes[key])
    endpoint["updated_at"] = now()
    operations = [schedule(fake, project, "apply_config", endpoint["branch_id"], endpoint["id"])]
    return 200, {"endpoint": endpoint, "operations": operations}


def delete_endpoint(fake: NeonFake, params, query, body):
    project = fake.project(params)
    endpoint = project.endpoints.get(params["endpoint_id"])
    if endpoint is None:
        return fake.gone(f"endpoint {params['endpoint_id']}")
    branch = project.branch(endpoint["branch_id"])
    check_unprotected(branch.info, "delete its computes")
    del project.endpoints[endpoint["id"]]
    branch.compute.stop_standby(endpoint["id"])
    endpoint["current_state"] = "idle"
    operations = [schedule(fake, project, "suspend_compute", endpoint["branch_id"], endpoint["id"])]
    return 200, {"endpoint": endpoint, "operations": operations}


def mark_active(endpoint: dict[str, Any]) -> None:
    """The endpoint's fields once its compute runs."""
    stamp = now()
    endpoint.update(current_state="active", started_at=stamp, updated_at=stamp)
    endpoint.pop("suspended_at", None)


def endpoint_compute(project: ProjectState, endpoint: dict[str, Any]) -> Compute:
    """The server an endpoint answers on: its branch's cluster, or the hot standby of a read_only one."""
    compute = project.branch(endpoint["branch_id"]).compute
    return compute.standbys.get(endpoint["id"], compute)


def start_endpoint(fake: NeonFake, params, query, body):
    project = fake.project(params)
    endpoint = project.endpoint(params["endpoint_id"])
    endpoint_compute(project, endpoint).resume()
    mark_active(endpoint)
    operations = [schedule(fake, project, "start_compute", endpoint["branch_id"], endpoint["id"])]
    return 200, {"endpoint": endpoint, "operations": operations}


def suspend_endpoint(fake: NeonFake, params, query, body):
    project = fake.project(params)
    endpoint = project.endpoint(params["endpoint_id"])
    stamp = now()
    endpoint.update(current_state="idle", suspended_at=stamp, last_active=stamp, updated_at=stamp)
    endpoint_compute(project, endpoint).suspend()
    operations = [schedule(fake, project, "suspend_compute", endpoint["branch_id"], endpoint["id"])]
    return 200, {"endpoint": endpoint, "operations": operations}


def restart_endpoint(fake: NeonFake, params, query, body):
    """Stop and start the endpoint's server (every connection to it is closed); it is active after."""
    project = fake.project(params)
    endpoint = project.endpoint(params["endpoint_id"])
    endpoint_compute(project, endpoint).restart()
    mark_active(endpoint)
    operations = [
        schedule(fake, project, action, endpoint["branch_id"], endpoint["id"])
        for action in ("suspend_compute", "start_compute")
    ]
    return 200, {"endpoint": endpoint, "operations": operations}


ROUTES: dict[tuple[str, str], Handler] = {
    ("GET", "/projects/{project_id}/endpoints"): list_endpoints,
    ("POST", "/projects/{project_id}/endpoints"): create_endpoint,
    ("GET", "/projects/{project_id}/endpoints/{endpoint_id}"): get_endpoint,
    ("PATCH", "/projects/{project_id}/endpoints/{endpoint_id}"): update_endpoint,
    ("DELETE", "/projects/{project_id}/endpoints/{endpoint_id}"): delete_endpoint,
    ("GET", "/projects/{project_id}/branches/{branch_id}/endpoints"): list_branch_endpoints,
    ("POST", "/projects/{project_id}/endpoints/{endpoint_id}/start"): start_endpoint,
    ("POST", "/projects/{project_id}/endpoints/{endpoint_id}/suspend"): suspend_endpoint,
    ("POST", "/projects/{project_id}/endpoints/{endpoint_id}/restart"): restart_endpoint,
}
