"""A branch-mode stack with `branchTtl`, through the real engine: the branch expires on the emulator's
clock, a later `up` makes it again from its parent (migrations and app role converge), and a
`destroy` after it expired succeeds.

Two hours pass, for the emulator and for the stack: `expire` makes the emulator's clock (the
machine's plus an offset) jump past the branch's expiry for one request (the emulator deletes
expired branches before each request), then sets it back, and moves the `expires_at` kept in the
stack's state back by the TTL (`pulumi stack export`/`import`), as it would stand two hours later.
The providers keep the machine's clock.
"""

from __future__ import annotations

import json
import socket
import time
from datetime import datetime
from pathlib import Path

import httpx
import psycopg

from neon_emulator.state import stamp
from tests.engine.test_local_stack import APPS, applied_versions
from tests.support.neon_fixtures import NeonApi
from tests.support.pulumi_cli import PulumiCli

TTL_SECONDS = 2 * 3600


class JumpingClock:
    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.time() + self.offset


def expire(pulumi: PulumiCli, neon_api: NeonApi, clock: JumpingClock, project_id: str) -> None:
    """Let the branch's expiry pass: on the emulator's clock for one sweep, and in the stack's state."""
    clock.offset = TTL_SECONDS + 60
    try:
        with httpx.Client(base_url=neon_api.url, headers=neon_api.headers, timeout=30) as client:
            assert client.get(f"/projects/{project_id}/branches").status_code == 200
    finally:
        clock.offset = 0.0
    state = pulumi.export("pr-7")
    (branch,) = [r for r in state["deployment"]["resources"] if r["type"] == "pulumi-python:dynamic/neon:Branch"]
    branch["outputs"]["expires_at"] = stamp(time.time() - 60)
    exported = pulumi.project / "pr-7-state.json"
    exported.write_text(json.dumps(state))
    pulumi.run("stack", "import", "--stack", "pr-7", "--file", str(exported))


def port_open(host: str) -> bool:
    address, port = host.rsplit(":", 1)
    with socket.socket() as probe:
        probe.settimeout(2)
        return probe.connect_ex((address, int(port))) == 0


def test_an_expired_branch_is_made_again_by_up_and_destroyed_after_expiry(
    pulumi: PulumiCli, neon_api: NeonApi, project: Path
) -> None:
    clock = JumpingClock()
    neon_api.configure(clock=clock)
    pulumi.init("local", {"neon:apiUrl": neon_api.url}, secrets={"neon:apiKey": neon_api.api_key})
    pulumi.up("local")
    (project_id,) = neon_api.projects
    parent_branches = set(neon_api.projects[project_id].branches)

    (project / "schema" / "chatkit" / "0099_add_user_locale.sql").write_text(
        "ALTER TABLE users ADD COLUMN locale text NOT NULL DEFAULT 'en';\n"
    )
    pulumi.init("pr-7", {"neon:apiUrl": neon_api.url, "neon-stack:parentStack": "organization/neon-stack/local",
                         "neon-stack:kubernetesMode": "render", "neon-stack:renderDirectory": "rendered/pr-7",
                         "neon-stack:branchTtl": "2h"},
                secrets={"neon:apiKey": neon_api.api_key})  # fmt: skip
    pulumi.up("pr-7")
    first = pulumi.outputs("pr-7")
    branch = neon_api.projects[project_id].branches[first["primaryBranchId"]]
    expires = datetime.fromisoformat(branch.info["expires_at"]).timestamp()
    assert abs(expires - (clock() + TTL_SECONDS)) < 300
    # The expiry moves on every second, yet a preview right after the up shows no change.
    pulumi.preview("pr-7", "--expect-no-changes")

    host = branch.compute.host
    expire(pulumi, neon_api, clock, project_id)
    assert set(neon_api.projects[project_id].branches) == parent_branches
    assert not port_open(host)  # its cluster is stopped

    pulumi.run("up", "--stack", "pr-7", "--yes", "--skip-preview", timeout=300)
    second = pulumi.outputs("pr-7")
    assert second["primaryBranchId"] != first["primaryBranchId"]
    assert set(neon_api.projects[project_id].branches) - parent_branches == {second["primaryBranchId"]}
    parent = pulumi.outputs("local")
    assert applied_versions(second["ownerDatabaseUrls"]["chatkit"]) == [
        *applied_versions(parent["ownerDatabaseUrls"]["chatkit"]), "0099"
    ]
    for app in APPS:
        with psycopg.connect(second["appDatabaseUrls"][app], prepare_threshold=None, connect_timeout=10) as conn:
            assert conn.execute("SELECT session_user").fetchone()[0] == f"{app}_app"
    with psycopg.connect(second["appDatabaseUrls"]["chatkit"], prepare_threshold=None, connect_timeout=10) as conn:
        assert conn.execute("SELECT locale FROM users LIMIT 0").description[0].name == "locale"

    expire(pulumi, neon_api, clock, project_id)
    assert set(neon_api.projects[project_id].branches) == parent_branches
    pulumi.run("destroy", "--stack", "pr-7", "--yes", "--skip-preview", timeout=300)
    assert pulumi.export("pr-7")["deployment"].get("resources", []) == []
