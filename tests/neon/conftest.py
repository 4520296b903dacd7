"""Fixtures of the Neon tests: the fake Neon API and providers configured for it with fast policies."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from pulumi.dynamic import Config, ConfigureRequest

from components.neon import client as client_module
from components.neon.client import NeonClient
from components.neon.provider import NeonProvider
from components.neon.session import ClientPolicy
from tests.support.neon_fixtures import NeonApi, neon_api, neon_api_server  # noqa: F401

FAST = ClientPolicy(
    connect_timeout_seconds=2,
    read_timeout_seconds=5,
    retry_budget_seconds=10,
    backoff_initial_seconds=0.01,
    backoff_max_seconds=0.1,
    operation_poll_seconds=0.01,
    operation_poll_max_seconds=0.05,
    operation_deadline_seconds=5,
)


@pytest.fixture(autouse=True)
def _unlearned_operation_timing(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test starts with clients that have seen no operation finish (the timing is process-wide)."""
    monkeypatch.setattr(client_module, "_OPERATION_SECONDS", {})


def provider_config(api: NeonApi) -> dict[str, str]:
    return {"neon:apiUrl": api.url, "neon:apiKey": api.api_key}


@pytest.fixture
def configured(neon_api: NeonApi) -> Callable[..., NeonProvider]:  # noqa: F811
    """`configured(ProviderClass, policy=FAST)`: a provider configured for the fake, as the host does."""

    def make(cls: type[NeonProvider], policy: ClientPolicy = FAST) -> NeonProvider:
        provider = cls(policy)
        provider.configure(ConfigureRequest(Config(provider_config(neon_api), "neon-stack")))
        return provider

    return make


@pytest.fixture
def client(neon_api: NeonApi) -> NeonClient:  # noqa: F811
    with NeonClient(neon_api.api_key, neon_api.url, FAST) as made:
        yield made
