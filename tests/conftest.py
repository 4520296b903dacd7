"""Session-wide proving ground (a throwaway PostgreSQL and a PgBouncer in transaction mode) and the
cost markers every test gets from what it uses (`pytest -m fast` runs the in-process tests only)."""

from __future__ import annotations

import itertools
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
import pytest
from hypothesis import HealthCheck, settings

from neon_emulator.servers import PgBouncer, PostgresServer, start_pgbouncer, start_postgres

pytest_plugins = ["tests.support.neon_fixtures"]

# Generated-case tests run a short, fixed budget by default (seconds in CI); a longer fuzzing run:
#   venv/bin/python -m pytest -q -m fuzz --hypothesis-profile=long
settings.register_profile(
    "ci", max_examples=150, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile("long", max_examples=20_000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("ci")


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    server = start_postgres()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def pgbouncer(postgres: PostgresServer) -> Iterator[PgBouncer]:
    bouncer = start_pgbouncer(postgres)
    try:
        yield bouncer
    finally:
        bouncer.stop()


_database_numbers = itertools.count()


@pytest.fixture
def fresh_database(postgres: PostgresServer) -> str:
    """Name of a new, empty database (owned by the superuser) for one test."""
    name = f"test_{next(_database_numbers)}"
    with psycopg.connect(postgres.url(), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return name


# Cost markers, registered in pyproject.toml. A test gets one from a fixture it uses (directly or
# through other fixtures) or from its folder; a module-local subprocess or server is marked in its
# module. Every test with none of them is `fast`.
COST_MARKERS = ("postgres", "emulator", "engine", "host")
FIXTURE_MARKERS = {
    "postgres": "postgres",  # pgbouncer, fresh_database, database_url and the access fixtures build on it
    "neon_api_server": "emulator",
    "make_neon_app": "host",  # applies each app's schema with the migration CLI, in a subprocess
    "pulumi_home": "engine",
}
FOLDER_MARKERS = {Path(__file__).resolve().parent / "engine": "engine"}


@pytest.hookimpl(tryfirst=True)  # before `-m` selects on the markers
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        found = {FIXTURE_MARKERS[name] for name in getattr(item, "fixturenames", ()) if name in FIXTURE_MARKERS}
        found |= {marker for folder, marker in FOLDER_MARKERS.items() if folder in item.path.parents}
        for name in sorted(found):
            item.add_marker(name)
        if not any(item.get_closest_marker(name) for name in COST_MARKERS):
            item.add_marker("fast")


@pytest.hookimpl(wrapper=True)
def pytest_runtest_setup(item: pytest.Item) -> Iterator[None]:
    with in_process_only(item):
        return (yield)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Iterator[None]:
    with in_process_only(item):
        return (yield)


@contextmanager
def in_process_only(item: pytest.Item) -> Iterator[None]:
    """Fail a `fast` test that starts a subprocess: it is mislabelled (mark it `host`)."""
    if item.get_closest_marker("fast") is None:
        yield
        return

    class Refused(subprocess.Popen):
        def __init__(self, args, *rest, **options):
            pytest.fail(f"{item.nodeid} is marked fast but starts {args!r}: mark it host", pytrace=False)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(subprocess, "Popen", Refused)
        yield
