"""neonctl, pinned, through the seeds' workflows against the emulator: the commands as the seeds
write them (plus `--api-host`/`--api-key`, and `--output json` where the test reads the output),
and the connection strings it prints connect to the branch's data.

neonctl has no command for endpoint suspend/start or a role's password reset: test_api_client.py
covers those with the official client. Each neonctl run costs about 1.5 s (Node loading it).
"""

from __future__ import annotations

import json

import psycopg
import pytest

from tests.support.neon_fixtures import NeonApi

pytestmark = pytest.mark.host  # runs neonctl in a subprocess


def notes(uri: str) -> list[str]:
    with psycopg.connect(uri) as conn:
        return [text for (text,) in conn.execute("SELECT text FROM notes ORDER BY text")]


def add_note(uri: str, text: str) -> None:
    with psycopg.connect(uri) as conn:
        conn.execute("INSERT INTO notes VALUES (%s)", [text])


def test_seed_workflow_and_branch_lifecycle(neon_api: NeonApi, neonctl) -> None:
    created = json.loads(neonctl("projects", "create", "--name", "seed", "--output", "json"))
    project_id = created["project"]["id"]
    main_uri = created["connection_uris"][0]["connection_uri"]
    with psycopg.connect(main_uri) as conn:
        conn.execute("CREATE TABLE notes (text text)")
        conn.execute("INSERT INTO notes VALUES ('main')")
    assert [p["id"] for p in json.loads(neonctl("projects", "list", "--output", "json"))["projects"]] == [project_id]

    neonctl("branches", "create", "--project-id", project_id, "--name", "dev")
    branches = json.loads(neonctl("branches", "list", "--project-id", project_id, "--output", "json"))
    assert sorted(b["name"] for b in branches) == ["dev", "main"]
    dev_uri = neonctl("connection-string", "dev").strip()  # the account's only project, as in the seed
    assert notes(dev_uri) == ["main"]
    add_note(dev_uri, "dev 1")
    # neonctl makes the pooled host itself by adding "-pooler" to the endpoint id in the endpoint's
    # host; the emulator's hosts are addresses, so the string is the direct one, and it connects.
    assert notes(neonctl("connection-string", "dev", "--pooled").strip()) == ["dev 1", "main"]
    assert notes(main_uri) == ["main"]

    reset = json.loads(neonctl("branches", "reset", "dev", "--parent", "--project-id", project_id, "--output", "json"))
    assert "last_reset_at" in reset
    assert notes(dev_uri) == ["main"]  # the same string connects, to the parent's data
    add_note(dev_uri, "dev 2")
    neonctl("branches", "restore", "dev", "^parent", "--preserve-under-name", "dev-old", "--project-id", project_id)
    assert notes(dev_uri) == ["main"]

    neonctl("branches", "set-default", "dev-old", "--project-id", project_id)
    neonctl("branches", "delete", "dev", "--project-id", project_id)
    listed = json.loads(neonctl("branches", "list", "--project-id", project_id, "--output", "json"))
    assert sorted((b["name"], b["default"]) for b in listed) == [("dev-old", True), ("main", False)]
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(dev_uri, connect_timeout=5)
    assert neon_api.violations == []
