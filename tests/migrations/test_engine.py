"""The engine against a real PostgreSQL: apply, idempotence, failures, refusals, baseline, directives."""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest

from components.migrations import engine
from components.migrations.files import MigrationFileError, load_directory
from tests.migrations.conftest import PROJECT_ROOT, history, query, tables, write_files

OPTIONS = engine.Options()


def columns(url: str, table: str) -> list[tuple]:
    return query(
        url,
        "SELECT column_name, data_type, character_maximum_length, is_nullable, column_default"
        " FROM information_schema.columns WHERE table_schema = 'public' AND table_name = %s ORDER BY ordinal_position",
        (table,),
    )


def test_chatkit_applies_once_with_the_seed_definitions(database_url: str):
    files = load_directory(PROJECT_ROOT / "schema" / "chatkit")
    first = engine.apply(database_url, files, OPTIONS)
    second = engine.apply(database_url, files, OPTIONS)
    assert first.applied == ["0001", "0002", "0003"] and second.applied == []
    assert second.state.tables == ["public.anon_sessions", "public.chat_sessions", "public.users"]
    assert columns(database_url, "users") == [
        ("id", "integer", None, "NO", "nextval('users_id_seq'::regclass)"),
        ("email", "character varying", 255, "NO", None),
        ("email_verified", "boolean", None, "YES", "false"),
        ("verification_token", "character varying", 255, "YES", None),
        ("token_expires_at", "timestamp without time zone", None, "YES", None),
        ("created_at", "timestamp without time zone", None, "YES", "CURRENT_TIMESTAMP"),
        ("updated_at", "timestamp without time zone", None, "YES", "CURRENT_TIMESTAMP"),
    ]
    assert [c[:2] for c in columns(database_url, "chat_sessions")] == [
        ("id", "integer"), ("session_id", "character varying"), ("user_id", "integer"),
        ("anon_id", "character varying"), ("title", "character varying"), ("messages", "jsonb"),
        ("created_at", "timestamp without time zone"), ("updated_at", "timestamp without time zone"),
    ]
    assert query(database_url, "SELECT confdeltype FROM pg_constraint WHERE conname = 'chat_sessions_user_id_fkey'") \
        == [("c",)]
    assert {r[0] for r in query(database_url, "SELECT indexname FROM pg_indexes WHERE indexname LIKE 'idx_%'")} == {
        "idx_users_email", "idx_users_verification_token", "idx_anon_sessions_session_id",
        "idx_chat_sessions_session_id", "idx_chat_sessions_user_id"}
    assert sorted(r[0] for r in query(database_url, "SELECT tgname FROM pg_trigger WHERE NOT tgisinternal")) == [
        "update_chat_sessions_updated_at", "update_users_updated_at"]
    query(database_url, "INSERT INTO users (email, updated_at) VALUES ('a@example.com', '2000-01-01')")
    query(database_url, "UPDATE users SET email_verified = true")
    assert query(database_url, "SELECT updated_at > '2001-01-01' FROM users") == [(True,)]
    assert [(v, k, ok) for v, k, ok, _, _ in history(database_url)] == [
        ("0001", "versioned", True), ("0002", "versioned", True), ("0003", "versioned", True)]


def test_learnflow_applies_once_with_constraints(database_url: str):
    files = load_directory(PROJECT_ROOT / "schema" / "learnflow")
    assert engine.apply(database_url, files, OPTIONS).applied == ["0001"]
    assert engine.apply(database_url, files, OPTIONS).applied == []
    assert tables(database_url) == ["exercises", "learning_events", "struggles", "submissions", "users"]
    foreign_keys = query(
        database_url,
        "SELECT conrelid::regclass::text, confrelid::regclass::text FROM pg_constraint"
        " WHERE contype = 'f' ORDER BY 1, 2",
    )
    assert foreign_keys == [("learning_events", "users"), ("struggles", "exercises"), ("struggles", "users"),
                            ("submissions", "exercises"), ("submissions", "users")]
    query(database_url, "INSERT INTO users (email, name) VALUES ('a@example.com', 'A')")
    with pytest.raises(psycopg.errors.UniqueViolation):
        query(database_url, "INSERT INTO users (email, name) VALUES ('a@example.com', 'B')")
    with pytest.raises(psycopg.errors.CheckViolation):
        query(database_url, "INSERT INTO exercises (title, difficulty) VALUES ('t', 'impossible')")


def test_a_failing_migration_rolls_back_and_is_recorded(database_url: str, tmp_path: Path):
    directory = write_files(tmp_path, {
        "0001_first.sql": "CREATE TABLE first (id int);",
        "0002_broken.sql": "CREATE TABLE second (id int);\nINSERT INTO second VALUES ('not a number');\n",
    })
    with pytest.raises(engine.MigrationError, match=r"(?s)0002_broken.sql line 2: .*invalid input syntax.*rolled back"):
        engine.apply(database_url, load_directory(directory), OPTIONS)
    assert tables(database_url) == ["first"]
    rows = history(database_url)
    assert [r[:3] for r in rows] == [("0001", "versioned", True), ("0002", "versioned", False)]
    assert "invalid input syntax for type integer" in rows[1][3]
    assert rows[1][4] == "INSERT INTO second VALUES ('not a number')"
    # Fixed in place (it never applied), the file applies on the next run.
    write_files(directory, {"0002_broken.sql": "CREATE TABLE second (id int);\nINSERT INTO second VALUES (1);\n"})
    assert engine.apply(database_url, load_directory(directory), OPTIONS).applied == ["0002"]


def _snapshot(url: str) -> tuple:
    return tables(url), history(url)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"0001_first.sql": "CREATE TABLE first (id bigint);"}, "0001_first.sql: changed after it was applied"),
        ({"0000_early.sql": "CREATE TABLE early (id int);"}, r"0000_early\.sql: version 0000 is below .* \(out of"),
        ({"2_dup.sql": "CREATE TABLE dup (id int);"}, "2_dup.sql: duplicate version 2"),
        ({"0003_bad.sql": "CREATE TABLE ok (id int);\nCREATE TABLE (;"}, "0003_bad.sql line 2: does not parse"),
        ({"0003_drop.sql": "CREATE TABLE ok (id int);\nDROP TABLE first;"},
         "destructive changes are not allowed on this stack: 0003_drop.sql line 2: DROP TABLE"),
    ],
)
def test_refusals_happen_before_anything_runs(database_url: str, tmp_path: Path, change: dict, message: str):
    directory = write_files(tmp_path, {"0001_first.sql": "CREATE TABLE first (id int);",
                                       "0002_second.sql": "CREATE TABLE second (id int);"})
    engine.apply(database_url, load_directory(directory), OPTIONS)
    before = _snapshot(database_url)
    write_files(directory, {"0004_later.sql": "CREATE TABLE later (id int);", **change})
    with pytest.raises(MigrationFileError, match=message):
        engine.apply(database_url, load_directory(directory), engine.Options(allow_destructive=False))
    assert _snapshot(database_url) == before


def test_out_of_order_applies_when_allowed(database_url: str, tmp_path: Path):
    directory = write_files(tmp_path, {"0002_b.sql": "CREATE TABLE b (id int);"})
    engine.apply(database_url, load_directory(directory), OPTIONS)
    write_files(directory, {"0001_a.sql": "CREATE TABLE a (id int);"})
    result = engine.apply(database_url, load_directory(directory), engine.Options(allow_out_of_order=True))
    assert result.applied == ["0001"] and result.state.applied_versions == ["0001", "0002"]


def test_repeatable_files_rerun_when_their_checksum_changes(database_url: str, tmp_path: Path):
    directory = write_files(tmp_path, {"0001_t.sql": "CREATE TABLE t (id int);",
                                       "R__views.sql": "CREATE OR REPLACE VIEW v AS SELECT id FROM t;"})
    assert engine.apply(database_url, load_directory(directory), OPTIONS).applied == ["0001", "R__views"]
    assert engine.apply(database_url, load_directory(directory), OPTIONS).applied == []
    write_files(directory, {"R__views.sql": "CREATE OR REPLACE VIEW v AS SELECT id, id + 1 AS next FROM t;"})
    result = engine.apply(database_url, load_directory(directory), OPTIONS)
    assert result.applied == ["R__views"] and result.state.applied_versions == ["0001"]
    assert query(database_url, "SELECT count(*) FROM information_schema.columns WHERE table_name = 'v'") == [(2,)]


def test_baseline_records_hand_made_tables_without_running_them(database_url: str):
    files = load_directory(PROJECT_ROOT / "schema" / "chatkit")
    for file in files:  # what the ChatKit team did by hand in the SQL editor
        query(database_url, file.sql)
    result = engine.apply(database_url, files, engine.Options(baseline_version="0003"))
    assert (result.baselined, result.applied) == (["0001", "0002", "0003"], [])
    assert [r[:3] for r in history(database_url)] == [(v, "baseline", True) for v in ("0001", "0002", "0003")]
    assert engine.apply(database_url, files, engine.Options(baseline_version="0003")).baselined == []


def test_baseline_refuses_when_the_tables_are_missing(database_url: str):
    files = load_directory(PROJECT_ROOT / "schema" / "chatkit")
    query(database_url, "CREATE TABLE users (id int)")
    with pytest.raises(MigrationFileError, match=r"0001_create_tables\.sql: cannot baseline, table public\.anon_"):
        engine.apply(database_url, files, engine.Options(baseline_version="0001"))
    assert history(database_url) == []


def test_no_transaction_file_runs_create_index_concurrently(database_url: str, tmp_path: Path):
    directory = write_files(tmp_path, {
        "0001_t.sql": "CREATE TABLE t (id int);",
        "0002_index.sql": "-- neon-stack:no-transaction\nCREATE INDEX CONCURRENTLY IF NOT EXISTS t_id ON t (id);\n"
                          "CREATE INDEX CONCURRENTLY IF NOT EXISTS t_id2 ON t (id);\n",
    })
    assert engine.apply(database_url, load_directory(directory), OPTIONS).applied == ["0001", "0002"]
    assert sorted(r[0] for r in query(database_url, "SELECT indexname FROM pg_indexes WHERE tablename = 't'")) == [
        "t_id", "t_id2"]
    assert engine.apply(database_url, load_directory(directory), OPTIONS).applied == []


def test_no_transaction_failure_is_recorded_after_the_statements(database_url: str, tmp_path: Path):
    directory = write_files(tmp_path, {
        "0001_x.sql": "-- neon-stack:no-transaction\nCREATE TABLE kept (id int);\n"
                      "CREATE INDEX CONCURRENTLY i ON nope (id);",
    })
    with pytest.raises(engine.MigrationError, match=r"0001_x\.sql line 3: .*nope.* statements before this one stay"):
        engine.apply(database_url, load_directory(directory), OPTIONS)
    assert tables(database_url) == ["kept"]
    assert [(r[0], r[2], r[4]) for r in history(database_url)] == [
        ("0001", False, "CREATE INDEX CONCURRENTLY i ON nope (id)")]


def test_timeouts_are_set_locally_per_migration(database_url: str, tmp_path: Path):
    directory = write_files(tmp_path, {"0001_slow.sql": "SELECT pg_sleep(2);"})
    with pytest.raises(engine.MigrationError, match=r"0001_slow\.sql line 1: canceling statement due to statement"):
        engine.apply(database_url, load_directory(directory), engine.Options(statement_timeout="100ms"))
    assert query(database_url, "SHOW statement_timeout") == [("0",)]


def test_a_no_transaction_claim_left_by_a_dead_session_is_taken_over(database_url: str, tmp_path: Path):
    directory = write_files(tmp_path, {
        "0001_t.sql": "CREATE TABLE t (id int);",
        "0002_index.sql": "-- neon-stack:no-transaction\nCREATE INDEX CONCURRENTLY IF NOT EXISTS t_id ON t (id);",
    })
    files = load_directory(directory)
    engine.apply(database_url, files[:1], OPTIONS)
    with psycopg.connect(database_url, autocommit=True) as killed:  # an applier that died after claiming 0002
        killed.execute(
            "INSERT INTO neon_stack.schema_migration_claims (version, backend_pid, backend_start)"
            " SELECT '0002', pid, backend_start FROM pg_stat_activity WHERE pid = pg_backend_pid()"
        )
    assert engine.apply(database_url, files, OPTIONS).applied == ["0002"]
    assert query(database_url, "SELECT count(*) FROM neon_stack.schema_migration_claims") == [(0,)]
    assert query(database_url, "SELECT indexname FROM pg_indexes WHERE tablename = 't'") == [("t_id",)]


def test_scrub_hides_the_password_however_it_is_spelled() -> None:
    url = "postgresql://owner:p%40ss%2Fw%25rd@127.0.0.1:5432/app"
    text = "failed for p@ss/w%rd, p%40ss%2Fw%25rd and p%40ss%2Fw%25rd"
    assert engine.scrub(text, url) == "failed for ***, *** and ***"
