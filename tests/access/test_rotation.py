"""Rotation without downtime: the two login roles alternate, a client holding the previous
DATABASE_URL keeps working until the next rotation (directly and through PgBouncer, which looks
passwords up with `auth_query` at each login, so it needs no restart), and Dapr's state, owned by
the group role, survives every step. Also the move of a stack made by the single-role provider.

Dapr runs as its own state.postgresql v2 store (dapr-state-harness) with the Secret of each step.
"""

from __future__ import annotations

import subprocess
import sys
import types
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
import pytest
import yaml

from components.access.app_role import AppRoleProvider
from components.settings import PROJECT_ROOT
from tests.access.conftest import NeonApp, declared_objects
from tests.support.dapr_harness import run_harness

pytestmark = pytest.mark.host  # dapr-state-harness runs as a subprocess

provider = AppRoleProvider()
SINGLE_ROLE_PROVIDER_COMMIT = "5d54c5d2287f864f17056ee59df27a01acdeacd1"
"""The last commit whose AppRole made one login role per app and no group."""
MARKER = "rotation-marker"


def dapr_steps_pass(neon_app: NeonApp, outs: dict, directory: Path) -> None:
    """Dapr's own store runs every step with the Secret declared from these outputs.

    Dapr cleans expired rows at most once per `cleanupInterval` (an hour), throttled by a row of its
    metadata table: a run within the hour forgets the last cleanup first, so that its ttl step sees one.
    """
    with psycopg.connect(urls(neon_app, outs)[0], autocommit=True) as conn:
        conn.execute("DELETE FROM dapr.dapr_metadata WHERE key LIKE 'last-cleanup-%'")
    secret, component = declared_objects(neon_app, outs["password"], outs.get("login_role"))
    directory.mkdir(exist_ok=True)
    (directory / "secret.yaml").write_text(yaml.safe_dump(secret))
    (directory / "component.yaml").write_text(yaml.safe_dump(component))
    run = run_harness(directory / "component.yaml", directory / "secret.yaml", "steps")
    assert run.failures() == [], run.failures()
    assert run.code == 0, run.stderr[-2000:]


def logs_in(url: str) -> bool:
    try:
        with psycopg.connect(url, connect_timeout=5, prepare_threshold=None) as conn:
            conn.execute("SELECT 1")
    except psycopg.OperationalError as error:
        assert "password authentication failed" in str(error) or "SASL authentication failed" in str(error)
        return False
    return True


def urls(neon_app: NeonApp, outs: dict) -> list[str]:
    """The direct URI and the pooled one (the Secret's) of the login role these outputs name."""
    role = outs.get("login_role", outs["role_name"])
    return [neon_app.app_url(outs["password"], pooled=pooled, role=role) for pooled in (False, True)]


def marker(url: str) -> list[tuple]:
    with psycopg.connect(url, prepare_threshold=None) as conn:
        return conn.execute("SELECT value FROM dapr.state WHERE key = %s", (MARKER,)).fetchall()


def dapr_owners(neon_app: NeonApp) -> set[str]:
    with psycopg.connect(neon_app.owner_url()) as conn:
        return {owner for (owner,) in conn.execute("SELECT tableowner FROM pg_tables WHERE schemaname = 'dapr'")}


@contextmanager
def held_connection(url: str) -> Iterator[psycopg.Connection]:
    """A client that connected before a rotation and keeps its connection (through PgBouncer)."""
    with psycopg.connect(url, prepare_threshold=None, autocommit=True) as conn:
        yield conn


def test_a_client_holding_the_previous_url_works_until_the_next_rotation(make_neon_app, pgbouncer, tmp_path) -> None:
    neon_app = make_neon_app("chatkit")
    first = provider.create(neon_app.role_props(1)).outs
    dapr_steps_pass(neon_app, first, tmp_path / "first")
    assert dapr_owners(neon_app) == {neon_app.group_role}  # Dapr made its state table as the group
    with psycopg.connect(urls(neon_app, first)[0], autocommit=True) as conn:
        conn.execute("INSERT INTO dapr.state (key, value) VALUES (%s, 'kept')", (MARKER,))

    with held_connection(urls(neon_app, first)[1]) as held:
        second = provider.update(neon_app.app_role, first, neon_app.role_props(2)).outs
        assert (second["login_role"], first["login_role"]) == (neon_app.alternate_role, neon_app.app_role)
        assert held.execute("SELECT count(*) FROM users").fetchone() is not None
        assert all(logs_in(url) for url in urls(neon_app, first) + urls(neon_app, second))
    dapr_steps_pass(neon_app, second, tmp_path / "second")
    assert marker(urls(neon_app, second)[1]) == [(b"kept",)]

    third = provider.update(neon_app.app_role, second, neon_app.role_props(3)).outs
    assert third["login_role"] == neon_app.app_role and third["password"] != first["password"]
    assert not any(logs_in(url) for url in urls(neon_app, first))
    assert all(logs_in(url) for url in urls(neon_app, second) + urls(neon_app, third))
    dapr_steps_pass(neon_app, third, tmp_path / "third")
    assert marker(urls(neon_app, third)[1]) == [(b"kept",)]
    assert dapr_owners(neon_app) == {neon_app.group_role}


def single_role_provider() -> types.ModuleType:
    """The AppRole module as it was before the group role, loaded from the checkout's history."""
    shown = subprocess.run(
        ["git", "show", f"{SINGLE_ROLE_PROVIDER_COMMIT}:components/access/app_role.py"],
        cwd=PROJECT_ROOT, capture_output=True, text=True, check=True,
    )  # fmt: skip
    module = types.ModuleType("single_role_app_role")
    sys.modules[module.__name__] = module  # dataclasses look their module up
    try:
        exec(compile(shown.stdout, "single_role_app_role.py", "exec"), module.__dict__)  # noqa: S102 - our own code
    finally:
        del sys.modules[module.__name__]
    return module


def table_grantees(neon_app: NeonApp) -> set[str]:
    """Every role holding a privilege on a table, a schema or a default privilege of the app's database."""
    with psycopg.connect(neon_app.owner_url()) as conn:
        rows = conn.execute(
            "SELECT grantee::regrole::text FROM pg_class c, aclexplode(c.relacl) WHERE c.relnamespace IN "
            "  (SELECT oid FROM pg_namespace WHERE nspname IN ('public', 'dapr')) "
            "UNION SELECT grantee::regrole::text FROM pg_namespace n, aclexplode(n.nspacl) "
            "UNION SELECT grantee::regrole::text FROM pg_default_acl d, aclexplode(d.defaclacl) "
            "UNION SELECT grantee::regrole::text FROM pg_database d, aclexplode(d.datacl) WHERE datname = %s",
            (neon_app.database,),
        ).fetchall()
    return {grantee for (grantee,) in rows}


def test_a_single_role_stack_moves_to_the_group_without_changing_its_secret(
    make_neon_app, pgbouncer, tmp_path
) -> None:
    neon_app = make_neon_app("learnflow")
    old_provider = single_role_provider().AppRoleProvider()
    old_inputs = old_provider.check({}, {k: v for k, v in neon_app.role_props(1).items() if k in OLD_INPUTS}).inputs
    old = old_provider.create(old_inputs).outs
    dapr_steps_pass(neon_app, old, tmp_path / "old")
    with psycopg.connect(urls(neon_app, old)[0], autocommit=True) as conn:
        conn.execute("INSERT INTO dapr.state (key, value) VALUES (%s, 'kept')", (MARKER,))
    assert dapr_owners(neon_app) == {neon_app.app_role}
    assert neon_app.app_role in table_grantees(neon_app)

    with held_connection(urls(neon_app, old)[1]) as held:
        news = provider.check(old, neon_app.role_props(1)).inputs
        assert provider.diff(neon_app.app_role, old, news).changes is True
        moved = provider.update(neon_app.app_role, old, news).outs
        assert held.execute("SELECT count(*) FROM users").fetchone() is not None
    # The Secret stays as it was (same role, same password): no pod needs a restart.
    assert (moved["login_role"], moved["password"]) == (neon_app.app_role, old["password"])
    assert declared_objects(neon_app, moved["password"], moved["login_role"])[0] == declared_objects(
        neon_app, old["password"])[0]  # fmt: skip
    assert all(logs_in(url) for url in urls(neon_app, old))
    assert dapr_owners(neon_app) == {neon_app.group_role}
    grantees = table_grantees(neon_app)
    assert neon_app.group_role in grantees and not {neon_app.app_role, neon_app.alternate_role} & grantees
    assert marker(urls(neon_app, moved)[1]) == [(b"kept",)]
    dapr_steps_pass(neon_app, moved, tmp_path / "moved")

    rotated = provider.update(neon_app.app_role, moved, neon_app.role_props(2)).outs
    assert rotated["login_role"] == neon_app.alternate_role
    assert all(logs_in(url) for url in urls(neon_app, old) + urls(neon_app, rotated))
    dapr_steps_pass(neon_app, rotated, tmp_path / "rotated")
    assert marker(urls(neon_app, rotated)[1]) == [(b"kept",)]


OLD_INPUTS = ("admin_url", "role_name", "database", "owner_role", "app_schema", "dapr_schema", "password_version")
"""The inputs of the single-role AppRole."""
