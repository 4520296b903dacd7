"""Applying migration files to a database: history table, transaction-level advisory lock, apply.

Every file runs in its own transaction that first takes `pg_advisory_xact_lock`, then sets the
timeouts with SET LOCAL, runs the file's statements, resets the session and writes the history row,
all sent in one round trip (a pipeline with one Sync; see `_apply_in_transaction`):
a file is either applied and recorded, or not at all, concurrent appliers (also through a
transaction pooler) apply each file exactly once, and nothing a file set in the session (search
path, role, ...) outlives it. The engine sets nothing at session level and prepares nothing, so the
same code works over PgBouncer in transaction mode. A failed attempt is recorded (error and
failing statement) in a transaction of its own after the rollback.

A no-transaction file cannot hold the lock while it runs; it is claimed instead (a row naming the
applying session, committed under the lock), and other appliers wait while that session lives.

What to run is decided without the database by `components.migrations.planning`; its `Options`,
`Applied`, `Plan` and `make_plan` are used here and reached through this module by its callers.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import psycopg
from psycopg import sql
from psycopg.pq import TransactionStatus

from components.defaults import PG_CONNECT_TIMEOUT_SECONDS
from components.migrations.files import MigrationFile, MigrationFileError, Statement, version_key
from components.migrations.planning import Applied, Options, Plan, make_plan
from components.redaction import ConninfoError, parse_conninfo, scrub

HISTORY_SCHEMA = "neon_stack"
HISTORY_TABLE = f"{HISTORY_SCHEMA}.schema_migrations"
# Key of the transaction-level advisory lock that serializes appliers of one database.
LOCK_KEY = 0x6E656F6E5F6D6967  # "neon_mig"
# How often a running migration statement checks that its applier is still connected.
CLIENT_CHECK_INTERVAL = "1s"

_CREATE_HISTORY = f"""
CREATE TABLE IF NOT EXISTS {HISTORY_TABLE} (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    version TEXT NOT NULL,
    description TEXT NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('versioned', 'repeatable', 'baseline')),
    checksum TEXT NOT NULL,
    applied_at TIMESTAMPTZ NOT NULL DEFAULT clock_timestamp(),
    applied_by TEXT NOT NULL DEFAULT current_user,
    execution_ms INTEGER NOT NULL,
    success BOOLEAN NOT NULL,
    error TEXT,
    failing_statement TEXT
)"""

CLAIMS_TABLE = f"{HISTORY_SCHEMA}.schema_migration_claims"
CLAIM_POLL_SECONDS = 0.2

# Which session is running a no-transaction file (such a file cannot hold the lock while it runs).
_CREATE_CLAIMS = f"""
CREATE TABLE IF NOT EXISTS {CLAIMS_TABLE} (
    version TEXT PRIMARY KEY,
    backend_pid INTEGER NOT NULL,
    backend_start TIMESTAMPTZ NOT NULL,
    claimed_at TIMESTAMPTZ NOT NULL DEFAULT clock_timestamp()
)"""

_LIVE_CLAIM = f"""
SELECT EXISTS (
    SELECT FROM {CLAIMS_TABLE} c JOIN pg_stat_activity a ON a.pid = c.backend_pid AND a.backend_start = c.backend_start
    WHERE c.version = %s)"""

_TAKE_CLAIM = f"""
INSERT INTO {CLAIMS_TABLE} (version, backend_pid, backend_start)
SELECT %s, pid, backend_start FROM pg_stat_activity WHERE pid = pg_backend_pid()
ON CONFLICT (version) DO UPDATE SET backend_pid = EXCLUDED.backend_pid, backend_start = EXCLUDED.backend_start,
    claimed_at = clock_timestamp()"""

# SQLSTATE the guard of a file's transaction raises when its history says the file is applied.
_APPLIED_SQLSTATE = "NS001"

_SUCCESSES = f"SELECT version, description, checksum, kind FROM {HISTORY_TABLE} WHERE success ORDER BY id"

# What DISCARD ALL does, less what cannot run in a transaction block (DISCARD ALL itself) and DEALLOCATE
# ALL (files cannot PREPARE, and behind a pooler it would also drop the pooler's own prepared statements):
# SET SESSION AUTHORIZATION DEFAULT also resets the role, which RESET ALL leaves alone.
_RESET_SESSION = (
    "CLOSE ALL", "SET SESSION AUTHORIZATION DEFAULT", "RESET ALL", "UNLISTEN *", "SELECT pg_advisory_unlock_all()",
    "DISCARD TEMP", "DISCARD SEQUENCES",
)
# The running transaction's duration so far, for the history row written at its end.
_TRANSACTION_MS = sql.SQL("round(extract(epoch FROM clock_timestamp() - now()) * 1000)::integer")

_TABLES = f"""
SELECT n.nspname || '.' || c.relname
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'p') AND n.nspname NOT IN ('information_schema', '{HISTORY_SCHEMA}')
  AND n.nspname NOT LIKE 'pg\\_%'
ORDER BY 1"""

Report = Callable[[str], None]


class MigrationError(RuntimeError):
    """A refusal or a failed migration; the message names the file and never holds a password."""


@dataclass(frozen=True)
class DatabaseState:
    applied: dict[str, Applied]
    tables: list[str]

    @property
    def applied_versions(self) -> list[str]:
        """Versioned files applied or baselined, in version order."""
        return sorted((v for v, a in self.applied.items() if a.kind != "repeatable"), key=int)

    @property
    def latest_version(self) -> str:
        versions = self.applied_versions
        return versions[-1] if versions else ""

    @property
    def checksums(self) -> dict[str, str]:
        return {version: self.applied[version].checksum for version in sorted(self.applied)}


def connect(database_url: str) -> psycopg.Connection:
    """An autocommit connection (transactions are explicit), with no prepared statements (poolers).

    A URL libpq refuses is not tried; errors show it rebuilt from what libpq parsed,
    without its password (`components.redaction`).
    """
    try:
        target = parse_conninfo(database_url)
    except ConninfoError as error:
        raise MigrationError(f"cannot connect: {error}") from None
    try:
        return psycopg.connect(
            database_url, autocommit=True, prepare_threshold=None, connect_timeout=PG_CONNECT_TIMEOUT_SECONDS
        )
    except psycopg.Error as error:
        raise MigrationError(f"cannot connect to {target.shown}: {target.scrub(str(error).strip())}") from None


def _lock_sql(options: Options) -> sql.Composed:
    """Serialize appliers, then bound this transaction's waits and run time (values inlined as literals,
    so the statement can share a round trip with others), and have the server check that the applier
    is still connected while a statement runs: the rest of a pipelined transaction, up to its COMMIT,
    is already with the server, so a killed applier's transaction must end there, not commit later."""
    return sql.SQL(
        "SELECT pg_advisory_xact_lock({}), set_config('lock_timeout', {}, true), set_config('statement_timeout', {},"
        " true), set_config('client_connection_check_interval', {}, true)"
    ).format(sql.Literal(LOCK_KEY), sql.Literal(options.lock_timeout), sql.Literal(options.statement_timeout),
             sql.Literal(CLIENT_CHECK_INTERVAL))


def _lock(conn: psycopg.Connection, options: Options) -> None:
    conn.execute(_lock_sql(options))


def history_exists(conn: psycopg.Connection) -> bool:
    return conn.execute("SELECT to_regclass(%s) IS NOT NULL", (HISTORY_TABLE,)).fetchone()[0]


def read_applied(conn: psycopg.Connection) -> dict[str, Applied]:
    """The latest successful entry of every version, keyed (and named) by `version_key`: rows an older
    engine wrote for `1_x.sql` (version '1') and rows written for `0001_x.sql` are one version."""
    if not history_exists(conn):
        return {}
    applied = {}
    for version, description, checksum, kind in conn.execute(_SUCCESSES):
        key = version_key(version)
        applied[key] = Applied(key, description, checksum, kind)
    return applied


def read_state(conn: psycopg.Connection) -> DatabaseState:
    return DatabaseState(read_applied(conn), [row[0] for row in conn.execute(_TABLES)])


def _run_in_one_trip(conn: psycopg.Connection, steps: Sequence[sql.Composable | str]) -> None:
    """Run `steps` (one statement each, BEGIN to COMMIT) in one round trip, a pipeline closed by one
    Sync (the server skips every step after a failing one); on an error, roll back and raise."""
    try:
        with conn.pipeline():
            for step in steps:
                conn.execute(step)
    except BaseException:
        _roll_back(conn)
        raise


def _roll_back(conn: psycopg.Connection) -> None:
    if not conn.closed and conn.info.transaction_status != TransactionStatus.IDLE:
        conn.execute("ROLLBACK")


def ensure_history(conn: psycopg.Connection, options: Options) -> None:
    _run_in_one_trip(conn, (
        "BEGIN", _lock_sql(options), f"CREATE SCHEMA IF NOT EXISTS {HISTORY_SCHEMA}", _CREATE_HISTORY,
        f"CREATE INDEX IF NOT EXISTS schema_migrations_version ON {HISTORY_TABLE} (version, id)", _CREATE_CLAIMS,
        "COMMIT",
    ))


def _elapsed_ms(started: float) -> sql.Literal:
    return sql.Literal(round((time.monotonic() - started) * 1000))


def _record_steps(file: MigrationFile, kind: str, execution_ms: sql.Composable, error: str | None = None,
                  statement: str | None = None) -> list[sql.Composable | str]:
    """Reset the session, then write the history row, both in the caller's transaction: the row is
    written as the migrating user, and no setting, role, cursor, listener, session advisory lock or
    temporary table a file left in the session survives the commit."""
    values = sql.SQL(", ").join(
        [*(sql.Literal(v) for v in (file.key, file.description, kind, file.checksum)), execution_ms,
         *(sql.Literal(v) for v in (error is None, error, statement))]
    )
    insert = sql.SQL(
        f"INSERT INTO {HISTORY_TABLE} (version, description, kind, checksum, execution_ms, success, error,"
        " failing_statement) VALUES ({})"
    ).format(values)
    return [*_RESET_SESSION, insert]


def _record(conn, file: MigrationFile, kind: str, started: float, error: str | None = None,
            statement: str | None = None) -> None:
    """`_record_steps` in one simple-query message (one round trip)."""
    conn.execute(sql.SQL("; ").join(sql.SQL(step) if isinstance(step, str) else step
                                    for step in _record_steps(file, kind, _elapsed_ms(started), error, statement)))


def _kind(file: MigrationFile) -> str:
    return "repeatable" if file.repeatable else "versioned"


def _applied_checksum_sql(file: MigrationFile) -> sql.Composed:
    """The file's latest successful checksum, whatever the spelling of its version in the history
    ('1', '0001'): ltrim compares the numbers, and leaves `R__` keys as they are."""
    return sql.SQL(
        f"SELECT checksum FROM {HISTORY_TABLE} WHERE ltrim(version, '0') = ltrim({{}}, '0') AND success"
        " ORDER BY id DESC LIMIT 1"
    ).format(sql.Literal(file.key))


def _guard_sql(file: MigrationFile) -> sql.Composed:
    """Under the lock, stop the transaction if the history says another applier got there first:
    raise `_APPLIED_SQLSTATE` with the applied checksum as the message (`_is_done` then decides). Its
    own statement, so it sees what committed while this transaction waited for the lock."""
    condition = sql.SQL("applied = {}").format(sql.Literal(file.checksum)) if file.repeatable else \
        sql.SQL("applied IS NOT NULL")
    body = sql.SQL(
        "DECLARE applied text := ({}); BEGIN IF {} THEN RAISE EXCEPTION USING ERRCODE = {}, MESSAGE = applied;"
        " END IF; END"
    ).format(_applied_checksum_sql(file), condition, sql.Literal(_APPLIED_SQLSTATE))
    return sql.SQL("DO {}").format(sql.Literal(body.as_string()))


def _is_done(file: MigrationFile, applied_checksum: str | None) -> bool:
    """Under the lock: whether another applier got there first (an edited file is still refused)."""
    if applied_checksum is None:
        return False
    if applied_checksum == file.checksum:
        return True
    if file.repeatable:
        return False
    raise MigrationFileError(f"{file.filename}: applied meanwhile with another checksum ({applied_checksum[:12]})")


def _already_done(conn: psycopg.Connection, file: MigrationFile) -> bool:
    row = conn.execute(_applied_checksum_sql(file)).fetchone()
    return _is_done(file, row[0] if row else None)


def _failed(conn, file: MigrationFile, started: float, error: psycopg.Error, statement: Statement) -> MigrationError:
    """Record a failed attempt in its own transaction and build the error to raise."""
    message = str(error).strip()
    with conn.transaction():
        _record(conn, file, _kind(file), started, message, statement.sql)
    return MigrationError(f"{file.filename} line {statement.line}: {message} (the file was rolled back)")


def _apply_in_transaction(conn: psycopg.Connection, file: MigrationFile, options: Options) -> bool:
    """One transaction in one round trip: BEGIN, the lock and timeouts, the guard (`_guard_sql`), the
    file's statements, the session reset and history row, COMMIT, sent as a pipeline closed by one
    Sync. The server runs the steps in order and skips all after a failing one; psycopg fills the
    cursor of each step that succeeded, so the first cursor without a result names the failing step
    (an error at the history row or COMMIT, such as a deferred constraint, is the last statement's)."""
    before = ["BEGIN", _lock_sql(options), _guard_sql(file)]
    steps = [*before, *(s.sql for s in file.statements), *_record_steps(file, _kind(file), _TRANSACTION_MS), "COMMIT"]
    started, cursors = time.monotonic(), []
    try:
        with conn.pipeline():
            for step in steps:
                cursors.append(conn.execute(step))
    except BaseException as error:
        _roll_back(conn)
        if not isinstance(error, psycopg.Error):
            raise
        failed = next((i for i, cursor in enumerate(cursors) if cursor.pgresult is None), len(cursors)) - len(before)
        if failed == -1 and error.sqlstate == _APPLIED_SQLSTATE:
            _is_done(file, error.diag.message_primary)  # refuses a file applied meanwhile with another checksum
            return False
        if failed < 0 or not file.statements:
            raise
        raise _failed(conn, file, started, error, file.statements[min(failed, len(file.statements) - 1)]) from None
    return True


def _claim(conn: psycopg.Connection, file: MigrationFile, options: Options) -> bool:
    """Claim a no-transaction file for this session; False if it got applied meanwhile.

    A claim by another session that is still connected is waited for; a claim left by a session
    that died (killed applier) is taken over.
    """
    while True:
        with conn.transaction():
            _lock(conn, options)
            if _already_done(conn, file):
                return False
            if not conn.execute(_LIVE_CLAIM, (file.key,)).fetchone()[0]:
                conn.execute(_TAKE_CLAIM, (file.key,))
                return True
        time.sleep(CLAIM_POLL_SECONDS)


def _apply_without_transaction(conn: psycopg.Connection, file: MigrationFile, options: Options) -> bool:
    """Statement by statement in autocommit, under a claim row instead of a lock held open.

    An open transaction (even one only holding an advisory lock) would make CREATE INDEX
    CONCURRENTLY wait for it forever, so the claim is recorded and committed first. A run killed
    half-way leaves the file unrecorded and it runs again next time: such files must be
    idempotent (IF NOT EXISTS; drop an invalid index left by a killed build). The statements run
    without the SET LOCAL timeouts, which need a transaction. Statements that change the session are
    refused in such files (behind a pooler they may run on any server connection); the recording
    transaction still resets this connection's session.
    """
    if not _claim(conn, file, options):
        return False
    started, failure = time.monotonic(), None
    for statement in file.statements:
        try:
            conn.execute(statement.sql)
        except psycopg.Error as error:
            failure = (statement, str(error).strip())
            break
    outcome = (failure[1], failure[0].sql) if failure else ()
    _run_in_one_trip(conn, (
        "BEGIN", _lock_sql(options), *_record_steps(file, _kind(file), _elapsed_ms(started), *outcome),
        sql.SQL(f"DELETE FROM {CLAIMS_TABLE} WHERE version = {{}}").format(sql.Literal(file.key)), "COMMIT",
    ))
    if failure:
        raise MigrationError(
            f"{file.filename} line {failure[0].line}: {failure[1]} (no-transaction file: statements before this "
            "one stay applied)"
        )
    return True


def _apply_baseline(conn: psycopg.Connection, files: Iterable[MigrationFile], options: Options) -> list[str]:
    """Record files as applied without running them, once the tables they create are verified."""
    done = []
    with conn.transaction():
        _lock(conn, options)
        applied = read_applied(conn)
        for file in files:
            if file.key in applied:
                continue
            for table in file.created_tables:
                if conn.execute("SELECT to_regclass(%s) IS NULL", (table,)).fetchone()[0]:
                    raise MigrationFileError(
                        f"{file.filename}: cannot baseline, table {table} that it creates does not exist"
                    )
            _record(conn, file, "baseline", time.monotonic())
            done.append(file.key)
    return done


@dataclass(frozen=True)
class ApplyResult:
    applied: list[str]
    baselined: list[str]
    state: DatabaseState
    warnings: list[str]


def _guard(database_url: str, work: Callable[[], object]):
    """Run `work`, turning any database error into a MigrationError free of the password."""
    try:
        return work()
    except psycopg.Error as error:
        raise MigrationError(scrub(str(error).strip(), database_url)) from None


def plan(database_url: str, files: Sequence[MigrationFile], options: Options) -> tuple[Plan, DatabaseState]:
    """The plan against the database's history (read only: the history table is not created)."""
    with connect(database_url) as conn:
        state = _guard(database_url, lambda: read_state(conn))
    return make_plan(files, state.applied, options), state


def apply(database_url: str, files: Sequence[MigrationFile], options: Options,
          report: Report = lambda _: None) -> ApplyResult:
    """Baseline, then apply every pending file in order; refusals happen before any file runs."""
    with connect(database_url) as conn:
        def run() -> ApplyResult:
            the_plan = make_plan(files, read_applied(conn), options)
            ensure_history(conn, options)
            baselined = _apply_baseline(conn, the_plan.baseline, options) if the_plan.baseline else []
            for version in baselined:
                report(f"baselined {version}")
            applied = []
            for file in the_plan.pending:
                started = time.monotonic()
                if file.no_transaction:
                    ran = _apply_without_transaction(conn, file, options)
                else:
                    ran = _apply_in_transaction(conn, file, options)
                if ran:
                    applied.append(file.key)
                    report(f"applied {file.filename} in {(time.monotonic() - started) * 1000:.0f} ms")
            return ApplyResult(applied, baselined, read_state(conn), the_plan.warnings)

        return _guard(database_url, run)
