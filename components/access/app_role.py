"""The application's own PostgreSQL roles: least privilege, generated passwords, Dapr's own schema.

Each application has two login roles that alternate, the app role (`role_name`, `<app>_app`) and
its alternate (`<app>_app_b`), both members of one NOLOGIN group role (`<app>_app_g`) that
holds every grant and owns Dapr's tables, so switching from one login role to the other loses no
access. A rotation sets a new password on the login role not in use and makes it the active one
(`login_role`, the one the Secret carries); the previous one keeps its password until the next
rotation, so clients still holding it keep working in the meantime.

The roles are made with SQL over the DIRECT connection as the database owner, never through
Neon's API (roles made there join `neon_superuser`). One transaction "ensures" them, so create,
update, adoption and the move from the single-role layout share one path and a failure leaves
nothing half done:

- the group exists with NOLOGIN; both login roles exist with LOGIN, NOCREATEDB, NOCREATEROLE,
  are members of the group and start every session as the group (`ALTER ROLE ... SET role`), so
  what Dapr creates belongs to the group; none of the three is in an administrative role;
- the active login role has the password of this stack; a login role just made gets a random
  password nobody keeps (a Neon branch copies roles with its parent's passwords);
- the group may CONNECT to its database, and PUBLIC may not (so no other application's role can);
- nobody but the owner may CREATE in `public` (PostgreSQL 15 already revokes it);
- the group may use the application schema and read/write every table and sequence there,
  including tables that later migrations of the owner add (ALTER DEFAULT PRIVILEGES);
- the group may create objects in the Dapr schema (owned by the owner role), where Dapr's
  state.postgresql v2 keeps its metadata and state tables, out of reach of the app's tables;
- the login roles own nothing and hold no privilege of their own: what they own (Dapr's tables
  of the single-role layout) goes to the group, and their own grants are dropped.

Deleting the resource hands what the roles own (Dapr's state tables) to the owner role, so the
state survives, then removes the roles' privileges and the roles themselves. Roles ensured later
in that database (a replacement) take those tables back, so Dapr finds its state and can migrate it.
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

from components.access import dapr, role_names
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
# Named by check() after role_name; a state without them is of the single-role layout, which an update moves.
DERIVED_ROLES = {"alternate_role": role_names.alternate_role, "group_role": role_names.group_role}
UPDATE_FIELDS = ("alternate_role", "group_role", "owner_role", "app_schema", "dapr_schema", "password_version",
                 "admin_url")  # fmt: skip
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
        if c.failures or not c.known("role_name"):
            return c.result()
        role = c.inputs["role_name"]
        limit = PG_MAX_IDENTIFIER_BYTES - role_names.LONGEST_SUFFIX
        if len(role.encode()) > limit:
            c.fail("role_name", f"is longer than {limit} bytes: the alternate and group roles are named after it")
        c.inputs.update({key: name(role) for key, name in DERIVED_ROLES.items()})
        if c.known("owner_role") and c.inputs["owner_role"] in (role, *(c.inputs[key] for key in DERIVED_ROLES)):
            c.fail("role_name", "must differ from owner_role, and so must the roles named after it")
        return c.result()

    def diff(self, id_: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        """From state alone: a new role or database replaces the role, anything else updates it."""
        # The role name is cluster-wide: the old role must go before a new one of that name is ensured.
        return diff_from_state(olds, news, REPLACE_FIELDS, UPDATE_FIELDS, delete_before_replace=True)

    def create(self, props: dict[str, Any]) -> CreateResult:
        """The app role is the active login role; the alternate gets a password nobody keeps."""
        password = new_password()
        _ensure(props, {props["role_name"]: password, props["alternate_role"]: new_password()})
        return CreateResult(props["role_name"], _outputs(props, props["role_name"], password))

    def update(self, id_: str, olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        """A rotation gives the standby login role a new password and makes it the active one; the
        previous one keeps its password. Otherwise only the active role's password is set (again)."""
        active = _active_role(olds)
        if differs(olds.get("password_version"), news.get("password_version")):
            active, password = _standby_role(news, active), new_password()
        else:
            password = olds.get("password") or new_password()
        _ensure(news, {active: password})
        return UpdateResult(_outputs(news, active, password))

    def read(self, id_: str, props: dict[str, Any]) -> ReadResult:
        """Refresh: the role is still there (state unchanged) or gone (empty id); nothing new is read."""
        try:
            with _connection(props) as conn:
                exists = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (_active_role(props),)).fetchone()
        except DatabaseGone:
            exists = None
        if not exists:
            return ReadResult("", {})
        keys = (*IDENTIFIER_FIELDS, *DERIVED_ROLES, "password_version", "admin_url")
        inputs = {k: props[k] for k in keys if k in props}
        return ReadResult(id_, props, inputs)

    def delete(self, id_: str, props: dict[str, Any]) -> None:
        try:
            with _connection(props) as conn:
                _drop(conn, props)
        except (DatabaseGone, ServerGone):
            return  # the database (or its whole branch) went first; the stack deletes both anyway


def _outputs(props: dict[str, Any], login_role: str, password: str) -> dict[str, Any]:
    return {**plain_inputs(props), "login_role": login_role, "password": password}


def _active_role(state: dict[str, Any]) -> str:
    """The login role the Secret carries; a state of the single-role layout had only the app role."""
    return state.get("login_role") or state["role_name"]


def _standby_role(props: dict[str, Any], active: str) -> str:
    return props["alternate_role"] if active == props["role_name"] else props["role_name"]


def _login_roles(props: dict[str, Any]) -> tuple[str, str]:
    return props["role_name"], props["alternate_role"]


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


_LOGIN = sql.SQL("LOGIN NOCREATEDB NOCREATEROLE INHERIT")
_GROUP = sql.SQL("NOLOGIN NOCREATEDB NOCREATEROLE PASSWORD NULL")  # a branch's copy may carry one


def _ensure(props: dict[str, Any], passwords: dict[str, str]) -> None:
    """Ensure the three roles and their grants; `passwords` are set on the login roles they name, and
    the other login role keeps its own (a login role just made gets one nobody keeps)."""
    group, spare = props["group_role"], new_password()
    with _connection(props, *passwords.values(), spare) as conn:
        _ensure_role(conn, group, _GROUP, None)
        for login in _login_roles(props):
            password = passwords.get(login) or (None if _role_exists(conn, login) else spare)
            _ensure_role(conn, login, _LOGIN, password)
            conn.execute(sql.SQL("GRANT {} TO {}").format(sql.Identifier(group), sql.Identifier(login)))
            # Every session starts as the group, so what Dapr creates belongs to the group, not to
            # the login role of the day (RESET ROLE returns to it too; only SET ROLE NONE leaves it).
            conn.execute(sql.SQL("ALTER ROLE {} SET role = {}").format(sql.Identifier(login), sql.Literal(group)))
        _grant(conn, props)
        _hand_to_group(conn, props)


def _role_exists(conn: psycopg.Connection, role: str) -> bool:
    return conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (role,)).fetchone() is not None


def _ensure_role(conn: psycopg.Connection, role: str, attributes: sql.Composable, password: str | None) -> None:
    """Create or alter `role` to `attributes` (and `password`, if one), out of every administrative role."""
    found = conn.execute(
        "SELECT rolsuper, rolreplication, rolbypassrls FROM pg_roles WHERE rolname = %s", (role,)
    ).fetchone()
    if found and any(found):
        raise AppRoleError(
            f"role {role!r} exists with SUPERUSER, REPLICATION or BYPASSRLS, which the database owner cannot "
            "remove: drop or alter it as an administrator first"
        )
    verb = "ALTER" if found else "CREATE"
    statement = sql.SQL("{} ROLE {} WITH {}").format(sql.SQL(verb), sql.Identifier(role), attributes)
    if password is not None:
        statement = sql.SQL("{} PASSWORD {}").format(statement, sql.Literal(password))
    conn.execute(statement)
    memberships = conn.execute(
        "SELECT g.rolname FROM pg_auth_members m JOIN pg_roles g ON g.oid = m.roleid "
        "JOIN pg_roles r ON r.oid = m.member WHERE r.rolname = %s AND g.rolname = ANY(%s)",
        (role, list(FORBIDDEN_MEMBERSHIPS)),
    ).fetchall()
    for (group,) in memberships:
        conn.execute(sql.SQL("REVOKE {} FROM {}").format(sql.Identifier(group), sql.Identifier(role)))


def _grant(conn: psycopg.Connection, props: dict[str, Any]) -> None:
    role, owner = sql.Identifier(props["group_role"]), sql.Identifier(props["owner_role"])
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


def _hand_to_group(conn: psycopg.Connection, props: dict[str, Any]) -> None:
    """Give the group the Dapr tables the owner holds (the metadata table made above, or what deleted
    predecessors left) and everything the login roles own (Dapr's tables of the single-role layout),
    so Dapr can use and migrate them as either login role; then drop the login roles' own privileges,
    which the group holds."""
    group, owner = sql.Identifier(props["group_role"]), sql.Identifier(props["owner_role"])
    logins = sql.SQL(", ").join(sql.Identifier(role) for role in _login_roles(props))
    tables = conn.execute(
        "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname = %s AND c.relkind IN ('r', 'p') AND c.relowner = to_regrole(%s)",
        (props["dapr_schema"], props["owner_role"]),
    ).fetchall()
    # ALTER ... OWNER TO, REASSIGN OWNED and DROP OWNED need the caller to hold the privileges of every
    # role they name: the owner holds them for this transaction only.
    conn.execute(sql.SQL("GRANT {}, {} TO {}").format(group, logins, owner))
    for (table,) in tables:
        conn.execute(sql.SQL("ALTER TABLE {} OWNER TO {}").format(sql.Identifier(props["dapr_schema"], table), group))
    conn.execute(sql.SQL("REASSIGN OWNED BY {} TO {}").format(logins, group))
    conn.execute(sql.SQL("DROP OWNED BY {}").format(logins))  # privileges and default privileges only now
    conn.execute(sql.SQL("REVOKE {}, {} FROM {}").format(group, logins, owner))


def _drop(conn: psycopg.Connection, props: dict[str, Any]) -> None:
    """Keep what the roles own (Dapr's state) by handing it to the owner, then drop the roles, the
    group last (a state of the single-role layout names only the app role)."""
    names = [props["role_name"], props.get("alternate_role"), props.get("group_role")]
    present = [name for name in names if name and _role_exists(conn, name)]
    if not present:
        return
    roles, owner = sql.SQL(", ").join(sql.Identifier(name) for name in present), sql.Identifier(props["owner_role"])
    # REASSIGN OWNED needs the caller to hold the privileges of every role named.
    conn.execute(sql.SQL("GRANT {} TO {}").format(roles, owner))
    conn.execute(sql.SQL("REASSIGN OWNED BY {} TO {}").format(roles, owner))
    conn.execute(sql.SQL("DROP OWNED BY {}").format(roles))  # privileges and default privileges only now
    for name in present:
        conn.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(name)))


@dataclass
class AppRoleArgs:
    """Inputs of an application role. The resource is usable on its own: the provider's check holds
    every input to its contract, and the defaults are those of the stack (`components.defaults`)."""

    admin_url: pulumi.Input[str]
    """DIRECT URI of the app's database as its owner role (secret)."""
    role_name: pulumi.Input[str]
    """The app role, first of the two login roles (a lowercase SQL identifier, 57 bytes at most: the
    alternate and the group roles are named after it); a new name replaces the roles."""
    database: pulumi.Input[str]
    """The one database the roles may connect to; a new database replaces the roles."""
    owner_role: pulumi.Input[str]
    """Owner role: creates the tables (default privileges are declared for it) and owns the Dapr schema."""
    app_schema: pulumi.Input[str] = APP_SCHEMA
    """Schema of the application's tables, which the roles may read and write."""
    dapr_schema: pulumi.Input[str] = dapr.SCHEMA
    """The one schema the roles may create in (Dapr's state and metadata tables)."""
    password_version: pulumi.Input[int] = PASSWORD_VERSION
    """Change it to rotate: the standby login role gets a new password and becomes the active one (1 to
    2147483647)."""


class AppRole(pulumi.dynamic.Resource, module="postgres", name="AppRole"):
    """The least-privilege roles of one application (`pulumi-python:dynamic/postgres:AppRole`): two
    login roles that alternate on rotation and the group role they are members of."""

    role_name: pulumi.Output[str]
    login_role: pulumi.Output[str]
    """The active login role: the one whose password `password` is, and that the Secret carries."""
    password: pulumi.Output[str]
    """Secret: the active login role's generated password (256 bits)."""
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
            "login_role": None,
            "password": None,
        }
        secret_outputs = pulumi.ResourceOptions(additional_secret_outputs=["password", "admin_url"])
        opts = pulumi.ResourceOptions.merge(opts, secret_outputs)
        super().__init__(AppRoleProvider(), name, props, opts)
