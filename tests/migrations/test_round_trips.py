"""Round trips the engine pays per file, counted at a proxy between it and the server (ReadyForQuery
messages: one per exchange the client waits for), and the failing statement still named exactly."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks.latency_proxy import LatencyProxy
from components.migrations import engine
from components.migrations.files import MigrationFileError, load_directory
from neon_emulator.servers import PostgresServer
from tests.migrations.conftest import PROJECT_ROOT, history, new_database, tables, write_files

OPTIONS = engine.Options()


def _files(count: int, statements: int) -> dict[str, str]:
    return {f"{n:04d}_t{n}.sql": "".join(f"CREATE TABLE t{n}_{s} (id int);\n" for s in range(statements))
            for n in range(1, count + 1)}


def _round_trips(server: PostgresServer, directory: Path) -> int:
    """Round trips of one `apply` of `directory` to a new database, through a counting proxy."""
    with LatencyProxy(server.port) as proxy:
        url = proxy.url(server.url(new_database(server))) + "?sslmode=disable"
        engine.apply(url, load_directory(directory), OPTIONS)
        return proxy.round_trips


@pytest.mark.parametrize("statements", [1, 12])
def test_a_file_costs_one_round_trip_whatever_its_statements(postgres: PostgresServer, tmp_path: Path,
                                                              statements: int):
    two = _round_trips(postgres, write_files(tmp_path / "two", _files(2, statements)))
    six = _round_trips(postgres, write_files(tmp_path / "six", _files(6, statements)))
    assert (six - two) / 4 == 1


def test_a_file_applied_meanwhile_is_skipped_in_its_round_trip(postgres: PostgresServer, tmp_path: Path):
    directory = write_files(tmp_path, _files(3, 2))
    files = load_directory(directory)
    direct = postgres.url(new_database(postgres))
    with LatencyProxy(postgres.port) as proxy:
        url = proxy.url(direct) + "?sslmode=disable"
        engine.apply(url, files[:1], OPTIONS)
        with engine.connect(url) as conn:
            before = proxy.round_trips
            # The guard finds the history row under the lock: the file is skipped and rolled back.
            assert engine._apply_in_transaction(conn, files[0], OPTIONS) is False
            assert proxy.round_trips - before == 2  # the pipeline, then its ROLLBACK
    assert [r[:3] for r in history(direct)] == [("0001", "versioned", True)]


def test_the_failing_statement_of_a_pipelined_file_is_named(database_url: str, tmp_path: Path):
    statements = [f"CREATE TABLE t{n} (id int);" for n in range(1, 8)]
    statements[4] = "INSERT INTO t1 VALUES (1 / 0);"
    directory = write_files(tmp_path, {"0001_ok.sql": "CREATE TABLE ok (id int);",
                                       "0002_broken.sql": "\n".join(statements) + "\n"})
    with pytest.raises(engine.MigrationError, match=r"0002_broken\.sql line 5: division by zero"):
        engine.apply(database_url, load_directory(directory), OPTIONS)
    assert tables(database_url) == ["ok"]
    assert history(database_url)[-1][2:] == (False, "division by zero", "INSERT INTO t1 VALUES (1 / 0)")


def test_an_error_at_commit_is_the_last_statements(database_url: str, tmp_path: Path):
    directory = write_files(tmp_path, {"0001_deferred.sql": (
        "CREATE TABLE parent (id int PRIMARY KEY);\n"
        "CREATE TABLE child (parent_id int REFERENCES parent DEFERRABLE INITIALLY DEFERRED);\n"
        "INSERT INTO child VALUES (1);\n"
    )})
    with pytest.raises(engine.MigrationError, match=r"0001_deferred\.sql line 3: .*violates foreign key"):
        engine.apply(database_url, load_directory(directory), OPTIONS)
    assert tables(database_url) == []
    assert history(database_url)[-1][2] is False


def test_a_no_op_status_or_plan_starts_without_the_parser(database_url: str, tmp_path: Path):
    """What only compares checksums imports neither the SQL parser nor Pulumi (`python -X importtime`
    shows them as the largest imports otherwise)."""
    directory = write_files(tmp_path, _files(3, 2))
    engine.apply(database_url, load_directory(directory), OPTIONS)
    probe = (
        "import sys\nfrom components.migrations.__main__ import main\n"
        f"assert main([sys.argv[1], '--dir', {str(directory)!r}]) == 0\n"
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'pglast', 'pulumi', 'httpx'}))"
    )
    for command in ("status", "plan"):
        done = subprocess.run([sys.executable, "-c", probe, command], cwd=PROJECT_ROOT, capture_output=True, text=True,
                              env={**os.environ, "DATABASE_URL": database_url}, check=True)
        assert done.stdout.splitlines()[-1] == "[]", done.stdout


def test_a_file_applied_meanwhile_with_another_checksum_is_refused_under_the_lock(database_url: str, tmp_path: Path):
    [file] = load_directory(write_files(tmp_path / "ours", {"0001_t.sql": "CREATE TABLE t (id int);"}))
    [theirs] = load_directory(write_files(tmp_path / "theirs", {"0001_t.sql": "CREATE TABLE t (id bigint);"}))
    engine.apply(database_url, [theirs], OPTIONS)
    with engine.connect(database_url) as conn, pytest.raises(
        MigrationFileError, match=rf"0001_t\.sql: applied meanwhile with another checksum \({theirs.checksum[:12]}\)"
    ):
        engine._apply_in_transaction(conn, file, OPTIONS)
    assert [r[:3] for r in history(database_url)] == [("0001", "versioned", True)]
