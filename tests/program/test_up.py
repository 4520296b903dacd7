"""`pulumi up` of the whole program, in-process: dev end to end, a no-op second run, a new migration,
prod's protections, branch mode, and broken settings refused before anything happens."""

from __future__ import annotations

import base64
from pathlib import Path

import psycopg
import pytest

from components.dapr import check_manifests
from components.settings import SettingsError
from tests.program.conftest import Deployer
from tests.support.manifests import declared_manifests

APPS = {
    "chatkit": {"users", "anon_sessions", "chat_sessions"},
    "learnflow": {"users", "exercises", "submissions", "learning_events", "struggles"},
}
NEON_TYPES = {
    "pulumi-python:dynamic/neon:Project",
    "pulumi-python:dynamic/neon:Role",
    "pulumi-python:dynamic/neon:Database",
}
STACK_OUTPUTS = {"projectId", "primaryBranchId", "branchIds", "apps", "appDatabaseUrls", "ownerDatabaseUrls"}


def secret_value(run, namespace: str, key: str) -> str:
    manifests = declared_manifests(run)
    (secret,) = [m for m in manifests if m["kind"] == "Secret" and m["metadata"]["namespace"] == namespace]
    return base64.b64decode(secret["data"][key]).decode()


def applied_versions(owner_url: str) -> list[str]:
    with psycopg.connect(owner_url, connect_timeout=10) as conn:
        rows = conn.execute("SELECT version FROM neon_stack.schema_migrations WHERE success ORDER BY version")
        return [version for (version,) in rows]


def test_dev_up_end_to_end_then_no_op_then_one_new_migration(neon_api, schema_copy: Path, tmp_path: Path):
    dev = Deployer(neon_api, tmp_path / "rendered", "dev")
    first = dev.up()

    # The resource graph: Neon objects under NeonDatabase, one Application per app with its children.
    types = {r.type for r in first.resources}
    assert NEON_TYPES <= types
    for app in APPS:
        application = first.one("neon-stack:app:Application", app)
        for child_type, child_name in [
            ("pulumi-python:dynamic/schema:Migrations", f"{app}-schema"),
            ("pulumi-python:dynamic/postgres:AppRole", f"{app}-role"),
            ("neon-stack:kubernetes:AppKubernetes", f"{app}-kubernetes"),
        ]:
            assert first.one(child_type, child_name).options["parent"] == application.urn
        role = first.one("postgres:AppRole", f"{app}-role")
        assert first.one("schema:Migrations", f"{app}-schema").urn in role.options["depends_on"]
        assert "password" in role.options["additional_secret_outputs"]
        assert not role.options["protect"]  # dev is not protected

    # Stack outputs: stable names, URIs secret, the rest plain.
    outputs = first.outputs
    assert set(outputs) == STACK_OUTPUTS
    assert first.secret_outputs == {"appDatabaseUrls", "ownerDatabaseUrls"}
    assert outputs["branchIds"]["main"] == outputs["primaryBranchId"]
    for app, tables in APPS.items():
        exported = outputs["apps"][app]
        assert (exported["database"], exported["namespace"]) == (app, app)
        assert (exported["secretName"], exported["daprComponentName"]) == ("postgres-credentials", "statestore")
        assert {f"public.{t}" for t in tables} <= set(exported["tables"])
        assert exported["latestMigration"] == max(p.name[:4] for p in (schema_copy / app).glob("[0-9]*.sql"))

    # The rendered Secret and Component pass our checks and the Secret's URL works through PgBouncer.
    assert check_manifests(declared_manifests(first)) == []
    for app, tables in APPS.items():
        database_url = secret_value(first, app, "DATABASE_URL")
        assert database_url == outputs["appDatabaseUrls"][app]
        assert "sslmode=require" in database_url and "127.0.0.2:" in database_url  # the pooled host
        with psycopg.connect(database_url, prepare_threshold=None, connect_timeout=10) as conn:
            user = conn.execute("SELECT current_user").fetchone()[0]
            assert user == f"{app}_app"
            present = {t for (t,) in conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")}
            assert tables <= present
            conn.execute("SELECT count(*) FROM users").fetchone()

    # A second run with nothing changed: no Neon write, no SQL applied, no provider update.
    writes_before = len(neon_api.write_calls())
    reveals_before = len(neon_api.reveal_calls())
    versions_before = {app: applied_versions(outputs["ownerDatabaseUrls"][app]) for app in APPS}
    second = dev.up()
    assert second.operations == []
    assert len(neon_api.write_calls()) == writes_before
    assert len(neon_api.reveal_calls()) == reveals_before
    assert {app: applied_versions(outputs["ownerDatabaseUrls"][app]) for app in APPS} == versions_before
    assert second.outputs == outputs

    # One new migration file: exactly that file is applied, by an update of that app's Migrations only.
    (schema_copy / "chatkit" / "0099_add_user_locale.sql").write_text(
        "ALTER TABLE users ADD COLUMN locale text NOT NULL DEFAULT 'en';\n"
    )
    third = dev.up()
    chatkit_schema = third.one("schema:Migrations", "chatkit-schema").urn
    assert third.operations == [(chatkit_schema, "update")]
    assert applied_versions(outputs["ownerDatabaseUrls"]["chatkit"]) == [*versions_before["chatkit"], "0099"]
    assert applied_versions(outputs["ownerDatabaseUrls"]["learnflow"]) == versions_before["learnflow"]
    assert third.outputs["apps"]["chatkit"]["latestMigration"] == "0099"
    with psycopg.connect(third.outputs["appDatabaseUrls"]["chatkit"], prepare_threshold=None) as conn:
        conn.execute("SELECT locale FROM users").fetchall()  # the app role reads the new column


def test_prod_protects_resources_and_refuses_destructive_migrations(neon_api, schema_copy: Path, tmp_path: Path):
    prod = Deployer(neon_api, tmp_path / "rendered", "prod")
    run = prod.up()
    protected = [r for r in run.resources if r.type in NEON_TYPES or r.type.endswith(("neon:Branch",))]
    assert protected
    for resource in protected:
        assert resource.options["protect"] and resource.options["retain_on_delete"], resource.name
    for app in APPS:
        for type_, name in [("kubernetes:core/v1:Secret", f"{app}-kubernetes-secret"),
                            ("postgres:AppRole", f"{app}-role"), ("schema:Migrations", f"{app}-schema")]:
            assert run.one(type_, name).options["protect"], name

    (schema_copy / "learnflow" / "0099_drop_struggles.sql").write_text("DROP TABLE struggles;\n")
    with pytest.raises(Exception, match=r"0099_drop_struggles\.sql") as refused:
        prod.up()
    assert "DROP TABLE" in str(refused.value)
    owner_url = run.outputs["ownerDatabaseUrls"]["learnflow"]
    assert "0099" not in applied_versions(owner_url)


def test_branch_mode_branches_from_the_parent_stack(neon_api, schema_copy: Path, tmp_path: Path):
    dev = Deployer(neon_api, tmp_path / "dev", "dev")
    parent = dev.up()
    project_id = parent.outputs["projectId"]
    branches_before = set(neon_api.projects[project_id].branches)

    (schema_copy / "chatkit" / "0099_add_user_locale.sql").write_text(
        "ALTER TABLE users ADD COLUMN locale text NOT NULL DEFAULT 'en';\n"
    )
    pr = Deployer(
        neon_api, tmp_path / "pr", "pr-7",
        overrides={"neon-stack:parentStack": "acme/neon-stack/dev"},
        stack_references={"acme/neon-stack/dev": {"outputs": parent.outputs,
                                                  "secretOutputNames": sorted(parent.secret_outputs)}},
    )
    branch = pr.up()
    assert not branch.of_type("neon:Project")
    assert branch.outputs["projectId"] == project_id
    assert branch.outputs["primaryBranchId"] != parent.outputs["primaryBranchId"]
    new_branches = set(neon_api.projects[project_id].branches) - branches_before
    assert new_branches == {branch.outputs["primaryBranchId"]}

    # Only the migration that is new relative to the parent ran on the branch; the parent is untouched.
    parent_versions = applied_versions(parent.outputs["ownerDatabaseUrls"]["chatkit"])
    assert applied_versions(branch.outputs["ownerDatabaseUrls"]["chatkit"]) == [*parent_versions, "0099"]
    assert "0099" not in parent_versions
    chatkit_migrations = branch.one("schema:Migrations", "chatkit-schema")
    assert chatkit_migrations.outputs["applied_versions"][-1] == "0099"

    # Its own application passwords: the parent's app URL does not log in on the branch and vice versa.
    for app in APPS:
        assert branch.outputs["appDatabaseUrls"][app] != parent.outputs["appDatabaseUrls"][app]
        with psycopg.connect(branch.outputs["appDatabaseUrls"][app], prepare_threshold=None) as conn:
            assert conn.execute("SELECT current_user").fetchone()[0] == f"{app}_app"

    # Destroying the branch stack removes its branch only.
    pr.destroy()
    assert set(neon_api.projects[project_id].branches) == branches_before
    with psycopg.connect(parent.outputs["appDatabaseUrls"]["chatkit"], prepare_threshold=None) as conn:
        assert conn.execute("SELECT current_user").fetchone()[0] == "chatkit_app"


BROKEN_SETTINGS = [
    ("region", "aws-mars-1"),
    ("pgVersion", "13"),
    ("pgVersion", "latest"),
    ("historyRetentionSeconds", "-1"),
    ("computeMinCu", "0.1"),
    ("computeMaxCu", "0.3"),
    ("suspendTimeoutSeconds", "forever"),
    ("branches", '["qa", "qa"]'),
    ("branches", "qa"),
    ("parentStack", "not/a"),
    ("branchInitSource", "all"),
    ("branchName", "lonely"),
    ("protect", "sometimes"),
    ("apps", "[]"),
    ("apps", '["billing"]'),
    ("apps", '["Chat"]'),
    ("allowDestructiveMigrations", "1"),
    ("allowOutOfOrderMigrations", "no way"),
    ("migrationLockTimeout", "soon"),
    ("migrationStatementTimeout", "later"),
    ("baselineVersions", '["chatkit=latest"]'),
    ("passwordVersion", "0"),
    ("kubernetesMode", "helm"),
    ("namespaces", '["chatkit=Not_A_Label"]'),
    ("secretName", "Bad Name"),
    ("daprComponentName", "-statestore"),
    ("daprScopes", '["nobody=app"]'),
    ("daprInitTimeout", "30 secs"),
    ("channelBinding", "require"),
    ("projectNmae", "typo"),
]


@pytest.mark.parametrize(("key", "value"), BROKEN_SETTINGS, ids=[f"{k}={v}" for k, v in BROKEN_SETTINGS])
def test_broken_settings_fail_before_any_resource_or_api_call(neon_api, tmp_path: Path, key: str, value: str):
    deployer = Deployer(neon_api, tmp_path / "rendered", "dev", overrides={f"neon-stack:{key}": value})
    with pytest.raises(SettingsError) as refused:
        deployer.up()
    assert any(problem.startswith(f"neon-stack:{key}: ") for problem in refused.value.problems), refused.value
    assert refused.value.partial_run.resources == []
    assert neon_api.calls == []
