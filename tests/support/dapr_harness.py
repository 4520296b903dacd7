"""Runs `dapr-state-harness` (Dapr's own state.postgresql v2 store, toolchain/dapr-state-harness)."""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass
from pathlib import Path

from scripts.pulumi_tools import toolchain


@dataclass
class HarnessRun:
    code: int
    """0: every step passed; 1: a step failed; 2: the input was refused."""
    reports: list[dict]
    """One per step: step, ok, detail, ms."""
    stderr: str
    """The store's own log, and the reason for a refusal."""

    def failures(self) -> list[dict]:
        return [r for r in self.reports if not r["ok"]]


def run_harness(component: Path, secret: Path, scenario: str, *options: str) -> HarnessRun:
    result = subprocess.run(
        [str(toolchain().bin / "dapr-state-harness"), "-component", str(component), "-secret", str(secret),
         *options, scenario],
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    return HarnessRun(result.returncode, [json.loads(line) for line in result.stdout.splitlines()], result.stderr)
