"""The Kubernetes objects a program declared, as the Kubernetes provider would receive them."""

from __future__ import annotations

import copy
from pathlib import Path

import yaml

from tests.support.pulumi_mocks import ProgramRun


def declared_manifests(run: ProgramRun) -> list[dict]:
    """The inputs of every Secret and Dapr Component."""
    return [
        copy.deepcopy(r.inputs)
        for kind in ("kubernetes:core/v1:Secret", "kubernetes:dapr.io/v1alpha1:Component")
        for r in run.of_type(kind)
    ]


def write_manifests(objects: list[dict], directory: Path) -> Path:
    """One YAML file per object, as render mode writes them."""
    for index, obj in enumerate(objects):
        (directory / f"{index}-{obj['kind'].lower()}.yaml").write_text(yaml.safe_dump(obj))
    return directory
