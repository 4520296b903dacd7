"""Statements a migration file cannot run, refused before anything runs on every path (engine, provider
check, CLI plan), naming the file and line: generated files, and the list checked against PostgreSQL 15."""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest
from hypothesis import given
from hypothesis import strategies as st

from components.migrations import engine
from components.migrations.__main__ import main
from components.migrations.files import (
    MigrationFile,
    MigrationFileError,
    load_directory,
    parse_file,
)
from components.migrations.provider import MigrationsProvider, migration_entry
from components.migrations.statement_rules import NO_TRANSACTION_DIRECTIVE
from tests.migrations.conftest import history, query, tables, write_files

# Statements that need no refusal in any file; a generated file mixes them with the one under test.
ORDINARY = [
    "CREATE TABLE t{n} (id int)",
    "INSERT INTO t VALUES ({n})",
    "CREATE INDEX i{n} ON t (id)",
    "SELECT {n}",
    "COMMENT ON TABLE t IS 'not; a statement {n}'",
    "CREATE FUNCTION f{n}() RETURNS int AS $$ SELECT 1; $$ LANGUAGE sql",
]
# What may come before a statement (blank lines, comments with semicolons) and after it.
BEFORE = ["", "\n", "\n\n", "-- a note; with a semicolon\n", "/* a block\n   comment; */ ", "\t", "\r\n"]
AFTER = [";", ";\n", " ;", ";\r\n", ";;"]

# (statement, how the refusal names it)
TRANSACTION_CONTROL = [
    ("BEGIN", "BEGIN"), ("begin work", "BEGIN"), ("BEGIN ISOLATION LEVEL SERIALIZABLE", "BEGIN"),
    ("START TRANSACTION", "START TRANSACTION"), ("start transaction read only", "START TRANSACTION"),
    ("COMMIT", "COMMIT"), ("commit work", "COMMIT"), ("END", "COMMIT"), ("COMMIT AND CHAIN", "COMMIT"),
    ("ROLLBACK", "ROLLBACK"), ("ABORT", "ROLLBACK"), ("rollback and no chain", "ROLLBACK"),
    ("SAVEPOINT s", "SAVEPOINT"), ("RELEASE s", "RELEASE SAVEPOINT"), ("RELEASE SAVEPOINT s", "RELEASE SAVEPOINT"),
    ("ROLLBACK TO s", "ROLLBACK TO SAVEPOINT"), ("rollback to savepoint s", "ROLLBACK TO SAVEPOINT"),
    ("PREPARE TRANSACTION 'g'", "PREPARE TRANSACTION"), ("COMMIT PREPARED 'g'", "COMMIT PREPARED"),
    ("ROLLBACK PREPARED 'g'", "ROLLBACK PREPARED"),
]
COPY_STREAMS = [
    ("COPY t FROM STDIN", "COPY ... FROM STDIN"), ("copy t (a, b) from stdin with (format csv)", "COPY ... FROM STDIN"),
    ("COPY public.t FROM STDIN WITH (FORMAT binary)", "COPY ... FROM STDIN"),
    ("COPY t TO STDOUT", "COPY ... TO STDOUT"),
    ("COPY (SELECT 1) TO STDOUT WITH CSV HEADER", "COPY ... TO STDOUT"),
]
PREPARE = [("PREPARE p AS SELECT 1", "PREPARE"), ("prepare q (int) AS INSERT INTO t VALUES ($1)", "PREPARE")]

# (statement, how the refusal names it): PostgreSQL 15 refuses these inside a transaction block. The
# objects they name are made by `pg_objects` below, so that the server reaches its check.
NEEDS_NO_TRANSACTION = [
    ("CREATE DATABASE made_here", "CREATE DATABASE"),
    ("DROP DATABASE IF EXISTS nowhere", "DROP DATABASE"),
    ("CREATE TABLESPACE space LOCATION '/nowhere'", "CREATE TABLESPACE"),
    ("DROP TABLESPACE IF EXISTS nowhere", "DROP TABLESPACE"),
    ("ALTER SYSTEM SET work_mem = '8MB'", "ALTER SYSTEM"),
    ("VACUUM", "VACUUM"), ("vacuum t", "VACUUM"), ("VACUUM (ANALYZE, VERBOSE) t", "VACUUM"),
    ("CREATE INDEX CONCURRENTLY j ON t (a)", "CREATE INDEX CONCURRENTLY"),
    ("create unique index concurrently if not exists j ON t (a)", "CREATE INDEX CONCURRENTLY"),
    ("DROP INDEX CONCURRENTLY i", "DROP INDEX CONCURRENTLY"),
    ("DROP INDEX CONCURRENTLY IF EXISTS nowhere", "DROP INDEX CONCURRENTLY"),
    ("REINDEX TABLE CONCURRENTLY t", "REINDEX CONCURRENTLY"),
    ("REINDEX (CONCURRENTLY) INDEX i", "REINDEX CONCURRENTLY"),
    ("REINDEX (CONCURRENTLY true) TABLE t", "REINDEX CONCURRENTLY"), ("REINDEX SCHEMA public", "REINDEX SCHEMA"),
    ("REINDEX DATABASE here", "REINDEX DATABASE"), ("REINDEX SYSTEM here", "REINDEX SYSTEM"),
    ("CLUSTER", "CLUSTER without a table"), ("DISCARD ALL", "DISCARD ALL"),
    ("ALTER DATABASE nowhere SET TABLESPACE space", "ALTER DATABASE ... SET TABLESPACE"),
    ("ALTER TABLE p DETACH PARTITION c CONCURRENTLY", "ALTER TABLE ... DETACH PARTITION ... CONCURRENTLY"),
    ("CREATE SUBSCRIPTION s2 CONNECTION 'dbname=nowhere' PUBLICATION pub",
     "CREATE SUBSCRIPTION ... WITH (create_slot = true)"),
    ("CREATE SUBSCRIPTION s2 CONNECTION 'dbname=nowhere' PUBLICATION pub WITH (create_slot)",
     "CREATE SUBSCRIPTION ... WITH (create_slot = true)"),
    ("DROP SUBSCRIPTION s", "DROP SUBSCRIPTION"),
]
# PostgreSQL checks the subscription is enabled (it needs a reachable publisher) before the transaction
# block for these, so they are checked against the parser only.
NEEDS_NO_TRANSACTION_UNREACHED = [
    ("ALTER SUBSCRIPTION s REFRESH PUBLICATION", "ALTER SUBSCRIPTION ... REFRESH PUBLICATION"),
    ("ALTER SUBSCRIPTION s SET PUBLICATION pub", "ALTER SUBSCRIPTION ... PUBLICATION with refresh"),
    ("ALTER SUBSCRIPTION s ADD PUBLICATION pub2 WITH (refresh = true)",
     "ALTER SUBSCRIPTION ... PUBLICATION with refresh"),
    ("ALTER SUBSCRIPTION s DROP PUBLICATION pub WITH (refresh)", "ALTER SUBSCRIPTION ... PUBLICATION with refresh"),
]
# Close relatives that do run inside a transaction block, so need no directive.
TRANSACTION_SAFE = [
    "CREATE INDEX j ON t (a)", "DROP INDEX i", "ANALYZE t", "REINDEX TABLE t", "REINDEX (CONCURRENTLY false) TABLE t",
    "REINDEX (CONCURRENTLY 0) INDEX i", "CLUSTER t USING i", "DISCARD TEMP", "DISCARD PLANS",
    "ALTER TABLE p DETACH PARTITION c", "ALTER DATABASE nowhere SET work_mem = '8MB'",
    "ALTER DATABASE nowhere WITH CONNECTION LIMIT 5",
    "CREATE SUBSCRIPTION s3 CONNECTION 'dbname=nowhere' PUBLICATION pub WITH (connect = false)",
    "ALTER SUBSCRIPTION s SET PUBLICATION pub2 WITH (refresh = false)",
    "ALTER SUBSCRIPTION s ADD PUBLICATION pub3 WITH (refresh = off)",
    "COPY t FROM '/nowhere/data.csv'", "SET search_path = public", "LISTEN channel",
    "CREATE TEMP TABLE scratch (a int)",
]

# (statement, how the refusal names it): they leave state in the session, refused in no-transaction
# files only (the engine resets the session of a transactional file before recording it).
SESSION_CHANGES = [
    ("SET search_path = app", "SET search_path"), ("set session search_path to app", "SET search_path"),
    ("SET statement_timeout = 0", "SET statement_timeout"), ("RESET search_path", "RESET search_path"),
    ("RESET ALL", "RESET ALL"), ("SET ROLE app", "SET role"), ("RESET ROLE", "RESET role"),
    ("SET SESSION AUTHORIZATION app", "SET session_authorization"), ("SET TIME ZONE 'UTC'", "SET timezone"),
    ("SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY", "SET SESSION CHARACTERISTICS"),
    ("SELECT set_config('search_path', 'app', false)", "set_config(..., false)"),
    ("SELECT pg_catalog.set_config('app.mode', 'x', 'off')", "set_config(..., false)"),
    ("SELECT set_config('app.mode', 'x', 1 = 1)", "set_config(..., false)"),
    ("LISTEN channel", "LISTEN"), ("DECLARE held CURSOR WITH HOLD FOR SELECT 1", "DECLARE ... WITH HOLD"),
    ("CREATE TEMP TABLE scratch (a int)", "a temporary table"), ("CREATE TEMPORARY VIEW v AS SELECT 1", "a temporary"),
    ("SELECT 1 INTO TEMP scratch", "a temporary table"), ("CREATE TEMP SEQUENCE s", "a temporary table"),
    ("SELECT pg_advisory_lock(1)", "pg_advisory_lock() (a session-level advisory lock)"),
    ("SELECT pg_try_advisory_lock_shared(1, 2) FROM t", "pg_try_advisory_lock_shared()"),
]
NO_TRANSACTION_SAFE = [
    "SET LOCAL search_path = app", "SET TRANSACTION ISOLATION LEVEL REPEATABLE READ",
    "SELECT set_config('app.mode', 'x', true)", "SELECT pg_advisory_xact_lock(1)", "UNLISTEN *", "DISCARD ALL",
    "CREATE INDEX CONCURRENTLY j ON t (a)", "VACUUM t", "DECLARE c CURSOR FOR SELECT 1",
]


@st.composite
def sql_file(draw, special: str, no_transaction: bool) -> tuple[str, int]:
    """A file of ordinary statements with `special` among them, and the line `special` starts on."""
    ordinary = [s.format(n=n) for n, s in enumerate(draw(st.lists(st.sampled_from(ORDINARY), max_size=5)))]
    position = draw(st.integers(0, len(ordinary)))
    statements = [*ordinary[:position], special, *ordinary[position:]]
    text = f"{NO_TRANSACTION_DIRECTIVE}\n" if no_transaction else draw(st.sampled_from(["", "-- notes\n"]))
    for index, statement in enumerate(statements):
        text += draw(st.sampled_from(BEFORE))
        if index == position:
            line = text.count("\n") + 1
        text += statement + draw(st.sampled_from(AFTER))
    return text, line


def refused(file: MigrationFile, line: int, *fragments: str) -> bool:
    """Whether the file has exactly one refusal, at `line`, holding every fragment."""
    [refusal] = file.refusals
    return refusal.startswith(f"{file.filename} line {line}: ") and all(f in refusal for f in fragments)


def assert_refused_when_pending_only(file: MigrationFile, refusal: str) -> None:
    """A pending file is refused with the message; once in the history it is not (it never runs again)."""
    with pytest.raises(MigrationFileError) as raised:
        engine.make_plan([file], {}, engine.Options())
    assert str(raised.value) == refusal
    applied = {file.key: engine.Applied(file.key, file.description, file.checksum, "versioned")}
    assert engine.make_plan([file], applied, engine.Options()).pending == []


@given(st.data(), st.sampled_from(TRANSACTION_CONTROL), st.booleans())
def test_transaction_control_is_refused_in_every_file(data, case, no_transaction: bool):
    sql, name = case
    text, line = data.draw(sql_file(sql, no_transaction))
    file = parse_file("0007_tx.sql", text)
    fix = "autocommit" if no_transaction else "a transaction of its own"
    assert refused(file, line, f"{name} cannot be used in a migration file", fix)
    assert_refused_when_pending_only(file, file.refusals[0])


@given(st.data(), st.sampled_from(COPY_STREAMS + PREPARE), st.booleans())
def test_copy_streams_and_prepare_are_refused_in_every_file(data, case, no_transaction: bool):
    sql, name = case
    text, line = data.draw(sql_file(sql, no_transaction))
    file = parse_file("0003_load.sql", text)
    assert refused(file, line, name)
    assert_refused_when_pending_only(file, file.refusals[0])


@given(st.data(), st.sampled_from(NEEDS_NO_TRANSACTION + NEEDS_NO_TRANSACTION_UNREACHED))
def test_statements_that_cannot_run_in_a_transaction_need_the_directive(data, case):
    sql, name = case
    text, line = data.draw(sql_file(sql, no_transaction=False))
    file = parse_file("0004_index.sql", text)
    assert refused(file, line, f"{name} cannot run inside a transaction block", f"make `{NO_TRANSACTION_DIRECTIVE}`")
    assert_refused_when_pending_only(file, file.refusals[0])
    assert parse_file("0004_index.sql", f"{NO_TRANSACTION_DIRECTIVE}\n{text}").refusals == ()


@given(st.data(), st.sampled_from(SESSION_CHANGES))
def test_session_changes_are_refused_in_no_transaction_files_only(data, case):
    sql, name = case
    text, line = data.draw(sql_file(sql, no_transaction=True))
    file = parse_file("R__grants.sql", text)
    assert refused(file, line, f"{name}", "changes the session", "SET LOCAL")
    assert parse_file("R__grants.sql", text.split("\n", 1)[1]).refusals == ()


@given(st.data(), st.sampled_from(TRANSACTION_SAFE), st.sampled_from(NO_TRANSACTION_SAFE))
def test_close_relatives_are_not_refused(data, in_transaction: str, without_transaction: str):
    assert parse_file("0001_x.sql", data.draw(sql_file(in_transaction, no_transaction=False))[0]).refusals == ()
    assert parse_file("0001_x.sql", data.draw(sql_file(without_transaction, no_transaction=True))[0]).refusals == ()


@pytest.fixture
def pg_objects(database_url: str) -> str:
    """A database with the objects the statements above name (a subscription that never connects)."""
    query(database_url, "CREATE TABLE t (a int); CREATE INDEX i ON t (a);"
                        "CREATE TABLE p (a int) PARTITION BY RANGE (a);"
                        "CREATE TABLE c PARTITION OF p FOR VALUES FROM (0) TO (10)")
    query(database_url, "CREATE SUBSCRIPTION s CONNECTION 'dbname=nowhere' PUBLICATION pub WITH (connect = false)")
    return database_url


def test_the_refusals_match_what_postgresql_refuses_in_a_transaction_block(pg_objects: str):
    """PostgreSQL 15 itself decides: each statement inside BEGIN, refused (25001) or not, as the parser says."""
    verdicts = []
    with psycopg.connect(pg_objects, autocommit=True) as conn:
        for sql in [s for s, _ in NEEDS_NO_TRANSACTION] + TRANSACTION_SAFE:
            conn.execute("BEGIN")
            try:
                conn.execute(sql)
                server = False
            except psycopg.Error as error:
                server = error.sqlstate == "25001"
            conn.execute("ROLLBACK")
            verdicts.append((sql, server, bool(parse_file("0001_x.sql", sql).refusals)))
        conn.execute("ALTER SUBSCRIPTION s SET (slot_name = NONE)")
        conn.execute("DROP SUBSCRIPTION s")
    assert [v for v in verdicts if v[1] != v[2]] == []
    assert sum(v[1] for v in verdicts) == len(NEEDS_NO_TRANSACTION)


REFUSED_FILES = {
    "0002_rollback.sql": ("CREATE TABLE lost (id int);\nROLLBACK;\n", "line 2: ROLLBACK cannot be used"),
    "0002_copy.sql": ("CREATE TABLE t (a int);\nCOPY t FROM STDIN;\n", "line 2: COPY ... FROM STDIN needs a client"),
    "0002_index.sql": ("CREATE INDEX CONCURRENTLY i ON first (id);\n",
                       f"line 1: CREATE INDEX CONCURRENTLY cannot run inside a transaction block: make "
                       f"`{NO_TRANSACTION_DIRECTIVE}` the first line"),
    "0002_path.sql": (f"{NO_TRANSACTION_DIRECTIVE}\nCREATE SCHEMA app;\nSET search_path = app;\n",
                      "line 3: SET search_path changes the session"),
}


@pytest.mark.parametrize("name", sorted(REFUSED_FILES))
def test_every_path_refuses_before_anything_runs(database_url: str, tmp_path: Path, capsys, name: str):
    directory = write_files(tmp_path, {"0001_first.sql": "CREATE TABLE first (id int);"})
    engine.apply(database_url, load_directory(directory), engine.Options())
    old_inputs = {"migrations": [migration_entry(f) for f in load_directory(directory)]}
    sql, message = REFUSED_FILES[name]
    write_files(directory, {name: sql})
    with pytest.raises(MigrationFileError, match=rf"^{name} {message}"):
        engine.apply(database_url, load_directory(directory), engine.Options())
    news = {"app": "chatkit", "migrations": [migration_entry(f) for f in load_directory(directory)]}
    [failure] = MigrationsProvider().check(old_inputs, news).failures
    assert failure.reason.startswith(f"{name} {message}")
    assert main(["plan", "--dir", str(directory), "--database-url", database_url]) == 1
    assert capsys.readouterr().err.startswith(f"error: {name} {message}")
    assert tables(database_url) == ["first"] and [r[0] for r in history(database_url)] == ["0001"]


def test_a_file_ending_in_rollback_is_still_accepted_once_applied(database_url: str, tmp_path: Path):
    """An existing history keeps working: such a file, applied by an older engine, is not pending."""
    directory = write_files(tmp_path, {"0001_rolled_back.sql": "CREATE TABLE lost (id int);\nROLLBACK;\n"})
    [file] = load_directory(directory)
    with engine.connect(database_url) as conn:
        engine.ensure_history(conn, engine.Options())
    query(database_url, "INSERT INTO neon_stack.schema_migrations (version, description, kind, checksum,"
                        " execution_ms, success) VALUES ('0001', 'rolled_back', 'versioned', %s, 1, true)",
          (file.checksum,))
    result = engine.apply(database_url, load_directory(directory), engine.Options())
    assert result.applied == [] and result.state.applied_versions == ["0001"] and tables(database_url) == []
