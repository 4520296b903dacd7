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
        # PostgreSQL and PgBouncer word it differently; a NOLOGIN role is refused whatever the password.
        refusals = ("password authentication failed", "SASL authentication failed", "is not permitted to log in")
        assert any(refusal in str(error) for refusal in refusals), error
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


def test_check_names_the_alternate_and_group_roles_after_the_app_role() -> None:
    news = {"admin_url": "postgresql://o:p@h/db", "role_name": "chatkit_app", "database": "db",
            "owner_role": "chatkit_owner", "app_schema": "public", "dapr_schema": "dapr",
            "password_version": 1}  # fmt: skip
    result = provider.check({}, {**news, "group_role": "someone_else"})
    assert result.failures == []
    assert (result.inputs["alternate_role"], result.inputs["group_role"]) == ("chatkit_app_b", "chatkit_app_g")
    longest = "r" * 61
    assert provider.check({}, {**news, "role_name": longest}).failures == []
    (failure,) = provider.check({}, {**news, "role_name": longest + "r"}).failures
    assert failure.property == "role_name" and "longer than 61 bytes" in failure.reason
    (failure,) = provider.check({}, {**news, "owner_role": "chatkit_app_g"}).failures
    assert failure.property == "role_name" and "must differ from owner_role" in failure.reason


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
    # A state of the single-role layout (no alternate or group role) is moved by an update.
    checked = provider.check(olds, news).inputs
    move = provider.diff("a_app", olds, checked)
    assert (move.changes, move.replaces) == (True, [])
    assert provider.diff("a_app", {**olds, **checked, "login_role": "a_app_b"}, checked).changes is False


LEAST_PRIVILEGE = {"rolcreatedb": False, "rolcreaterole": False, "rolsuper": False, "rolreplication": False,
                   "rolbypassrls": False}  # fmt: skip


def role_settings(postgres: PostgresServer, role: str) -> list[str]:
    with psycopg.connect(postgres.url()) as conn:
        row = conn.execute("SELECT rolconfig FROM pg_roles WHERE rolname = %s", (role,)).fetchone()
        return row[0] or []


def test_create_makes_two_least_privilege_login_roles_in_one_group(postgres, make_neon_app) -> None:
    app = make_neon_app("chatkit", schema=False)
    created = provider.create(app.role_props())
    outs = created.outs
    assert created.id == app.app_role
    assert outs["role_name"] == outs["login_role"] == app.app_role and outs["dapr_schema"] == "dapr"
    assert (outs["alternate_role"], outs["group_role"]) == (app.alternate_role, app.group_role)
    assert len(outs["password"]) >= 43  # 32 random bytes, URL-safe base64
    for login in (app.app_role, app.alternate_role):
        attributes = role_attributes(postgres, login)
        assert attributes == {**LEAST_PRIVILEGE, "rolcanlogin": True, "member_of": [app.group_role]}
        assert role_settings(postgres, login) == [f"role={app.group_role}"]
    assert role_attributes(postgres, app.group_role) == {**LEAST_PRIVILEGE, "rolcanlogin": False, "member_of": []}
    assert can_log_in(app.app_url(outs["password"], pooled=False))
    # The alternate's first password is known to nobody: the app role's does not open it.
    assert not can_log_in(app.app_url(outs["password"], pooled=False, role=app.alternate_role))


def test_create_converges_on_a_branch_where_the_roles_exist(postgres, make_neon_app) -> None:
    """A Neon branch copies the roles with the parent's (or new) passwords: create takes them over."""
    app = make_neon_app("chatkit", schema=False)
    parent_password = "parent-environment-password-0123456789"
    with psycopg.connect(postgres.url(), autocommit=True) as conn:
        for role in (app.app_role, app.alternate_role, app.group_role):
            conn.execute(
                sql.SQL("CREATE ROLE {} LOGIN CREATEDB IN ROLE neon_superuser PASSWORD {}").format(
                    sql.Identifier(role), sql.Literal(parent_password)
                )
            )
    outs = provider.create(app.role_props()).outs
    assert outs["password"] != parent_password
    for role in (app.app_role, app.alternate_role, app.group_role):
        assert not can_log_in(app.app_url(parent_password, pooled=False, role=role))
        assert role_attributes(postgres, role)["rolcreatedb"] is False
    with psycopg.connect(postgres.url()) as conn:
        assert conn.execute("SELECT rolpassword FROM pg_authid WHERE rolname = %s", (app.group_role,)).fetchone() == (
            None,
        )
    assert can_log_in(app.app_url(outs["password"], pooled=False))
    assert role_attributes(postgres, app.app_role)["member_of"] == [app.group_role]
    assert role_attributes(postgres, app.group_role)["member_of"] == []


def test_read_reports_presence_without_new_values(make_neon_app) -> None:
    app = make_neon_app("learnflow", schema=False)
    outs = provider.create(app.role_props()).outs
    read = provider.read(app.app_role, outs)
    assert read.id == app.app_role and read.outs == outs
    assert "password" not in read.inputs
    provider.delete(app.app_role, outs)
    assert provider.read(app.app_role, outs).id == ""


def test_delete_keeps_dapr_state_and_drops_the_roles(postgres, make_neon_app) -> None:
    app = make_neon_app("chatkit", schema=False)
    outs = provider.create(app.role_props()).outs
    with psycopg.connect(app.app_url(outs["password"], pooled=False), autocommit=True) as conn:
        conn.execute("CREATE TABLE dapr.state (key text PRIMARY KEY, value bytea NOT NULL)")
        conn.execute("INSERT INTO dapr.state VALUES ('k', 'v')")
        owner = conn.execute("SELECT tableowner FROM pg_tables WHERE tablename = 'state'").fetchone()[0]
        assert owner == app.group_role  # made as the login role, which every session starts as the group
    provider.delete(app.app_role, outs)
    for role in (app.app_role, app.alternate_role, app.group_role):
        assert role_attributes(postgres, role) is None
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
    for role in (app.app_role, app.alternate_role, app.group_role):
        assert role_attributes(postgres, role) is None


def test_read_reports_the_role_gone_when_its_database_is_gone(postgres, make_neon_app) -> None:
    app = make_neon_app("chatkit", schema=False)
    outs = provider.create(app.role_props()).outs
    missing_database = {**outs, "admin_url": postgres_uri(app.owner, app.owner_password, app.direct_host, "gone_db")}
    assert provider.read(app.app_role, missing_database).id == ""
