"""The `local` stack through the real engine: a fresh `up`, a no-op preview and `up`, the rendered
manifests, a new migration in the preview and in `up`, drift found by `refresh`, and state that
holds no password."""

from __future__ import annotations

import base64
import json
import time
import urllib.parse
from pathlib import Path

import psycopg
import yaml

from tests.support.dapr_harness import run_harness
from tests.support.manifests import check_rendered
from tests.support.neon_fixtures import NeonApi
from tests.support.pulumi_cli import PulumiCli

APPS = {
    "chatkit": {"users", "anon_sessions", "chat_sessions"},
    "learnflow": {"users", "exercises", "submissions", "learning_events", "struggles"},
}
STACK_OUTPUTS = {"projectId", "primaryBranchId", "branchIds", "apps", "appDatabaseUrls", "ownerDatabaseUrls"}


def applied_versions(owner_url: str) -> list[str]:
    with psycopg.connect(owner_url, connect_timeout=10) as conn:
        rows = conn.execute("SELECT version FROM neon_stack.schema_migrations WHERE success ORDER BY version")
        return [version for (version,) in rows]


def sessions(neon_api: NeonApi) -> dict[str, int]:
    """Sessions ever opened on each app database of every emulated cluster (pg_stat_database)."""
    time.sleep(1.5)  # PostgreSQL publishes a backend's statistics up to a second after it ends
    counts: dict[str, int] = {}
    for project in neon_api.projects.values():
        for branch in project.branches.values():
            with psycopg.connect(branch.compute.postgres.url(), autocommit=True) as conn:
                for name, count in conn.execute(
                    "SELECT datname, sessions FROM pg_stat_database WHERE datname = ANY(%s)", [list(APPS)]
                ):
                    counts[f"{branch.id}/{name}"] = count
    return counts


def rendered_file(project: Path, kind: str, app: str) -> Path:
    """The one file the Kubernetes provider rendered for this kind in the app's namespace."""
    (path,) = [p for p in (project / "rendered" / "local").rglob("*.yaml")
               if (doc := yaml.safe_load(p.read_text()))["kind"] == kind and doc["metadata"]["namespace"] == app]
    return path


def rendered_secret(project: Path, app: str) -> dict:
    return yaml.safe_load(rendered_file(project, "Secret", app).read_text())


def summary(output: str) -> list[str]:
    """The lines of the CLI's `Resources:` summary, e.g. ["+ 22 created"]."""
    block = output.split("\nResources:\n", 1)[1].split("\nDuration:", 1)[0]
    return [line.strip() for line in block.splitlines() if line.strip()]


def test_fresh_up_then_nothing_to_do(local_stack: PulumiCli, neon_api: NeonApi, project: Path) -> None:
    up = local_stack.up("local")
    assert summary(up.stdout) == ["+ 22 created"], up.stdout
    outputs = local_stack.outputs("local")
    assert set(outputs) == STACK_OUTPUTS
    assert outputs["branchIds"]["main"] == outputs["primaryBranchId"]
    for app, tables in APPS.items():
        exported = outputs["apps"][app]
        assert {f"public.{t}" for t in tables} <= set(exported["tables"])
        assert exported["latestMigration"] == max(p.name[:4] for p in (project / "schema" / app).glob("[0-9]*.sql"))
    shown = json.loads(local_stack.run("stack", "output", "--stack", "local", "--json").stdout)
    assert {name for name, value in shown.items() if value == "[secret]"} == {"appDatabaseUrls", "ownerDatabaseUrls"}

    # The resource graph: each app's migrations, role and Kubernetes objects under its Application.
    resources = local_stack.export("local")["deployment"]["resources"]
    by_name = {r["urn"].rsplit("::", 1)[1]: r for r in resources}
    for app in APPS:
        application = by_name[app]["urn"]
        assert by_name[f"{app}-schema"]["parent"] == by_name[f"{app}-role"]["parent"] == application
        assert by_name[f"{app}-kubernetes"]["parent"] == application
        assert by_name[f"{app}-schema"]["urn"] in by_name[f"{app}-role"]["dependencies"]
        assert by_name[f"{app}-kubernetes-secret"]["parent"] == by_name[f"{app}-kubernetes"]["urn"]

    # The real Kubernetes provider wrote the manifests: they pass our checks, and the Secret's
    # DATABASE_URL logs in through PgBouncer (the pooled address) as the app role.
    assert check_rendered(project / "rendered" / "local") == []
    for app in APPS:
        url = base64.b64decode(rendered_secret(project, app)["data"]["DATABASE_URL"]).decode()
        assert url == outputs["appDatabaseUrls"][app]
        assert "127.0.0.2:" in url and "sslmode=require" in url
        with psycopg.connect(url, prepare_threshold=None, connect_timeout=10) as conn:
            assert conn.execute("SELECT session_user").fetchone()[0] == f"{app}_app"

    # Nothing changed: the preview says so, and a second up makes no change, no Neon write, no SQL.
    local_stack.preview("local", "--expect-no-changes")
    writes, reveals, before = len(neon_api.write_calls()), len(neon_api.reveal_calls()), sessions(neon_api)
    second = local_stack.up("local")
    assert summary(second.stdout) == ["22 unchanged"], second.stdout
    assert len(neon_api.write_calls()) == writes
    assert len(neon_api.reveal_calls()) == reveals
    assert sessions(neon_api) == before
    assert local_stack.outputs("local") == outputs

    # No password is in the state in any readable form: neither those the emulator knows (owner
    # roles) nor the application roles' (made with SQL, known from the secret outputs).
    state = local_stack.run("stack", "export", "--stack", "local").stdout
    passwords = {p for project_state in neon_api.projects.values() for branch in project_state.branches.values()
                 for p in branch.passwords.values() if p}  # fmt: skip
    app_urls = outputs["appDatabaseUrls"].values()
    passwords |= {urllib.parse.unquote(urllib.parse.urlsplit(url).password) for url in app_urls}
    assert len(passwords) >= 2 * len(APPS)
    for password in passwords:
        for form in (password, urllib.parse.quote(password, safe=""), base64.b64encode(password.encode()).decode()):
            assert form not in state

    # Dapr's own state store (components-contrib state.postgresql v2) runs every step with the
    # files as rendered: the Component's metadata, its secretKeyRef resolved from the Secret.
    for app in APPS:
        run = run_harness(rendered_file(project, "Component", app), rendered_file(project, "Secret", app), "steps")
        assert run.code == 0 and len(run.reports) == 7, (run.reports, run.stderr[-2000:])
        assert run.failures() == [], run.reports


# In render mode there is no cluster to read Kubernetes objects from: a refresh leaves them out.
RENDERED_OBJECTS = "**$kubernetes:**"
NEW_MIGRATION = "0004_comment_users.sql"
NEW_SQL = "COMMENT ON TABLE users IS 'ChatKit accounts';\n"


def test_a_new_migration_is_the_only_change_and_drift_is_found(
    local_stack: PulumiCli, neon_api: NeonApi, project: Path
) -> None:
    local_stack.up("local")
    outputs = local_stack.outputs("local")
    owner_url = outputs["ownerDatabaseUrls"]["chatkit"]
    before = applied_versions(owner_url)

    # What a pull request shows: the new file, its version and SQL, as the only change.
    (project / "schema" / "chatkit" / NEW_MIGRATION).write_text(NEW_SQL)
    preview = local_stack.preview("local", "--diff")
    assert "~ pulumi-python:dynamic/schema:Migrations: (update)" in preview.stdout, preview.stdout
    assert "[urn=urn:pulumi:local::neon-stack::neon-stack:app:Application$" in preview.stdout
    added = preview.stdout.split("+ [3]: {", 1)[1].split("}", 1)[0]
    assert '+ version    : "0004"' in added and '+ description: "comment_users"' in added, preview.stdout
    assert f"+ sql        : {json.dumps(NEW_SQL)}" in added, preview.stdout
    assert "~ 1 to update" in preview.stdout and preview.stdout.count("(update)") == 1, preview.stdout
    writes = len(neon_api.write_calls())
    local_stack.up("local")
    assert applied_versions(owner_url) == [*before, "0004"]
    assert len(neon_api.write_calls()) == writes

    # Drift: the history row of that file deleted behind the stack's back.
    with psycopg.connect(owner_url, autocommit=True) as conn:
        conn.execute("DELETE FROM neon_stack.schema_migrations WHERE version = '0004'")
    refresh = local_stack.run("refresh", "--stack", "local", "--yes", "--skip-preview", "--exclude", RENDERED_OBJECTS)
    assert "chatkit-schema updated" in refresh.stdout and "[diff: ~migrations]" in refresh.stdout, refresh.stdout
    assert "~ 1 updated" in refresh.stdout, refresh.stdout
    local_stack.up("local")
    assert applied_versions(owner_url) == [*before, "0004"]
    local_stack.preview("local", "--expect-no-changes")
