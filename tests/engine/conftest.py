"""Real-engine tests: the `pulumi` CLI built from Go modules, the Python language host, our dynamic
providers launched by the engine, the Kubernetes provider in render mode, against the Neon emulator.

Each test works on its own copy of the project (so it can add migration files or edit modules)
with its own file backend; the plugin cache (PULUMI_HOME, holding the Kubernetes provider) is
shared by the session.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from scripts.pulumi_tools import install_kubernetes_plugin, pulumi_env, toolchain
from tests.support.neon_fixtures import NeonApi
from tests.support.pulumi_cli import PulumiCli, copy_project


@pytest.fixture(scope="session")
def pulumi_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A PULUMI_HOME with the pinned Kubernetes provider installed in its plugin cache."""
    home = tmp_path_factory.mktemp("pulumi-home")
    install_kubernetes_plugin(toolchain(), pulumi_env(toolchain(), home, home / "backend"))
    return home


@pytest.fixture
def project(tmp_path: Path) -> Path:
    return copy_project(tmp_path / "project")


@pytest.fixture
def pulumi(project: Path, tmp_path: Path, pulumi_home: Path) -> PulumiCli:
    return PulumiCli(project, pulumi_home, toolchain(), backend=tmp_path / "backend")


@pytest.fixture
def local_stack(pulumi: PulumiCli, neon_api: NeonApi) -> PulumiCli:
    """Stack `local` (Pulumi.local.yaml) pointed at this test's emulator, not yet deployed."""
    pulumi.init("local", {"neon:apiUrl": neon_api.url}, secrets={"neon:apiKey": neon_api.api_key})
    return pulumi
