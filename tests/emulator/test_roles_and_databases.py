"""Roles and databases exist for real; URIs built from returned hosts connect direct and pooled, with TLS."""

from __future__ import annotations

import httpx
import psycopg
import pytest

from components.uri import pooled_host, postgres_uri
from tests.emulator.helpers import create_project, wait
from tests.support.neon_fixtures import NeonApi


def _ssl_in_use(uri: str) -> bool:
    with psycopg.connect(uri, connect_timeout=5) as conn:
        conn.execute("SELECT 1")
        return conn.pgconn.ssl_in_use


def test_api_role_logs_in_direct_and_pooled_with_tls(neon_api: NeonApi, client: httpx.Client) -> None:
    project = create_project(client)
    project_id, branch_id = project["project"]["id"], project["branch"]["id"]
    host = project["endpoints"][0]["host"]
    response = client.post(
        f"/projects/{project_id}/branches/{branch_id}/roles", json={"role": {"name": "chatkit_owner"}}
    )
    assert response.status_code == 201
    password = response.json()["role"]["password"]
    wait(client, project_id, response.json()["operations"])
    database = {"database": {"name": "chatkit", "owner_name": "chatkit_owner"}}
    created = client.post(f"/projects/{project_id}/branches/{branch_id}/databases", json=database)
    assert created.status_code == 201
    wait(client, project_id, created.json()["operations"])

    assert _ssl_in_use(postgres_uri("chatkit_owner", password, host, "chatkit"))
    assert _ssl_in_use(postgres_uri("chatkit_owner", password, pooled_host(host), "chatkit"))
    with psycopg.connect(postgres_uri("chatkit_owner", password, host, "chatkit")) as conn:
        flags = conn.execute(
            "SELECT rolcreatedb, rolcreaterole, pg_has_role('neon_superuser', 'member') FROM pg_roles"
            " WHERE rolname = current_user"
        ).fetchone()
        owner = conn.execute("SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = 'chatkit'").fetchone()
    assert flags == (True, True, True)
    assert owner == ("chatkit_owner",)

    uri = client.get(
        f"/projects/{project_id}/connection_uri",
        params={"role_name": "chatkit_owner", "database_name": "chatkit", "pooled": "true"},
    ).json()["uri"]
    assert _ssl_in_use(uri)
    assert (
        client.get(f"/projects/{project_id}/branches/{branch_id}/roles/chatkit_owner").json()["role"].get("password")
        is None
    )


def test_reset_password_rotates_for_real(neon_api: NeonApi, client: httpx.Client) -> None:
    project = create_project(client)
    project_id, branch_id = project["project"]["id"], project["branch"]["id"]
    role, host = project["roles"][0], project["endpoints"][0]["host"]
    reset = client.post(f"/projects/{project_id}/branches/{branch_id}/roles/{role['name']}/reset_password")
    assert reset.status_code == 200
    new = reset.json()["role"]["password"]
    assert new != role["password"]
    with psycopg.connect(postgres_uri(role["name"], new, host, "neondb")):
        pass
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        psycopg.connect(postgres_uri(role["name"], role["password"], host, "neondb"))
    wait(client, project_id, reset.json()["operations"])
    revealed = client.get(f"/projects/{project_id}/branches/{branch_id}/roles/{role['name']}/reveal_password")
    assert revealed.json() == {"password": new}
    assert neon_api.reveal_calls() == [
        ("GET", "/projects/{project_id}/branches/{branch_id}/roles/{role_name}/reveal_password", 200)
    ]


def test_database_rename_owner_change_and_delete(neon_api: NeonApi, client: httpx.Client) -> None:
    project = create_project(client)
    project_id, branch_id = project["project"]["id"], project["branch"]["id"]
    base = f"/projects/{project_id}/branches/{branch_id}"
    wait(client, project_id, client.post(f"{base}/roles", json={"role": {"name": "other"}}).json()["operations"])
    patched = client.patch(f"{base}/databases/neondb", json={"database": {"name": "renamed", "owner_name": "other"}})
    assert patched.status_code == 200
    assert patched.json()["database"]["name"] == "renamed"
    wait(client, project_id, patched.json()["operations"])
    assert [d["name"] for d in client.get(f"{base}/databases").json()["databases"]] == ["renamed"]
    owner = project["roles"][0]
    with psycopg.connect(
        postgres_uri(owner["name"], owner["password"], project["endpoints"][0]["host"], "renamed")
    ) as c:
        assert c.execute("SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = 'renamed'").fetchone() == (
            "other",
        )
    refused = client.delete(f"{base}/roles/other")
    assert refused.status_code == 400 and "owns" in refused.json()["message"]
    deleted = client.delete(f"{base}/databases/renamed")
    assert deleted.status_code == 200
    wait(client, project_id, deleted.json()["operations"])
    assert client.delete(f"{base}/databases/renamed").status_code == 204
    assert client.delete(f"{base}/roles/other").status_code == 200


def test_reveal_password_needs_stored_passwords(neon_api: NeonApi, client: httpx.Client) -> None:
    project = create_project(client, store_passwords=False)
    project_id, branch_id = project["project"]["id"], project["branch"]["id"]
    revealed = client.get(
        f"/projects/{project_id}/branches/{branch_id}/roles/{project['roles'][0]['name']}/reveal_password"
    )
    assert revealed.status_code == 412


def test_roles_and_databases_made_with_sql_show_up_in_the_api(neon_api: NeonApi, client: httpx.Client) -> None:
    project = create_project(client)
    project_id, branch_id = project["project"]["id"], project["branch"]["id"]
    owner, host = project["roles"][0], project["endpoints"][0]["host"]
    with psycopg.connect(postgres_uri(owner["name"], owner["password"], host, "neondb"), autocommit=True) as conn:
        conn.execute("CREATE ROLE learnflow_app LOGIN PASSWORD 'npg_sqlMadeRole1'")
        conn.execute("CREATE DATABASE sqldb")
    base = f"/projects/{project_id}/branches/{branch_id}"
    assert {r["name"] for r in client.get(f"{base}/roles").json()["roles"]} == {owner["name"], "learnflow_app"}
    databases = {d["name"]: d["owner_name"] for d in client.get(f"{base}/databases").json()["databases"]}
    assert databases == {"neondb": owner["name"], "sqldb": owner["name"]}
    with psycopg.connect(postgres_uri(owner["name"], owner["password"], host, "neondb"), autocommit=True) as conn:
        conn.execute("DROP DATABASE sqldb")
        conn.execute("DROP ROLE learnflow_app")
    assert client.get(f"{base}/roles/learnflow_app").status_code == 404
    assert client.get(f"{base}/databases/sqldb").status_code == 404
