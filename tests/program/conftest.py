"""Whole-program runs: __main__.py under mocks, with our dynamic providers run for real.

The Neon fake serves the API, its computes are real PostgreSQL clusters with PgBouncer in front,
and Kubernetes is in render mode (the objects are taken from what the program declared).
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

import components.settings as settings_module
from components.settings import PROJECT_ROOT
from tests.support.pulumi_mocks import ProgramRun, run_program
from tests.support.stack_config import stack_file_config


@pytest.fixture
def schema_copy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A copy of the project's schema/ that the program reads instead, so tests can add files."""
    copy = tmp_path / "schema"
    shutil.copytree(PROJECT_ROOT / "schema", copy)
    monkeypatch.setattr(settings_module, "SCHEMA_ROOT", copy)
    return copy


class Deployer:
    """Runs `pulumi up` of one stack in-process, carrying its state from one run to the next."""

    def __init__(self, neon_api: Any, render_dir: Path, stack: str, overrides: dict[str, str] | None = None,
                 stack_references: dict[str, dict[str, Any]] | None = None):
        self.neon_api = neon_api
        self.stack = stack
        base = stack_file_config("dev" if stack not in ("dev", "prod") else stack)
        self.config = {
            **base,
            "neon:apiUrl": neon_api.url,
            "neon-stack:kubernetesMode": "render",
            "neon-stack:renderDirectory": str(render_dir),
            **(overrides or {}),
        }
        self.stack_references = stack_references
        self.state: dict[str, Any] | None = None

    def up(self) -> ProgramRun:
        return self._run(PROJECT_ROOT, self.config)

    def destroy(self) -> ProgramRun:
        """An empty program: the engine deletes everything the state holds."""
        return self._run(lambda: None, {})

    def _run(self, program: Any, config: dict[str, str]) -> ProgramRun:
        run = run_program(
            program,
            config=config,
            stack=self.stack,
            run_providers=True,
            provider_config={"neon:apiUrl": self.neon_api.url, "neon:apiKey": self.neon_api.api_key},
            state=self.state,
            stack_references=self.stack_references,
        )
        self.state = run.state
        return run
