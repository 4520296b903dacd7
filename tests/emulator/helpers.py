"""Helpers for the tests of the fake Neon API: operation polling, project and branch creation."""

from __future__ import annotations

import time
from typing import Any

import httpx


def wait(client: httpx.Client, project_id: str, operations: list[dict[str, Any]]) -> list[str]:
    """Poll each operation until it is terminal (for at most 10 s); the final statuses."""
    statuses = []
    deadline = time.monotonic() + 10
    for operation in operations:
        while True:
            status = client.get(f"/projects/{project_id}/operations/{operation['id']}").json()["operation"]["status"]
            if status in ("finished", "skipped", "error", "cancelled") or time.monotonic() > deadline:
                break
            time.sleep(0.005)
        statuses.append(status)
    return statuses


def create_project(client: httpx.Client, **fields: Any) -> dict[str, Any]:
    """A new project, its operations finished; the creation response."""
    response = client.post("/projects", json={"project": {"name": "test", **fields}})
    assert response.status_code == 201, response.text
    created = response.json()
    wait(client, created["project"]["id"], created["operations"])
    return created


def create_branch(client: httpx.Client, project_id: str, body: dict[str, Any]) -> dict[str, Any]:
    response = client.post(f"/projects/{project_id}/branches", json=body)
    assert response.status_code == 201, response.text
    created = response.json()
    wait(client, project_id, created["operations"])
    return created
