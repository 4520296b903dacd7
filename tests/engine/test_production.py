"""A production-like stack through the real engine: an IP Allow list that covers the machine running
it (127.0.0.1), a protected primary branch and one read replica come up, the replica's URL reads
but cannot write, and a second `up` changes nothing."""

from __future__ import annotations

import psycopg

from tests.support.neon_fixtures import NeonApi
from tests.support.pulumi_cli import PulumiCli
from tests.support.replicas import replica_connection

PRODUCTION = {"neon-stack:protectPrimaryBranch": "true", "neon-stack:readReplicas": "1"}
# Arrays are typed in Pulumi.yaml, so they are set element by element, as the README shows.
ADDRESSES = {"neon-stack:allowedIps[0]": "127.0.0.1", "neon-stack:deployerIps[0]": "127.0.0.1"}


def test_production_controls_come_up_and_a_second_up_changes_nothing(pulumi: PulumiCli, neon_api: NeonApi) -> None:
    pulumi.init("local", {"neon:apiUrl": neon_api.url, **PRODUCTION}, secrets={"neon:apiKey": neon_api.api_key})
    for key, value in ADDRESSES.items():
        pulumi.run("config", "set", "--stack", "local", "--path", key, value)
    pulumi.up("local")

    (project,) = neon_api.projects.values()
    assert project.info["settings"]["allowed_ips"] == {"ips": ["127.0.0.1"], "protected_branches_only": False}
    assert project.default_branch.info["protected"] is True
    assert sorted(e["type"] for e in project.endpoints.values()) == ["read_only", "read_write"]
    outputs = pulumi.outputs("local")
    for app, read_only in outputs["appReadOnlyDatabaseUrls"].items():
        assert read_only != outputs["appDatabaseUrls"][app] and "connect_timeout=15" in read_only
        table = outputs["apps"][app]["tables"][0]
        with replica_connection(read_only) as conn:
            conn.execute(f"SELECT count(*) FROM {table}")
            try:
                conn.execute(f"DELETE FROM {table}")
            except psycopg.errors.ReadOnlySqlTransaction:
                pass
            else:
                raise AssertionError(f"the read replica of {app} accepted a write")

    second = pulumi.up("local", "--expect-no-changes")
    assert "unchanged" in second.stdout
