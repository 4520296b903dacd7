"""What the app role may and may not do, with the exact DATABASE_URL of its Secret, through PgBouncer.

Both applications' schemas are applied by the migration CLI as their owner roles; the app roles
are made by the AppRole provider. Every statement runs through PgBouncer in transaction mode.
"""

from __future__ import annotations

from urllib.parse import urlsplit

import psycopg
import pytest
from psycopg import errors

from components.access.app_role import AppRoleProvider

# One create/read/update/delete scenario per application table. A table added by a migration
# without a scenario here fails test_every_table_has_a_scenario.
CRUD = {
    "chatkit": {
        "users": (
            "INSERT INTO users (email) VALUES ('a@example.com') RETURNING id",
            "UPDATE users SET email_verified = true WHERE id = %(id)s",
            "SELECT email_verified FROM users WHERE id = %(id)s",
            "DELETE FROM users WHERE id = %(id)s",
        ),
        "anon_sessions": (
            "INSERT INTO anon_sessions (session_id, anon_id) VALUES ('s1', 'anon') RETURNING id",
            "UPDATE anon_sessions SET expires_at = now() WHERE id = %(id)s",
            "SELECT expires_at IS NOT NULL FROM anon_sessions WHERE id = %(id)s",
            "DELETE FROM anon_sessions WHERE id = %(id)s",
        ),
        "chat_sessions": (
            "INSERT INTO chat_sessions (session_id, user_id, messages) VALUES "
            "('c1', (SELECT id FROM users WHERE email = 'owner@example.com'), '[]') RETURNING id",
            "UPDATE chat_sessions SET title = 'hello' WHERE id = %(id)s",
            "SELECT title = 'hello' FROM chat_sessions WHERE id = %(id)s",
            "DELETE FROM chat_sessions WHERE id = %(id)s",
        ),
    },
    "learnflow": {
        "users": (
            "INSERT INTO users (email, name) VALUES ('b@example.com', 'B') RETURNING id",
            "UPDATE users SET name = 'Bee' WHERE id = %(id)s",
            "SELECT name = 'Bee' FROM users WHERE id = %(id)s",
            "DELETE FROM users WHERE id = %(id)s",
        ),
        "exercises": (
            "INSERT INTO exercises (title, difficulty) VALUES ('loops', 'beginner') RETURNING id",
            "UPDATE exercises SET difficulty = 'advanced' WHERE id = %(id)s",
            "SELECT difficulty = 'advanced' FROM exercises WHERE id = %(id)s",
            "DELETE FROM exercises WHERE id = %(id)s",
        ),
        "submissions": (
            "INSERT INTO submissions (user_id, exercise_id, code) VALUES "
            "((SELECT min(id) FROM users), (SELECT min(id) FROM exercises), 'print(1)') RETURNING id",
            "UPDATE submissions SET status = 'passed' WHERE id = %(id)s",
            "SELECT status = 'passed' FROM submissions WHERE id = %(id)s",
            "DELETE FROM submissions WHERE id = %(id)s",
        ),
        "learning_events": (
            "INSERT INTO learning_events (user_id, event_type) VALUES ((SELECT min(id) FROM users), 'start') "
            "RETURNING id",
            "UPDATE learning_events SET event_data = '{\"x\": 1}' WHERE id = %(id)s",
            "SELECT event_data = '{\"x\": 1}' FROM learning_events WHERE id = %(id)s",
            "DELETE FROM learning_events WHERE id = %(id)s",
        ),
        "struggles": (
            "INSERT INTO struggles (user_id, exercise_id, struggle_type) VALUES "
            "((SELECT min(id) FROM users), (SELECT min(id) FROM exercises), 'syntax') RETURNING id",
            "UPDATE struggles SET struggle_type = 'logic' WHERE id = %(id)s",
            "SELECT struggle_type = 'logic' FROM struggles WHERE id = %(id)s",
            "DELETE FROM struggles WHERE id = %(id)s",
        ),
    },
}

# Rows the scenarios refer to, written by the owner (the app role could write them too).
FIXTURE_ROWS = {
    "chatkit": ["INSERT INTO users (email) VALUES ('owner@example.com')"],
    "learnflow": [
        "INSERT INTO users (email, name) VALUES ('owner@example.com', 'Owner')",
        "INSERT INTO exercises (title, difficulty) VALUES ('intro', 'beginner')",
    ],
}


def connect(url: str, *, autocommit: bool = False) -> psycopg.Connection:
    """As an application behind a transaction pooler connects: no prepared statements kept."""
    return psycopg.connect(url, prepare_threshold=None, connect_timeout=10, autocommit=autocommit)


def app_tables(url: str) -> set[str]:
    with connect(url) as conn:
        rows = conn.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public'"
        ).fetchall()
    return {name for (name,) in rows}


@pytest.fixture(scope="module", autouse=True)
def fixture_rows(provisioned) -> None:
    for app, statements in FIXTURE_ROWS.items():
        with psycopg.connect(provisioned[app].neon.owner_url(), autocommit=True) as conn:
            for statement in statements:
                conn.execute(statement)


def test_database_url_is_the_pooled_tls_uri(provisioned, pgbouncer) -> None:
    for app in provisioned.values():
        parts = urlsplit(app.database_url)
        assert (parts.hostname, parts.port) == (pgbouncer.host, pgbouncer.port)
        expected = (app.neon.app_role, app.password, f"/{app.neon.database}")
        assert (parts.username, parts.password, parts.path) == expected
        assert parts.query == "sslmode=require"
        with connect(app.database_url) as conn:
            assert conn.info.pgconn.ssl_in_use
            users = conn.execute("SELECT session_user, current_user").fetchone()
            assert users == (app.neon.app_role, app.neon.group_role)  # every session starts as the group


@pytest.mark.parametrize("app", sorted(CRUD))
def test_every_table_has_a_scenario(provisioned, app) -> None:
    assert app_tables(provisioned[app].database_url) == set(CRUD[app])


@pytest.mark.parametrize(("app", "table"), [(a, t) for a, tables in CRUD.items() for t in tables])
def test_crud_on_every_application_table(provisioned, app, table) -> None:
    insert, update, select, delete = CRUD[app][table]
    with connect(provisioned[app].database_url) as conn:
        (row_id,) = conn.execute(insert).fetchone()
        conn.commit()
        assert conn.execute(update, {"id": row_id}).rowcount == 1
        conn.commit()
        assert conn.execute(select, {"id": row_id}).fetchone() == (True,)
        assert conn.execute(delete, {"id": row_id}).rowcount == 1
        conn.commit()


DENIED = [
    ("DROP TABLE users", errors.InsufficientPrivilege),
    ("ALTER TABLE users ADD COLUMN extra text", errors.InsufficientPrivilege),
    ("TRUNCATE users", errors.InsufficientPrivilege),
    ("CREATE INDEX idx_extra ON users (created_at)", errors.InsufficientPrivilege),
    ("CREATE TABLE public.intruder (id int)", errors.InsufficientPrivilege),
    ("CREATE TABLE intruder (id int)", errors.InsufficientPrivilege),
    ("CREATE SCHEMA intruder", errors.InsufficientPrivilege),
    ("CREATE ROLE intruder", errors.InsufficientPrivilege),
    ("CREATE DATABASE intruder", errors.InsufficientPrivilege),
    ("SELECT * FROM neon_stack.schema_migrations", errors.InsufficientPrivilege),
    ("DROP SCHEMA dapr", errors.InsufficientPrivilege),
    ("GRANT neon_superuser TO CURRENT_USER", errors.InsufficientPrivilege),
]


@pytest.mark.parametrize("app", sorted(CRUD))
@pytest.mark.parametrize(("statement", "error"), DENIED, ids=[d[0] for d in DENIED])
def test_denied(provisioned, app, statement, error) -> None:
    with connect(provisioned[app].database_url, autocommit=True) as conn:
        with pytest.raises(error) as raised:
            conn.execute(statement)
        assert raised.value.sqlstate == "42501"


@pytest.mark.parametrize(("app", "other"), [("chatkit", "learnflow"), ("learnflow", "chatkit")])
@pytest.mark.parametrize("pooled", [True, False], ids=["pooled", "direct"])
def test_no_connection_to_the_other_apps_database(provisioned, app, other, pooled) -> None:
    mine, theirs = provisioned[app], provisioned[other]
    url = mine.neon.app_url(mine.password, pooled=pooled)
    url = url.replace(f"/{mine.neon.database}?", f"/{theirs.neon.database}?")
    with pytest.raises(psycopg.OperationalError) as raised:
        connect(url).close()
    assert f'permission denied for database "{theirs.neon.database}"' in str(raised.value)


def test_tables_of_later_migrations_are_covered(make_neon_app, pgbouncer) -> None:
    """Default privileges: a table the owner adds after the role exists is usable at once."""
    app = make_neon_app("learnflow")
    outs = AppRoleProvider().create(app.role_props()).outs
    with psycopg.connect(app.owner_url(), autocommit=True) as owner:
        owner.execute("CREATE TABLE badges (id serial PRIMARY KEY, label text NOT NULL)")
    with connect(app.app_url(outs["password"])) as conn:
        conn.execute("INSERT INTO badges (label) VALUES ('first')")
        assert conn.execute("UPDATE badges SET label = 'gold'").rowcount == 1
        assert conn.execute("SELECT label FROM badges").fetchall() == [("gold",)]
        assert conn.execute("DELETE FROM badges").rowcount == 1
        with pytest.raises(errors.InsufficientPrivilege):
            conn.execute("DROP TABLE badges")


def test_owner_and_public_lost_create_on_public(provisioned) -> None:
    """No role but the owner may create in `public`, whatever the server version's default."""
    app = provisioned["chatkit"]
    with psycopg.connect(app.neon.owner_url()) as conn:
        acl = conn.execute(
            "SELECT has_schema_privilege('public', 'public', 'CREATE'), "
            "has_schema_privilege(%s, 'public', 'CREATE'), has_database_privilege('public', %s, 'CONNECT')",
            (app.neon.app_role, app.neon.database),
        ).fetchone()
    assert acl == (False, False, False)


def test_the_wrong_password_is_refused_through_the_pooler(provisioned) -> None:
    app = provisioned["learnflow"]
    wrong = app.database_url.replace(f":{app.password}@", f":x{app.password}@")
    assert wrong != app.database_url
    with pytest.raises(psycopg.OperationalError) as raised:
        connect(wrong).close()
    assert app.password not in str(raised.value)
