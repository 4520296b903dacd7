"""Session-wide proving ground: a throwaway PostgreSQL and a PgBouncer in transaction mode."""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import psycopg
import pytest

from components.emulator.servers import PgBouncer, PostgresServer, start_pgbouncer, start_postgres

pytest_plugins = ["tests.support.neon_fixtures"]


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
