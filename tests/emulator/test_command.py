"""`python -m neon_emulator` starts, serves the API with real clusters, and cleans up on Ctrl-C."""

from __future__ import annotations

import re
import signal
import socket
import subprocess
import sys

import httpx
import psycopg
import pytest

from components.settings import PROJECT_ROOT
from components.uri import postgres_uri, split_host

pytestmark = [pytest.mark.emulator, pytest.mark.host]  # the emulator command runs as a subprocess


def _open(host: str) -> bool:
    name, port = split_host(host)
    try:
        socket.create_connection((name, port), timeout=1).close()
        return True
    except OSError:
        return False


def test_emulator_command_serves_and_cleans_up() -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "neon_emulator", "--port", "0", "--api-key", "local-key", "--operation-seconds", "0"],
        cwd=PROJECT_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        banner = [process.stdout.readline() for _ in range(3)]
        url = re.search(r"http://127\.0\.0\.1:\d+/api/v2", banner[0]).group(0)
        assert banner[1].strip() == f"pulumi config set neon:apiUrl {url}"
        assert "local-key" in banner[2]
        headers = {"Authorization": "Bearer local-key"}
        created = httpx.post(f"{url}/projects", json={"project": {"name": "cli"}}, headers=headers, timeout=60)
        assert created.status_code == 201
        assert {op["status"] for op in created.json()["operations"]} == {"finished"}  # --operation-seconds 0
        details = created.json()["connection_uris"][0]["connection_parameters"]
        uri = postgres_uri(details["role"], details["password"], details["host"], details["database"])
        with psycopg.connect(uri, connect_timeout=5) as conn:
            assert conn.execute("SELECT 1").fetchone() == (1,)
        assert httpx.get(f"{url}/projects", headers={"Authorization": "Bearer wrong"}).status_code == 401
    finally:
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=30)
    assert process.returncode == 0, err
    assert "stopped" in out
    assert not _open(details["host"]) and not _open(details["pooler_host"])
    assert "Traceback" not in err


def test_emulator_command_refuses_a_busy_port() -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = subprocess.run(
            [sys.executable, "-m", "neon_emulator", "--port", str(port)],
            cwd=PROJECT_ROOT,
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert result.returncode == 2
    assert f"cannot listen on 127.0.0.1:{port}" in result.stderr
    assert "Traceback" not in result.stderr


def test_emulator_command_refuses_a_bad_operation_duration() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "neon_emulator", "--port", "0", "--operation-seconds", "-1"],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "--operation-seconds: operation_seconds must be a finite number of seconds >= 0, not -1.0" in result.stderr
    assert "Traceback" not in result.stderr
