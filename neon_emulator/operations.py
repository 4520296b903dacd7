"""Operations: what every mutating call schedules, and the polls that move them on.

A new operation is in status `scheduling`; each poll (GET of the operation, or a listing of the
project's operations) moves it one step: `running` (`fake.operation_polls - 1` times), then
`finished`, or through `failed` when a fault rule says so (neon_emulator.faults).
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any

from neon_emulator.state import ApiError, BranchState, OperationState, ProjectState, now

if TYPE_CHECKING:
    from neon_emulator.fake import Handler, NeonFake


def schedule(
    fake: NeonFake, project: ProjectState, action: str, branch_id: str | None = None, endpoint_id: str | None = None
) -> dict[str, Any]:
    """A new operation of `project` (the API Operation object), as the faults of `fake` shape it."""
    stamp = now()
    info: dict[str, Any] = {
        "id": str(uuid.uuid4()),
        "project_id": project.id,
        "action": action,
        "status": "scheduling",
        "failures_count": 0,
        "created_at": stamp,
        "updated_at": stamp,
        "total_duration_ms": 0,
    }
    if branch_id:
        info["branch_id"] = branch_id
    if endpoint_id:
        info["endpoint_id"] = endpoint_id
    steps = ["running"] * max(fake.operation_polls - 1, 0)
    outcome = fake.faults.take_operation(action)
    if outcome == "recovered":
        steps += ["failed", "finished"]
    elif outcome == "error":
        steps += ["failed", "error"]
    else:
        steps.append("finished")
    project.operations[info["id"]] = OperationState(info, steps)
    return info


def config_operations(fake: NeonFake, project: ProjectState, branch: BranchState) -> list[dict[str, Any]]:
    """`apply_config` on each endpoint of the branch (roles, databases, passwords changed)."""
    return [schedule(fake, project, "apply_config", branch.id, e["id"]) for e in project.branch_endpoints(branch.id)]


def get_operation(fake: NeonFake, params, query, body):
    project = fake.project(params)
    operation = project.operations.get(params["operation_id"])
    if operation is None:
        raise ApiError(404, f"operation {params['operation_id']} not found")
    operation.advance()
    return 200, {"operation": operation.info}


def list_operations(fake: NeonFake, params, query, body):
    project = fake.project(params)
    for operation in project.operations.values():
        operation.advance()
    operations = [op.info for op in reversed(project.operations.values())]
    payload: dict[str, Any] = {"operations": operations}
    if operations:
        payload["pagination"] = {"cursor": operations[-1]["id"]}
    return 200, payload


ROUTES: dict[tuple[str, str], Handler] = {
    ("GET", "/projects/{project_id}/operations"): list_operations,
    ("GET", "/projects/{project_id}/operations/{operation_id}"): get_operation,
}
