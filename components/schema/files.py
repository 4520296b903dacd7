"""Migration files: naming, checksums, parsing with PostgreSQL's own parser, destructive-change rules
and the statements a migration file cannot run.

A schema directory holds versioned files `NNNN_description.sql` (applied once, in version order)
and repeatable files `R__description.sql` (re-applied after the versioned ones whenever their
checksum changes). A file whose first line is `-- neon-stack:no-transaction` runs outside a
transaction, one statement at a time (for CREATE INDEX CONCURRENTLY and the like). Versions are
numbers: `1_x.sql` and `0001_x.sql` are the same migration.
"""

from __future__ import annotations

import gc
import hashlib
import json
import os
import re
import stat
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from pglast.enums.parsenodes import CURSOR_OPT_HOLD
from pglast.parser import ParseError, parse_sql_json, split

NO_TRANSACTION_DIRECTIVE = "-- neon-stack:no-transaction"
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
    """A parsed migration file.

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
    statements: tuple[Statement, ...]
    no_transaction: bool = False

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


_TRANSACTION_CONTROL = {
    "TRANS_STMT_BEGIN": "BEGIN",
    "TRANS_STMT_START": "START TRANSACTION",
    "TRANS_STMT_COMMIT": "COMMIT",
    "TRANS_STMT_ROLLBACK": "ROLLBACK",
    "TRANS_STMT_SAVEPOINT": "SAVEPOINT",
    "TRANS_STMT_RELEASE": "RELEASE SAVEPOINT",
    "TRANS_STMT_ROLLBACK_TO": "ROLLBACK TO SAVEPOINT",
    "TRANS_STMT_PREPARE": "PREPARE TRANSACTION",
    "TRANS_STMT_COMMIT_PREPARED": "COMMIT PREPARED",
    "TRANS_STMT_ROLLBACK_PREPARED": "ROLLBACK PREPARED",
}
_TRANSACTION_CONTROL_FIX = {
    False: "the engine runs each file in a transaction of its own and records it in that transaction, so that a "
           "file is applied and recorded or neither; remove it (a failing statement already rolls the whole file "
           "back; to handle an error, use a DO block with an EXCEPTION clause), or split the file",
    True: "a no-transaction file runs each statement on its own, in autocommit; put the statements that belong "
          "together in a transactional file",
}
_FALSE_WORDS = {"", "0", "false", "f", "off", "no", "n"}


def _truthy(value: dict) -> bool:
    """A boolean as PostgreSQL reads a constant's fields (`{"sval": "off"}`, `{"ival": 1}`,
    `{"boolval": True}`; pglast leaves out zero and false values, so `{}` is false)."""
    return str(next(iter(value.values()), "")).lower() not in _FALSE_WORDS


def _option(options: list | None, name: str, default: bool) -> bool:
    """A boolean option of a `WITH (...)` or `(...)` list; an option given without a value is true."""
    for option in options or ():
        element = option["DefElem"]
        if element["defname"] == name:
            if "arg" not in element:
                return True
            [(kind, value)] = element["arg"].items()
            if kind == "TypeName":  # a bare word (`refresh = off`) parses as a type name
                value = value["names"][-1]["String"]
            return _truthy(value)
    return default


_REINDEX_MANY = {
    "REINDEX_OBJECT_SCHEMA": "REINDEX SCHEMA",
    "REINDEX_OBJECT_SYSTEM": "REINDEX SYSTEM",
    "REINDEX_OBJECT_DATABASE": "REINDEX DATABASE",
}
_REFRESHING_PUBLICATION_CHANGES = {
    "ALTER_SUBSCRIPTION_SET_PUBLICATION", "ALTER_SUBSCRIPTION_ADD_PUBLICATION", "ALTER_SUBSCRIPTION_DROP_PUBLICATION",
}


def _reindex(node: dict) -> str | None:
    if node["kind"] in _REINDEX_MANY:
        return _REINDEX_MANY[node["kind"]]
    return "REINDEX CONCURRENTLY" if _option(node.get("params"), "concurrently", False) else None


def _create_subscription(node: dict) -> str | None:
    options = node.get("options")
    creates_slot = _option(options, "create_slot", _option(options, "connect", True))
    return "CREATE SUBSCRIPTION ... WITH (create_slot = true)" if creates_slot else None


def _alter_subscription(node: dict) -> str | None:
    if node["kind"] == "ALTER_SUBSCRIPTION_REFRESH":
        return "ALTER SUBSCRIPTION ... REFRESH PUBLICATION"
    if node["kind"] in _REFRESHING_PUBLICATION_CHANGES and _option(node.get("options"), "refresh", True):
        return "ALTER SUBSCRIPTION ... PUBLICATION with refresh"
    return None


def _detaches_concurrently(node: dict) -> bool:
    commands = (c["AlterTableCmd"] for c in node.get("cmds", ()))
    return any(c.get("def", {}).get("PartitionCmd", {}).get("concurrent") for c in commands)


# Statements PostgreSQL 15 refuses inside a transaction block (its PreventInTransactionBlock callers),
# by node type: the name it gives them, or None where the statement's options allow a transaction.
# Left to the server: CLUSTER and REINDEX TABLE/INDEX of a partitioned table (the parse tree does not
# say the table is partitioned). DROP SUBSCRIPTION needs no transaction only if the subscription has
# a replication slot, which only the server knows: it always needs the directive here.
_OUTSIDE_TRANSACTION_ONLY: dict[str, Callable[[dict], str | None]] = {
    "CreatedbStmt": lambda node: "CREATE DATABASE",
    "DropdbStmt": lambda node: "DROP DATABASE",
    "CreateTableSpaceStmt": lambda node: "CREATE TABLESPACE",
    "DropTableSpaceStmt": lambda node: "DROP TABLESPACE",
    "AlterSystemStmt": lambda node: "ALTER SYSTEM",
    "DropSubscriptionStmt": lambda node: "DROP SUBSCRIPTION",
    "VacuumStmt": lambda node: "VACUUM" if node.get("is_vacuumcmd") else None,
    "IndexStmt": lambda node: "CREATE INDEX CONCURRENTLY" if node.get("concurrent") else None,
    "DropStmt": lambda node: "DROP INDEX CONCURRENTLY" if node.get("concurrent") else None,
    "ReindexStmt": _reindex,
    "ClusterStmt": lambda node: None if "relation" in node else "CLUSTER without a table",
    "DiscardStmt": lambda node: "DISCARD ALL" if node["target"] == "DISCARD_ALL" else None,
    "AlterDatabaseStmt": lambda node: "ALTER DATABASE ... SET TABLESPACE"
    if any(o["DefElem"]["defname"] == "tablespace" for o in node.get("options", ())) else None,
    "AlterTableStmt": lambda node: "ALTER TABLE ... DETACH PARTITION ... CONCURRENTLY"
    if _detaches_concurrently(node) else None,
    "CreateSubscriptionStmt": _create_subscription,
    "AlterSubscriptionStmt": _alter_subscription,
}

_SESSION_ADVISORY_LOCKS = {"pg_advisory_lock", "pg_advisory_lock_shared", "pg_try_advisory_lock",
                           "pg_try_advisory_lock_shared"}


def _nodes(tree: dict) -> Iterator[dict]:
    """Every dict of a parse tree, without recursion (a tree can be deeper than Python's stack)."""
    pending: list = [tree]
    while pending:
        value = pending.pop()
        if isinstance(value, dict):
            yield value
            pending.extend(value.values())
        elif isinstance(value, list):
            pending.extend(value)


def _sets_session_config(call: dict) -> bool:
    """Whether a set_config(name, value, is_local) call may set the session's value: only a literal
    true `is_local` keeps it to the transaction."""
    args = call.get("args", [])
    constant = args[2].get("A_Const", {}) if len(args) == 3 else {}
    value = constant.get("boolval", constant.get("sval", constant.get("ival")))
    return value is None or not _truthy(value)


def _call_changing_session(node: dict) -> str | None:
    """A function call anywhere in the statement that changes the session, or None."""
    for inner in _nodes(node):
        if inner.get("relpersistence") == "t":
            return "a temporary table, view or sequence"
        call = inner.get("FuncCall")
        if call:
            name = call["funcname"][-1].get("String", {}).get("sval")
            if name in _SESSION_ADVISORY_LOCKS:
                return f"{name}() (a session-level advisory lock)"
            if name == "set_config" and _sets_session_config(call):
                return "set_config(..., false)"
    return None


def _session_change(kind: str, node: dict) -> str | None:
    """What a statement leaves in the session after it ends (in autocommit), or None."""
    if kind == "VariableSetStmt":
        if node.get("is_local") or node.get("name", "").startswith("TRANSACTION"):
            return None
        return f"{'RESET' if node['kind'].startswith('VAR_RESET') else 'SET'} {node.get('name', 'ALL')}"
    if kind == "ListenStmt":
        return "LISTEN"
    if kind == "DeclareCursorStmt" and node.get("options", 0) & CURSOR_OPT_HOLD:
        return "DECLARE ... WITH HOLD"
    return _call_changing_session(node)


def _refusal(kind: str, node: dict, no_transaction: bool) -> str | None:
    """Why a statement cannot run from a file with (or without) the no-transaction directive, with the
    fix, or None."""
    if kind == "TransactionStmt":
        what = _TRANSACTION_CONTROL.get(node.get("kind"), "transaction control")
        return f"{what} cannot be used in a migration file: {_TRANSACTION_CONTROL_FIX[no_transaction]}"
    if kind == "CopyStmt" and "filename" not in node:
        return (f"COPY ... {'FROM STDIN' if node.get('is_from') else 'TO STDOUT'} needs a client that streams the "
                "data (such as psql's \\copy), which the engine is not; insert the rows with INSERT, or COPY from "
                "a file on the database server")
    if kind == "PrepareStmt":
        return ("PREPARE leaves a prepared statement in the session after the file; write the statement out "
                "(or loop in a DO block)")
    if no_transaction:
        change = _session_change(kind, node)
        if change:
            return (f"{change} changes the session, and a no-transaction file runs its statements one by one in "
                    "autocommit (behind a pooler, each on any server connection), so it would outlive the file; "
                    "do it in a transactional file (with SET LOCAL), whose session the engine resets before "
                    "recording it")
        return None
    needs = _OUTSIDE_TRANSACTION_ONLY.get(kind, lambda node: None)(node)
    if needs:
        return (f"{needs} cannot run inside a transaction block: make `{NO_TRANSACTION_DIRECTIVE}` the first line "
                "of the file (in a file of its own if the other statements must stay in one transaction)")
    return None


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
    try:
        [item] = _decoded(parse_sql_json(sql))["stmts"]
    except RecursionError:
        raise MigrationFileError(
            f"{filename} line {line}: nested too deeply to be checked (split the expression, such as a long chain"
            " of || or +)"
        ) from None
    [(kind, node)] = item["stmt"].items()
    return Statement(sql, line, classify(kind, node), _created_table(kind, node), _refusal(kind, node, no_transaction))


def parse_statements(filename: str, text: str, no_transaction: bool = False) -> tuple[Statement, ...]:
    """Split and classify a file's statements with PostgreSQL's parser (pglast); a syntax error names
    the file and line. Linear in the file's size: the parser splits the file, each statement is then
    parsed on its own (the JSON parse tree is an order of magnitude faster to build than pglast's
    objects, and one tree at a time keeps the garbage collector's work small), and lines are counted
    on from the previous statement."""
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
    """A MigrationFile from a file name (no directory) and its text."""
    version, description = _name_parts(filename)
    text = normalize(text)
    _check_text(filename, text)
    no_transaction = text.partition("\n")[0].strip() == NO_TRANSACTION_DIRECTIVE
    statements = parse_statements(filename, text, no_transaction)
    return MigrationFile(version, description, filename, text, checksum(text), statements, no_transaction)


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
