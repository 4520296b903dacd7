"""No file changes the session of the next file or of anyone else: what a transactional file sets in
the session is reset before its history row, directly and through a transaction pooler."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from components.migrations import engine
from components.migrations.files import load_directory
from neon_emulator.servers import PgBouncer, PostgresServer, start_pgbouncer, start_postgres
from tests.migrations.conftest import new_database, query, write_files

pytestmark = pytest.mark.postgres  # pool_of_one starts its own PostgreSQL and PgBouncer

ROLE = "migration_role"
LOCK = 4242
# Session state a file may leave behind, each seen by SESSION below.
CHANGES = [
    "SET search_path = app",
    "SELECT set_config('search_path', 'app', false)",
    "SET work_mem = '77MB'",
    "SET TIME ZONE 'Pacific/Auckland'",
    "SET SESSION CHARACTERISTICS AS TRANSACTION ISOLATION LEVEL SERIALIZABLE",
    "LISTEN migrations",
    "DECLARE held CURSOR WITH HOLD FOR SELECT 1",
    "CREATE TEMP TABLE scratch (a int)",
    f"SELECT pg_advisory_lock({LOCK})",
]
ROLE_CHANGES = [f"SET ROLE {ROLE}", f"SET SESSION AUTHORIZATION {ROLE}"]
SESSION = f"""SELECT current_user::text AS user_name, session_user::text AS session_name,
    current_setting('search_path') AS search_path, current_setting('work_mem') AS work_mem,
    current_setting('TimeZone') AS time_zone, current_setting('default_transaction_isolation') AS isolation,
    (SELECT count(*) FROM pg_listening_channels()) AS listening,
    (SELECT count(*) FROM pg_cursors WHERE is_holdable) AS held_cursors,
    (SELECT count(*) FROM pg_class WHERE relnamespace = pg_my_temp_schema()) AS temporary_relations,
    (SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid() AND objid = {LOCK})
        AS session_locks"""


@pytest.fixture(scope="module")
def pool_of_one() -> Iterator[tuple[PostgresServer, PgBouncer]]:
    """A PostgreSQL behind a PgBouncer (transaction mode) with one server connection per pool, so the
    client after the migration gets the very server connection the migration ran on."""
    server = start_postgres()
    bouncer = start_pgbouncer(server, pool_size=1)
    try:
        query(server.url(), f"CREATE ROLE {ROLE}")
        yield server, bouncer
    finally:
        bouncer.stop()
        server.stop()


def defaults(url: str) -> dict:
    """The session a new connection gets."""
    with psycopg.connect(url, autocommit=True) as conn:
        cursor = conn.execute(SESSION)
        return dict(zip([c.name for c in cursor.description], cursor.fetchone(), strict=True))


def changing_file(changes: list[str], role_change: str | None) -> str:
    """A file that records the server connection it runs on, then changes the session (the role last,
    so the other statements keep the migrating user's privileges)."""
    statements = ["CREATE SCHEMA app", "CREATE TABLE public.ran_on AS SELECT pg_backend_pid() AS pid", *changes]
    return ";\n".join(statements + ([role_change] if role_change else [])) + ";\n"


session_changes = st.tuples(st.lists(st.sampled_from(CHANGES), min_size=1, unique=True),
                            st.none() | st.sampled_from(ROLE_CHANGES))


@settings(max_examples=8)
@given(session_changes)
def test_the_next_file_sees_a_new_session_and_creates_its_tables_in_the_default_schema(pool_of_one, drawn):
    server, _ = pool_of_one
    url = server.url(new_database(server))
    with tempfile.TemporaryDirectory() as directory:
        files = load_directory(write_files(Path(directory), {
            "0001_change_session.sql": changing_file(*drawn),
            "0002_after.sql": f"CREATE TABLE after AS {SESSION};",
        }))
        assert engine.apply(url, files, engine.Options()).applied == ["0001", "0002"]
    seen = query(url, "SELECT * FROM public.after")
    assert query(url, "SELECT to_regclass('app.after')") == [(None,)]
    assert [dict(zip(defaults(url), row, strict=True)) for row in seen] == [defaults(url)]
    assert query(url, "SELECT DISTINCT applied_by FROM neon_stack.schema_migrations") == [("postgres",)]


@settings(max_examples=8)
@given(session_changes)
def test_a_later_client_of_the_pooler_sees_a_new_session(pool_of_one, drawn):
    server, bouncer = pool_of_one
    database = new_database(server)
    pooled = bouncer.url(database, "postgres", server.password)
    with tempfile.TemporaryDirectory() as directory:
        files = load_directory(write_files(Path(directory), {"0001_change_session.sql": changing_file(*drawn)}))
        assert engine.apply(pooled, files, engine.Options()).applied == ["0001"]
    with psycopg.connect(pooled, autocommit=True) as later:
        assert later.execute("SELECT pg_backend_pid() = (SELECT pid FROM ran_on)").fetchone() == (True,)
        cursor = later.execute(SESSION)
        seen = dict(zip([c.name for c in cursor.description], cursor.fetchone(), strict=True))
    assert seen == defaults(server.url(database))
