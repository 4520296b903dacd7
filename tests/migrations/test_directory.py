"""What a schema directory may hold: entries named like migrations that are not readable regular files
are refused naming the file (never a traceback, a hang or a silent skip); BOMs and links are followed."""

from __future__ import annotations

import os
import pwd
import socket
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from components.migrations.__main__ import main
from components.migrations.files import MigrationFileError, checksum, load_directory
from components.migrations.statement_rules import NO_TRANSACTION_DIRECTIVE
from tests.migrations.conftest import within, write_files


def _fifo(path: Path) -> None:
    os.mkfifo(path)


def _directory(path: Path) -> None:
    path.mkdir()


def _dangling_link(path: Path) -> None:
    path.symlink_to(path.parent / "nowhere.sql")


def _link_to_a_directory(path: Path) -> None:
    (path.parent / "elsewhere").mkdir()
    path.symlink_to(path.parent / "elsewhere")


def _link_loop(path: Path) -> None:
    path.symlink_to(path)


def _socket(path: Path) -> None:
    listener = socket.socket(socket.AF_UNIX)
    listener.bind(str(path))
    listener.close()


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (_fifo, "0002_b.sql: a FIFO, not a regular file"),
        (_directory, "0002_b.sql: a directory, not a regular file"),
        (_link_to_a_directory, "0002_b.sql: a directory, not a regular file"),
        (_dangling_link, "0002_b.sql: cannot be read: a symbolic link to a missing file"),
        (_link_loop, "0002_b.sql: cannot be read: Too many levels of symbolic links"),
        (_socket, "0002_b.sql: cannot be read: No such device or address"),
    ],
)
def test_entries_that_are_not_regular_files_are_refused(tmp_path: Path, capsys, make, message: str):
    write_files(tmp_path, {"0001_a.sql": "SELECT 1;"})
    make(tmp_path / "0002_b.sql")
    with within(10), pytest.raises(MigrationFileError) as refused:
        load_directory(tmp_path)
    assert str(refused.value) == message
    with within(10):
        assert main(["plan", "--dir", str(tmp_path), "--database-url", "postgresql://u@127.0.0.1:1/d"]) == 1
    assert capsys.readouterr().err == f"error: {message}\n"


def test_a_symbolic_link_to_a_file_is_applied_with_the_file_s_text(tmp_path: Path):
    shared = write_files(tmp_path / "shared", {"grants.sql": "GRANT SELECT ON t TO reader;"})
    schema = write_files(tmp_path / "schema", {"0001_t.sql": "CREATE TABLE t (id int);"})
    (schema / "R__grants.sql").symlink_to(shared / "grants.sql")
    files = load_directory(schema)
    assert [(f.filename, f.sql, f.checksum) for f in files][1] == (
        "R__grants.sql", "GRANT SELECT ON t TO reader;", checksum("GRANT SELECT ON t TO reader;"))


def test_hidden_files_and_other_extensions_are_ignored_and_upper_case_sql_refused(tmp_path: Path):
    write_files(tmp_path, {"0001_a.sql": "SELECT 1;", ".#0001_a.sql": "lock", ".0002_b.sql.swp": "", "README.md": ""})
    (tmp_path / ".#0003_c.sql").symlink_to("nowhere")  # an editor's lock file: a dangling link
    assert [f.filename for f in load_directory(tmp_path)] == ["0001_a.sql"]
    write_files(tmp_path, {"0002_b.SQL": "SELECT 2;"})
    with pytest.raises(MigrationFileError, match=r"^0002_b\.SQL: the extension must be \.sql in lower case"):
        load_directory(tmp_path)


def test_a_byte_order_mark_is_ignored(tmp_path: Path):
    """Editors add a BOM; PostgreSQL's parser refuses it, so it is dropped (and left out of the checksum)."""
    body = f"{NO_TRANSACTION_DIRECTIVE}\r\nCREATE INDEX CONCURRENTLY i ON t (id);\r\n"
    (tmp_path / "0001_i.sql").write_bytes(b"\xef\xbb\xbf" + body.encode())
    [file] = load_directory(tmp_path)
    assert file.no_transaction and file.checksum == checksum(body) and not file.sql.startswith("\ufeff")
    assert [(s.line, s.sql) for s in file.statements] == [(2, "CREATE INDEX CONCURRENTLY i ON t (id)")]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"SELECT 1;\nSELECT '\xff';\n", r"^0001_a\.sql line 2: not UTF-8 text \(invalid start byte\)$"),
        (b"SELECT 1;\n\nSELECT 2;\x00DROP TABLE t;\n", r"^0001_a\.sql line 3: contains a NUL character$"),
    ],
)
def test_text_the_server_cannot_take_is_refused_with_its_line(tmp_path: Path, data: bytes, message: str):
    (tmp_path / "0001_a.sql").write_bytes(data)
    with pytest.raises(MigrationFileError, match=message):
        load_directory(tmp_path)


@contextmanager
def unprivileged() -> Iterator[None]:
    """File permissions apply (root reads anything): as root, act as `nobody` for a while."""
    if os.geteuid() != 0:
        yield
        return
    os.seteuid(pwd.getpwnam("nobody").pw_uid)
    try:
        yield
    finally:
        os.seteuid(0)


def test_a_file_without_read_permission_is_refused():
    directory = Path(tempfile.mkdtemp())  # not under pytest's private temporary directory
    try:
        write_files(directory, {"0001_a.sql": "SELECT 1;"})
        os.chmod(directory, 0o555)  # noqa: S103 (listed by the unprivileged reader)
        os.chmod(directory / "0001_a.sql", 0o000)
        with unprivileged(), pytest.raises(MigrationFileError) as refused:
            load_directory(directory)
        assert str(refused.value) == "0001_a.sql: cannot be read: Permission denied"
    finally:
        os.chmod(directory, 0o700)
        (directory / "0001_a.sql").unlink()
        directory.rmdir()
