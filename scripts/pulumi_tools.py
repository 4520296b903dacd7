"""The Go-built Pulumi toolchain and the hermetic environment every `pulumi` run here uses.

Shared by `make up` (scripts/local_stack.py), the real-engine tests and the engine benchmark.
"""

from __future__ import annotations

import functools
import json
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "pulumi-toolchain.sh"
# Pulumi.local.yaml's encryption salt was made with this well-known passphrase (see that file).
LOCAL_PASSPHRASE = "neon-stack-local"  # noqa: S105 (a loopback-only development stack)


class ToolchainError(RuntimeError):
    pass


@dataclass(frozen=True)
class Toolchain:
    bin: Path
    """`pulumi` (its language host beside it) and `actionlint`."""
    kubernetes_plugin: Path
    kubernetes_version: str
    """The plugin version the pinned pulumi-kubernetes SDK asks for."""


@functools.cache
def toolchain() -> Toolchain:
    """Build (first time: minutes) or reuse (about a second) the toolchain."""
    result = subprocess.run([str(SCRIPT)], stdout=subprocess.PIPE, text=True, check=False)
    if result.returncode != 0:
        raise ToolchainError(f"{SCRIPT.name} failed (its messages are above)")
    values = dict(line.split("=", 1) for line in result.stdout.splitlines())
    return Toolchain(Path(values["PULUMI_BIN"]), Path(values["KUBERNETES_PLUGIN"]), values["KUBERNETES_VERSION"])


def pulumi_env(tools: Toolchain, home: Path, backend: Path) -> dict[str, str]:
    """The environment for `pulumi`: own PULUMI_HOME and file backend, no update check, no
    downloads, passphrase secrets; the project's venv first on PATH (the language host runs the
    `python3` it finds there). Inherited PULUMI_*, NEON_* and KUBECONFIG settings are dropped."""
    inherited = {k: v for k, v in os.environ.items() if not k.startswith(("PULUMI_", "NEON_", "KUBECONFIG"))}
    return {
        **inherited,
        "PATH": os.pathsep.join([str(tools.bin), str(ROOT / "venv" / "bin"), os.environ.get("PATH", "")]),
        "PULUMI_HOME": str(home),
        "PULUMI_BACKEND_URL": backend.as_uri(),
        "PULUMI_CONFIG_PASSPHRASE": LOCAL_PASSPHRASE,
        "PULUMI_SKIP_UPDATE_CHECK": "1",
        "PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION": "1",
        "PULUMI_DIY_BACKEND_NO_LEGACY_WARNING": "true",
    }


def install_kubernetes_plugin(tools: Toolchain, env: dict[str, str]) -> None:
    """Put the built provider in env's plugin cache, at the version the SDK asks for (once)."""
    listed = subprocess.run(["pulumi", "plugin", "ls", "--json"], env=env, capture_output=True, text=True, check=True)
    plugins = json.loads(listed.stdout or "[]")
    if any(p["name"] == "kubernetes" and p["version"] == tools.kubernetes_version for p in plugins):
        return
    install = ["pulumi", "plugin", "install", "resource", "kubernetes", tools.kubernetes_version,
               "--file", str(tools.kubernetes_plugin)]  # fmt: skip
    subprocess.run(install, env=env, capture_output=True, text=True, check=True)
