"""Helpers for the schema tests: a database URL per test and migration directories written on the fly."""

from __future__ import annotations

import itertools
import signal
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
import pytest

from neon_emulator.servers import PostgresServer

PROJECT_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def database_url(postgres: PostgresServer, fresh_database: str) -> str:
    """Direct URL (superuser) of a fresh, empty database."""
    return postgres.url(fresh_database)


_databases = itertools.count()


def new_database(server: PostgresServer) -> str:
    """Name of a new, empty database, for tests that need one per generated case."""
    name = f"generated_{next(_databases)}"
    query(server.url(), f'CREATE DATABASE "{name}"')
    return name


def write_files(directory: Path, files: dict[str, str]) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (directory / name).write_text(text)
    return directory


def query(url: str, sql: str, params=None) -> list[tuple]:
    with psycopg.connect(url, autocommit=True) as conn:
        cursor = conn.execute(sql, params)
        return cursor.fetchall() if cursor.description else []


def tables(url: str) -> list[str]:
    return [r[0] for r in query(url, "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY 1")]


def history(url: str) -> list[tuple]:
    """(version, kind, success, error, failing_statement) of every history row, oldest first."""
    if not query(url, "SELECT to_regclass('neon_stack.schema_migrations') IS NOT NULL")[0][0]:
        return []
    return query(url, "SELECT version, kind, success, error, failing_statement FROM neon_stack.schema_migrations"
                      " ORDER BY id")


class Hang(Exception):
    """Raised by `within` when the time is up (not an OSError, so no code under test swallows it)."""


@contextmanager
def within(seconds: float) -> Iterator[None]:
    """Fail with Hang instead of waiting forever (a read that blocks, a parser that loops)."""

    def give_up(signum, frame):
        raise Hang(f"still running after {seconds} s")

    previous = signal.signal(signal.SIGALRM, give_up)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
