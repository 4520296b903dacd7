"""File naming, checksums, parsing and destructive-statement classification (no database)."""

from __future__ import annotations

from pathlib import Path

import pytest

from components.migrations.files import MigrationFileError, checksum, load_directory, parse_file
from tests.migrations.conftest import PROJECT_ROOT, write_files


def test_checksum_ignores_line_endings_but_not_content():
    assert checksum("a\r\nb\r\n") == checksum("a\nb\n") == checksum("a\rb\r")
    assert checksum("a\nb\n") != checksum("a\nc\n")


def test_versioned_and_repeatable_names():
    versioned = parse_file("0007_add_users.sql", "SELECT 1;")
    repeatable = parse_file("R__views.sql", "SELECT 1;")
    assert (versioned.version, versioned.description, versioned.repeatable) == ("0007", "add_users", False)
    assert (repeatable.version, repeatable.description, repeatable.repeatable) == ("R__views", "views", True)
    with pytest.raises(MigrationFileError, match=r"add users\.sql: not a migration file name"):
        parse_file("add users.sql", "SELECT 1;")


def test_syntax_error_names_file_and_line():
    with pytest.raises(MigrationFileError, match=r"0002_bad.sql line 4: does not parse: .*\"TABEL\""):
        assert parse_file("0002_bad.sql", "-- comment\nCREATE TABLE a (x int);\n\nCREATE TABEL b (y int);\n").statements


def test_duplicate_versions_are_refused(tmp_path: Path):
    write_files(tmp_path, {"0001_a.sql": "SELECT 1;", "1_b.sql": "SELECT 2;"})
    with pytest.raises(MigrationFileError, match=r"duplicate version 1 .*0001_a\.sql"):
        load_directory(tmp_path)


def test_files_are_ordered_by_number_then_repeatables(tmp_path: Path):
    write_files(tmp_path, {"10_c.sql": "SELECT 1;", "9_b.sql": "SELECT 1;", "R__v.sql": "SELECT 1;", "x.txt": ""})
    assert [f.filename for f in load_directory(tmp_path)] == ["9_b.sql", "10_c.sql", "R__v.sql"]


@pytest.mark.parametrize(
    ("sql", "reason"),
    [
        ("DROP TABLE users", "DROP TABLE"),
        ("DROP SCHEMA app CASCADE", "DROP SCHEMA"),
        ("DROP INDEX CONCURRENTLY idx", "DROP INDEX"),
        ("TRUNCATE users", "TRUNCATE"),
        ("ALTER TABLE users DROP COLUMN name", "ALTER TABLE ... DROP COLUMN"),
        ("ALTER TABLE users ALTER COLUMN name TYPE text", "ALTER TABLE ... ALTER COLUMN ... TYPE"),
        ("DELETE FROM users", "DELETE without WHERE"),
        ("UPDATE users SET name = ''", "UPDATE without WHERE"),
        ("ALTER TABLE users RENAME TO people", "RENAME TABLE"),
        ("ALTER TABLE users RENAME COLUMN name TO full_name", "RENAME COLUMN"),
        ("DROP DATABASE other", "DROP DATABASE"),
    ],
)
def test_destructive_statements_are_classified(sql: str, reason: str):
    file = parse_file("0001_x.sql", f"-- first line\n{sql};\n")
    assert [(s.line, s.destructive) for s in file.statements] == [(2, reason)]
    assert file.describe_destructive() == f"0001_x.sql line 2: {reason}"


@pytest.mark.parametrize(
    "sql",
    [
        "CREATE TABLE t (id int)",
        "ALTER TABLE t ADD COLUMN c int",
        "DELETE FROM t WHERE id = 1",
        "UPDATE t SET c = 1 WHERE id = 1",
        "CREATE INDEX CONCURRENTLY i ON t (c)",
        "ALTER TABLE t ALTER COLUMN c SET DEFAULT 0",
    ],
)
def test_safe_statements_are_not_destructive(sql: str):
    assert parse_file("0001_x.sql", sql).destructive_statements == ()


def test_no_transaction_directive_only_on_first_line():
    directive = "-- neon-stack:no-transaction\n"
    assert parse_file("0001_x.sql", directive + "CREATE INDEX CONCURRENTLY i ON t (c);").no_transaction
    assert not parse_file("0001_x.sql", "SELECT 1;\n-- neon-stack:no-transaction\n").no_transaction


def test_statements_keep_dollar_quoted_bodies_whole():
    file = parse_file("0001_f.sql", "CREATE FUNCTION f() RETURNS int AS $$ SELECT 1; $$ LANGUAGE sql;\nSELECT f();")
    assert [s.sql for s in file.statements] == [
        "CREATE FUNCTION f() RETURNS int AS $$ SELECT 1; $$ LANGUAGE sql",
        "SELECT f()",
    ]


def test_the_apps_schemas_parse_and_are_not_destructive():
    for app in ("chatkit", "learnflow"):
        files = load_directory(PROJECT_ROOT / "schema" / app)
        assert files and all(not f.destructive_statements and not f.repeatable for f in files)
    assert load_directory(PROJECT_ROOT / "schema" / "chatkit")[0].created_tables == (
        "public.users", "public.anon_sessions", "public.chat_sessions")


def test_lines_and_statement_text_survive_multibyte_characters():
    file = parse_file("0001_x.sql", "-- é\nINSERT INTO t VALUES ('ééé');\n\n-- ü\nDELETE FROM t;\n")
    assert [(s.line, s.sql, s.destructive) for s in file.statements] == [
        (2, "INSERT INTO t VALUES ('ééé')", None),
        (5, "DELETE FROM t", "DELETE without WHERE"),
    ]
    with pytest.raises(MigrationFileError, match="line 2: does not parse"):
        assert parse_file("0002_x.sql", "SELECT 'ééééééé';\nSELEC 1;").statements
