"""The Kubernetes objects a program declared, as the Kubernetes provider would receive them."""

from __future__ import annotations

import copy
from pathlib import Path

import yaml

from tests.support.pulumi_mocks import ProgramRun


def declared_manifests(run: ProgramRun) -> list[dict]:
    """Secret inputs and the objects of every yaml/v2 ConfigGroup (where the Dapr Components are)."""
    objects = [copy.deepcopy(r.inputs) for r in run.of_type("kubernetes:core/v1:Secret")]
    for group in run.of_type("kubernetes:yaml/v2:ConfigGroup"):
        objects += copy.deepcopy(group.inputs["objs"])
    return objects


def write_manifests(objects: list[dict], directory: Path) -> Path:
    """One YAML file per object, as render mode writes them."""
    for index, obj in enumerate(objects):
        (directory / f"{index}-{obj['kind'].lower()}.yaml").write_text(yaml.safe_dump(obj))
    return directory
