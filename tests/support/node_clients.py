"""Neon's own clients (neonctl, @neondatabase/api-client), pinned in tests/clients/, installed once.

`npm ci` installs exactly what tests/clients/package-lock.json names into
`.cache/neon-clients-<digest of the lock file>/` (the cache neon_emulator.spec uses), so a warm run
installs nothing and a change of the lock file gets a directory of its own. The install goes to
a temporary directory renamed into place when complete: an interrupted one is never reused.
Install scripts are not run (neither client needs one).
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from neon_emulator.spec import cache_directory

PINS = Path(__file__).resolve().parent.parent / "clients"
NODE_MAJOR, NODE_MINOR = 20, 19  # neonctl 5's `engines`: node >= 20.19


@dataclass(frozen=True)
class NodeClients:
    """Where the pinned clients are installed."""

    directory: Path

    @property
    def neonctl(self) -> Path:
        return self.directory / "node_modules" / ".bin" / "neonctl"


def _check_node() -> None:
    for tool in ("node", "npm"):
        if shutil.which(tool) is None:
            raise RuntimeError(f"{tool} is needed by tests/clients: install Node.js {NODE_MAJOR}.{NODE_MINOR} or later")
    version = subprocess.run(["node", "--version"], check=True, capture_output=True, text=True).stdout.strip()
    major, minor = (int(part) for part in version.lstrip("v").split(".")[:2])
    if (major, minor) < (NODE_MAJOR, NODE_MINOR):
        raise RuntimeError(f"neonctl needs Node.js {NODE_MAJOR}.{NODE_MINOR} or later, found {version}")


def install_clients() -> NodeClients:
    """The pinned clients, installed with `npm ci` unless already in the cache."""
    _check_node()
    lock = (PINS / "package-lock.json").read_bytes()
    # Beside the OpenAPI document's directory, in the same cache.
    target = cache_directory().parent / f"neon-clients-{hashlib.sha256(lock).hexdigest()[:16]}"
    if not target.is_dir():
        target.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=target.name + ".", dir=target.parent))
        try:
            for name in ("package.json", "package-lock.json"):
                shutil.copy2(PINS / name, staging / name)
            subprocess.run(
                ["npm", "ci", "--ignore-scripts", "--no-audit", "--no-fund", "--loglevel=error"],
                cwd=staging, check=True, capture_output=True, text=True, timeout=300,
            )
            staging.rename(target)
        except subprocess.CalledProcessError as error:
            raise RuntimeError(f"npm ci of tests/clients failed:\n{error.stderr}") from error
        except OSError:
            if not target.is_dir():  # another session renamed its install into place first: use that
                raise
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    return NodeClients(target)
