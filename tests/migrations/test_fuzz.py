"""Generated files for the parser: any name and any text (or bytes on disk) give a parsed file or a
MigrationFileError naming the file, never another exception or a hang; statements and their lines
come out as written."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from components.migrations.files import MigrationFileError, load_directory, normalize, parse_file
from tests.migrations.conftest import within
from tests.migrations.test_statement_rules import (
    COPY_STREAMS,
    NEEDS_NO_TRANSACTION,
    ORDINARY,
    SESSION_CHANGES,
    TRANSACTION_CONTROL,
)

STATEMENTS = [s.format(n=1) for s in ORDINARY] + [
    s for s, _ in TRANSACTION_CONTROL + COPY_STREAMS + NEEDS_NO_TRANSACTION + SESSION_CHANGES]
# Pieces of SQL that parsers get wrong: quotes, dollar quotes, comments, nesting, odd characters.
PIECES = ["'", '"', "$$", "$x$", "--", "/*", "*/", ";", "\n", "\r", "\ufeff", "\x00", "\ud800", "é", "\\", "E'\\",
          "(", ")", "[", "]", "-- neon-stack:no-transaction\n", "SELECT", "CREATE", "TABLE", "1", "e", " "]

# (start, opening, middle, closing) of statements nested to a generated depth, deeper than Python's stack.
NESTINGS = [("", "(", "SELECT 1", ")"), ("SELECT ARRAY", "[", "1", "]"), ("SELECT ", "- ", "1", ""),
            ("SELECT ", "NOT ", "true", ""), ("SELECT ", "coalesce(", "1", ")")]
names = st.one_of(
    st.text(max_size=40),
    st.from_regex(r"(R__|[0-9]{1,25}_)[A-Za-z0-9_.-]{1,20}\.(sql|SQL)", fullmatch=True),
    st.tuples(st.sampled_from(["0001_x", "R__v", "1_", "٠١_x", "0001_x.sql"]), st.text(max_size=5)).map("".join),
)
texts = st.one_of(
    st.text(),
    st.lists(st.sampled_from(STATEMENTS + PIECES), max_size=30).map(" ".join),
    st.lists(st.sampled_from(PIECES), max_size=60).map("".join),
    st.builds(lambda n, depth: n[0] + n[1] * depth + n[2] + n[3] * depth, st.sampled_from(NESTINGS),
              st.integers(0, 3000)),
)


def parses_or_names_the_file(name: str, parse) -> None:
    try:
        with within(20):
            parse()
    except MigrationFileError as error:
        assert str(error).startswith(name), error


@pytest.mark.fuzz
@settings(max_examples=400)
@given(names, texts)
def test_parse_file_parses_or_names_the_file(name: str, text: str):
    parses_or_names_the_file(name, lambda: parse_file(name, text))




def fits_a_directory(name: str) -> bool:
    """Not empty, no "/" or NUL, within the 255 bytes of a file name."""
    return name not in ("", ".", "..") and "/" not in name and "\x00" not in name and len(name.encode()) < 250


disk_names = st.one_of(names, st.just("0001_x.sql")).filter(fits_a_directory)
contents = st.one_of(st.binary(max_size=300), texts.map(lambda t: t.encode(errors="surrogatepass")),
                     st.sampled_from(["fifo", "directory", "dangling link", "link to itself"]))


def make_entry(path: Path, content) -> None:
    if content == "fifo":
        os.mkfifo(path)
    elif content == "directory":
        path.mkdir()
    elif content == "dangling link":
        path.symlink_to(path.parent / "missing")
    elif content == "link to itself":
        path.symlink_to(path)
    else:
        path.write_bytes(content)


@pytest.mark.fuzz
@settings(max_examples=200)
@given(st.lists(st.tuples(disk_names, contents), min_size=1, max_size=3, unique_by=lambda entry: entry[0]))
def test_load_directory_loads_or_names_a_file(entries):
    with tempfile.TemporaryDirectory() as temporary:
        directory = Path(temporary)
        for name, content in entries:
            make_entry(directory / name, content)
        try:
            with within(20):
                load_directory(directory)
        except MigrationFileError as error:
            assert any(str(error).startswith(name) for name, _ in entries), error


BEFORE = ["", "\n", "\n\n", "  ", "-- note\n", "/* a\nb */\n", "\r\n", "\t"]


@given(st.lists(st.tuples(st.sampled_from(BEFORE), st.sampled_from(STATEMENTS)), max_size=20),
       st.sampled_from(["", ";", ";\n", "\n"]))
def test_statements_and_lines_come_out_as_written(pieces, end: str):
    text, expected = "", []
    for before, statement in pieces:
        text += before
        expected.append((statement, normalize(text).count("\n") + 1))
        text += statement + ";"
    file = parse_file("R__x.sql", text.removesuffix(";") + end)
    assert [(s.sql, s.line) for s in file.statements] == expected
