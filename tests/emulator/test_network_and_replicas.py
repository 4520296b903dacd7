"""The emulator's IP Allow on its real servers (direct and pooled, from allowed and refused loopback
addresses), read-only endpoints that refuse writes, and what a protected branch refuses."""

from __future__ import annotations

import time

import httpx
import psycopg
import pytest

from neon_emulator.servers import url
from tests.emulator.helpers import create_project, wait
from tests.support.relay import relay

ALLOWED_SOURCE = "127.0.0.1"
REFUSED_SOURCE = "127.0.0.7"


def split(host: str) -> tuple[str, int]:
    name, port = host.rsplit(":", 1)
    return name, int(port)


def pooled(host: str) -> tuple[str, int]:
    """The endpoint's PgBouncer: the same port on the next loopback address."""
    return "127.0.0.2", split(host)[1]


def connect_from(source: str, target: tuple[str, int], user: str, password: str, database: str) -> None:
    """Log in to `target` from `source` (through a relay bound to it) and run a query."""
    with relay(target, source) as (host, port):
        conninfo = url(user, password, host, port, database, sslmode="require", connect_timeout="5")
        with psycopg.connect(conninfo) as conn:
            conn.execute("SELECT 1")


def owner_login(created: dict) -> tuple[str, str, str]:
    role = created["roles"][0]
    return role["name"], role["password"], created["databases"][0]["name"]


def set_network(client: httpx.Client, project_id: str, settings: dict) -> None:
    response = client.patch(f"/projects/{project_id}", json={"project": {"settings": settings}})
    assert response.status_code == 200, response.text


@pytest.mark.parametrize("where", [split, pooled], ids=["direct", "pooled"])
def test_the_allow_list_admits_listed_addresses_and_refuses_others(client, where):
    created = create_project(client, settings={"allowed_ips": {"ips": [f"{ALLOWED_SOURCE}/32", "10.0.0.1-10.0.0.9"]}})
    target = where(created["endpoints"][0]["host"])
    login = owner_login(created)

    connect_from(ALLOWED_SOURCE, target, *login)
    with pytest.raises(psycopg.OperationalError):
        connect_from(REFUSED_SOURCE, target, *login)

    # Removing the restriction takes an empty list (Neon merges the settings of a PATCH).
    set_network(client, created["project"]["id"], {"allowed_ips": {"ips": []}})
    connect_from(REFUSED_SOURCE, target, *login)


def test_protected_branches_only_leaves_other_branches_open_and_blocking_closes_all(client):
    created = create_project(client)
    project_id, branch_id = created["project"]["id"], created["branch"]["id"]
    target, login = split(created["endpoints"][0]["host"]), owner_login(created)
    set_network(client, project_id, {"allowed_ips": {"ips": [ALLOWED_SOURCE], "protected_branches_only": True}})
    connect_from(REFUSED_SOURCE, target, *login)  # the branch is not protected

    response = client.patch(f"/projects/{project_id}/branches/{branch_id}", json={"branch": {"protected": True}})
    assert response.status_code == 200, response.text
    with pytest.raises(psycopg.OperationalError):
        connect_from(REFUSED_SOURCE, target, *login)

    set_network(client, project_id, {"block_public_connections": True})
    with pytest.raises(psycopg.OperationalError):
        connect_from(ALLOWED_SOURCE, target, *login)


def test_a_malformed_entry_is_refused_before_anything_changes(client):
    created = create_project(client)
    response = client.patch(
        f"/projects/{created['project']['id']}", json={"project": {"settings": {"allowed_ips": {"ips": ["10.0.0/33"]}}}}
    )
    assert response.status_code == 400 and "10.0.0/33" in response.json()["message"]
    assert "allowed_ips" not in client.get(f"/projects/{created['project']['id']}").json()["project"]["settings"]


def test_a_read_only_endpoint_serves_reads_and_refuses_writes(client):
    created = create_project(client)
    project_id, branch_id = created["project"]["id"], created["branch"]["id"]
    user, password, database = owner_login(created)
    primary = split(created["endpoints"][0]["host"])
    with psycopg.connect(url(user, password, *primary, database, sslmode="require")) as conn:
        conn.execute("CREATE TABLE notes (body text)")
        conn.execute("INSERT INTO notes VALUES ('written on the primary')")

    response = client.post(
        f"/projects/{project_id}/endpoints", json={"endpoint": {"branch_id": branch_id, "type": "read_only"}}
    )
    assert response.status_code == 201, response.text
    replica = response.json()["endpoint"]
    wait(client, project_id, response.json()["operations"])
    assert replica["host"] != created["endpoints"][0]["host"]

    for host in (split(replica["host"]), pooled(replica["host"])):
        with psycopg.connect(url(user, password, *host, database, sslmode="require"), autocommit=True) as conn:
            deadline = time.monotonic() + 10
            while not conn.execute("SELECT to_regclass('notes')").fetchone()[0] and time.monotonic() < deadline:
                time.sleep(0.05)  # streaming replication: the standby catches up
            assert conn.execute("SELECT body FROM notes").fetchall() == [("written on the primary",)]
            conn.execute("SET default_transaction_read_only = off")  # a client cannot undo a standby
            with pytest.raises(psycopg.errors.ReadOnlySqlTransaction):
                conn.execute("INSERT INTO notes VALUES ('written on the replica')")

    response = client.delete(f"/projects/{project_id}/endpoints/{replica['id']}")
    assert response.status_code == 200, response.text
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(url(user, password, *split(replica["host"]), database, sslmode="require", connect_timeout="3"))


def test_a_protected_branch_and_its_computes_cannot_be_deleted(client):
    created = create_project(client)
    project_id = created["project"]["id"]
    child = client.post(f"/projects/{project_id}/branches", json={"branch": {"name": "child", "protected": True}})
    assert child.status_code == 201, child.text
    child_id = child.json()["branch"]["id"]
    wait(client, project_id, child.json()["operations"])
    created = client.post(
        f"/projects/{project_id}/endpoints", json={"endpoint": {"branch_id": child_id, "type": "read_write"}}
    ).json()
    endpoint = created["endpoint"]
    wait(client, project_id, created["operations"])  # else the refusals could be 423 (an operation runs)

    branch_delete = client.delete(f"/projects/{project_id}/branches/{child_id}")
    endpoint_delete = client.delete(f"/projects/{project_id}/endpoints/{endpoint['id']}")
    assert (branch_delete.status_code, endpoint_delete.status_code) == (400, 400)
    assert "protected" in branch_delete.json()["message"] and "protected" in endpoint_delete.json()["message"]
