"""Each kind of injected fault behaves as neon_emulator.faults documents."""

from __future__ import annotations

import httpx
import pytest

from neon_emulator.computes import Compute
from neon_emulator.state import stamp
from tests.emulator.helpers import create_project
from tests.support.neon_fixtures import FakeClock, NeonApi


def test_status_fault_with_retry_after_changes_nothing(neon_api: NeonApi, client: httpx.Client) -> None:
    neon_api.faults.add("POST", "/projects", 429, times=2, retry_after=3)
    for _ in range(2):
        response = client.post("/projects", json={"project": {"name": "x"}})
        assert response.status_code == 429
        assert response.headers["Retry-After"] == "3"
        assert response.json()["message"]
    assert neon_api.projects == {}
    assert client.post("/projects", json={"project": {"name": "x"}}).status_code == 201
    assert [c[2] for c in neon_api.calls] == [429, 429, 201]


@pytest.mark.parametrize("status", [423, 500, 502, 503])
def test_status_fault_matches_templates_and_regexes(neon_api: NeonApi, client: httpx.Client, status: int) -> None:
    neon_api.faults.add("GET", "/projects/{project_id}", status)
    neon_api.faults.add(None, r"/projects/[^/]+/branches", status, times=None)
    assert client.get("/projects/some-project").status_code == status
    assert client.get("/projects/some-project").status_code == 404  # the template rule fired once
    assert client.get("/projects/some-project/branches").status_code == status
    assert client.get("/projects/some-project/branches").status_code == status  # times=None: forever
    assert client.get("/projects").status_code == 200


def test_lost_response_after_commit(neon_api: NeonApi, client: httpx.Client) -> None:
    neon_api.faults.lose_response_after_commit("POST", "/projects")
    with pytest.raises(httpx.RemoteProtocolError):
        client.post("/projects", json={"project": {"name": "lost"}})
    [project] = neon_api.projects.values()
    assert project.info["name"] == "lost"
    found = client.get("/projects", params={"search": "lost"}).json()["projects"]
    assert [p["id"] for p in found] == [project.id]


def test_delayed_response_outlives_the_client_timeout(neon_api: NeonApi, client: httpx.Client) -> None:
    project_id = create_project(client)["project"]["id"]
    neon_api.faults.delay("PATCH", "/projects/{project_id}", seconds=1.5)
    with pytest.raises(httpx.ReadTimeout):
        client.patch(f"/projects/{project_id}", json={"project": {"name": "slow"}}, timeout=0.3)
    assert neon_api.projects[project_id].info["name"] == "slow"


def test_an_internal_failure_is_a_500_and_fails_the_test(neon_api: NeonApi, client: httpx.Client, monkeypatch) -> None:
    created = create_project(client)
    project_id, branch_id = created["project"]["id"], created["branch"]["id"]

    def broken(*args: object) -> None:
        raise RuntimeError("cluster gone")

    monkeypatch.setattr(Compute, "create_role", broken)
    response = client.post(f"/projects/{project_id}/branches/{branch_id}/roles", json={"role": {"name": "x"}})
    assert response.status_code == 500
    assert "cluster gone" in response.json()["message"]
    assert len(neon_api.fake.response_errors) == 1
    neon_api.fake.response_errors.clear()  # expected here; left in place it fails the test at teardown


def test_a_retry_after_string_is_sent_as_it_is(neon_api: NeonApi, client: httpx.Client) -> None:
    neon_api.faults.add("GET", "/projects", 503, retry_after="Wed, 21 Oct 2015 07:28:00 GMT")
    neon_api.faults.add("GET", "/projects", 429, retry_after=-1.5)
    assert client.get("/projects").headers["Retry-After"] == "Wed, 21 Oct 2015 07:28:00 GMT"
    assert client.get("/projects").headers["Retry-After"] == "-1.5"


def test_failed_operations_recover_or_end_in_error_on_the_clock(neon_api: NeonApi, client: httpx.Client) -> None:
    clock = FakeClock()
    start = clock.now
    neon_api.configure(operation_seconds=2, clock=clock)
    neon_api.faults.fail_operations(action="start_compute", outcome="recovered")
    created = client.post("/projects", json={"project": {"name": "ops"}}).json()
    project_id, operation_id = created["project"]["id"], created["operations"][1]["id"]

    def seen(offset: float) -> dict:
        clock.now = start + offset
        return client.get(f"/projects/{project_id}/operations/{operation_id}").json()["operation"]

    # start_compute runs after create_timeline (0-2 s): running 2-4 s, failed 4-6 s, then finished.
    assert [(op["status"], op["failures_count"]) for op in map(seen, (3, 4, 5.9, 6))] == [
        ("running", 0),
        ("failed", 1),
        ("failed", 1),
        ("finished", 1),
    ]
    failed = seen(5)
    assert failed["error"] and failed["retry_at"] == stamp(start + 6) and failed["updated_at"] == stamp(start + 4)
    finished = seen(6)
    assert "error" not in finished and "retry_at" not in finished and finished["total_duration_ms"] == 4000
    clock.now = start + 5.9
    assert client.post(f"/projects/{project_id}/branches", json={}).status_code == 423
    clock.now = start + 6

    neon_api.faults.fail_operations(action="create_branch", outcome="error")
    [operation] = client.post(f"/projects/{project_id}/branches", json={}).json()["operations"]
    operation_id = operation["id"]
    assert seen(9)["status"] == "failed"
    final = seen(10)
    assert (final["status"], final["failures_count"], final["updated_at"]) == ("error", 2, stamp(start + 10))
    assert final["error"]
    assert client.post(f"/projects/{project_id}/branches", json={}).status_code == 201  # error is terminal
