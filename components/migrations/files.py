"""Migration files: naming, reading, checksums, ordering, and parsing with PostgreSQL's own parser
into statements (classified by the rules of `components.migrations.statement_rules`).

A schema directory holds versioned files `NNNN_description.sql` (applied once, in version order)
and repeatable files `R__description.sql` (re-applied after the versioned ones whenever their
checksum changes). A file whose first line is `-- neon-stack:no-transaction` runs outside a
transaction, one statement at a time (for CREATE INDEX CONCURRENTLY and the like). Versions are
numbers: `1_x.sql` and `0001_x.sql` are the same migration.

A file's statements are parsed when first used, and the parser is imported then: what only needs
names and checksums (a status, a preview where nothing is pending) parses nothing.
"""

from __future__ import annotations

import gc
import hashlib
import json
import os
import re
import stat
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

REPEATABLE_PREFIX = "R__"
# Significant digits a version may have: it fits a bigint.
MAX_VERSION_DIGITS = 18

# ASCII only: \d would also match other scripts' digits. Matched with fullmatch (`$` allows a final newline).
_VERSIONED_NAME = re.compile(r"(?P<version>[0-9]+)_(?P<description>[A-Za-z0-9][A-Za-z0-9_.-]*)\.sql")
_REPEATABLE_NAME = re.compile(r"R__(?P<description>[A-Za-z0-9][A-Za-z0-9_.-]*)\.sql")


class MigrationFileError(ValueError):
    """A migration file (or a set of them) that must not be applied; the message names the file."""


@dataclass(frozen=True)
class Statement:
    """One SQL statement of a file: the line it starts on, why it is destructive (if it is) and why it
    cannot run from its file (if it cannot)."""

    sql: str
    line: int
    destructive: str | None
    created_table: str | None = None
    refusal: str | None = None


@dataclass(frozen=True)
class MigrationFile:
    """A migration file; its statements are parsed on first use (a syntax error is raised then).

    `version` is the digits of a versioned file name as written ("0003", or "3" in `3_x.sql`) or
    `R__<description>` for a repeatable file. `key` is the file's identity in the history table,
    plans, checksums and state: the version number with at least four digits ("0003" for both
    spellings), or `R__<description>`.
    """

    version: str
    description: str
    filename: str
    sql: str
    checksum: str

    @cached_property
    def no_transaction(self) -> bool:
        from components.migrations.statement_rules import NO_TRANSACTION_DIRECTIVE

        return self.sql.partition("\n")[0].strip() == NO_TRANSACTION_DIRECTIVE

    @cached_property
    def statements(self) -> tuple[Statement, ...]:
        return parse_statements(self.filename, self.sql, self.no_transaction)

    @property
    def repeatable(self) -> bool:
        return self.version.startswith(REPEATABLE_PREFIX)

    @property
    def key(self) -> str:
        return version_key(self.version)

    @property
    def number(self) -> int:
        """Ordering key of a versioned file."""
        return int(self.key)

    @property
    def destructive_statements(self) -> tuple[Statement, ...]:
        return tuple(s for s in self.statements if s.destructive)

    @property
    def created_tables(self) -> tuple[str, ...]:
        return tuple(s.created_table for s in self.statements if s.created_table)

    @property
    def refusals(self) -> tuple[str, ...]:
        """`<file> line <n>: <why>` for every statement that cannot run from this file."""
        return tuple(f"{self.filename} line {s.line}: {s.refusal}" for s in self.statements if s.refusal)

    def describe_destructive(self) -> str:
        return "; ".join(f"{self.filename} line {s.line}: {s.destructive}" for s in self.destructive_statements)


def is_version(text: str) -> bool:
    """Whether `text` spells a version number: ASCII digits (str.isdigit alone also accepts other
    scripts' digits), at most MAX_VERSION_DIGITS of them after leading zeros."""
    return text.isascii() and text.isdigit() and len(text.lstrip("0")) <= MAX_VERSION_DIGITS


def version_key(version: str) -> str:
    """The identity of a version: the number with at least four digits ("1", "0001" and "00001" are
    all "0001"); a repeatable key (`R__...`) is kept as it is."""
    return version.lstrip("0").rjust(4, "0") if is_version(version) else version


def normalize(text: str) -> str:
    """Line endings normalized to LF and a leading byte order mark dropped, so neither a CRLF checkout
    nor an editor adding a BOM changes checksums. (PostgreSQL's parser refuses a BOM: no file with
    one was ever applied, so no applied checksum includes one.)"""
    return text.removeprefix("\ufeff").replace("\r\n", "\n").replace("\r", "\n")


def checksum(text: str) -> str:
    """SHA-256 (hex) of the file text with normalized line endings."""
    return hashlib.sha256(normalize(text).encode()).hexdigest()


def _line_of(text: str, offset: int) -> int:
    return text.count("\n", 0, offset) + 1


def _decoded(tree: str) -> dict:
    """json.loads with the cyclic garbage collector paused. A parse tree is many small containers and
    no cycles; collections while it is built scan it again and again (measured: five times slower on
    a 6 MB statement, and growing faster than its size)."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        return json.loads(tree)
    finally:
        if was_enabled:
            gc.enable()


def _statement(filename: str, sql: str, line: int, no_transaction: bool) -> Statement:
    """One statement (text from the parser's split) parsed and classified."""
    from pglast.parser import parse_sql_json

    from components.migrations.statement_rules import classify, created_table, refusal

    try:
        [item] = _decoded(parse_sql_json(sql))["stmts"]
    except RecursionError:
        raise MigrationFileError(
            f"{filename} line {line}: nested too deeply to be checked (split the expression, such as a long chain"
            " of || or +)"
        ) from None
    [(kind, node)] = item["stmt"].items()
    return Statement(sql, line, classify(kind, node), created_table(kind, node), refusal(kind, node, no_transaction))


def parse_statements(filename: str, text: str, no_transaction: bool = False) -> tuple[Statement, ...]:
    """Split and classify a file's statements with PostgreSQL's parser (pglast); a syntax error names
    the file and line. Linear in the file's size: the parser splits the file, each statement is then
    parsed on its own (the JSON parse tree is an order of magnitude faster to build than pglast's
    objects, and one tree at a time keeps the garbage collector's work small), and lines are counted
    on from the previous statement."""
    from pglast.parser import ParseError, split

    try:
        parts = split(text, with_parser=True, only_slices=True)
    except ParseError as error:
        message, offset = (*error.args, None)[:2]
        where = f" line {_line_of(text, offset)}" if isinstance(offset, int) else ""
        raise MigrationFileError(f"{filename}{where}: does not parse: {message}") from None
    statements, line, counted = [], 1, 0
    for part in parts:
        line += text.count("\n", counted, part.start)
        counted = part.start
        statements.append(_statement(filename, text[part], line, no_transaction))
    return tuple(statements)


def _name_parts(filename: str) -> tuple[str, str]:
    """(version, description) of a migration file name; other names are refused."""
    versioned, repeatable = _VERSIONED_NAME.fullmatch(filename), _REPEATABLE_NAME.fullmatch(filename)
    if versioned and not is_version(versioned["version"]):
        raise MigrationFileError(f"{filename}: a version has at most {MAX_VERSION_DIGITS} digits (leading zeros aside)")
    if versioned:
        return versioned["version"], versioned["description"]
    if repeatable:
        return REPEATABLE_PREFIX + repeatable["description"], repeatable["description"]
    if filename[-4:].lower() == ".sql" and not filename.endswith(".sql"):
        raise MigrationFileError(f"{filename}: the extension must be .sql in lower case; rename the file")
    raise MigrationFileError(
        f"{filename}: not a migration file name (expected NNNN_description.sql or R__description.sql)"
    )


def _check_text(filename: str, text: str) -> None:
    """Refuse text that cannot reach the server as written: a NUL character (the parser would stop
    reading there, PostgreSQL refuses it) or a lone surrogate (not encodable as UTF-8)."""
    nul = text.find("\x00")
    if nul >= 0:
        raise MigrationFileError(f"{filename} line {_line_of(text, nul)}: contains a NUL character")
    try:
        text.encode()
    except UnicodeEncodeError as error:
        raise MigrationFileError(f"{filename} line {_line_of(text, error.start)}: not valid Unicode text") from None


def parse_file(filename: str, text: str) -> MigrationFile:
    """A MigrationFile from a file name (no directory) and its text (its statements parsed on first use)."""
    version, description = _name_parts(filename)
    text = normalize(text)
    _check_text(filename, text)
    return MigrationFile(version, description, filename, text, checksum(text))


def order(files: Iterable[MigrationFile]) -> list[MigrationFile]:
    """Versioned files by version number, then repeatable ones by name; duplicate versions refused."""
    versioned: dict[int, MigrationFile] = {}
    repeatable: dict[str, MigrationFile] = {}
    for file in files:
        if file.repeatable:
            if file.version in repeatable:
                raise MigrationFileError(f"{file.filename}: duplicate repeatable {repeatable[file.version].filename}")
            repeatable[file.version] = file
        else:
            if file.number in versioned:
                raise MigrationFileError(
                    f"{file.filename}: duplicate version {file.version} (also {versioned[file.number].filename})"
                )
            versioned[file.number] = file
    return [versioned[n] for n in sorted(versioned)] + [repeatable[k] for k in sorted(repeatable)]


_FILE_KINDS = ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO"), (stat.S_ISSOCK, "a socket"),
               (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"))


def _read_text(path: Path) -> str:
    """The text of a migration file: a readable regular file (a symbolic link to one is followed) of
    UTF-8. It is opened without blocking and checked on the open descriptor, so that a FIFO (even
    one swapped in after the directory was listed) is refused instead of waited on."""
    try:
        descriptor = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except OSError as error:
        missing = isinstance(error, FileNotFoundError) and path.is_symlink()
        reason = "a symbolic link to a missing file" if missing else error.strerror
        raise MigrationFileError(f"{path.name}: cannot be read: {reason}") from None
    try:
        mode = os.fstat(descriptor).st_mode
        if not stat.S_ISREG(mode):
            kind = next((name for test, name in _FILE_KINDS if test(mode)), "a special file")
            raise MigrationFileError(f"{path.name}: {kind}, not a regular file")
        with open(descriptor, "rb", closefd=False) as handle:
            data = handle.read()
    finally:
        os.close(descriptor)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        line = data.count(b"\n", 0, error.start) + 1
        raise MigrationFileError(f"{path.name} line {line}: not UTF-8 text ({error.reason})") from None


def _is_migration_candidate(name: str) -> bool:
    """Names ending in .sql in any case; hidden files (editors' lock and swap files) are left alone."""
    return not name.startswith(".") and name[-4:].lower() == ".sql"


def load_directory(directory: Path) -> list[MigrationFile]:
    """Every `*.sql` entry of a schema directory, parsed and ordered; other files are ignored. An entry
    named like a migration that is not a readable regular file (a directory, a FIFO, a dangling link,
    a file without read permission) is refused, as is a `.SQL` extension."""
    directory = Path(directory)
    if not directory.is_dir():
        raise MigrationFileError(f"{directory}: schema directory does not exist")
    try:
        names = sorted(os.listdir(directory))
    except OSError as error:
        raise MigrationFileError(f"{directory}: cannot list the schema directory: {error.strerror}") from None
    return order(parse_file(name, _read_text(directory / name)) for name in names if _is_migration_candidate(name))


def filename_of(version: str, description: str) -> str:
    """The file name a history entry or a provider input stands for."""
    if version.startswith(REPEATABLE_PREFIX):
        return f"{version}.sql"
    return f"{version}_{description}.sql"
