"""Branch expiry on the fake's clock: limits, deletion with endpoints and cluster, deletes after it."""

from __future__ import annotations

import psycopg
import pytest

from components.uri import postgres_uri
from neon_emulator.state import stamp
from tests.emulator.helpers import create_branch, create_project
from tests.support.neon_fixtures import FakeClock, NeonApi

HOUR = 3600


@pytest.fixture
def clock(neon_api: NeonApi) -> FakeClock:
    clock = FakeClock()
    neon_api.configure(clock=clock, operation_seconds=0)
    return clock


def test_expiry_is_refused_in_the_past_and_beyond_30_days_of_the_clock(neon_api, client, clock) -> None:
    project_id = create_project(client)["project"]["id"]
    clock.advance(90 * 86400)  # only the fake's clock counts, not the machine's
    for refused in (stamp(clock() - 1), stamp(clock() + 30 * 86400 + 1)):
        answer = client.post(f"/projects/{project_id}/branches", json={"branch": {"expires_at": refused}})
        assert answer.status_code == 400, refused
        assert "expires_at" in answer.json()["message"]
    accepted = create_branch(client, project_id, {"branch": {"name": "b", "expires_at": stamp(clock() + 30 * 86400)}})
    branch_id = accepted["branch"]["id"]
    too_late = {"branch": {"expires_at": stamp(clock() + 31 * 86400)}}
    assert client.patch(f"/projects/{project_id}/branches/{branch_id}", json=too_late).status_code == 400


def test_an_expired_branch_goes_with_its_endpoint_and_cluster(neon_api, client, clock) -> None:
    created = create_project(client)
    project_id, role = created["project"]["id"], created["roles"][0]
    body = {"branch": {"name": "pr-1", "expires_at": stamp(clock() + 2 * HOUR)}, "endpoints": [{"type": "read_write"}]}
    branch = create_branch(client, project_id, body)
    branch_id, endpoint = branch["branch"]["id"], branch["endpoints"][0]
    uri = postgres_uri(role["name"], role["password"], endpoint["host"], "neondb")
    with psycopg.connect(uri, connect_timeout=5) as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)

    clock.advance(2 * HOUR - 1)
    assert client.get(f"/projects/{project_id}/branches/{branch_id}").status_code == 200
    clock.advance(1)
    assert client.get(f"/projects/{project_id}/branches/{branch_id}").status_code == 404
    assert client.get(f"/projects/{project_id}/endpoints/{endpoint['id']}").status_code == 404
    assert branch_id not in neon_api.projects[project_id].branches
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(uri, connect_timeout=5)
    # The default branch stays; deleting the expired branch is a delete of what is gone.
    assert [b["id"] for b in client.get(f"/projects/{project_id}/branches").json()["branches"]] == [
        created["branch"]["id"]
    ]
    assert client.delete(f"/projects/{project_id}/branches/{branch_id}").status_code == 204


def test_a_pushed_expiry_keeps_the_branch_and_a_parent_outlives_its_children(neon_api, client, clock) -> None:
    project_id = create_project(client)["project"]["id"]
    parent = create_branch(client, project_id, {"branch": {"name": "p", "expires_at": stamp(clock() + HOUR)}})
    parent_id = parent["branch"]["id"]
    child = create_branch(client, project_id, {"branch": {"name": "c", "parent_id": parent_id}})["branch"]["id"]
    clock.advance(HOUR)
    assert client.get(f"/projects/{project_id}/branches/{parent_id}").status_code == 200  # it has a child
    pushed = {"branch": {"expires_at": stamp(clock() + HOUR)}}
    assert client.patch(f"/projects/{project_id}/branches/{parent_id}", json=pushed).status_code == 200
    assert client.delete(f"/projects/{project_id}/branches/{child}").status_code == 200
    clock.advance(HOUR - 1)
    assert client.get(f"/projects/{project_id}/branches/{parent_id}").status_code == 200
    clock.advance(1)
    assert client.get(f"/projects/{project_id}/branches/{parent_id}").status_code == 404
