"""Which settings the stack has: the project's keys with their defaults, and the keys of other
namespaces the program reads. The defaults and limits come from `components.defaults`; the
defaults are declared again, with their types, in Pulumi.yaml, and a test keeps the two in agreement.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from components.defaults import (
    ALLOW_DESTRUCTIVE,
    ALLOW_OUT_OF_ORDER,
    BRANCH_INIT_SOURCE,
    HISTORY_RETENTION_SECONDS,
    LOCK_TIMEOUT,
    MAX_CU,
    MIN_CU,
    PASSWORD_VERSION,
    PG_CONNECT_TIMEOUT_SECONDS,
    PG_VERSION,
    PROTECT_PRIMARY_BRANCH,
    READ_REPLICAS,
    REGION,
    STATEMENT_TIMEOUT,
    SUSPEND_TIMEOUT_SECONDS,
)

PROJECT = "neon-stack"
PROJECT_ROOT = Path(__file__).resolve().parents[2]
SCHEMA_ROOT = PROJECT_ROOT / "schema"

# Each setting: default (as a Python value) and the type its raw config value parses to.
DEFAULTS: dict[str, Any] = {
    "projectName": "",
    "adoptProjectId": "",
    "region": REGION,
    "pgVersion": PG_VERSION,
    "orgId": "",
    "historyRetentionSeconds": HISTORY_RETENTION_SECONDS,
    "computeMinCu": f"{MIN_CU:g}",
    "computeMaxCu": f"{MAX_CU:g}",
    "suspendTimeoutSeconds": SUSPEND_TIMEOUT_SECONDS,
    "branches": [],
    "parentStack": "",
    "branchName": "",
    "branchInitSource": BRANCH_INIT_SOURCE,
    "protect": False,
    "apps": ["chatkit", "learnflow"],
    "allowDestructiveMigrations": ALLOW_DESTRUCTIVE,
    "allowOutOfOrderMigrations": ALLOW_OUT_OF_ORDER,
    "migrationLockTimeout": LOCK_TIMEOUT,
    "migrationStatementTimeout": STATEMENT_TIMEOUT,
    "baselineVersions": [],
    "passwordVersion": PASSWORD_VERSION,
    "kubernetesMode": "cluster",
    "kubeconfig": "",
    "kubeContext": "",
    "renderDirectory": "rendered",
    "createNamespaces": True,
    "namespaces": [],
    "secretName": "postgres-credentials",
    "daprComponentName": "statestore",
    "daprScopes": [],
    "daprInitTimeout": "30s",
    "channelBinding": False,
    "allowedIps": [],
    "allowedIpsProtectedBranchesOnly": False,
    "blockPublicConnections": False,
    "deployerIps": [],
    "deployersUsePrivateNetworking": False,
    "protectPrimaryBranch": PROTECT_PRIMARY_BRANCH,
    "readReplicas": READ_REPLICAS,
    "connectTimeoutSeconds": PG_CONNECT_TIMEOUT_SECONDS,
    "branchTtl": "",
}

# Settings of other namespaces that the program reads (they cannot be typed in Pulumi.yaml).
NEON_API_URL_KEY = "neon:apiUrl"
NEON_API_KEY_KEY = "neon:apiKey"
NEON_API_KEY_ENV = "NEON_API_KEY"


def qualified(key: str) -> str:
    """A key as the stack's config holds it: `region` is `neon-stack:region`; `neon:apiUrl` stays as it is."""
    return key if ":" in key else f"{PROJECT}:{key}"
