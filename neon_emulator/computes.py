"""Real PostgreSQL clusters standing in for Neon branches and their computes.

Every branch of the fake owns one cluster (its "timeline") with a PgBouncer in front of it; the
branch's endpoints all answer on that cluster: direct host `127.0.0.1:<port>`, pooled host
`127.0.0.2:<port>`. A child branch starts as a physical copy (`pg_basebackup`) of its parent's
cluster, so data, roles and passwords carry over as they do on Neon.

Roles made through the API are, as on Neon, LOGIN roles with CREATEDB and CREATEROLE that belong
to `neon_superuser`.

A read_only endpoint is a hot standby of the branch's cluster (`pg_basebackup` and streaming
replication over loopback) with a PgBouncer of its own, on its own port: PostgreSQL itself refuses
every write there, whatever the client sets, as Neon's read-only computes do.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
from psycopg import sql

from neon_emulator.servers import (
    SUPERUSER,
    SYSTEM_DATABASES,
    PgBouncer,
    PostgresServer,
    PostgresTemplate,
    clone_postgres,
    make_postgres_template,
    replace_postgres_data,
    start_pgbouncer,
    start_postgres_again,
    start_postgres_from_template,
    stop_postgres,
)

NEON_SUPERUSER = "neon_superuser"


@dataclass
class Compute:
    postgres: PostgresServer
    pgbouncer: PgBouncer
    standbys: dict[str, Compute] = field(default_factory=dict)
    """Read-only endpoint id -> its hot standby of this cluster."""
    running: bool = True  # False while suspended: nothing answers on the direct host

    @property
    def host(self) -> str:
        """The direct host an endpoint on this cluster reports (`127.0.0.1:<port>`)."""
        return f"{self.postgres.host}:{self.postgres.port}"

    @property
    def pooler_host(self) -> str:
        return f"{self.pgbouncer.host}:{self.pgbouncer.port}"

    def _execute(self, *statements: sql.Composable, database: str = "postgres") -> None:
        with psycopg.connect(self.postgres.url(database), autocommit=True) as conn:
            for statement in statements:
                conn.execute(statement)

    def create_role(self, name: str, password: str | None) -> None:
        login = sql.SQL("LOGIN PASSWORD {}").format(sql.Literal(password)) if password else sql.SQL("NOLOGIN")
        self._execute(
            sql.SQL("CREATE ROLE {} {} CREATEDB CREATEROLE IN ROLE {}").format(
                sql.Identifier(name), login, sql.Identifier(NEON_SUPERUSER)
            )
        )

    def set_password(self, name: str, password: str) -> None:
        """New password; like Neon, the role's live connections are dropped."""
        self._execute(
            sql.SQL("ALTER ROLE {} PASSWORD {}").format(sql.Identifier(name), sql.Literal(password)),
            sql.SQL("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = {}").format(
                sql.Literal(name)
            ),
        )

    def drop_role(self, name: str) -> None:
        self._execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(name)))

    def create_database(self, name: str, owner: str) -> None:
        self._execute(sql.SQL("CREATE DATABASE {} OWNER {}").format(sql.Identifier(name), sql.Identifier(owner)))

    def rename_database(self, name: str, new_name: str) -> None:
        self._execute(
            self._terminate(name),
            sql.SQL("ALTER DATABASE {} RENAME TO {}").format(sql.Identifier(name), sql.Identifier(new_name)),
        )

    def set_database_owner(self, name: str, owner: str) -> None:
        self._execute(sql.SQL("ALTER DATABASE {} OWNER TO {}").format(sql.Identifier(name), sql.Identifier(owner)))

    def drop_database(self, name: str) -> None:
        self._execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))

    @staticmethod
    def _terminate(database: str) -> sql.Composable:
        return sql.SQL("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = {}").format(
            sql.Literal(database)
        )

    def catalog(self) -> tuple[set[str], dict[str, str]]:
        """(role names, database name -> owner) of the cluster, system objects left out."""
        with psycopg.connect(self.postgres.url(), autocommit=True) as conn:
            roles = conn.execute(
                "SELECT rolname FROM pg_roles WHERE rolname NOT LIKE 'pg\\_%%' AND rolname <> ALL(%s)",
                [[SUPERUSER, NEON_SUPERUSER]],
            ).fetchall()
            databases = conn.execute(
                "SELECT datname, pg_get_userbyid(datdba) FROM pg_database WHERE datname <> ALL(%s)",
                [list(SYSTEM_DATABASES)],
            ).fetchall()
        return {name for (name,) in roles}, dict(databases)

    def truncate_user_tables(self, databases: list[str]) -> None:
        """Keep the schema, drop the data (Neon's `schema-only` branches)."""
        for database in databases:
            with psycopg.connect(self.postgres.url(database), autocommit=True) as conn:
                tables = conn.execute(
                    "SELECT format('%I.%I', schemaname, tablename) FROM pg_tables"
                    " WHERE schemaname NOT IN ('pg_catalog', 'information_schema')"
                ).fetchall()
                if tables:
                    conn.execute("TRUNCATE " + ", ".join(t for (t,) in tables) + " CASCADE")

    def start_standby(self, endpoint_id: str) -> Compute:
        """A hot standby of this cluster, with its own PgBouncer, for a read_only endpoint."""
        standby = _with_pooler(clone_postgres(self.postgres, self.postgres.directory.parent, standby=True))
        self.standbys[endpoint_id] = standby
        return standby

    def stop_standby(self, endpoint_id: str) -> None:
        standby = self.standbys.pop(endpoint_id, None)
        if standby is not None:
            standby.stop()

    def stop(self) -> None:
        for endpoint_id in list(self.standbys):
            self.stop_standby(endpoint_id)
        self.pgbouncer.stop()
        self.postgres.stop()

    def suspend(self) -> None:
        """Stop the server, keeping its data (Neon's suspended compute); connections are closed."""
        if self.running:
            stop_postgres(self.postgres)
            self.running = False

    def resume(self) -> None:
        """Start a suspended server again on its port: the branch's URIs connect again."""
        if not self.running:
            start_postgres_again(self.postgres)
            self.running = True

    def restart(self) -> None:
        self.suspend()
        self.resume()

    def replace_data(self, source: Compute) -> None:
        """This cluster's data, roles and passwords become a copy of `source`'s; host and port stay,
        and so do those of its standbys, which stream from the new data."""
        replace_postgres_data(self.postgres, source.postgres)
        self.running = True
        for standby in self.standbys.values():
            replace_postgres_data(standby.postgres, self.postgres, standby=True)
            standby.running = True


class ComputeFactory:
    """Starts clusters for one fake: fresh ones from a template made on first use, or branch copies.

    The template (one initdb, `neon_superuser` created, then stopped) makes a new project's
    cluster a file copy instead of an initdb. `close()` removes it.
    """

    def __init__(self, base: Path | None = None):
        self.base = base
        self._template: PostgresTemplate | None = None
        self._lock = threading.Lock()

    def prepare_in_background(self) -> None:
        """Make the template now, in a thread, so the first project does not wait for initdb."""
        threading.Thread(target=self._prepared_template, name="neon-fake-template", daemon=True).start()

    def _prepared_template(self) -> PostgresTemplate:
        with self._lock:
            if self._template is None:
                self._template = make_postgres_template(self.base, prepare=_create_neon_superuser)
            return self._template

    def fresh(self) -> Compute:
        """A new, empty cluster prepared like a fresh Neon branch (`neon_superuser` exists)."""
        postgres = start_postgres_from_template(self._prepared_template(), self.base)
        return _with_pooler(postgres)

    def branch(self, parent: Compute) -> Compute:
        """A new cluster holding a copy of the parent's data, roles and passwords."""
        return _with_pooler(clone_postgres(parent.postgres, self.base))

    def close(self) -> None:
        with self._lock:
            if self._template is not None:
                self._template.remove()
                self._template = None


def _create_neon_superuser(postgres: PostgresServer) -> None:
    with psycopg.connect(postgres.url(), autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE ROLE {} NOLOGIN CREATEDB CREATEROLE").format(sql.Identifier(NEON_SUPERUSER)))


def _with_pooler(postgres: PostgresServer) -> Compute:
    try:
        return Compute(postgres, start_pgbouncer(postgres))
    except BaseException:
        postgres.stop()
        raise
