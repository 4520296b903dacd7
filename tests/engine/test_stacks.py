"""Production-like and branch-mode stacks, an upgrade of our code, and a malformed config, through
the real engine against the Neon emulator."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import psycopg
import pytest

from tests.engine.test_local_stack import APPS, applied_versions
from tests.support.neon_fixtures import NeonApi
from tests.support.pulumi_cli import PulumiCli

PROD_RENDERED = {"neon-stack:kubernetesMode": "render", "neon-stack:renderDirectory": "rendered/prod"}


def test_prod_is_protected_and_refuses_a_destructive_migration(
    pulumi: PulumiCli, neon_api: NeonApi, project: Path
) -> None:
    pulumi.init("prod", {"neon:apiUrl": neon_api.url, **PROD_RENDERED},
                secrets={"neon:apiKey": neon_api.api_key})  # fmt: skip
    pulumi.up("prod")
    resources = pulumi.export("prod")["deployment"]["resources"]
    ours = [r for r in resources if r["type"].startswith(("pulumi-python:dynamic", "kubernetes:"))]
    assert ours
    for resource in ours:
        assert resource.get("protect") is True, resource["urn"]
        assert resource.get("retainOnDelete") is True, resource["urn"]

    refused = pulumi.run("destroy", "--stack", "prod", "--yes", "--skip-preview", check=False)
    assert refused.returncode != 0
    assert "protected" in refused.output, refused.output

    owner_url = pulumi.outputs("prod")["ownerDatabaseUrls"]["learnflow"]
    before = applied_versions(owner_url)
    (project / "schema" / "learnflow" / "0099_drop_struggles.sql").write_text("DROP TABLE struggles;\n")
    preview = pulumi.preview("prod", check=False)
    assert preview.returncode != 0
    assert "0099_drop_struggles.sql" in preview.output and "DROP TABLE" in preview.output, preview.output
    assert applied_versions(owner_url) == before


def test_branch_mode_owns_one_branch_of_the_parent_stack(
    pulumi: PulumiCli, neon_api: NeonApi, project: Path
) -> None:
    pulumi.init("local", {"neon:apiUrl": neon_api.url}, secrets={"neon:apiKey": neon_api.api_key})
    pulumi.up("local")
    parent = pulumi.outputs("local")
    (project_id,) = neon_api.projects
    branches_before = set(neon_api.projects[project_id].branches)

    (project / "schema" / "chatkit" / "0099_add_user_locale.sql").write_text(
        "ALTER TABLE users ADD COLUMN locale text NOT NULL DEFAULT 'en';\n"
    )
    pulumi.init("pr-7", {"neon:apiUrl": neon_api.url, "neon-stack:parentStack": "organization/neon-stack/local",
                         "neon-stack:kubernetesMode": "render", "neon-stack:renderDirectory": "rendered/pr-7"},
                secrets={"neon:apiKey": neon_api.api_key})  # fmt: skip
    pulumi.up("pr-7")
    branch = pulumi.outputs("pr-7")
    assert branch["projectId"] == project_id
    assert set(neon_api.projects[project_id].branches) - branches_before == {branch["primaryBranchId"]}

    # Only the migration new relative to the parent ran on the branch; the parent is untouched.
    parent_versions = applied_versions(parent["ownerDatabaseUrls"]["chatkit"])
    assert applied_versions(branch["ownerDatabaseUrls"]["chatkit"]) == [*parent_versions, "0099"]
    assert "0099" not in parent_versions

    # Its own passwords: each app's URL differs from the parent's and logs in on the branch.
    for app in APPS:
        assert branch["appDatabaseUrls"][app] != parent["appDatabaseUrls"][app]
        assert branch["ownerDatabaseUrls"][app] != parent["ownerDatabaseUrls"][app]
        with psycopg.connect(branch["appDatabaseUrls"][app], prepare_threshold=None, connect_timeout=10) as conn:
            assert conn.execute("SELECT session_user").fetchone()[0] == f"{app}_app"

    pulumi.run("destroy", "--stack", "pr-7", "--yes", "--skip-preview")
    assert set(neon_api.projects[project_id].branches) == branches_before
    with psycopg.connect(parent["appDatabaseUrls"]["chatkit"], prepare_threshold=None, connect_timeout=10) as conn:
        assert conn.execute("SELECT session_user").fetchone()[0] == "chatkit_app"


def test_an_upgrade_of_our_code_changes_no_resource(pulumi: PulumiCli, neon_api: NeonApi, project: Path) -> None:
    """Providers are pickled into state by reference; a new release of their modules is no change."""
    pulumi.init("local", {"neon:apiUrl": neon_api.url}, secrets={"neon:apiKey": neon_api.api_key})
    pulumi.up("local")
    state = json.loads(pulumi.run("stack", "export", "--stack", "local", "--show-secrets").stdout)
    dynamic = [r for r in state["deployment"]["resources"] if r["type"].startswith("pulumi-python:dynamic/")]
    assert len(dynamic) >= 7
    for resource in dynamic:
        pickled = base64.b64decode(json.loads(resource["inputs"]["__provider"]["plaintext"]))
        assert b"components." in pickled and b"dill._dill" not in pickled, (resource["urn"], pickled)
    for module in ("components/migrations/provider.py", "components/neon/provider.py", "components/access/app_role.py"):
        path = project / module
        path.write_text(path.read_text() + "\n\ndef _added_in_a_later_release() -> None:\n    pass\n")
    preview = pulumi.preview("local", "--expect-no-changes", check=False)
    assert preview.returncode == 0, preview.output


@pytest.mark.parametrize(("key", "value"), [("pgVersion", "13"), ("projectNmae", "typo")])
def test_a_malformed_config_fails_the_preview_naming_the_key(
    pulumi: PulumiCli, neon_api: NeonApi, key: str, value: str
) -> None:
    pulumi.init("local", {"neon:apiUrl": neon_api.url, f"neon-stack:{key}": value},
                secrets={"neon:apiKey": neon_api.api_key})  # fmt: skip
    preview = pulumi.preview("local", check=False)
    assert preview.returncode != 0
    assert f"neon-stack:{key}: " in preview.output, preview.output
    assert pulumi.export("local")["deployment"].get("resources") in (None, [])
    assert neon_api.calls == []
