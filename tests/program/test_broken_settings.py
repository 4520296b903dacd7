"""Broken settings, every key of them, refused before any resource is declared or any Neon call made.

The program runs in-process under mocks (fast enough for one case per key); the lifecycles of real
stacks run through the real Pulumi CLI in tests/engine/.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from components.settings import SettingsError
from tests.program.conftest import Deployer

BROKEN_SETTINGS = [
    ("region", "aws-mars-1"),
    ("pgVersion", "13"),
    ("pgVersion", "latest"),
    ("historyRetentionSeconds", "-1"),
    ("computeMinCu", "0.1"),
    ("computeMaxCu", "0.3"),
    ("suspendTimeoutSeconds", "forever"),
    ("branches", '["qa", "qa"]'),
    ("branches", "qa"),
    ("parentStack", "not/a"),
    ("branchInitSource", "all"),
    ("branchName", "lonely"),
    ("protect", "sometimes"),
    ("apps", "[]"),
    ("apps", '["billing"]'),
    ("apps", '["Chat"]'),
    ("allowDestructiveMigrations", "1"),
    ("allowOutOfOrderMigrations", "no way"),
    ("migrationLockTimeout", "soon"),
    ("migrationStatementTimeout", "later"),
    ("baselineVersions", '["chatkit=latest"]'),
    ("passwordVersion", "0"),
    ("kubernetesMode", "helm"),
    ("namespaces", '["chatkit=Not_A_Label"]'),
    ("secretName", "Bad Name"),
    ("daprComponentName", "-statestore"),
    ("daprScopes", '["nobody=app"]'),
    ("daprInitTimeout", "30 secs"),
    ("channelBinding", "require"),
    ("projectNmae", "typo"),
    # Accepted once, refused later by Neon, PostgreSQL, Kubernetes or Dapr: now refused here.
    ("pgVersion", "١٧"),
    ("suspendTimeoutSeconds", "30"),
    ("migrationLockTimeout", "010s"),
    ("migrationStatementTimeout", "25d"),
    ("daprInitTimeout", "0s"),
    ("apps", '["chatkit", "pg_stats"]'),
    ("apps", '["chatkit", "learnflow_"]'),
    ("namespaces", '["learnflow=chatkit"]'),
    ("namespaces", '["chatkit=default"]'),
    ("daprScopes", '["chatkit=Chat_Api"]'),
    ("branches", '["main"]'),
    ("adoptProjectId", "../projects"),
]


@pytest.mark.parametrize(("key", "value"), BROKEN_SETTINGS, ids=[f"{k}={v}" for k, v in BROKEN_SETTINGS])
def test_broken_settings_fail_before_any_resource_or_api_call(neon_api, tmp_path: Path, key: str, value: str):
    deployer = Deployer(neon_api, tmp_path / "rendered", "dev", overrides={f"neon-stack:{key}": value})
    with pytest.raises(SettingsError) as refused:
        deployer.up()
    assert any(problem.startswith(f"neon-stack:{key}: ") for problem in refused.value.problems), refused.value
    assert refused.value.partial_run.resources == []
    assert neon_api.calls == []
