"""Whole-program runs: __main__.py under mocks, with our dynamic providers run for real.

The Neon fake serves the API, its computes are real PostgreSQL clusters with PgBouncer in front,
and Kubernetes is in render mode (the objects are taken from what the program declared).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml

import components.settings as settings_module
from components.settings import PROJECT_ROOT
from tests.support.pulumi_mocks import ProgramRun, run_program


def stack_file_config(stack: str) -> dict[str, str]:
    """A stack file's config as Pulumi hands it to the program: scalars as strings, lists as JSON."""
    values = yaml.safe_load((PROJECT_ROOT / f"Pulumi.{stack}.yaml").read_text())["config"]
    as_text = {}
    for key, value in values.items():
        if isinstance(value, bool):
            as_text[key] = str(value).lower()
        elif isinstance(value, list):
            as_text[key] = json.dumps(value)
        else:
            as_text[key] = str(value)
    return as_text


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
        run = run_program(
            PROJECT_ROOT,
            config=self.config,
            stack=self.stack,
            run_providers=True,
            provider_config={"neon:apiUrl": self.neon_api.url, "neon:apiKey": self.neon_api.api_key},
            state=self.state,
            stack_references=self.stack_references,
        )
        self.state = run.state
        return run

    def destroy(self) -> ProgramRun:
        run = run_program(
            lambda: None,
            config={},
            stack=self.stack,
            run_providers=True,
            provider_config={"neon:apiUrl": self.neon_api.url, "neon:apiKey": self.neon_api.api_key},
            state=self.state,
        )
        self.state = run.state
        return run
