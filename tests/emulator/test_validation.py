"""Strict validation: requests that break the Neon document get 400 and are recorded."""

from __future__ import annotations

import httpx

from tests.emulator.helpers import create_project
from tests.support.neon_fixtures import NeonApi


def test_unknown_body_field_is_rejected_and_recorded(neon_api: NeonApi, client: httpx.Client) -> None:
    response = client.post("/projects", json={"project": {"name": "x", "regoin_id": "aws-us-east-2"}})
    assert response.status_code == 400
    assert "project.regoin_id" in response.json()["message"]
    assert response.json()["code"] is not None
    assert neon_api.take_violations() == ["POST /projects: unknown field 'project.regoin_id'"]
    assert neon_api.projects == {}


def test_wrong_type_is_rejected(neon_api: NeonApi, client: httpx.Client) -> None:
    response = client.post("/projects", json={"project": {"name": 42}})
    assert response.status_code == 400
    [violation] = neon_api.take_violations()
    assert "POST /projects" in violation and "42" in violation
    assert neon_api.projects == {}


def test_unknown_query_parameter_and_unknown_path_are_rejected(neon_api: NeonApi, client: httpx.Client) -> None:
    assert client.get("/projects", params={"serach": "x"}).status_code == 400
    assert client.get("/projectz").status_code == 404
    violations = neon_api.take_violations()
    assert violations[0] == "GET /projects: unknown query parameter 'serach'"
    assert "/api/v2/projectz" in violations[1]


def test_unknown_field_inside_an_array_item_is_rejected(neon_api: NeonApi, client: httpx.Client) -> None:
    project = create_project(client)
    body = {"endpoints": [{"type": "read_write", "autoscaling_limit_max": 1}]}
    response = client.post(f"/projects/{project['project']['id']}/branches", json=body)
    assert response.status_code == 400
    assert neon_api.take_violations() == [
        "POST /projects/{project_id}/branches: unknown field 'endpoints[0].autoscaling_limit_max'"
    ]
    assert len(neon_api.projects[project["project"]["id"]].branches) == 1


def test_free_form_maps_accept_any_key(neon_api: NeonApi, client: httpx.Client) -> None:
    project = create_project(client, default_endpoint_settings={"pg_settings": {"work_mem": "8MB"}})
    assert project["project"]["default_endpoint_settings"]["pg_settings"] == {"work_mem": "8MB"}
    assert neon_api.violations == []


def test_missing_required_field_is_rejected(neon_api: NeonApi, client: httpx.Client) -> None:
    project_id = create_project(client)["project"]["id"]
    branch_id = client.get(f"/projects/{project_id}/branches").json()["branches"][0]["id"]
    response = client.post(f"/projects/{project_id}/branches/{branch_id}/databases", json={"database": {"name": "x"}})
    assert response.status_code == 400
    [violation] = neon_api.take_violations()
    assert "owner_name" in violation
