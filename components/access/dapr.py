"""The Dapr state store Component of an application, as the program declares it.

The tests hold it to our reading of the Dapr Component resource (tests/support/manifests.py).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

API_VERSION = "dapr.io/v1alpha1"
KIND = "Component"
STATE_STORE_TYPE = "state.postgresql"
STATE_STORE_VERSION = "v2"
CONNECTION_STRING_KEY = "DATABASE_URL"
SCHEMA = "dapr"
"""The one schema the app role may create in: Dapr's tables (`tablePrefix`) and its metadata table."""
METADATA_TABLE = "dapr_metadata"


def state_store_component(
    *,
    name: str,
    namespace: Any,
    secret_name: str,
    init_timeout: str,
    scopes: Sequence[str],
    labels: Mapping[str, str],
) -> dict[str, Any]:
    """Dapr `state.postgresql` v2 reading its connection string from the Secret's DATABASE_URL.

    Dapr's tables go to the `dapr` schema, the one schema the app role may create in; `exec`
    query mode works through a transaction pooler. `namespace` may be a Pulumi Output.
    """
    metadata = [
        {"name": "connectionString", "secretKeyRef": {"name": secret_name, "key": CONNECTION_STRING_KEY}},
        {"name": "tablePrefix", "value": f"{SCHEMA}."},
        {"name": "metadataTableName", "value": f"{SCHEMA}.{METADATA_TABLE}"},
        {"name": "queryExecMode", "value": "exec"},
    ]
    component: dict[str, Any] = {
        "apiVersion": API_VERSION,
        "kind": KIND,
        "metadata": {"name": name, "namespace": namespace, "labels": dict(labels)},
        "spec": {
            "type": STATE_STORE_TYPE,
            "version": STATE_STORE_VERSION,
            "initTimeout": init_timeout,
            "metadata": metadata,
        },
    }
    if scopes:
        component["scopes"] = list(scopes)
    return component
