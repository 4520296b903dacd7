"""Migration files: naming, checksums, parsing with PostgreSQL's own parser, destructive-change rules.

A schema directory holds versioned files `NNNN_description.sql` (applied once, in version order)
and repeatable files `R__description.sql` (re-applied after the versioned ones whenever their
checksum changes). A file whose first line is `-- neon-stack:no-transaction` runs outside a
transaction, one statement at a time (for CREATE INDEX CONCURRENTLY and the like).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from pglast.parser import ParseError, parse_sql_json

NO_TRANSACTION_DIRECTIVE = "-- neon-stack:no-transaction"
REPEATABLE_PREFIX = "R__"

_VERSIONED_NAME = re.compile(r"^(?P<version>\d+)_(?P<description>[A-Za-z0-9][A-Za-z0-9_.-]*)\.sql$")
_REPEATABLE_NAME = re.compile(r"^R__(?P<description>[A-Za-z0-9][A-Za-z0-9_.-]*)\.sql$")


class MigrationFileError(ValueError):
    """A migration file (or a set of them) that must not be applied; the message names the file."""


@dataclass(frozen=True)
class Statement:
    """One SQL statement of a file, with the line it starts on and why it is destructive (if it is)."""

    sql: str
    line: int
    destructive: str | None
    created_table: str | None = None


@dataclass(frozen=True)
class MigrationFile:
    """A parsed migration file.

    `version` is the digits of a versioned file name ("0003") or `R__<description>` for a
    repeatable file: it is the key of the file in the history table and in checksums.
    """

    version: str
    description: str
    filename: str
    sql: str
    checksum: str
    statements: tuple[Statement, ...]

    @property
    def repeatable(self) -> bool:
        return self.version.startswith(REPEATABLE_PREFIX)

    @property
    def number(self) -> int:
        """Ordering key of a versioned file."""
        return int(self.version)

    @property
    def no_transaction(self) -> bool:
        return self.sql.lstrip("\ufeff").split("\n", 1)[0].strip() == NO_TRANSACTION_DIRECTIVE

    @property
    def destructive_statements(self) -> tuple[Statement, ...]:
        return tuple(s for s in self.statements if s.destructive)

    @property
    def created_tables(self) -> tuple[str, ...]:
        return tuple(s.created_table for s in self.statements if s.created_table)

    def describe_destructive(self) -> str:
        return "; ".join(f"{self.filename} line {s.line}: {s.destructive}" for s in self.destructive_statements)


def normalize(text: str) -> str:
    """Line endings normalized to LF, so a checkout with CRLF does not change checksums."""
    return text.replace("\r\n", "\n").replace("\r", "\n")


def checksum(text: str) -> str:
    """SHA-256 (hex) of the file text with normalized line endings."""
    return hashlib.sha256(normalize(text).encode()).hexdigest()


def _line_of(text: str, offset: int) -> int:
    return text.count("\n", 0, offset) + 1


def _first_token_offset(text: str) -> int:
    """Offset of the first character that is neither blank nor in a `--` comment."""
    position = 0
    while position < len(text):
        if text[position].isspace():
            position += 1
        elif text.startswith("--", position):
            newline = text.find("\n", position)
            position = len(text) if newline < 0 else newline + 1
        else:
            break
    return position


_DESTRUCTIVE_ALTER_TABLE = {
    "AT_DropColumn": "ALTER TABLE ... DROP COLUMN",
    "AT_AlterColumnType": "ALTER TABLE ... ALTER COLUMN ... TYPE",
    "AT_DropConstraint": "ALTER TABLE ... DROP CONSTRAINT",
}
_OTHER_DROPS = {
    "DropdbStmt": "DROP DATABASE",
    "DropRoleStmt": "DROP ROLE",
    "DropOwnedStmt": "DROP OWNED",
    "DropTableSpaceStmt": "DROP TABLESPACE",
    "DropSubscriptionStmt": "DROP SUBSCRIPTION",
}
_BREAKING_RENAMES = {"OBJECT_TABLE", "OBJECT_COLUMN", "OBJECT_SCHEMA", "OBJECT_VIEW"}


def _object_kind(object_type: str) -> str:
    return object_type.removeprefix("OBJECT_").replace("_", " ")


def classify(kind: str, node: dict) -> str | None:
    """Why a statement (node type and fields of pglast's JSON parse tree) destroys data or breaks
    running applications, or None if it does not."""
    if kind == "DropStmt":
        return f"DROP {_object_kind(node['removeType'])}"
    if kind in _OTHER_DROPS:
        return _OTHER_DROPS[kind]
    if kind == "TruncateStmt":
        return "TRUNCATE"
    if kind in ("DeleteStmt", "UpdateStmt") and "whereClause" not in node:
        return f"{kind.removesuffix('Stmt').upper()} without WHERE"
    if kind == "RenameStmt" and node.get("renameType") in _BREAKING_RENAMES:
        return f"RENAME {_object_kind(node['renameType'])}"
    if kind == "AlterTableStmt":
        reasons = [_DESTRUCTIVE_ALTER_TABLE.get(c["AlterTableCmd"].get("subtype")) for c in node.get("cmds", ())]
        return ", ".join(dict.fromkeys(r for r in reasons if r)) or None
    return None


def _created_table(kind: str, node: dict) -> str | None:
    """`schema.table` (schema defaulting to public) made by a CREATE TABLE, else None."""
    if kind != "CreateStmt":
        return None
    return f"{node['relation'].get('schemaname', 'public')}.{node['relation']['relname']}"


def parse_statements(filename: str, text: str) -> tuple[Statement, ...]:
    """Split and classify a file's statements with PostgreSQL's parser (pglast); a syntax error names
    the file and line. The JSON parse tree is used: it is an order of magnitude faster to build."""
    try:
        tree = json.loads(parse_sql_json(text))
    except ParseError as error:
        message, offset = (*error.args, None)[:2]
        where = f" line {_line_of(text, offset)}" if isinstance(offset, int) else ""
        raise MigrationFileError(f"{filename}{where}: does not parse: {message}") from None
    data = text.encode()  # statement locations are byte offsets
    statements = []
    for item in tree["stmts"]:
        start = item.get("stmt_location", 0)
        end = start + item["stmt_len"] if item.get("stmt_len") else len(data)
        raw = data[start:end].decode()
        skipped = _first_token_offset(raw)
        line = data.count(b"\n", 0, start) + raw.count("\n", 0, skipped) + 1
        [(kind, node)] = item["stmt"].items()
        statements.append(Statement(raw[skipped:].strip(), line, classify(kind, node), _created_table(kind, node)))
    return tuple(statements)


def parse_file(filename: str, text: str) -> MigrationFile:
    """A MigrationFile from a file name (no directory) and its text."""
    text = normalize(text)
    versioned, repeatable = _VERSIONED_NAME.match(filename), _REPEATABLE_NAME.match(filename)
    if versioned:
        version, description = versioned["version"], versioned["description"]
    elif repeatable:
        version, description = REPEATABLE_PREFIX + repeatable["description"], repeatable["description"]
    else:
        raise MigrationFileError(
            f"{filename}: not a migration file name (expected NNNN_description.sql or R__description.sql)"
        )
    return MigrationFile(version, description, filename, text, checksum(text), parse_statements(filename, text))


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


def load_directory(directory: Path) -> list[MigrationFile]:
    """Every `*.sql` file of a schema directory, parsed and ordered; other files are ignored."""
    directory = Path(directory)
    if not directory.is_dir():
        raise MigrationFileError(f"{directory}: schema directory does not exist")
    files = []
    for path in sorted(directory.glob("*.sql")):
        try:
            text = path.read_bytes().decode("utf-8")
        except UnicodeDecodeError as error:
            raise MigrationFileError(f"{path.name}: not UTF-8 text ({error.reason})") from None
        files.append(parse_file(path.name, text))
    return order(files)


def filename_of(version: str, description: str) -> str:
    """The file name a history entry or a provider input stands for."""
    if version.startswith(REPEATABLE_PREFIX):
        return f"{version}.sql"
    return f"{version}_{description}.sql"
