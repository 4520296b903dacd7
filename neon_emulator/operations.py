"""Operations: what every mutating call schedules; they run on the fake's clock, not on polls.

The operations of a project run one after another, each `fake.operation_seconds` long: an
operation is `scheduling` until the one before it ends, then `running` for its duration, then
`finished`. A fault rule (neon_emulator.faults) makes it `failed` after its duration, retried one
duration later, ending in `finished` ("recovered") or `error`. Its status, `updated_at` and
`total_duration_ms` are computed from the clock when it is read; reading never moves it on.
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any

from neon_emulator.state import ApiError, BranchState, OperationState, ProjectState, stamp

if TYPE_CHECKING:
    from neon_emulator.fake import Handler, NeonFake

_ENDINGS = {None: ["finished"], "recovered": ["failed", "finished"], "error": ["failed", "error"]}


def schedule(
    fake: NeonFake, project: ProjectState, action: str, branch_id: str | None = None, endpoint_id: str | None = None
) -> dict[str, Any]:
    """A new operation of `project` (the API Operation object as it stands now), shaped by the faults of `fake`."""
    created = fake.clock()
    info: dict[str, Any] = {"id": str(uuid.uuid4()), "project_id": project.id, "action": action}
    if branch_id:
        info["branch_id"] = branch_id
    if endpoint_id:
        info["endpoint_id"] = endpoint_id
    info["created_at"] = stamp(created)
    start, seconds = max(created, project.free_at()), fake.operation_seconds
    timeline = [(created, "scheduling"), (start, "running")]
    for step, status in enumerate(_ENDINGS[fake.faults.take_operation(action)], start=1):
        timeline.append((start + step * seconds, status))
    operation = OperationState(info, timeline)
    project.operations[info["id"]] = operation
    return operation.at(created)


def config_operations(fake: NeonFake, project: ProjectState, branch: BranchState) -> list[dict[str, Any]]:
    """`apply_config` on each endpoint of the branch (roles, databases, passwords changed)."""
    return [schedule(fake, project, "apply_config", branch.id, e["id"]) for e in project.branch_endpoints(branch.id)]


def get_operation(fake: NeonFake, params, query, body):
    project = fake.project(params)
    operation = project.operations.get(params["operation_id"])
    if operation is None:
        raise ApiError(404, f"operation {params['operation_id']} not found")
    return 200, {"operation": operation.at(fake.clock())}


def list_operations(fake: NeonFake, params, query, body):
    project = fake.project(params)
    t = fake.clock()
    operations = [op.at(t) for op in reversed(project.operations.values())]
    payload: dict[str, Any] = {"operations": operations}
    if operations:
        payload["pagination"] = {"cursor": operations[-1]["id"]}
    return 200, payload


ROUTES: dict[tuple[str, str], Handler] = {
    ("GET", "/projects/{project_id}/operations"): list_operations,
    ("GET", "/projects/{project_id}/operations/{operation_id}"): get_operation,
}
