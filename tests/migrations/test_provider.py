"""The Migrations dynamic provider: direct calls, the real provider host over gRPC, the program side, secrets."""

from __future__ import annotations

from pathlib import Path

import pulumi
import pytest
from pulumi.output import Unknown

from components.migrations import engine
from components.migrations.files import checksum, load_directory
from components.migrations.provider import Migrations, MigrationsArgs, MigrationsProvider, migration_entry
from neon_emulator.servers import PostgresServer
from tests.migrations.conftest import PROJECT_ROOT, history, query, write_files
from tests.support.provider_host import ProviderHostError, start_provider_host
from tests.support.pulumi_mocks import run_program

CHATKIT = PROJECT_ROOT / "schema" / "chatkit"


def inputs(url, directory: Path, **overrides) -> dict:
    return {
        "database_url": url,
        "app": "chatkit",
        "schema_dir": str(directory),
        "allow_destructive": True,
        "allow_out_of_order": False,
        "lock_timeout": "10s",
        "statement_timeout": "15min",
        "migrations": [migration_entry(f) for f in load_directory(directory)],
        **overrides,
    }


def test_check_tolerates_unknowns_and_reports_file_problems(tmp_path: Path):
    provider = MigrationsProvider()
    news = inputs(Unknown(), CHATKIT, allow_destructive=Unknown())
    assert provider.check({}, news).failures == []
    assert provider.check({}, {**news, "migrations": Unknown()}).failures == []
    broken = {**news, "migrations": [{"version": "0001", "description": "x", "checksum": checksum("SELEC 1"),
                                      "sql": "SELEC 1"}]}
    [failure] = provider.check({}, broken).failures
    assert failure.property == "migrations" and "0001_x.sql line 1: does not parse" in failure.reason
    forged = {**news, "migrations": [{**broken["migrations"][0], "checksum": "0"}]}
    [failure] = provider.check({}, forged).failures
    assert failure.reason == "0001_x.sql: checksum input does not match its SQL"
    [failure] = provider.check({}, {**news, "migrations": [{"version": "0001"}]}).failures
    assert failure.reason == "each entry must hold version, description, checksum, sql"


def test_check_refuses_pending_destructive_files_only_where_disallowed(tmp_path: Path):
    write_files(tmp_path, {"0001_t.sql": "CREATE TABLE t (id int);"})
    old = inputs("postgresql://u:p@h/d", tmp_path, allow_destructive=False)
    write_files(tmp_path, {"0002_drop.sql": "DROP TABLE t;"})
    new = inputs("postgresql://u:p@h/d", tmp_path, allow_destructive=False)
    [failure] = MigrationsProvider().check(old, new).failures
    assert failure.reason == (
        "destructive changes are not allowed on this stack: 0002_drop.sql line 1: DROP TABLE"
    )
    assert MigrationsProvider().check(old, {**new, "allow_destructive": True}).failures == []
    # Once applied it is no longer pending, so it does not block later updates.
    assert MigrationsProvider().check({**new, "checksums": {}}, new).failures == []


def test_check_refuses_edited_applied_files(tmp_path: Path):
    write_files(tmp_path, {"0001_t.sql": "CREATE TABLE t (id int);"})
    old = inputs("u", tmp_path)
    write_files(tmp_path, {"0001_t.sql": "CREATE TABLE t (id bigint);"})
    [failure] = MigrationsProvider().check(old, inputs("u", tmp_path)).failures
    assert "0001_t.sql: changed after it was applied" in failure.reason


def test_direct_calls_create_diff_update_read_delete(database_url: str, tmp_path: Path):
    provider = MigrationsProvider()
    write_files(tmp_path, {"0001_t.sql": "CREATE TABLE t (id int);"})
    first = inputs(database_url, tmp_path)
    id_, outs = provider.create(first).id, provider.create(first).outs
    assert id_ == "chatkit-schema"
    assert (outs["applied_versions"], outs["latest_version"], outs["tables"]) == (["0001"], "0001", ["public.t"])
    assert outs["migrations"] == first["migrations"] and outs["database_url"] == database_url
    assert provider.diff(id_, outs, first).changes is False
    assert provider.diff(id_, outs, {**first, "schema_dir": "/elsewhere"}).changes is False
    write_files(tmp_path, {"0002_u.sql": "CREATE TABLE u (id int);"})
    second = inputs(database_url, tmp_path)
    diff = provider.diff(id_, outs, second)
    assert (diff.changes, diff.replaces) == (True, [])
    assert provider.diff(id_, outs, {**first, "database_url": Unknown()}).changes is True
    updated = provider.update(id_, outs, second).outs
    assert updated["applied_versions"] == ["0001", "0002"] and updated["checksums"] == {
        m["version"]: m["checksum"] for m in second["migrations"]}
    # Refresh with no drift: read gives back the same inputs, so the engine's diff finds nothing.
    read = provider.read(id_, updated)
    assert read.inputs["migrations"] == second["migrations"] and provider.diff(id_, read.outs, second).changes is False
    # Drift: a migration applied behind the stack's back, another one's history row removed.
    engine.apply(database_url, load_directory(write_files(tmp_path / "other", {
        **{p.name: p.read_text() for p in tmp_path.glob("*.sql")}, "0003_v.sql": "CREATE TABLE v (id int);"})),
        engine.Options())
    query(database_url, "DELETE FROM neon_stack.schema_migrations WHERE version = '0002'")
    drifted = provider.read(id_, updated)
    assert [m["version"] for m in drifted.inputs["migrations"]] == ["0001", "0003"]
    assert drifted.outs["applied_versions"] == ["0001", "0003"] and "public.v" in drifted.outs["tables"]
    assert provider.diff(id_, drifted.outs, second).changes is True
    provider.delete(id_, updated)
    assert query(database_url, "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'") == [(3,)]


def test_update_refuses_against_the_real_history(database_url: str, tmp_path: Path):
    """check() only knows the old state; update() re-checks against the database before running anything."""
    write_files(tmp_path, {"0002_b.sql": "CREATE TABLE b (id int);"})
    engine.apply(database_url, load_directory(tmp_path), engine.Options())
    write_files(tmp_path, {"0001_a.sql": "CREATE TABLE a (id int);"})
    with pytest.raises(engine.MigrationError, match=r"chatkit: 0001_a.sql: version 0001 is below"):
        MigrationsProvider().create(inputs(database_url, tmp_path))
    assert query(database_url, "SELECT to_regclass('a')") == [(None,)]


def _secret_free(text: str, password: str) -> bool:
    return password not in text


@pytest.mark.host
def test_provider_host_round_trip_over_grpc(postgres: PostgresServer, database_url: str, tmp_path: Path):
    provider = MigrationsProvider()
    write_files(tmp_path, {"0001_t.sql": "CREATE TABLE t (id int);"})
    first = inputs(database_url, tmp_path)
    with start_provider_host() as host:
        host.configure({"neon-stack:region": "aws-us-east-2"})
        assert host.check(provider, {}, inputs(Unknown(), tmp_path)).failures == []
        id_, outs = host.create(provider, first)
        assert id_ == "chatkit-schema" and outs["applied_versions"] == ["0001"] and outs["tables"] == ["public.t"]
        assert host.diff(provider, id_, outs, first).changes is False
        write_files(tmp_path, {"0002_u.sql": "CREATE TABLE u (id int);"})
        second = inputs(database_url, tmp_path)
        outcome = host.diff(provider, id_, outs, second)
        assert (outcome.changes, outcome.replaces) == (True, [])
        updated = host.update(provider, id_, outs, second)
        assert updated["latest_version"] == "0002" and updated["migrations"] == second["migrations"]
        _, read_outs, read_inputs = host.read(provider, id_, updated)
        assert read_outs["applied_versions"] == ["0001", "0002"] and read_inputs["migrations"] == second["migrations"]
        host.delete(provider, id_, updated)
        assert query(database_url, "SELECT to_regclass('t')::text") == [("t",)]
        # A failing migration and an unreachable database: errors name the file, never the password.
        write_files(tmp_path, {"0003_bad.sql": "INSERT INTO t VALUES ('x');"})
        with pytest.raises(ProviderHostError) as failed:
            host.update(provider, id_, updated, inputs(database_url, tmp_path))
        assert "0003_bad.sql line 1" in failed.value.details
        unreachable = database_url.replace(f":{postgres.port}/", ":1/")
        with pytest.raises(ProviderHostError) as refused:
            host.create(provider, inputs(unreachable, tmp_path))
        assert "cannot connect to postgresql://postgres:***@127.0.0.1:1/" in refused.value.details
        texts = [failed.value.details, refused.value.details, host.output(), *host.engine_logs]
    assert all(_secret_free(text, postgres.password) for text in texts)
    assert all(postgres.password not in str(row) for row in history(database_url))


def test_cli_messages_never_show_the_password(postgres: PostgresServer, database_url: str, tmp_path: Path, capsys):
    from components.migrations.__main__ import main

    write_files(tmp_path, {"0001_bad.sql": "SELECT 1/0;"})
    assert main(["apply", "--dir", str(tmp_path), "--database-url", database_url]) == 1
    assert "0001_bad.sql line 1: division by zero" in capsys.readouterr().err
    unreachable = database_url.replace(f":{postgres.port}/", ":1/")
    assert main(["status", "--dir", str(tmp_path), "--database-url", unreachable]) == 1
    err = capsys.readouterr().err
    assert "error: cannot connect to postgresql://postgres:***@127.0.0.1:1/" in err and postgres.password not in err


def test_program_declares_the_resource_with_a_secret_url_and_warns_from_the_program(tmp_path: Path):
    write_files(tmp_path, {"0001_t.sql": "CREATE TABLE t (id int);", "0002_drop.sql": "DROP TABLE t;"})

    def program():
        url = pulumi.Output.secret("postgresql://owner:hunter2@host/chatkit")
        Migrations("chatkit-schema", MigrationsArgs(database_url=url, app="chatkit", schema_dir=tmp_path))

    run = run_program(program, config={})
    resource = run.one("dynamic/schema:Migrations", "chatkit-schema")
    assert resource.type == "pulumi-python:dynamic/schema:Migrations"
    assert "database_url" in resource.secret_inputs
    assert "database_url" in resource.options["additional_secret_outputs"]
    assert [m["version"] for m in resource.inputs["migrations"]] == ["0001", "0002"]
    assert resource.inputs["migrations"][1]["sql"] == "DROP TABLE t;"
    warnings = [(message, urn) for level, message, urn in run.logs if level == "warning"]
    assert warnings == [("destructive statements, applied if pending: 0002_drop.sql line 1: DROP TABLE", resource.urn)]
    assert all("hunter2" not in message for _, message, _ in run.logs)


def test_program_runs_the_provider_for_real_then_finds_nothing_to_do(database_url: str, tmp_path: Path):
    write_files(tmp_path, {p.name: p.read_text() for p in CHATKIT.glob("*.sql")})

    def program():
        migrations = Migrations("chatkit-schema", MigrationsArgs(
            database_url=pulumi.Output.secret(database_url), app="chatkit", schema_dir=tmp_path,
            allow_destructive=False))
        pulumi.export("tables", migrations.tables)
        pulumi.export("latest", migrations.latest_version)

    first = run_program(program, config={}, run_providers=True)
    assert first.outputs == {"tables": ["public.anon_sessions", "public.chat_sessions", "public.users"],
                             "latest": "0003"}
    assert first.secret_outputs == set()
    resource = first.one("dynamic/schema:Migrations", "chatkit-schema")
    assert "database_url" in resource.secret_outputs
    assert first.operations == [(resource.urn, "create")]
    second = run_program(program, config={}, run_providers=True, state=first.state)
    assert second.operations == []
    write_files(tmp_path, {"0004_drop.sql": "ALTER TABLE users DROP COLUMN verification_token;"})
    with pytest.raises(Exception, match=r"0004_drop\.sql line 1: ALTER TABLE \.\.\. DROP COLUMN"):
        run_program(program, config={}, run_providers=True, state=first.state)
    assert len(history(database_url)) == 3


def test_check_refuses_a_baseline_version_that_is_not_a_number():
    [failure] = MigrationsProvider().check({}, inputs("u", CHATKIT, baseline_version="v3")).failures
    assert (failure.property, failure.reason) == (
        "migrations", "baseline version 'v3' is not a version number (NNNN)")


def test_check_parses_only_the_files_not_applied_as_they_are(tmp_path: Path):
    """A file whose checksum is the applied one never runs again: check() does not parse it (here its SQL
    would not parse at all), and refuses the same file while it is pending."""
    provider = MigrationsProvider()
    entry = {"version": "0001", "description": "x", "checksum": checksum("SELEC 1"), "sql": "SELEC 1"}
    news = {**inputs(Unknown(), CHATKIT), "migrations": [entry]}
    assert provider.check({"checksums": {"0001": entry["checksum"]}}, news).failures == []
    [failure] = provider.check({}, news).failures
    assert "0001_x.sql line 1: does not parse" in failure.reason
