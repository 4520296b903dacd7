"""Stack files' config as Pulumi hands it to a program: scalars as strings, lists as JSON."""

from __future__ import annotations

import json
from typing import Any

import yaml

from components.settings import PROJECT_ROOT


def as_pulumi_passes_it(value: Any) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, list):
        return json.dumps(value)
    return str(value)


def is_secure(value: Any) -> bool:
    """An encrypted value (`secure: ...`), which a test cannot decrypt."""
    return isinstance(value, dict) and "secure" in value


def stack_file_config(stack: str) -> dict[str, str]:
    values = yaml.safe_load((PROJECT_ROOT / f"Pulumi.{stack}.yaml").read_text()).get("config", {})
    return {key: as_pulumi_passes_it(value) for key, value in values.items() if not is_secure(value)}
