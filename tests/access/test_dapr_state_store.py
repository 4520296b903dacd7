"""Dapr's own state.postgresql v2 store (components-contrib v1.18.0, as in daprd 1.18.0 and 1.18.1)
driven by `dapr-state-harness` with the Secret and Component the stack declares for each app, as
the app role, through PgBouncer in transaction mode.

The harness resolves the Component's `secretKeyRef` from the Secret and passes its metadata to
the store's Init unchanged (toolchain/dapr-state-harness/main.go). What only PostgreSQL can tell
(what the role may do to the application's tables) is checked here with psycopg.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import psycopg
import pytest
import yaml
from psycopg import sql

from neon_emulator.servers import SUPERUSER
from tests.access.conftest import APPS, ProvisionedApp, provision
from tests.support.dapr_harness import HarnessRun, run_harness

pytestmark = pytest.mark.host  # dapr-state-harness runs as a subprocess

FIRST_START_TRIALS = 20
REPLICAS = 8
STEPS = ["init", "set-get-delete", "etag", "first-write", "ttl-and-cleanup", "multi", "bulk-get"]


def harness(app: ProvisionedApp, directory: Path, scenario: str, *options: str) -> HarnessRun:
    """The harness on the app's declared Component and Secret, written as render mode writes them."""
    component, secret = directory / "component.yaml", directory / "secret.yaml"
    component.write_text(yaml.safe_dump(app.component))
    secret.write_text(yaml.safe_dump(app.secret))
    return run_harness(component, secret, scenario, *options)


@pytest.mark.parametrize("app", APPS)
def test_every_step_of_the_real_store_passes(provisioned: dict[str, ProvisionedApp], tmp_path: Path, app: str) -> None:
    run = harness(provisioned[app], tmp_path, "steps")
    assert [r["step"] for r in run.reports] == STEPS, run.stderr
    assert run.failures() == [] and run.code == 0, run.reports
    with psycopg.connect(provisioned[app].neon.owner_url()) as conn:
        owners = dict(conn.execute("SELECT tablename, tableowner FROM pg_tables WHERE schemaname = 'dapr'").fetchall())
    # Dapr made the state table as the login role, whose sessions start as the group: the group owns it.
    group = provisioned[app].neon.group_role
    assert owners == {"dapr_metadata": group, "state": group}


@pytest.mark.parametrize("app", APPS)
def test_two_sidecars_share_keys_without_losing_an_update(
    provisioned: dict[str, ProvisionedApp], tmp_path: Path, app: str
) -> None:
    run = harness(provisioned[app], tmp_path, "sidecars")
    assert run.code == 0 and run.failures() == [], run.reports
    assert "none lost" in run.reports[0]["detail"]


def test_simultaneous_first_start_of_every_replica_never_fails(
    make_neon_app, pgbouncer, postgres, tmp_path: Path
) -> None:
    """Each trial: a fresh database and app role (the stack's setup), then 8 stores Init at once.
    After its trial the database's pool is closed in PgBouncer (admin `KILL`) and it is dropped."""
    outcomes = []
    for trial in range(FIRST_START_TRIALS):
        app = provision(make_neon_app(APPS[trial % len(APPS)], schema=False))
        directory = tmp_path / str(trial)
        directory.mkdir()
        outcomes.append(harness(app, directory, "first-start", "-replicas", str(REPLICAS)))
        with psycopg.connect(pgbouncer.url("pgbouncer", SUPERUSER, postgres.password), autocommit=True) as admin:
            admin.pgconn.exec_(f"KILL {app.neon.database}".encode())  # the admin console speaks simple queries only
        with psycopg.connect(postgres.url(), autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE {}").format(sql.Identifier(app.neon.database)))
    failed = [(run.code, run.reports, run.stderr[-2000:]) for run in outcomes if run.code != 0 or run.failures()]
    assert failed == [], failed
    assert all(run.reports[0]["detail"] == f"{REPLICAS} replicas started at once" for run in outcomes)


def test_exec_mode_is_what_works_through_the_transaction_pooler(
    provisioned: dict[str, ProvisionedApp], tmp_path: Path
) -> None:
    """The Component sets `queryExecMode: exec`; pgx's default (`cache_statement`) through PgBouncer
    1.18 in transaction mode meets prepared statements of other clients on the same server connection."""
    app = provisioned["chatkit"]
    assert {"name": "queryExecMode", "value": "exec"} in app.component["spec"]["metadata"]
    run = harness(app, tmp_path, "sidecars", "-set", "queryExecMode=cache_statement")
    assert run.code == 1, run.reports
    detail = run.reports[0]["detail"]
    assert 'prepared statement "stmtcache_' in detail, run.reports
    assert "(SQLSTATE 42P05)" in detail or "(SQLSTATE 26000)" in detail, run.reports


def test_the_harness_refuses_what_it_cannot_resolve(provisioned: dict[str, ProvisionedApp], tmp_path: Path) -> None:
    app = provisioned["learnflow"]
    without_url = {**app.secret, "data": {"PGUSER": app.secret["data"]["PGUSER"]}}
    broken = dataclasses.replace(app, secret=without_url)
    run = harness(broken, tmp_path, "steps")
    assert (run.code, run.reports) == (2, [])
    assert "refers to key DATABASE_URL, which Secret learnflow/postgres-credentials does not have" in run.stderr


@pytest.mark.parametrize(
    "statement",
    [
        "ALTER TABLE users ADD COLUMN sneaky text",
        "DROP TABLE users",
        "TRUNCATE users",
        "CREATE TABLE public.sneaky (id int)",
        "CREATE SCHEMA sneaky",
        "CREATE FUNCTION public.sneaky() RETURNS int LANGUAGE sql AS 'SELECT 1'",
        "CREATE INDEX sneaky ON users (id)",
    ],
)
def test_dapr_role_cannot_touch_the_application_tables(provisioned: dict[str, ProvisionedApp], statement: str) -> None:
    """Through the Secret's DATABASE_URL (pooled): the app role's DML on its tables, nothing more."""
    with psycopg.connect(provisioned["chatkit"].database_url, prepare_threshold=None, autocommit=True) as conn:
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute(statement)
        conn.execute("SELECT count(*) FROM users").fetchone()


def test_the_other_application_cannot_reach_this_database(provisioned: dict[str, ProvisionedApp]) -> None:
    chatkit, learnflow = provisioned["chatkit"], provisioned["learnflow"]
    with psycopg.connect(learnflow.neon.owner_url()) as conn:
        assert conn.execute(
            "SELECT has_database_privilege(%s, %s, 'CONNECT')", (learnflow.neon.app_role, chatkit.neon.database)
        ).fetchone() == (False,)
