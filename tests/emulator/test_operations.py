"""Operations advance with each poll; a project with a running operation refuses changes (423)."""

from __future__ import annotations

import httpx

from tests.emulator.helpers import wait
from tests.support.neon_fixtures import NeonApi


def test_operations_advance_per_poll_and_lock_the_project(neon_api: NeonApi, client: httpx.Client) -> None:
    created = client.post("/projects", json={"project": {"name": "ops"}}).json()
    project_id = created["project"]["id"]
    assert [op["status"] for op in created["operations"]] == ["scheduling", "scheduling"]
    assert [op["action"] for op in created["operations"]] == ["create_timeline", "start_compute"]

    locked = client.post(f"/projects/{project_id}/branches", json={"branch": {"name": "dev"}})
    assert locked.status_code == 423
    assert "running operations" in locked.json()["message"]
    assert client.get(f"/projects/{project_id}").status_code == 200  # reads are never locked

    first = created["operations"][0]["id"]
    statuses = [
        client.get(f"/projects/{project_id}/operations/{first}").json()["operation"]["status"] for _ in range(3)
    ]
    assert statuses == ["running", "finished", "finished"]
    assert client.post(f"/projects/{project_id}/branches", json={"branch": {"name": "dev"}}).status_code == 423

    wait(client, project_id, created["operations"][1:])
    assert client.post(f"/projects/{project_id}/branches", json={"branch": {"name": "dev"}}).status_code == 201
    listed = client.get(f"/projects/{project_id}/operations").json()["operations"]
    assert {op["action"] for op in listed} == {"create_timeline", "start_compute", "create_branch"}


def test_failed_operation_recovers_or_ends_in_error(neon_api: NeonApi, client: httpx.Client) -> None:
    neon_api.faults.fail_operations(action="start_compute", outcome="recovered")
    created = client.post("/projects", json={"project": {"name": "ops"}}).json()
    project_id = created["project"]["id"]
    start = created["operations"][1]["id"]
    seen = [client.get(f"/projects/{project_id}/operations/{start}").json()["operation"] for _ in range(3)]
    assert [(op["status"], op["failures_count"]) for op in seen] == [("running", 0), ("failed", 1), ("finished", 1)]
    assert wait(client, project_id, created["operations"]) == ["finished", "finished"]

    neon_api.faults.fail_operations(action="create_branch", outcome="error")
    branch = client.post(f"/projects/{project_id}/branches", json={"branch": {"name": "dev"}}).json()
    operation = branch["operations"][0]
    assert wait(client, project_id, [operation]) == ["error"]
    final = client.get(f"/projects/{project_id}/operations/{operation['id']}").json()["operation"]
    assert final["failures_count"] == 2 and final["error"]
    assert client.post(f"/projects/{project_id}/branches", json={}).status_code == 201  # error is terminal


def test_operation_polls_can_be_configured(neon_api: NeonApi, client: httpx.Client) -> None:
    neon_api.configure(operation_polls=4)
    created = client.post("/projects", json={"project": {"name": "ops"}}).json()
    project_id, first = created["project"]["id"], created["operations"][0]["id"]
    statuses = [
        client.get(f"/projects/{project_id}/operations/{first}").json()["operation"]["status"] for _ in range(4)
    ]
    assert statuses == ["running", "running", "running", "finished"]
    neon_api.finish_operations()
    assert client.patch(f"/projects/{project_id}", json={"project": {"name": "renamed"}}).json()["project"]["name"] == (
        "renamed"
    )
