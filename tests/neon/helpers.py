"""Shared steps of the Neon provider tests."""

from __future__ import annotations

from typing import Any

import psycopg
from pulumi.dynamic import ResourceProvider

from components.neon.session import ClientPolicy
from components.uri import postgres_uri
from tests.support.neon_fixtures import NeonApi

APPS_ROLE = "chatkit_owner"
APPS_DATABASE = "chatkit"


def checked(provider: ResourceProvider, news: dict[str, Any], olds: dict[str, Any] | None = None) -> dict[str, Any]:
    result = provider.check(olds or {}, news)
    assert result.failures == [], [(f.property, f.reason) for f in result.failures]
    return result.inputs


def project_inputs(**overrides: Any) -> dict[str, Any]:
    return {"name": "neon-stack-test", "region_id": "aws-us-east-2", "role_name": APPS_ROLE,
            "database_name": APPS_DATABASE, **overrides}


def current_user(user: str, password: str, host: str, database: str) -> str:
    """Log in over TLS with the given credentials and return the session's user."""
    with psycopg.connect(postgres_uri(user, password, host, database), connect_timeout=10) as conn:
        return conn.execute("SELECT current_user").fetchone()[0]


def count(api: NeonApi, method: str, template: str) -> int:
    return sum(1 for call in api.calls if call[0] == method and call[1] == template)


def all_branches(api: NeonApi) -> list[dict[str, Any]]:
    return [b.info for p in api.projects.values() for b in p.branches.values()]


def all_roles(api: NeonApi) -> list[tuple[str, str]]:
    return [(b.id, name) for p in api.projects.values() for b in p.branches.values() for name in b.roles]


def all_databases(api: NeonApi) -> list[tuple[str, str]]:
    return [(b.id, name) for p in api.projects.values() for b in p.branches.values() for name in b.databases]


def shortest_wait(policy: ClientPolicy, attempt: int) -> float:
    """The shortest wait the client may make after `attempt`: half the backoff ceiling, whatever Retry-After says."""
    return min(policy.backoff_max_seconds, policy.backoff_initial_seconds * 2 ** (attempt - 1)) / 2


def most_attempts(policy: ClientPolicy) -> int:
    """How many requests one call can send within the budget if every wait is the shortest allowed."""
    attempts, spent = 1, shortest_wait(policy, 1)
    while spent <= policy.retry_budget_seconds:
        attempts += 1
        spent += shortest_wait(policy, attempts)
    return attempts
