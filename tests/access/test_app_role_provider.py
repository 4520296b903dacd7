"""The AppRole provider called directly against PostgreSQL with a Neon-like owner role."""

from __future__ import annotations

import psycopg
import pytest
from psycopg import sql
from pulumi.output import Unknown

from components.access.app_role import AppRoleError, AppRoleProvider
from components.uri import postgres_uri
from neon_emulator.servers import PostgresServer

provider = AppRoleProvider()


def role_attributes(postgres: PostgresServer, role: str) -> dict | None:
    with psycopg.connect(postgres.url(), row_factory=psycopg.rows.dict_row) as conn:
        return conn.execute(
            "SELECT rolcanlogin, rolcreatedb, rolcreaterole, rolsuper, rolreplication, rolbypassrls, "
            "ARRAY(SELECT g.rolname::text FROM pg_auth_members m JOIN pg_roles g ON g.oid = m.roleid "
            "      WHERE m.member = r.oid) AS member_of "
            "FROM pg_roles r WHERE rolname = %s",
            (role,),
        ).fetchone()


def can_log_in(url: str) -> bool:
    try:
        psycopg.connect(url, connect_timeout=5).close()
    except psycopg.OperationalError as error:
        # PostgreSQL and PgBouncer word it differently.
        assert "password authentication failed" in str(error) or "SASL authentication failed" in str(error)
        return False
    return True


def test_check_names_every_bad_field() -> None:
    news = {
        "admin_url": "mysql://x",
        "role_name": "Robert'); DROP",
        "database": "db",
        "owner_role": "db_owner",
        "app_schema": "public",
        "dapr_schema": "dapr",
        "password_version": 0,
    }
    failures = {f.property: f.reason for f in provider.check({}, news).failures}
    assert set(failures) == {"admin_url", "role_name", "password_version"}
    assert "SQL identifier" in failures["role_name"]


def test_check_tolerates_unknowns_and_normalizes_numbers() -> None:
    news = {
        "admin_url": Unknown(),
        "role_name": "chatkit_app",
        "database": Unknown(),
        "owner_role": "chatkit_owner",
        "app_schema": "public",
        "dapr_schema": "dapr",
        "password_version": 2.0,
    }
    result = provider.check({}, news)
    assert result.failures == []
    assert result.inputs["password_version"] == 2
    assert isinstance(result.inputs["password_version"], int)


def test_diff_is_computed_from_state_without_connecting() -> None:
    olds = {
        "admin_url": "postgresql://o:p@nowhere.invalid/db",
        "role_name": "a_app",
        "database": "db",
        "owner_role": "a_owner",
        "app_schema": "public",
        "dapr_schema": "dapr",
        "password_version": 1,
        "password": "secret",
    }
    news = {k: v for k, v in olds.items() if k != "password"}
    assert provider.diff("a_app", olds, {**news, "password_version": 1.0}).changes is False
    rotation = provider.diff("a_app", olds, {**news, "password_version": 2})
    assert (rotation.changes, rotation.replaces) == (True, [])
    rename = provider.diff("a_app", olds, {**news, "role_name": "b_app"})
    assert (rename.changes, rename.replaces, rename.delete_before_replace) == (True, ["role_name"], True)
    preview = provider.diff("a_app", olds, {**news, "database": Unknown()})
    assert preview.replaces == ["database"]


def test_create_makes_a_least_privilege_login_role(postgres, make_neon_app) -> None:
    app = make_neon_app("chatkit", schema=False)
    created = provider.create(app.role_props())
    outs = created.outs
    assert created.id == app.app_role
    assert outs["role_name"] == app.app_role and outs["dapr_schema"] == "dapr"
    assert len(outs["password"]) >= 43  # 32 random bytes, URL-safe base64
    attributes = role_attributes(postgres, app.app_role)
    assert attributes == {
        "rolcanlogin": True,
        "rolcreatedb": False,
        "rolcreaterole": False,
        "rolsuper": False,
        "rolreplication": False,
        "rolbypassrls": False,
        "member_of": [],
    }
    assert can_log_in(app.app_url(outs["password"], pooled=False))


def test_rotation_replaces_the_password_in_place(postgres, pgbouncer, make_neon_app) -> None:
    app = make_neon_app("learnflow", schema=False)
    first = provider.create(app.role_props()).outs
    olds = first
    unchanged = provider.update(app.app_role, olds, app.role_props()).outs
    assert unchanged["password"] == first["password"]
    rotated = provider.update(app.app_role, olds, app.role_props(password_version=2)).outs
    assert rotated["password"] != first["password"] and rotated["password_version"] == 2
    for pooled in (False, True):
        assert not can_log_in(app.app_url(first["password"], pooled=pooled))
        assert can_log_in(app.app_url(rotated["password"], pooled=pooled))


def test_create_converges_on_a_branch_where_the_role_exists(postgres, make_neon_app) -> None:
    """A Neon branch copies the role with the parent's (or a new) password: create takes it over."""
    app = make_neon_app("chatkit", schema=False)
    parent_password = "parent-environment-password-0123456789"
    with psycopg.connect(postgres.url(), autocommit=True) as conn:
        conn.execute(
            sql.SQL("CREATE ROLE {} LOGIN CREATEDB IN ROLE neon_superuser PASSWORD {}").format(
                sql.Identifier(app.app_role), sql.Literal(parent_password)
            )
        )
    outs = provider.create(app.role_props()).outs
    assert outs["password"] != parent_password
    assert not can_log_in(app.app_url(parent_password, pooled=False))
    assert can_log_in(app.app_url(outs["password"], pooled=False))
    attributes = role_attributes(postgres, app.app_role)
    assert attributes["member_of"] == [] and attributes["rolcreatedb"] is False


def test_read_reports_presence_without_new_values(make_neon_app) -> None:
    app = make_neon_app("learnflow", schema=False)
    outs = provider.create(app.role_props()).outs
    read = provider.read(app.app_role, outs)
    assert read.id == app.app_role and read.outs == outs
    assert "password" not in read.inputs
    provider.delete(app.app_role, outs)
    assert provider.read(app.app_role, outs).id == ""


def test_delete_keeps_dapr_state_and_drops_the_role(postgres, make_neon_app) -> None:
    app = make_neon_app("chatkit", schema=False)
    outs = provider.create(app.role_props()).outs
    with psycopg.connect(app.app_url(outs["password"], pooled=False), autocommit=True) as conn:
        conn.execute("CREATE TABLE dapr.state (key text PRIMARY KEY, value bytea NOT NULL)")
        conn.execute("INSERT INTO dapr.state VALUES ('k', 'v')")
    provider.delete(app.app_role, outs)
    assert role_attributes(postgres, app.app_role) is None
    with psycopg.connect(app.owner_url()) as conn:
        owner = conn.execute("SELECT tableowner FROM pg_tables WHERE tablename = 'state'").fetchone()[0]
        assert owner == app.owner
        assert conn.execute("SELECT count(*) FROM dapr.state").fetchone()[0] == 1
    provider.delete(app.app_role, outs)  # already gone: nothing to do

    # A replacement role in the same database takes Dapr's state back.
    again = provider.create(app.role_props()).outs
    with psycopg.connect(app.app_url(again["password"], pooled=False), autocommit=True) as conn:
        assert conn.execute("SELECT value FROM dapr.state").fetchall() == [(b"v",)]
        conn.execute("ALTER TABLE dapr.state ADD COLUMN expires_at timestamptz")  # Dapr may migrate its tables


def test_errors_never_carry_passwords(monkeypatch, make_neon_app) -> None:
    app = make_neon_app("learnflow", schema=False)
    generated = "generated-password-that-must-not-leak"
    monkeypatch.setattr("components.access.app_role.new_password", lambda: generated)
    props = {**app.role_props(), "owner_role": "no_such_owner"}  # fails after the password was set
    with pytest.raises(AppRoleError) as raised:
        provider.create(props)
    message = str(raised.value)
    assert "no_such_owner" in message
    assert app.owner_password not in message and generated not in message
    wrong_login = postgres_uri(app.owner, "wrong-" + app.owner_password, app.direct_host, app.database)
    with pytest.raises(AppRoleError) as raised:
        provider.create({**app.role_props(), "admin_url": wrong_login})
    assert "password authentication failed" in str(raised.value)
    assert app.owner_password not in str(raised.value)


def test_a_failed_create_leaves_no_role_behind(postgres, make_neon_app) -> None:
    app = make_neon_app("chatkit", schema=False)
    with pytest.raises(AppRoleError):
        provider.create({**app.role_props(), "app_schema": "no_such_schema"})
    assert role_attributes(postgres, app.app_role) is None


def test_read_reports_the_role_gone_when_its_database_is_gone(postgres, make_neon_app) -> None:
    app = make_neon_app("chatkit", schema=False)
    outs = provider.create(app.role_props()).outs
    missing_database = {**outs, "admin_url": postgres_uri(app.owner, app.owner_password, app.direct_host, "gone_db")}
    assert provider.read(app.app_role, missing_database).id == ""
