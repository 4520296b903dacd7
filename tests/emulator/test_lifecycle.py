"""Branch restore (data back to the source's, URIs kept), set as default, endpoint suspend/start/restart."""

from __future__ import annotations

import time

import httpx
import psycopg
import pytest

from tests.emulator.helpers import create_branch, create_project, wait
from tests.support.neon_fixtures import NeonApi


def _notes(uri: str) -> list[str]:
    with psycopg.connect(uri, connect_timeout=5) as conn:
        return [body for (body,) in conn.execute("SELECT body FROM notes ORDER BY body")]


def _add(uri: str, body: str) -> None:
    with psycopg.connect(uri, connect_timeout=5) as conn:
        conn.execute("INSERT INTO notes VALUES (%s)", [body])


def _uri(client: httpx.Client, project_id: str, branch_id: str) -> str:
    query = {"branch_id": branch_id, "role_name": "neondb_owner", "database_name": "neondb"}
    response = client.get(f"/projects/{project_id}/connection_uri", params=query)
    assert response.status_code == 200, response.text
    return response.json()["uri"]


def _post(client: httpx.Client, project_id: str, path: str, body: dict | None = None) -> dict:
    response = client.post(f"/projects/{project_id}{path}", json=body)
    assert response.status_code == 200, response.text
    wait(client, project_id, response.json()["operations"])
    return response.json()


@pytest.fixture
def project(client: httpx.Client) -> dict:
    """A project whose main branch has a table `notes` with the row 'main', and its child `dev` (with an endpoint)."""
    created = create_project(client)
    with psycopg.connect(created["connection_uris"][0]["connection_uri"]) as conn:
        conn.execute("CREATE TABLE notes (body text)")
        conn.execute("INSERT INTO notes VALUES ('main')")
    project_id = created["project"]["id"]
    dev = create_branch(client, project_id, {"branch": {"name": "dev"}, "endpoints": [{"type": "read_write"}]})
    main, endpoint = created["branch"]["id"], dev["endpoints"][0]["id"]
    return {"id": project_id, "main": main, "dev": dev["branch"]["id"], "endpoint": endpoint}


def test_restore_to_parent_keeps_the_uri_and_can_preserve_the_old_state(
    neon_api: NeonApi, client: httpx.Client, project: dict
) -> None:
    p, dev = project["id"], project["dev"]
    dev_uri = _uri(client, p, dev)
    _add(dev_uri, "dev")
    restored = _post(client, p, f"/branches/{dev}/restore", {"source_branch_id": project["main"]})
    assert restored["branch"]["parent_id"] == project["main"] and "last_reset_at" in restored["branch"]
    assert _uri(client, p, dev) == dev_uri
    assert _notes(dev_uri) == ["main"]

    _add(dev_uri, "dev again")
    body = {"source_branch_id": project["main"], "preserve_under_name": "dev-old"}
    restored = _post(client, p, f"/branches/{dev}/restore", body)
    old = next(b for b in client.get(f"/projects/{p}/branches").json()["branches"] if b["name"] == "dev-old")
    assert restored["branch"]["parent_id"] == old["id"] and old["parent_id"] == project["main"]
    assert _notes(dev_uri) == ["main"]
    created = client.post(f"/projects/{p}/endpoints", json={"endpoint": {"branch_id": old["id"], "type": "read_write"}})
    wait(client, p, created.json()["operations"])
    assert _notes(_uri(client, p, old["id"])) == ["dev again", "main"]


def test_restore_refusals(neon_api: NeonApi, client: httpx.Client, project: dict) -> None:
    p, main, dev = project["id"], project["main"], project["dev"]
    refusals = [
        (main, {"source_branch_id": dev}, 400, "preserve_under_name is required"),  # main has a child
        (dev, {"source_branch_id": main, "source_lsn": "0/1"}, 501, "source_lsn"),
        (dev, {"source_branch_id": main, "source_timestamp": "2026-01-01T00:00:00Z"}, 501, "source_timestamp"),
        (dev, {"source_branch_id": dev, "preserve_under_name": "x"}, 501, "its own past"),
        (dev, {"source_branch_id": main, "preserve_under_name": "main"}, 409, "already exists"),
        (dev, {"source_branch_id": "br-missing-1"}, 404, "br-missing-1"),
    ]
    for branch, body, status, message in refusals:
        response = client.post(f"/projects/{p}/branches/{branch}/restore", json=body)
        assert (response.status_code, message in response.json()["message"]) == (status, True), (body, response.text)
    assert len(neon_api.projects[p].branches) == 2


def test_set_as_default(neon_api: NeonApi, client: httpx.Client, project: dict) -> None:
    p, main, dev = project["id"], project["main"], project["dev"]
    assert _post(client, p, f"/branches/{dev}/set_as_default")["branch"]["default"] is True
    branches = {b["id"]: b["default"] for b in client.get(f"/projects/{p}/branches").json()["branches"]}
    assert branches == {main: False, dev: True}
    assert client.delete(f"/projects/{p}/branches/{dev}").status_code == 400


def _replica(client: httpx.Client, project_id: str, branch_id: str) -> dict:
    """A read_only endpoint of the branch, started."""
    body = {"endpoint": {"branch_id": branch_id, "type": "read_only"}}
    created = client.post(f"/projects/{project_id}/endpoints", json=body)
    assert created.status_code == 201, created.text
    wait(client, project_id, created.json()["operations"])
    return created.json()["endpoint"]


def _on_host(uri: str, host: str) -> str:
    """`uri` with its host and port replaced by the endpoint host `host` (`127.0.0.1:<port>`)."""
    info = psycopg.conninfo.conninfo_to_dict(uri)
    name, port = host.rsplit(":", 1)
    return psycopg.conninfo.make_conninfo(**{**info, "host": name, "port": port})


def test_suspend_stops_the_endpoints_own_server_and_start_brings_it_back(
    neon_api: NeonApi, client: httpx.Client, project: dict
) -> None:
    p, dev, endpoint = project["id"], project["dev"], project["endpoint"]
    dev_uri = _uri(client, p, dev)
    replica = _replica(client, p, dev)
    replica_uri = _on_host(dev_uri, replica["host"])

    suspended = _post(client, p, f"/endpoints/{endpoint}/suspend")
    assert suspended["endpoint"]["current_state"] == "idle" and "suspended_at" in suspended["endpoint"]
    assert [op["action"] for op in suspended["operations"]] == ["suspend_compute"]
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(dev_uri, connect_timeout=5)
    assert _notes(replica_uri) == ["main"]  # the read replica is a server of its own
    _post(client, p, f"/endpoints/{replica['id']}/suspend")
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(replica_uri, connect_timeout=5)

    started = _post(client, p, f"/endpoints/{endpoint}/start")
    assert started["endpoint"]["current_state"] == "active" and "suspended_at" not in started["endpoint"]
    assert _notes(dev_uri) == ["main"]
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(replica_uri, connect_timeout=5)
    _post(client, p, f"/endpoints/{replica['id']}/start")
    assert _notes(replica_uri) == ["main"]

    with psycopg.connect(dev_uri) as conn:
        restarted = _post(client, p, f"/endpoints/{endpoint}/restart")
        assert [op["action"] for op in restarted["operations"]] == ["suspend_compute", "start_compute"]
        with pytest.raises(psycopg.OperationalError):
            conn.execute("SELECT 1")
    assert _notes(dev_uri) == ["main"]
    states = {e["id"]: e["current_state"] for e in client.get(f"/projects/{p}/endpoints").json()["endpoints"]}
    assert states[endpoint] == states[replica["id"]] == "active"


def test_a_restore_brings_the_branchs_read_replicas_along(
    neon_api: NeonApi, client: httpx.Client, project: dict
) -> None:
    p, dev = project["id"], project["dev"]
    dev_uri = _uri(client, p, dev)
    _add(dev_uri, "dev")
    replica = _replica(client, p, dev)
    replica_uri = _on_host(dev_uri, replica["host"])
    _post(client, p, f"/branches/{dev}/restore", {"source_branch_id": project["main"]})
    assert _notes(replica_uri) == ["main"]  # same host and port, the restored data
    _add(dev_uri, "after the restore")
    deadline = time.monotonic() + 10
    while _notes(replica_uri) != ["after the restore", "main"] and time.monotonic() < deadline:
        time.sleep(0.05)  # it streams from the restored branch again
    assert _notes(replica_uri) == ["after the restore", "main"]


def test_a_protected_branch_cannot_be_reset(neon_api: NeonApi, client: httpx.Client, project: dict) -> None:
    p, dev = project["id"], project["dev"]
    response = client.patch(f"/projects/{p}/branches/{dev}", json={"branch": {"protected": True}})
    assert response.status_code == 200, response.text
    refused = client.post(f"/projects/{p}/branches/{dev}/restore", json={"source_branch_id": project["main"]})
    assert refused.status_code == 400 and "protected" in refused.json()["message"]


def test_calls_that_need_the_server_start_a_suspended_compute(
    neon_api: NeonApi, client: httpx.Client, project: dict
) -> None:
    p, dev, endpoint = project["id"], project["dev"], project["endpoint"]
    _post(client, p, f"/endpoints/{endpoint}/suspend")
    roles = client.get(f"/projects/{p}/branches/{dev}/roles")
    assert [r["name"] for r in roles.json()["roles"]] == ["neondb_owner"]
    assert client.get(f"/projects/{p}/endpoints/{endpoint}").json()["endpoint"]["current_state"] == "active"
    assert _notes(_uri(client, p, dev)) == ["main"]


def test_current_user_organizations_and_auth(neon_api: NeonApi, client: httpx.Client) -> None:
    me = client.get("/users/me").json()
    project = create_project(client)
    assert project["project"]["owner_id"] == me["id"]
    assert client.get("/users/me/organizations").json() == {"organizations": []}
    assert client.get("/auth").json() == {"account_id": me["id"], "auth_method": "api_key_user"}
    neon_api.configure(plan="free")
    assert client.get("/users/me").json()["branches_limit"] == 10


def test_restore_of_a_suspended_branch_starts_it(neon_api: NeonApi, client: httpx.Client, project: dict) -> None:
    p, dev, endpoint = project["id"], project["dev"], project["endpoint"]
    dev_uri = _uri(client, p, dev)
    _add(dev_uri, "dev")
    _post(client, p, f"/endpoints/{endpoint}/suspend")
    _post(client, p, f"/branches/{dev}/restore", {"source_branch_id": project["main"]})
    assert client.get(f"/projects/{p}/endpoints/{endpoint}").json()["endpoint"]["current_state"] == "active"
    assert _notes(dev_uri) == ["main"]
