"""A production-like stack through the program: read replicas reach each app's Secret as
DATABASE_URL_READONLY (reads work, writes are refused) while the Dapr Component keeps the read-write
URL, every application URL carries connect_timeout, and the primary branch is protected."""

from __future__ import annotations

import base64
from pathlib import Path

import psycopg
import pytest

from tests.program.conftest import Deployer
from tests.support.manifests import declared_manifests
from tests.support.replicas import replica_connection

SETTINGS = {
    "neon-stack:readReplicas": "1",
    "neon-stack:protectPrimaryBranch": "true",
    "neon-stack:allowedIps": '["127.0.0.1"]',
    "neon-stack:deployerIps": '["127.0.0.1"]',
    "neon-stack:connectTimeoutSeconds": "20",
}


def decoded(secret: dict) -> dict[str, str]:
    return {key: base64.b64decode(value).decode() for key, value in secret["data"].items()}


def test_read_replica_url_reads_but_cannot_write_and_dapr_keeps_the_read_write_url(neon_api, tmp_path: Path):
    run = Deployer(neon_api, tmp_path / "rendered", "prod", SETTINGS).up()
    project = next(iter(neon_api.projects.values()))
    assert project.default_branch.info["protected"] is True
    assert project.info["settings"]["allowed_ips"]["ips"] == ["127.0.0.1"]
    assert "appReadOnlyDatabaseUrls" in run.secret_outputs
    objects = declared_manifests(run)
    for app in ("chatkit", "learnflow"):
        secret, component = (
            next(o for o in objects if o["kind"] == kind and o["metadata"]["namespace"] == app)
            for kind in ("Secret", "Component")
        )
        data = decoded(secret)
        read_only = data["DATABASE_URL_READONLY"]
        assert read_only == run.outputs["appReadOnlyDatabaseUrls"][app]
        assert read_only != data["DATABASE_URL"] and read_only.startswith(f"postgresql://{app}_app:")
        assert "connect_timeout=20" in read_only and "connect_timeout=20" in data["DATABASE_URL"]
        assert data["PGCONNECT_TIMEOUT"] == "20"
        assert component["spec"]["metadata"][0]["secretKeyRef"] == {"name": "postgres-credentials",
                                                                      "key": "DATABASE_URL"}
        table = run.outputs["apps"][app]["tables"][0]
        with replica_connection(read_only) as conn:
            conn.execute(f"SELECT count(*) FROM {table}")  # the app role may read its tables
            with pytest.raises(psycopg.errors.ReadOnlySqlTransaction):
                conn.execute(f"DELETE FROM {table}")
        with psycopg.connect(data["DATABASE_URL"], prepare_threshold=None) as conn:
            conn.execute(f"DELETE FROM {table}")  # the read-write URL may


def test_a_deployer_outside_the_allow_list_fails_before_any_call(neon_api, tmp_path: Path):
    settings = {**SETTINGS, "neon-stack:deployerIps": '["198.51.100.7"]'}
    with pytest.raises(Exception, match=r"neon-stack:allowedIps: does not cover '198\.51\.100\.7'"):
        Deployer(neon_api, tmp_path / "rendered", "prod", settings).up(preview=True)
    assert neon_api.calls == []
