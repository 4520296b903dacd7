"""Several appliers at once (directly and through PgBouncer), and an applier killed mid-migration."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from neon_emulator.servers import PgBouncer, PostgresServer
from tests.migrations.conftest import PROJECT_ROOT, history, query, write_files

pytestmark = pytest.mark.host  # the appliers are migration CLI subprocesses

MIGRATIONS = 12


def _counting_migrations(directory: Path) -> Path:
    """Files that each log their own run, so a double application would show twice; 0006 runs outside
    a transaction (its claim, not the lock, keeps the other appliers out)."""
    files = {"0001_runs.sql": "CREATE TABLE runs (version text NOT NULL);\nINSERT INTO runs VALUES ('0001');"}
    for n in range(2, MIGRATIONS + 1):
        files[f"{n:04d}_table_{n}.sql"] = (
            f"CREATE TABLE t{n} (id int PRIMARY KEY);\nSELECT pg_sleep(0.02);\nINSERT INTO runs VALUES ('{n:04d}');"
        )
    files["0006_table_6.sql"] = (
        "-- neon-stack:no-transaction\nCREATE INDEX CONCURRENTLY IF NOT EXISTS t5_id ON t5 (id);\n"
        "INSERT INTO runs VALUES ('0006');"
    )
    return write_files(directory, files)


def _cli(command: str, directory: Path, url: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "components.migrations", command, "--dir", str(directory)],
        cwd=PROJECT_ROOT, env={**os.environ, "DATABASE_URL": url}, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True,
    )


def _apply_concurrently(directory: Path, url: str, appliers: int = 4) -> None:
    processes = [_cli("apply", directory, url) for _ in range(appliers)]
    outcomes = [(p.wait(120), *p.communicate()) for p in processes]
    assert [o[0] for o in outcomes] == [0] * appliers, outcomes


def _assert_each_applied_once(url: str) -> None:
    expected = [f"{n:04d}" for n in range(1, MIGRATIONS + 1)]
    assert query(url, "SELECT version FROM runs ORDER BY version") == [(v,) for v in expected]
    assert [(r[0], r[2]) for r in history(url)] == [(v, True) for v in expected]


def test_four_concurrent_appliers_apply_each_file_once(database_url: str, tmp_path: Path):
    _apply_concurrently(_counting_migrations(tmp_path), database_url)
    _assert_each_applied_once(database_url)


def test_transaction_locks_serialize_appliers_through_pgbouncer(
    postgres: PostgresServer, pgbouncer: PgBouncer, fresh_database: str, tmp_path: Path
):
    pooled = pgbouncer.url(fresh_database, "postgres", postgres.password)
    _apply_concurrently(_counting_migrations(tmp_path), pooled)
    _assert_each_applied_once(postgres.url(fresh_database))


def _wait_for(condition, what: str, limit: float = 60) -> None:
    deadline = time.monotonic() + limit
    while not condition():
        assert time.monotonic() < deadline, f"gave up waiting for {what}"
        time.sleep(0.1)


def test_an_applier_killed_mid_migration_leaves_nothing_partial(database_url: str, tmp_path: Path):
    directory = write_files(tmp_path, {
        "0001_first.sql": "CREATE TABLE first (id int);\nCREATE TABLE go_slow (id int);",
        # Sleeps only while the table go_slow exists, so the re-run after the kill is quick.
        "0002_slow.sql": "CREATE TABLE half (id int);\n"
                         "SELECT pg_sleep(3) FROM pg_tables WHERE tablename = 'go_slow';\n"
                         "CREATE TABLE other_half (id int);",
    })
    applier = _cli("apply", directory, database_url)
    sleeping = "SELECT count(*) FROM pg_stat_activity WHERE query LIKE 'SELECT pg_sleep(3)%%' AND state = 'active'"
    _wait_for(lambda: query(database_url, sleeping) == [(1,)], "the slow migration to start")
    applier.send_signal(signal.SIGKILL)
    applier.wait()
    # The server notices the dead client when the sleep ends; then the transaction rolls back.
    _wait_for(lambda: query(database_url, sleeping) == [(0,)], "the killed migration to end")
    assert query(database_url, "SELECT to_regclass('half'), to_regclass('other_half')") == [(None, None)]
    assert [(r[0], r[2]) for r in history(database_url)] == [("0001", True)]
    query(database_url, "DROP TABLE go_slow")
    rerun = _cli("apply", directory, database_url)
    assert rerun.wait(60) == 0, rerun.communicate()
    assert query(database_url, "SELECT to_regclass('half')::text, to_regclass('other_half')::text") == [
        ("half", "other_half")]
    assert [(r[0], r[2]) for r in history(database_url)] == [("0001", True), ("0002", True)]
