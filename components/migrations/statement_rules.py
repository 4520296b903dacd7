"""The rules for one statement of a migration file, read from its parse tree (pglast's JSON).

`classify` says why a statement destroys data or breaks running applications (such statements are
refused where destructive migrations are not allowed), `created_table` which table it makes (for
baselines), and `refusal` why it cannot run from its file at all: transaction control, a client
stream, a session-level change in a no-transaction file, or a statement PostgreSQL refuses inside
a transaction block in a file without the no-transaction directive.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from pglast.enums.parsenodes import CURSOR_OPT_HOLD

# The first line of a file whose statements run outside a transaction, one by one.
NO_TRANSACTION_DIRECTIVE = "-- neon-stack:no-transaction"

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


def created_table(kind: str, node: dict) -> str | None:
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


def refusal(kind: str, node: dict, no_transaction: bool) -> str | None:
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
