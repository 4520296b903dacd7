"""Versions are numbers: `1_x.sql` renamed `0001_x.sql` is the same migration on every path (plan,
apply, the re-check under the lock, the provider's state), and histories written by the older engine
(version '1') keep working."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from components.migrations import engine
from components.migrations.files import MigrationFileError, load_directory, order, parse_file, version_key
from components.migrations.provider import MigrationsProvider, migration_entry
from neon_emulator.servers import PostgresServer
from tests.migrations.conftest import history, new_database, query, tables, write_files

numbers = st.integers(0, 10**18 - 1)
paddings = st.integers(0, 8)
non_ascii_digits = st.characters(categories=["Nd"]).filter(lambda c: not c.isascii())


def spelled(number: int, padding: int) -> str:
    return str(number).rjust(padding, "0")


@given(numbers, paddings, paddings)
def test_every_spelling_of_a_number_is_one_version(number: int, one: int, other: int):
    first = parse_file(f"{spelled(number, one)}_a.sql", "SELECT 1;")
    second = parse_file(f"{spelled(number, other)}_b.sql", "SELECT 2;")
    assert first.key == second.key == f"{number:04d}" and first.number == second.number == number
    with pytest.raises(MigrationFileError) as duplicate:
        order([first, second])
    assert str(duplicate.value) == f"{second.filename}: duplicate version {second.version} (also {first.filename})"


@given(st.lists(non_ascii_digits, min_size=1, max_size=4).map("".join))
def test_only_ascii_digits_make_a_version(digits: str):
    assert digits.isdigit()  # what Python's \d and str.isdigit accept
    with pytest.raises(MigrationFileError, match="not a migration file name"):
        parse_file(f"{digits}_x.sql", "SELECT 1;")
    with pytest.raises(MigrationFileError, match="is not a version number"):
        engine.make_plan([], {}, engine.Options(baseline_version=digits))
    assert version_key(digits) == digits


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("0001_x.sql\n", "not a migration file name"),  # `$` would have matched before the newline
        ("1234567890123456789_x.sql", "a version has at most 18 digits"),
        ("0001_x.SQL", "the extension must be .sql in lower case"),
        ("R__views.Sql", "the extension must be .sql in lower case"),
    ],
)
def test_names_that_are_not_versions(name: str, message: str):
    with pytest.raises(MigrationFileError) as refused:
        parse_file(name, "SELECT 1;")
    assert str(refused.value).startswith(f"{name}: ") and message in str(refused.value)


def test_leading_zeros_do_not_count_towards_the_limit():
    assert parse_file(f"{'0' * 30}123456789012345678_x.sql", "SELECT 1;").key == "123456789012345678"


@settings(max_examples=5)
@given(numbers, paddings, paddings)
def test_a_renamed_file_is_not_applied_again(postgres: PostgresServer, number: int, one: int, other: int):
    url = postgres.url(new_database(postgres))
    with tempfile.TemporaryDirectory() as temporary:
        directory = Path(temporary)
        (directory / f"{spelled(number, one)}_t.sql").write_text("CREATE TABLE t (id int);")
        assert engine.apply(url, load_directory(directory), engine.Options()).applied == [f"{number:04d}"]
        (directory / f"{spelled(number, one)}_t.sql").rename(directory / f"{spelled(number, other)}_t.sql")
        files = load_directory(directory)
        the_plan, _ = engine.plan(url, files, engine.Options())
        assert the_plan.pending == [] and engine.apply(url, files, engine.Options()).applied == []
    assert [(r[0], r[2]) for r in history(url)] == [(f"{number:04d}", True)]


def _older_engine_history(url: str, version: str, checksum: str) -> None:
    """The history row the older engine wrote for a file named `1_t.sql` (version as spelled)."""
    with engine.connect(url) as conn:
        engine.ensure_history(conn, engine.Options())
    query(url, "INSERT INTO neon_stack.schema_migrations (version, description, kind, checksum, execution_ms,"
               " success) VALUES (%s, 't', 'versioned', %s, 1, true)", (version, checksum))


def test_an_older_history_keeps_working_on_every_path(database_url: str, tmp_path: Path):
    write_files(tmp_path, {"0001_t.sql": "CREATE TABLE t (id int);"})
    [file] = load_directory(tmp_path)
    _older_engine_history(database_url, "1", file.checksum)
    with engine.connect(database_url) as conn:
        assert engine.read_applied(conn) == {"0001": engine.Applied("0001", "t", file.checksum, "versioned")}
        # Under the lock (another applier recorded it meanwhile): skipped, in or out of a transaction.
        assert engine._apply_in_transaction(conn, file, engine.Options()) is False
        no_transaction = parse_file("0002_u.sql", "-- neon-stack:no-transaction\nCREATE TABLE u (id int);")
        _older_engine_history(database_url, "2", no_transaction.checksum)
        assert engine._apply_without_transaction(conn, no_transaction, engine.Options()) is False
    assert engine.apply(database_url, [file, no_transaction], engine.Options()).applied == []
    assert tables(database_url) == []
    edited = parse_file("0001_t.sql", "CREATE TABLE t (id bigint);")
    with pytest.raises(MigrationFileError, match=r"0001_t\.sql: changed after it was applied"):
        engine.apply(database_url, [edited], engine.Options())


def test_the_provider_keys_its_state_by_number(database_url: str, tmp_path: Path):
    provider = MigrationsProvider()
    write_files(tmp_path, {"1_t.sql": "CREATE TABLE t (id int);", "2_drop.sql": "DROP TABLE t;"})
    created = {"database_url": database_url, "app": "chatkit", "allow_destructive": True,
               "migrations": [migration_entry(f) for f in load_directory(tmp_path)]}
    outs = provider.create(created).outs
    assert outs["checksums"].keys() == {"0001", "0002"} and outs["applied_versions"] == ["0001", "0002"]
    # A refresh keeps the entries of the files (as spelled), not "applied outside this stack".
    assert provider.read("chatkit-schema", outs).inputs["migrations"] == created["migrations"]
    # Renamed, the applied destructive file is not pending: production's check does not refuse it.
    (tmp_path / "1_t.sql").rename(tmp_path / "0001_t.sql")
    (tmp_path / "2_drop.sql").rename(tmp_path / "0002_drop.sql")
    renamed = {**created, "allow_destructive": False,
               "migrations": [migration_entry(f) for f in load_directory(tmp_path)]}
    assert provider.check({**created, "checksums": {"1": outs["checksums"]["0001"], "2": outs["checksums"]["0002"]}},
                          renamed).failures == []
    assert provider.update("chatkit-schema", outs, renamed).outs["applied_versions"] == ["0001", "0002"]
    assert len(history(database_url)) == 2
