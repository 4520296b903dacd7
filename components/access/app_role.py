"""The application's own PostgreSQL role: least privilege, a generated password, Dapr's own schema.

The role is made with SQL over the DIRECT connection as the database owner, never through
Neon's API (roles made there join `neon_superuser`). One transaction "ensures" it, so create,
update and adoption share one path and a failure leaves nothing half done:

- the role exists with LOGIN, NOCREATEDB, NOCREATEROLE and the password of this stack
  (CREATE ROLE, or ALTER ROLE when it already exists: an adopted role, or a Neon branch that
  copied it from its parent with the parent's password or a new one);
- it may CONNECT to its database, and PUBLIC may not (so no other application's role can);
- nobody but the owner may CREATE in `public` (PostgreSQL 15 already revokes it);
- it may use the application schema and read/write every table and sequence there, including
  tables that later migrations of the owner add (ALTER DEFAULT PRIVILEGES);
- it may create objects in the Dapr schema (owned by the owner role), where Dapr's
  state.postgresql v2 keeps its metadata and state tables, out of reach of the app's tables.

Deleting the resource hands what the role owns (Dapr's state tables) to the owner role, so the
state survives, then removes the role's privileges and the role itself. A role ensured later in
that database (a replacement) takes those tables back, so Dapr finds its state and can migrate it.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import psycopg
import pulumi
from psycopg import sql
from pulumi.dynamic import CheckResult, CreateResult, DiffResult, ReadResult, ResourceProvider, UpdateResult

from components.access import dapr
from components.defaults import (
    APP_SCHEMA,
    PASSWORD_VERSION,
    PASSWORD_VERSION_MAX,
    PG_CONNECT_TIMEOUT_SECONDS,
    PG_MAX_IDENTIFIER_BYTES,
)
from components.providers import InputChecker, diff_from_state, differs, plain_inputs
from components.redaction import URI_PREFIXES, ConninfoError, parse_conninfo

IDENTIFIER_FIELDS = ("role_name", "database", "owner_role", "app_schema", "dapr_schema")
REPLACE_FIELDS = ("role_name", "database")
UPDATE_FIELDS = ("owner_role", "app_schema", "dapr_schema", "password_version", "admin_url")
_IDENTIFIER = re.compile(rf"[a-z_][a-z0-9_]{{0,{PG_MAX_IDENTIFIER_BYTES - 1}}}")
# Roles whose membership would defeat least privilege (Neon puts API-made roles in the first).
FORBIDDEN_MEMBERSHIPS = ("neon_superuser", "pg_read_all_data", "pg_write_all_data")


class AppRoleError(RuntimeError):
    """The role could not be ensured or removed; the message never carries a password."""


class DatabaseGone(AppRoleError):
    """The role's database no longer exists, and with it every grant the role had there."""


class ServerGone(AppRoleError):
    """Nothing answers at the database's host (an expired or deleted branch's endpoint)."""


def new_password() -> str:
    """256 random bits, URL-safe (no quoting trouble in URIs or Kubernetes Secrets)."""
    return secrets.token_urlsafe(32)


class AppRoleProvider(ResourceProvider):
    """Dynamic provider of `AppRole`. Holds nothing: credentials travel in the (secret) inputs."""

    def check(self, olds: dict[str, Any], news: dict[str, Any]) -> CheckResult:
        c = InputChecker(news)
        for key in IDENTIFIER_FIELDS:
            c.rule(key, _identifier_problem)
        c.integer("password_version", 1, PASSWORD_VERSION_MAX)
        c.rule("admin_url", _url_problem)
        if not c.failures and c.inputs["role_name"] == c.inputs["owner_role"]:
            c.fail("role_name", "must differ from owner_role")
        return c.result()

    def diff(self, id_: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        """From state alone: a new role or database replaces the role, anything else updates it."""
        # The role name is cluster-wide: the old role must go before a new one of that name is ensured.
        return diff_from_state(olds, news, REPLACE_FIELDS, UPDATE_FIELDS, delete_before_replace=True)

    def create(self, props: dict[str, Any]) -> CreateResult:
        password = new_password()
        _ensure(props, password)
        return CreateResult(props["role_name"], _outputs(props, password))

    def update(self, id_: str, olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        rotate = differs(olds.get("password_version"), news.get("password_version"))
        password = new_password() if rotate or not olds.get("password") else olds["password"]
        _ensure(news, password)
        return UpdateResult(_outputs(news, password))

    def read(self, id_: str, props: dict[str, Any]) -> ReadResult:
        """Refresh: the role is still there (state unchanged) or gone (empty id); nothing new is read."""
        try:
            with _connection(props) as conn:
                exists = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (props["role_name"],)).fetchone()
        except DatabaseGone:
            exists = None
        if not exists:
            return ReadResult("", {})
        inputs = {k: props[k] for k in (*IDENTIFIER_FIELDS, "password_version", "admin_url") if k in props}
        return ReadResult(id_, props, inputs)

    def delete(self, id_: str, props: dict[str, Any]) -> None:
        try:
            with _connection(props) as conn:
                _drop(conn, props)
        except (DatabaseGone, ServerGone):
            return  # the database (or its whole branch) went first; the stack deletes both anyway


def _outputs(props: dict[str, Any], password: str) -> dict[str, Any]:
    return {**plain_inputs(props), "password": password}


def _identifier_problem(value: Any) -> str | None:
    if isinstance(value, str) and _IDENTIFIER.fullmatch(value):
        return None
    return f"{value!r} is not a lowercase SQL identifier (a-z, 0-9, _; {PG_MAX_IDENTIFIER_BYTES} at most)"


def _url_problem(url: Any) -> str | None:
    """Why `url` cannot be the owner's URI (the reason quotes nothing of it), or None."""
    if not (isinstance(url, str) and url.startswith(URI_PREFIXES)):
        return "must be a postgresql:// URI of the database owner"
    try:
        parse_conninfo(url)
    except ConninfoError as error:
        return str(error)
    return None


_NOTHING_THERE = ("Connection refused", "could not translate host name")
"""libpq's words when no server listens at the host, or the host name no longer resolves."""


@contextmanager
def _connection(props: dict[str, Any], *secrets_to_hide: str) -> Iterator[psycopg.Connection]:
    """A transaction on the direct URI as the owner; errors lose every password they could carry."""
    url, role = props["admin_url"], props.get("role_name")
    try:
        target = parse_conninfo(url)
    except ConninfoError as error:
        raise AppRoleError(f"role {role!r}: admin_url: {error}") from None
    try:
        with psycopg.connect(url, connect_timeout=PG_CONNECT_TIMEOUT_SECONDS, prepare_threshold=None) as conn:
            with conn.transaction():
                yield conn
    except psycopg.Error as error:
        database = target.options.get("dbname")
        # Refused at connection time, the error carries no SQLSTATE: only the server's message tells.
        refused = f'database "{database}" does not exist' in str(error)
        if refused or isinstance(error, psycopg.errors.InvalidCatalogName):
            raise DatabaseGone(target.scrub(f"database {database!r} does not exist", *secrets_to_hide)) from None
        message = f"role {role!r} on {target.shown}: {type(error).__name__}: {error}"
        if error.sqlstate is None and any(sign in str(error) for sign in _NOTHING_THERE):
            raise ServerGone(target.scrub(message, *secrets_to_hide)) from None
        raise AppRoleError(target.scrub(message, *secrets_to_hide)) from None


def _ensure(props: dict[str, Any], password: str) -> None:
    role = props["role_name"]
    with _connection(props, password) as conn:
        _ensure_role(conn, role, password)
        _grant(conn, props)


def _ensure_role(conn: psycopg.Connection, role: str, password: str) -> None:
    found = conn.execute(
        "SELECT rolsuper, rolreplication, rolbypassrls FROM pg_roles WHERE rolname = %s", (role,)
    ).fetchone()
    if found and any(found):
        raise AppRoleError(
            f"role {role!r} exists with SUPERUSER, REPLICATION or BYPASSRLS, which the database owner cannot "
            "remove: drop or alter it as an administrator first"
        )
    verb = "ALTER" if found else "CREATE"
    conn.execute(
        sql.SQL("{} ROLE {} WITH LOGIN NOCREATEDB NOCREATEROLE INHERIT PASSWORD {}").format(
            sql.SQL(verb), sql.Identifier(role), sql.Literal(password)
        )
    )
    memberships = conn.execute(
        "SELECT g.rolname FROM pg_auth_members m JOIN pg_roles g ON g.oid = m.roleid "
        "JOIN pg_roles r ON r.oid = m.member WHERE r.rolname = %s AND g.rolname = ANY(%s)",
        (role, list(FORBIDDEN_MEMBERSHIPS)),
    ).fetchall()
    for (group,) in memberships:
        conn.execute(sql.SQL("REVOKE {} FROM {}").format(sql.Identifier(group), sql.Identifier(role)))


def _grant(conn: psycopg.Connection, props: dict[str, Any]) -> None:
    role, owner = sql.Identifier(props["role_name"]), sql.Identifier(props["owner_role"])
    database = sql.Identifier(props["database"])
    app_schema, dapr_schema = sql.Identifier(props["app_schema"]), sql.Identifier(props["dapr_schema"])
    statements = [
        sql.SQL("REVOKE CONNECT ON DATABASE {} FROM PUBLIC").format(database),
        sql.SQL("GRANT CONNECT ON DATABASE {} TO {}").format(database, role),
        sql.SQL("REVOKE CREATE ON SCHEMA public FROM PUBLIC"),
        sql.SQL("GRANT USAGE ON SCHEMA {} TO {}").format(app_schema, role),
        sql.SQL("GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA {} TO {}").format(app_schema, role),
        sql.SQL("GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA {} TO {}").format(app_schema, role),
        sql.SQL(
            "ALTER DEFAULT PRIVILEGES FOR ROLE {} IN SCHEMA {} GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO {}"
        ).format(owner, app_schema, role),
        sql.SQL("ALTER DEFAULT PRIVILEGES FOR ROLE {} IN SCHEMA {} GRANT USAGE, SELECT ON SEQUENCES TO {}").format(
            owner, app_schema, role
        ),
        sql.SQL("CREATE SCHEMA IF NOT EXISTS {} AUTHORIZATION {}").format(dapr_schema, owner),
        sql.SQL("GRANT USAGE, CREATE ON SCHEMA {} TO {}").format(dapr_schema, role),
        # Dapr's metadata table, with Dapr's own definition, before any sidecar starts: replicas
        # starting at once race on its CREATE TABLE IF NOT EXISTS (23505 or 42P07 from the catalog),
        # which Dapr retries only in part. Everything after it runs under Dapr's own lock row.
        sql.SQL("CREATE TABLE IF NOT EXISTS {} (key text NOT NULL PRIMARY KEY, value text NOT NULL)").format(
            sql.Identifier(props["dapr_schema"], dapr.METADATA_TABLE)
        ),
    ]
    for statement in statements:
        conn.execute(statement)
    _adopt_dapr_tables(conn, props)


def _adopt_dapr_tables(conn: psycopg.Connection, props: dict[str, Any]) -> None:
    """Give the role the Dapr tables the owner holds (the metadata table made above, or what a
    deleted predecessor left), so Dapr can use and migrate them."""
    tables = conn.execute(
        "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname = %s AND c.relkind IN ('r', 'p') AND c.relowner = to_regrole(%s)",
        (props["dapr_schema"], props["owner_role"]),
    ).fetchall()
    if not tables:
        return
    role, owner = sql.Identifier(props["role_name"]), sql.Identifier(props["owner_role"])
    # ALTER ... OWNER TO needs the caller to hold the new owner's privileges, for this transaction only.
    conn.execute(sql.SQL("GRANT {} TO {}").format(role, owner))
    for (table,) in tables:
        name = sql.Identifier(props["dapr_schema"], table)
        conn.execute(sql.SQL("ALTER TABLE {} OWNER TO {}").format(name, role))
    conn.execute(sql.SQL("REVOKE {} FROM {}").format(role, owner))


def _drop(conn: psycopg.Connection, props: dict[str, Any]) -> None:
    """Keep what the role owns (Dapr's state) by handing it to the owner, then drop the role."""
    name = props["role_name"]
    if not conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (name,)).fetchone():
        return
    role, owner = sql.Identifier(name), sql.Identifier(props["owner_role"])
    # REASSIGN OWNED needs the caller to hold the privileges of both roles.
    conn.execute(sql.SQL("GRANT {} TO {}").format(role, owner))
    conn.execute(sql.SQL("REASSIGN OWNED BY {} TO {}").format(role, owner))
    conn.execute(sql.SQL("DROP OWNED BY {}").format(role))  # privileges and default privileges only now
    conn.execute(sql.SQL("DROP ROLE {}").format(role))


@dataclass
class AppRoleArgs:
    """Inputs of an application role. The resource is usable on its own: the provider's check holds
    every input to its contract, and the defaults are those of the stack (`components.defaults`)."""

    admin_url: pulumi.Input[str]
    """DIRECT URI of the app's database as its owner role (secret)."""
    role_name: pulumi.Input[str]
    """The login role to ensure (a lowercase SQL identifier); a new name replaces the role."""
    database: pulumi.Input[str]
    """The one database the role may connect to; a new database replaces the role."""
    owner_role: pulumi.Input[str]
    """Owner role: creates the tables (default privileges are declared for it) and owns the Dapr schema."""
    app_schema: pulumi.Input[str] = APP_SCHEMA
    """Schema of the application's tables, which the role may read and write."""
    dapr_schema: pulumi.Input[str] = dapr.SCHEMA
    """The one schema the role may create in (Dapr's state and metadata tables)."""
    password_version: pulumi.Input[int] = PASSWORD_VERSION
    """Change it to rotate the password in place (1 to 2147483647)."""


class AppRole(pulumi.dynamic.Resource, module="postgres", name="AppRole"):
    """A least-privilege login role of one application (`pulumi-python:dynamic/postgres:AppRole`)."""

    role_name: pulumi.Output[str]
    password: pulumi.Output[str]
    """Secret: the generated password (256 bits)."""
    dapr_schema: pulumi.Output[str]

    def __init__(self, name: str, args: AppRoleArgs, opts: pulumi.ResourceOptions | None = None):
        props = {
            "admin_url": pulumi.Output.secret(args.admin_url),
            "role_name": args.role_name,
            "database": args.database,
            "owner_role": args.owner_role,
            "app_schema": args.app_schema,
            "dapr_schema": args.dapr_schema,
            "password_version": args.password_version,
            "password": None,
        }
        secret_outputs = pulumi.ResourceOptions(additional_secret_outputs=["password", "admin_url"])
        opts = pulumi.ResourceOptions.merge(opts, secret_outputs)
        super().__init__(AppRoleProvider(), name, props, opts)
