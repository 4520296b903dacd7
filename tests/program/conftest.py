"""The whole program in-process under mocks, with our dynamic providers run for real.

The Neon fake serves the API, its computes are real PostgreSQL clusters with PgBouncer in front,
and Kubernetes is in render mode (the objects are taken from what the program declared).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from components.settings import PROJECT_ROOT
from tests.support.pulumi_mocks import ProgramRun, run_program
from tests.support.stack_config import stack_file_config


class Deployer:
    """Runs `pulumi up` of one stack's program in-process against the Neon fake."""

    def __init__(self, neon_api: Any, render_dir: Path, stack: str, overrides: dict[str, str] | None = None):
        self.neon_api = neon_api
        self.stack = stack
        self.config = {
            **stack_file_config(stack),
            "neon:apiUrl": neon_api.url,
            "neon-stack:kubernetesMode": "render",
            "neon-stack:renderDirectory": str(render_dir),
            **(overrides or {}),
        }

    def up(self, **options: Any) -> ProgramRun:
        """`options` are those of `run_program` (preview, state, stack_references)."""
        return run_program(
            PROJECT_ROOT,
            config=self.config,
            stack=self.stack,
            run_providers=True,
            provider_config={"neon:apiUrl": self.neon_api.url, "neon:apiKey": self.neon_api.api_key},
            **options,
        )
