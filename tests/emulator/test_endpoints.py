"""Endpoints: update, delete, one read_write per branch, plan limits, unknown ids."""

from __future__ import annotations

import uuid

import httpx

from tests.emulator.helpers import create_project, wait
from tests.support.neon_fixtures import NeonApi


def test_update_and_delete_endpoint(neon_api: NeonApi, client: httpx.Client) -> None:
    project = create_project(client)
    project_id, endpoint_id = project["project"]["id"], project["endpoints"][0]["id"]
    changes = {"autoscaling_limit_min_cu": 0.5, "autoscaling_limit_max_cu": 2, "suspend_timeout_seconds": -1}
    updated = client.patch(f"/projects/{project_id}/endpoints/{endpoint_id}", json={"endpoint": changes})
    assert updated.status_code == 200
    assert {k: updated.json()["endpoint"][k] for k in changes} == changes
    assert [op["action"] for op in updated.json()["operations"]] == ["apply_config"]
    wait(client, project_id, updated.json()["operations"])

    inverted = {"endpoint": {"autoscaling_limit_min_cu": 4}}
    assert client.patch(f"/projects/{project_id}/endpoints/{endpoint_id}", json=inverted).status_code == 400

    deleted = client.delete(f"/projects/{project_id}/endpoints/{endpoint_id}")
    assert deleted.status_code == 200
    wait(client, project_id, deleted.json()["operations"])
    assert client.get(f"/projects/{project_id}/endpoints").json()["endpoints"] == []
    assert client.get(f"/projects/{project_id}/endpoints/{endpoint_id}").status_code == 404
    assert client.delete(f"/projects/{project_id}/endpoints/{endpoint_id}").status_code == 204
    assert client.get(f"/projects/{project_id}/operations/{uuid.uuid4()}").status_code == 404


def test_free_plan_limits(neon_api: NeonApi, client: httpx.Client) -> None:
    neon_api.configure(plan="free")
    project_id = create_project(client)["project"]["id"]
    too_big = {"branch": {"name": "big"}, "endpoints": [{"type": "read_write", "autoscaling_limit_max_cu": 4}]}
    assert client.post(f"/projects/{project_id}/branches", json=too_big).status_code == 400
    protected = client.post(f"/projects/{project_id}/branches", json={"branch": {"protected": True}})
    assert protected.status_code == 400 and "Free plan" in protected.json()["message"]
    assert len(neon_api.projects[project_id].branches) == 1
