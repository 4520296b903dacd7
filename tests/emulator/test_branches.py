"""Branches copy their parent's cluster; protected parents rotate passwords; delete rules."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
import psycopg
import pytest

from components.uri import postgres_uri
from tests.emulator.helpers import create_branch, create_project, wait
from tests.support.neon_fixtures import NeonApi


def _connect(role: str, password: str, host: str, database: str) -> psycopg.Connection:
    return psycopg.connect(postgres_uri(role, password, host, database), connect_timeout=5)


def test_child_branch_has_parent_data_roles_and_databases(neon_api: NeonApi, client: httpx.Client) -> None:
    project = create_project(client)
    role, host = project["roles"][0], project["endpoints"][0]["host"]
    with _connect(role["name"], role["password"], host, "neondb") as conn:
        conn.execute("CREATE TABLE notes (body text)")
        conn.execute("INSERT INTO notes VALUES ('kept')")
    project_id = project["project"]["id"]
    full = create_branch(client, project_id, {"branch": {"name": "full"}, "endpoints": [{"type": "read_write"}]})
    schema = create_branch(
        client,
        project_id,
        {"branch": {"name": "schema", "init_source": "schema-only"}, "endpoints": [{"type": "read_write"}]},
    )
    assert full["branch"]["parent_id"] == project["branch"]["id"]
    assert [r["name"] for r in full["roles"]] == [role["name"]]
    assert [d["name"] for d in full["databases"]] == ["neondb"]
    with _connect(role["name"], role["password"], full["endpoints"][0]["host"], "neondb") as conn:
        assert conn.execute("SELECT body FROM notes").fetchall() == [("kept",)]
    with _connect(role["name"], role["password"], schema["endpoints"][0]["host"], "neondb") as conn:
        assert conn.execute("SELECT count(*) FROM notes").fetchone() == (0,)
    assert full["endpoints"][0]["host"] != host


def test_children_of_a_protected_branch_get_new_passwords(neon_api: NeonApi, client: httpx.Client) -> None:
    project = create_project(client)
    project_id, main = project["project"]["id"], project["branch"]["id"]
    role = project["roles"][0]
    assert (
        client.patch(f"/projects/{project_id}/branches/{main}", json={"branch": {"protected": True}}).status_code == 200
    )
    child = create_branch(client, project_id, {"branch": {"name": "dev"}, "endpoints": [{"type": "read_write"}]})
    child_id, host = child["branch"]["id"], child["endpoints"][0]["host"]
    new = client.get(f"/projects/{project_id}/branches/{child_id}/roles/{role['name']}/reveal_password").json()
    assert new["password"] != role["password"]
    with _connect(role["name"], new["password"], host, "neondb") as conn:
        assert conn.execute("SELECT current_user").fetchone() == (role["name"],)
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        _connect(role["name"], role["password"], host, "neondb")
    with _connect(role["name"], role["password"], project["endpoints"][0]["host"], "neondb"):
        pass  # the parent keeps its password
    assert len(neon_api.reveal_calls()) == 1


def test_delete_rules(neon_api: NeonApi, client: httpx.Client) -> None:
    project = create_project(client)
    project_id, main = project["project"]["id"], project["branch"]["id"]
    parent = create_branch(client, project_id, {"branch": {"name": "parent"}})["branch"]["id"]
    child = create_branch(client, project_id, {"branch": {"name": "child", "parent_id": parent}})["branch"]["id"]

    def delete(branch_id: str) -> httpx.Response:
        return client.delete(f"/projects/{project_id}/branches/{branch_id}")

    assert "default" in delete(main).json()["message"]
    assert "child" in delete(parent).json()["message"]
    client.patch(f"/projects/{project_id}/branches/{child}", json={"branch": {"protected": True}})
    refused = delete(child)
    assert refused.status_code == 400 and "protected" in refused.json()["message"]
    client.patch(f"/projects/{project_id}/branches/{child}", json={"branch": {"protected": False}})
    deleted = delete(child)
    assert deleted.status_code == 200
    wait(client, project_id, deleted.json()["operations"])
    assert delete(child).status_code == 204
    neon_api.configure(gone_delete_status=404)
    assert delete(child).status_code == 404
    assert delete(parent).status_code == 200
    assert list(neon_api.projects[project_id].branches) == [main]


def test_branch_names_endpoints_and_expiry(neon_api: NeonApi, client: httpx.Client) -> None:
    project_id = create_project(client)["project"]["id"]
    two = {"branch": {"name": "x"}, "endpoints": [{"type": "read_write"}, {"type": "read_write"}]}
    assert client.post(f"/projects/{project_id}/branches", json=two).status_code == 400
    expired = (datetime.now(UTC) - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert client.post(f"/projects/{project_id}/branches", json={"branch": {"expires_at": expired}}).status_code == 400
    expires = (datetime.now(UTC) + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    branch = create_branch(client, project_id, {"branch": {"name": "temp", "expires_at": expires}})["branch"]
    assert branch["expires_at"] == expires
    assert client.post(f"/projects/{project_id}/branches", json={"branch": {"name": "temp"}}).status_code == 409
    endpoint = {"endpoint": {"branch_id": branch["id"], "type": "read_write"}}
    created = client.post(f"/projects/{project_id}/endpoints", json=endpoint)
    assert created.status_code == 201
    wait(client, project_id, created.json()["operations"])
    assert client.post(f"/projects/{project_id}/endpoints", json=endpoint).status_code == 400
    cleared = client.patch(f"/projects/{project_id}/branches/{branch['id']}", json={"branch": {"expires_at": None}})
    assert "expires_at" not in cleared.json()["branch"]
    listed = client.get(f"/projects/{project_id}/branches/{branch['id']}/endpoints").json()["endpoints"]
    assert [e["id"] for e in listed] == [created.json()["endpoint"]["id"]]
