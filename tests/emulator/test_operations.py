"""Operations run on the clock, one after another per project; a project with one unfinished refuses changes (423)."""

from __future__ import annotations

import time

import httpx
import pytest

from neon_emulator.state import stamp
from tests.support.neon_fixtures import FakeClock, NeonApi


def _statuses(client: httpx.Client, project_id: str) -> dict[str, dict]:
    """action -> the operation as listed now."""
    return {op["action"]: op for op in client.get(f"/projects/{project_id}/operations").json()["operations"]}


def test_a_write_succeeds_once_the_operations_have_run_without_any_poll(
    neon_api: NeonApi, client: httpx.Client
) -> None:
    clock = FakeClock()
    start = clock.now
    neon_api.configure(operation_seconds=2, clock=clock)
    created = client.post("/projects", json={"project": {"name": "ops"}}).json()
    project_id = created["project"]["id"]
    # The operations of a project run one after another: the second waits for the first.
    assert [(op["action"], op["status"]) for op in created["operations"]] == [
        ("create_timeline", "running"),
        ("start_compute", "scheduling"),
    ]
    branch = {"branch": {"name": "dev"}}
    for elapsed in (0, 1.9, 2, 3.9):
        clock.now = start + elapsed
        locked = client.post(f"/projects/{project_id}/branches", json=branch)
        assert locked.status_code == 423, elapsed
        assert "running operations" in locked.json()["message"]
    assert client.get(f"/projects/{project_id}").status_code == 200  # reads are never locked
    clock.now = start + 4  # both operations have run
    assert client.post(f"/projects/{project_id}/branches", json=branch).status_code == 201
    assert not [call for call in neon_api.calls if "/operations" in call[1]]


def test_status_updated_at_and_duration_are_functions_of_the_clock(neon_api: NeonApi, client: httpx.Client) -> None:
    clock = FakeClock()
    start = clock.now
    neon_api.configure(operation_seconds=2, clock=clock)
    created = client.post("/projects", json={"project": {"name": "ops"}}).json()
    project_id = created["project"]["id"]
    expected = {  # seconds after creation -> action -> (status, updated_at offset, total_duration_ms)
        1: {"create_timeline": ("running", 0, 1000), "start_compute": ("scheduling", 0, 0)},
        3: {"create_timeline": ("finished", 2, 2000), "start_compute": ("running", 2, 1000)},
        60: {"create_timeline": ("finished", 2, 2000), "start_compute": ("finished", 4, 2000)},
    }
    for offset, actions in expected.items():
        clock.now = start + offset
        for _ in range(3):  # reading does not move them on
            listed = _statuses(client, project_id)
            for action, (status, updated, duration) in actions.items():
                operation = listed[action]
                assert (operation["status"], operation["total_duration_ms"]) == (status, duration), (offset, action)
                assert operation["updated_at"] == stamp(start + updated)
                assert operation["created_at"] == stamp(start)
                one = client.get(f"/projects/{project_id}/operations/{operation['id']}").json()["operation"]
                assert one == operation


def test_operations_run_on_the_real_clock_by_default(neon_api: NeonApi, client: httpx.Client) -> None:
    neon_api.configure(operation_seconds=0.2)
    project_id = client.post("/projects", json={"project": {"name": "ops"}}).json()["project"]["id"]
    assert client.patch(f"/projects/{project_id}", json={"project": {"name": "early"}}).status_code == 423
    time.sleep(0.45)  # two operations of 0.2 s, one after the other
    renamed = client.patch(f"/projects/{project_id}", json={"project": {"name": "renamed"}})
    assert renamed.status_code == 200 and renamed.json()["project"]["name"] == "renamed"


@pytest.mark.parametrize("seconds", [-1, float("nan"), float("inf"), "1", True])
def test_a_bad_operation_duration_is_refused(neon_api: NeonApi, seconds: object) -> None:
    with pytest.raises(ValueError, match="operation_seconds must be a finite number of seconds >= 0"):
        neon_api.configure(operation_seconds=seconds)
