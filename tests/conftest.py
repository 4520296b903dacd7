"""Session-wide proving ground: a throwaway PostgreSQL and a PgBouncer in transaction mode."""

from __future__ import annotations

import itertools
from collections.abc import Iterator

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
