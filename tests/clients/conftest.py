"""Fixtures running Neon's own clients, pinned in package.json/package-lock.json here, against the emulator.

`neonctl(*args)` runs the CLI with `--api-host`/`--api-key` of the test's emulator account (and no
analytics), in a home directory of its own; `api_client(calls)` runs api_client_calls.mjs, the
official TypeScript client making `calls` in order. Both fail the test, with the client's
message, if the client fails.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.support.neon_fixtures import NeonApi
from tests.support.node_clients import NodeClients, install_clients

SCRIPT = Path(__file__).resolve().parent / "api_client_calls.mjs"
# Only what node needs: no NEON_* setting of the machine reaches the clients.
_ENVIRONMENT = {name: os.environ[name] for name in ("PATH", "LANG") if name in os.environ}


@pytest.fixture(scope="session")
def node_clients() -> NodeClients:
    return install_clients()


def _run(args: list[str], env: dict[str, str], shown: str) -> str:
    """Standard output of `args`; `shown` names the command in a failure (never the API key)."""
    result = subprocess.run(args, env={**_ENVIRONMENT, **env}, capture_output=True, text=True, timeout=120)
    if result.returncode != 0:
        pytest.fail(f"{shown} failed:\n{result.stderr}", pytrace=False)  # no traceback: its locals hold the key
    return result.stdout


@pytest.fixture
def neonctl(neon_api: NeonApi, node_clients: NodeClients, tmp_path: Path) -> Callable[..., str]:
    def run(*args: str) -> str:
        """neonctl's standard output; the arguments are those of a command line after `neonctl`."""
        command = [str(node_clients.neonctl), "--api-host", neon_api.url, "--api-key", neon_api.api_key]
        return _run([*command, "--no-analytics", *args], {"HOME": str(tmp_path)}, "neonctl " + " ".join(args))

    return run


@pytest.fixture
def api_client(neon_api: NeonApi, node_clients: NodeClients) -> Callable[[list[list[Any]]], list[Any]]:
    def run(calls: list[list[Any]]) -> list[Any]:
        """The response data of each call `[method, *arguments]` (see api_client_calls.mjs)."""
        env = {
            "NEON_CLIENTS": str(node_clients.directory),
            "NEON_API_HOST": neon_api.url,
            "NEON_API_KEY": neon_api.api_key,
        }
        shown = f"{SCRIPT.name} ({', '.join(call[0] for call in calls)})"
        return json.loads(_run(["node", str(SCRIPT), json.dumps(calls)], env, shown))

    return run
