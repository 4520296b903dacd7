"""Neon's official TypeScript client (@neondatabase/api-client, pinned) through the same workflow
as neonctl, plus what neonctl has no command for: every request it sends passes the emulator's
OpenAPI check, and the URIs it is given connect (pooled ones through PgBouncer)."""

from __future__ import annotations

import psycopg
import pytest

from tests.clients.test_neonctl import add_note, notes
from tests.support.neon_fixtures import NeonApi

pytestmark = pytest.mark.host  # runs node in a subprocess


def pooler_clients(neon_api: NeonApi, project_id: str, branch_id: str) -> list[tuple[bytes, bytes]]:
    """(user, database) of every client of the branch's PgBouncer, from its admin console."""
    compute = neon_api.projects[project_id].branches[branch_id].compute
    admin_url = compute.pgbouncer.url("pgbouncer", "postgres", compute.postgres.password)
    with psycopg.connect(admin_url, autocommit=True) as admin:
        result = admin.pgconn.exec_(b"SHOW CLIENTS")  # the console speaks only the simple query protocol
        columns = [result.fname(i) for i in range(result.nfields)]
        user, database = columns.index(b"user"), columns.index(b"database")
        return [(result.get_value(row, user), result.get_value(row, database)) for row in range(result.ntuples)]


def test_official_client_workflow(neon_api: NeonApi, api_client) -> None:
    user, created = api_client([["getCurrentUserInfo"], ["createProject", {"project": {"name": "ts-client"}}]])
    assert user["projects_limit"] == 0
    project_id, main_id = created["project"]["id"], created["branch"]["id"]
    main_uri = created["connection_uris"][0]["connection_uri"]
    with psycopg.connect(main_uri) as conn:
        conn.execute("CREATE TABLE notes (text text)")
        conn.execute("INSERT INTO notes VALUES ('main')")

    owner = {"projectId": project_id, "database_name": "neondb", "role_name": "neondb_owner"}
    listed, branch, branches, direct, pooled = api_client([
        ["listProjects", {}],
        ["createProjectBranch", project_id, {"branch": {"name": "dev"}, "endpoints": [{"type": "read_write"}]}],
        ["listProjectBranches", {"projectId": project_id}],
        ["getConnectionUri", {**owner, "branch_id": "$1.branch.id"}],
        ["getConnectionUri", {**owner, "branch_id": "$1.branch.id", "pooled": True}],
    ])
    assert [p["id"] for p in listed["projects"]] == [project_id]
    dev_id, endpoint_id = branch["branch"]["id"], branch["endpoints"][0]["id"]
    assert sorted(b["name"] for b in branches["branches"]) == ["dev", "main"]
    assert notes(direct["uri"]) == ["main"]
    add_note(direct["uri"], "dev")
    with psycopg.connect(pooled["uri"], prepare_threshold=None) as conn:
        assert [text for (text,) in conn.execute("SELECT text FROM notes ORDER BY text")] == ["dev", "main"]
        assert (b"neondb_owner", b"neondb") in pooler_clients(neon_api, project_id, dev_id)

    suspended, shown = api_client([
        ["suspendProjectEndpoint", project_id, endpoint_id],
        ["getProjectEndpoint", project_id, endpoint_id],
    ])
    assert suspended["endpoint"]["current_state"] == shown["endpoint"]["current_state"] == "idle"
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(direct["uri"], connect_timeout=5)
    (started,) = api_client([["startProjectEndpoint", project_id, endpoint_id]])
    assert started["endpoint"]["current_state"] == "active"
    assert notes(direct["uri"]) == ["dev", "main"]

    _, restored, reset, renewed, renewed_pooled = api_client([
        ["restartProjectEndpoint", project_id, endpoint_id],
        ["restoreProjectBranch", project_id, dev_id, {"source_branch_id": main_id}],
        ["resetProjectBranchRolePassword", project_id, dev_id, "neondb_owner"],
        ["getConnectionUri", {**owner, "branch_id": dev_id}],
        ["getConnectionUri", {**owner, "branch_id": dev_id, "pooled": True}],
    ])
    assert restored["branch"]["parent_id"] == main_id and "last_reset_at" in restored["branch"]
    assert reset["role"]["password"] in renewed["uri"]
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        psycopg.connect(direct["uri"])
    assert notes(renewed["uri"]) == ["main"]
    with psycopg.connect(renewed_pooled["uri"], prepare_threshold=None) as conn:  # PgBouncer outlived the restore
        assert conn.execute("SELECT count(*) FROM notes").fetchone() == (1,)

    _, remaining, _ = api_client([
        ["deleteProjectBranch", {"projectId": project_id, "branchId": dev_id}],
        ["listProjectBranches", {"projectId": project_id}],
        ["deleteProject", project_id],
    ])
    assert [b["id"] for b in remaining["branches"]] == [main_id]
    assert neon_api.violations == [] and neon_api.fake.response_errors == []
    assert [call for call in neon_api.calls if call[2] >= 400] == []
