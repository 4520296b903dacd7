"""Dapr's state.postgresql v2 behaviour replayed with psycopg, as the app role, through PgBouncer.

Two "sidecars" (threads with their own connections to the Secret's DATABASE_URL) start at the
same time against the schema the Component names (`tablePrefix: dapr.`, `metadataTableName:
dapr.dapr_metadata`): each creates the metadata table if needed, takes the row lock on `lock`,
reads the migration level and migrates if it is behind. Then they set, get and delete state,
meet an etag mismatch, and expire and clean up rows with a TTL. Statements are sent the way
`queryExecMode: exec` sends them: no named prepared statements.
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import psycopg
import pytest

PREFIX = "dapr."
METADATA = "dapr.dapr_metadata"
STATE = f"{PREFIX}state"
MIGRATION_KEY = f"migrations-state-v2-{PREFIX}"
CLEANUP_KEY = f"last-cleanup-{PREFIX}state"

MIGRATIONS = [
    f"""CREATE TABLE {STATE} (
        key text NOT NULL PRIMARY KEY,
        value bytea NOT NULL,
        etag uuid NOT NULL DEFAULT gen_random_uuid(),
        created_at timestamptz NOT NULL DEFAULT now(),
        updated_at timestamptz,
        expires_at timestamptz)""",
    f"CREATE INDEX ON {STATE} (expires_at)",
    f"ALTER TABLE {STATE} ADD COLUMN row_id bigint GENERATED ALWAYS AS IDENTITY",
    f"CREATE UNIQUE INDEX ON {STATE} (row_id)",
]


def connect(url: str) -> psycopg.Connection:
    return psycopg.connect(url, prepare_threshold=None, connect_timeout=10, autocommit=True)


class Sidecar:
    """One daprd's state store, replayed."""

    def __init__(self, url: str, name: str):
        self.conn = connect(url)
        self.name = name
        self.migrated = False

    def init(self, locked: threading.Event | None = None, release: threading.Event | None = None) -> None:
        """Metadata table, lock row, row lock, migration level, missing migrations: one transaction holds the lock."""
        self.conn.execute(f"CREATE TABLE IF NOT EXISTS {METADATA} (key text NOT NULL PRIMARY KEY, value text NOT NULL)")
        self.conn.execute(f"INSERT INTO {METADATA} (key, value) VALUES ('lock', 'lock') ON CONFLICT (key) DO NOTHING")
        with self.conn.transaction():
            self.conn.execute(f"SELECT key FROM {METADATA} WHERE key = 'lock' FOR UPDATE")
            if locked:
                locked.set()
            if release:
                release.wait(30)
            row = self.conn.execute(f"SELECT value FROM {METADATA} WHERE key = %s", (MIGRATION_KEY,)).fetchone()
            level = int(row[0]) if row else 0
            for statement in MIGRATIONS[level:]:
                self.conn.execute(statement)
            if level < len(MIGRATIONS):
                self.migrated = True
                self.conn.execute(
                    f"INSERT INTO {METADATA} (key, value) VALUES (%s, %s) "
                    "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                    (MIGRATION_KEY, str(len(MIGRATIONS))),
                )

    def set(self, key: str, value: bytes, *, etag: str | None = None, ttl_seconds: int | None = None) -> str | None:
        """Upsert, or with an etag update only that version; the new etag, or None on a mismatch."""
        expires = "now() + make_interval(secs => %(ttl)s)" if ttl_seconds is not None else "NULL"
        params = {"key": key, "value": value, "etag": etag, "ttl": ttl_seconds}
        if etag is None:
            row = self.conn.execute(
                f"INSERT INTO {STATE} (key, value, expires_at) VALUES (%(key)s, %(value)s, {expires}) "
                "ON CONFLICT (key) DO UPDATE SET value = excluded.value, etag = gen_random_uuid(), "
                "updated_at = now(), expires_at = excluded.expires_at RETURNING etag",
                params,
            ).fetchone()
        else:
            row = self.conn.execute(
                f"UPDATE {STATE} SET value = %(value)s, etag = gen_random_uuid(), updated_at = now(), "
                f"expires_at = {expires} WHERE key = %(key)s AND etag = %(etag)s::uuid RETURNING etag",
                params,
            ).fetchone()
        return str(row[0]) if row else None

    def get(self, key: str) -> tuple[bytes, str] | None:
        row = self.conn.execute(
            f"SELECT value, etag FROM {STATE} WHERE key = %s AND (expires_at IS NULL OR expires_at > now())", (key,)
        ).fetchone()
        return (bytes(row[0]), str(row[1])) if row else None

    def delete(self, key: str, *, etag: str | None = None) -> bool:
        if etag is None:
            return self.conn.execute(f"DELETE FROM {STATE} WHERE key = %s", (key,)).rowcount == 1
        return self.conn.execute(f"DELETE FROM {STATE} WHERE key = %s AND etag = %s::uuid", (key, etag)).rowcount == 1

    def cleanup(self, interval_seconds: int) -> int | None:
        """Delete expired rows if no sidecar did within the interval; rows deleted, or None if skipped."""
        with self.conn.transaction():
            claimed = self.conn.execute(
                f"INSERT INTO {METADATA} (key, value) VALUES (%(key)s, now()::text) "
                "ON CONFLICT (key) DO UPDATE SET value = excluded.value "
                f"WHERE {METADATA}.value::timestamptz < now() - make_interval(secs => %(interval)s) RETURNING key",
                {"key": CLEANUP_KEY, "interval": interval_seconds},
            ).fetchone()
            if not claimed:
                return None
            return self.conn.execute(
                f"DELETE FROM {STATE} WHERE expires_at IS NOT NULL AND expires_at < now()"
            ).rowcount

    def close(self) -> None:
        self.conn.close()


@pytest.fixture
def sidecars(provisioned, postgres):
    """Two sidecars of chatkit; the second one's init is shown to wait on the first one's row lock."""
    url = provisioned["chatkit"].database_url
    first, second = Sidecar(url, "first"), Sidecar(url, "second")
    yield first, second
    first.close()
    second.close()


def wait_until_blocked_on_lock(owner_url: str, database: str) -> None:
    """Poll pg_stat_activity until a backend of `database` waits on a row lock."""
    with psycopg.connect(owner_url, autocommit=True) as conn:
        for _ in range(600):
            waiting = conn.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = %s AND wait_event_type = 'Lock'", (database,)
            ).fetchone()[0]
            if waiting:
                return
            time.sleep(0.05)
    raise AssertionError("the second sidecar never waited for the lock row")


def test_two_sidecars_init_and_share_state(provisioned, sidecars, postgres) -> None:
    first, second = sidecars
    app = provisioned["chatkit"]
    locked, release = threading.Event(), threading.Event()
    with ThreadPoolExecutor(2) as pool:
        first_init = pool.submit(first.init, locked, release)
        assert locked.wait(30)
        second_init = pool.submit(second.init)
        # The superuser sees every backend in pg_stat_activity.
        wait_until_blocked_on_lock(postgres.url(app.neon.database), app.neon.database)
        release.set()
        first_init.result(30)
        second_init.result(30)
    assert (first.migrated, second.migrated) == (True, False)

    with psycopg.connect(app.neon.owner_url()) as conn:
        owners = dict(conn.execute("SELECT tablename, tableowner FROM pg_tables WHERE schemaname = 'dapr'").fetchall())
        level = conn.execute(f"SELECT value FROM {METADATA} WHERE key = %s", (MIGRATION_KEY,)).fetchone()
    assert owners == {"dapr_metadata": app.neon.app_role, "state": app.neon.app_role}
    assert level == (str(len(MIGRATIONS)),)

    # A restart finds everything in place and migrates nothing.
    first.migrated = False
    first.init()
    assert first.migrated is False

    def writer(sidecar: Sidecar) -> list[str]:
        keys = [f"{sidecar.name}-{i}" for i in range(50)]
        for key in keys:
            sidecar.set(key, key.encode())
        sidecar.set("shared", sidecar.name.encode())
        return keys

    with ThreadPoolExecutor(2) as pool:
        written = [key for keys in pool.map(writer, (first, second)) for key in keys]
    for key in written:
        assert second.get(key)[0] == key.encode()
    assert first.get("shared")[0] in (b"first", b"second")

    etag = first.get("shared")[1]
    new_etag = second.set("shared", b"by-second", etag=etag)
    assert new_etag and new_etag != etag
    assert first.set("shared", b"stale", etag=etag) is None  # etag mismatch: nothing written
    assert first.delete("shared", etag=etag) is False
    assert first.get("shared") == (b"by-second", new_etag)
    assert first.delete("shared", etag=new_etag) is True
    assert second.get("shared") is None
    assert first.delete("first-0") is True and second.get("first-0") is None


def test_ttl_expiry_and_cleanup(provisioned, sidecars) -> None:
    first, second = sidecars
    first.init()
    second.init()
    first.set("ephemeral", b"x", ttl_seconds=0)
    first.set("lasting", b"y", ttl_seconds=3600)
    first.set("forever", b"z")
    assert second.get("ephemeral") is None  # expired rows are invisible before cleanup
    assert second.get("lasting")[0] == b"y"

    with psycopg.connect(provisioned["chatkit"].neon.owner_url(), autocommit=True) as conn:
        conn.execute(f"DELETE FROM {METADATA} WHERE key = %s", (CLEANUP_KEY,))
    assert first.cleanup(3600) >= 1
    assert second.cleanup(3600) is None  # another sidecar cleaned up within the interval
    with psycopg.connect(provisioned["chatkit"].neon.owner_url()) as conn:
        keys = {k for (k,) in conn.execute(f"SELECT key FROM {STATE} WHERE key IN ('ephemeral', 'lasting', 'forever')")}
    assert keys == {"lasting", "forever"}


def test_dapr_state_is_out_of_reach_of_the_app_tables_and_vice_versa(provisioned) -> None:
    """The Dapr schema grants nothing over the application's tables, and the other app cannot read it."""
    chatkit, learnflow = provisioned["chatkit"], provisioned["learnflow"]
    Sidecar(chatkit.database_url, "init").init()
    with connect(chatkit.database_url) as conn:
        assert conn.execute(
            "SELECT has_table_privilege('users', 'TRUNCATE'), has_table_privilege('users', 'REFERENCES'), "
            "has_schema_privilege('public', 'CREATE'), has_schema_privilege('dapr', 'CREATE')"
        ).fetchone() == (False, False, False, True)
    with psycopg.connect(learnflow.neon.owner_url()) as conn:
        assert conn.execute(
            "SELECT has_database_privilege(%s, %s, 'CONNECT')", (learnflow.neon.app_role, chatkit.neon.database)
        ).fetchone() == (False,)
