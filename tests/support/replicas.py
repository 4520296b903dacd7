"""Connections to a read replica of the emulator, which streams from its primary."""

from __future__ import annotations

import time

import psycopg


def replica_connection(uri: str, wait_seconds: float = 10) -> psycopg.Connection:
    """A connection to a read replica, once streaming replication has brought the app role there."""
    deadline = time.monotonic() + wait_seconds
    while True:
        try:
            return psycopg.connect(uri, prepare_threshold=None)
        except psycopg.OperationalError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)
