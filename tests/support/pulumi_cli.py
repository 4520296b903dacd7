"""The real `pulumi` CLI, run offline and hermetically on a copy of the project.

Each `PulumiCli` has its own `PULUMI_HOME`, a `file://` backend, a passphrase secrets provider,
no update check and no plugin downloads: the CLI, the Python language host, the dynamic-provider
launcher and the Kubernetes provider all come from the toolchain bin directory, the program's
Python from the project's virtualenv.
"""

from __future__ import annotations

import io
import json
import shutil
import subprocess
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from components.settings import PROJECT_ROOT
from scripts.pulumi_tools import Toolchain, pulumi_env

# What a copy of the project needs to run: the program, its modules, schemas and stack files.
PROJECT_FILES = ("__main__.py", "Pulumi.yaml", "requirements.txt", "components", "schema")


def copy_project(destination: Path) -> Path:
    """A copy of the checkout's program (stack files included) sharing its virtualenv."""
    destination.mkdir(parents=True)
    for name in PROJECT_FILES:
        source = PROJECT_ROOT / name
        if source.is_dir():
            shutil.copytree(source, destination / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(source, destination / name)
    for stack_file in PROJECT_ROOT.glob("Pulumi.*.yaml"):
        shutil.copy2(stack_file, destination / stack_file.name)
    (destination / "venv").symlink_to(PROJECT_ROOT / "venv")
    return destination


def copy_project_at(commit: str, destination: Path) -> Path:
    """The program (stack files included) as it was at `commit` of the checkout's history, sharing
    the checkout's virtualenv; a clear failure where the history lacks the commit (a shallow clone)."""
    found = _git("rev-parse", "--verify", "--quiet", f"{commit}^{{commit}}", check=False)
    if found.returncode != 0:
        raise AssertionError(
            f"commit {commit} is not in the history of {PROJECT_ROOT}: this test needs a full clone "
            "(`git fetch --unshallow`, or actions/checkout with fetch-depth: 0)"
        )
    names = _git("ls-tree", "--name-only", commit).stdout.decode().splitlines()
    paths = [n for n in names if n in PROJECT_FILES or (n.startswith("Pulumi.") and n.endswith(".yaml"))]
    archive = _git("archive", "--format=tar", commit, "--", *paths).stdout
    destination.mkdir(parents=True)
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(destination, filter="data")
    (destination / "venv").symlink_to(PROJECT_ROOT / "venv")
    return destination


def _git(*args: str, check: bool = True) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(["git", *args], cwd=PROJECT_ROOT, capture_output=True, check=check, timeout=60)


@dataclass
class Result:
    returncode: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        return self.stdout + self.stderr


class PulumiCli:
    """`pulumi <args>` in `project` with PULUMI_HOME `home` and a file backend in `backend`."""

    def __init__(self, project: Path, home: Path, tools: Toolchain, backend: Path):
        self.project = project
        backend.mkdir(parents=True, exist_ok=True)
        self.env = {**pulumi_env(tools, home, backend), "NO_COLOR": "1"}

    def run(self, *args: str, check: bool = True, timeout: float = 600) -> Result:
        completed = subprocess.run(
            ["pulumi", *args, "--non-interactive", "--color", "never"],
            cwd=self.project, env=self.env, capture_output=True, text=True, timeout=timeout, check=False,
        )  # fmt: skip
        result = Result(completed.returncode, completed.stdout, completed.stderr)
        if check and result.returncode != 0:
            raise AssertionError(f"pulumi {' '.join(args)} failed ({result.returncode}):\n{result.output}")
        return result

    def init(self, stack: str, config: dict[str, str], secrets: dict[str, str] | None = None) -> None:
        """Create (or select) the stack and set its config on top of its stack file."""
        if self.run("stack", "select", stack, check=False).returncode != 0:
            self.run("stack", "init", stack)
        pairs = [arg for key, value in config.items() for arg in ("--plaintext", f"{key}={value}")]
        pairs += [arg for key, value in (secrets or {}).items() for arg in ("--secret", f"{key}={value}")]
        if pairs:
            self.run("config", "set-all", "--stack", stack, *pairs)

    def up(self, stack: str, *flags: str, check: bool = True) -> Result:
        return self.run("up", "--stack", stack, "--yes", "--skip-preview", *flags, check=check)

    def preview(self, stack: str, *flags: str, check: bool = True) -> Result:
        return self.run("preview", "--stack", stack, *flags, check=check)

    def export(self, stack: str) -> dict[str, Any]:
        """The stack's checkpoint (`pulumi stack export`), secrets still encrypted."""
        return json.loads(self.run("stack", "export", "--stack", stack).stdout)

    def outputs(self, stack: str) -> dict[str, Any]:
        return json.loads(self.run("stack", "output", "--stack", stack, "--json", "--show-secrets").stdout)
