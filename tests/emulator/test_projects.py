"""Projects: creation payload, search, update, regions, delete; the call log."""

from __future__ import annotations

import httpx

from tests.emulator.helpers import create_project
from tests.support.neon_fixtures import NeonApi


def test_project_creation_returns_everything_a_provider_needs(neon_api: NeonApi, client: httpx.Client) -> None:
    created = create_project(
        client, region_id="aws-eu-central-1", branch={"name": "trunk", "role_name": "app_owner", "database_name": "app"}
    )
    assert created["branch"]["name"] == "trunk" and created["branch"]["default"] is True
    [endpoint] = created["endpoints"]
    assert endpoint["type"] == "read_write" and endpoint["branch_id"] == created["branch"]["id"]
    [role] = created["roles"]
    assert role["name"] == "app_owner" and role["password"].startswith("npg_") and len(role["password"]) >= 16
    assert created["databases"][0]["owner_name"] == "app_owner"
    [details] = created["connection_uris"]
    assert details["connection_parameters"]["pooler_host"] == endpoint["host"].replace("127.0.0.1", "127.0.0.2")
    assert created["project"]["region_id"] == "aws-eu-central-1"


def test_unknown_region_is_refused(neon_api: NeonApi, client: httpx.Client) -> None:
    response = client.post("/projects", json={"project": {"name": "x", "region_id": "azure-eastus2"}})
    assert response.status_code == 400
    assert "azure-eastus2" in response.json()["message"]
    assert neon_api.projects == {}


def test_search_update_and_delete(neon_api: NeonApi, client: httpx.Client) -> None:
    project_id = create_project(client, name="neon-stack-dev")["project"]["id"]
    assert [p["id"] for p in client.get("/projects", params={"search": "stack-d"}).json()["projects"]] == [project_id]
    assert client.get("/projects", params={"search": "other"}).json()["projects"] == []

    changes = {
        "name": "renamed",
        "history_retention_seconds": 3600,
        "default_endpoint_settings": {"suspend_timeout_seconds": 600},
    }
    updated = client.patch(f"/projects/{project_id}", json={"project": changes}).json()["project"]
    assert updated["name"] == "renamed" and updated["history_retention_seconds"] == 3600
    assert updated["default_endpoint_settings"] == {"suspend_timeout_seconds": 600}

    assert client.delete(f"/projects/{project_id}").status_code == 200
    assert client.get(f"/projects/{project_id}").status_code == 404
    assert neon_api.projects == {}
    assert neon_api.write_calls() == [
        ("POST", "/projects", 201),
        ("PATCH", "/projects/{project_id}", 200),
        ("DELETE", "/projects/{project_id}", 200),
    ]


def test_free_plan_caps_history_retention(neon_api: NeonApi, client: httpx.Client) -> None:
    neon_api.configure(plan="free")
    response = client.post("/projects", json={"project": {"name": "x", "history_retention_seconds": 86400}})
    assert response.status_code == 400
    assert "21600" in response.json()["message"]
