"""The fake's state: projects, branches, operations; ids, passwords, errors and the wire format.

`ProjectState` holds the API Project object (`info`), its branches (id -> BranchState), endpoints
(id -> API Endpoint object) and operations (id -> OperationState). A `BranchState` holds the API
Branch, its real cluster (`compute`), its roles (name -> API Role, no password), the roles'
passwords (name -> password, None for NOLOGIN roles and roles made with SQL) and its databases
(name -> API Database). The lookups (`project.branch(id)`, `branch.role(name)`, ...) answer 404
with a Neon-style message for what does not exist.
"""

from __future__ import annotations

import json
import secrets
import string
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from neon_emulator.computes import Compute

TERMINAL_STATUSES = frozenset({"finished", "skipped", "error", "cancelled"})
_ADJECTIVES = ("autumn", "bold", "calm", "dawn", "eager", "fancy", "gentle", "hidden", "icy", "jolly", "lively")
_NOUNS = ("breeze", "cloud", "dew", "field", "glade", "hill", "lake", "meadow", "night", "pond", "river")
_ALNUM = string.ascii_letters + string.digits

class ApiError(Exception):
    """An error answer of the API: HTTP status, Neon-style message."""

    def __init__(self, status: int, message: str, code: str = ""):
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code


def now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def new_password() -> str:
    """Like Neon's: `npg_` and 12 random letters/digits (71 bits of entropy)."""
    return "npg_" + "".join(secrets.choice(_ALNUM) for _ in range(12))


def name_id(prefix: str = "") -> str:
    """A Neon-style id: `<prefix><adjective>-<noun>-<8 random characters>`."""
    tail = "".join(secrets.choice(string.ascii_lowercase + string.digits) for _ in range(8))
    return f"{prefix}{secrets.choice(_ADJECTIVES)}-{secrets.choice(_NOUNS)}-{tail}"


def error_body(message: str, code: str = "") -> dict[str, Any]:
    return {"code": code, "message": message, "request_id": str(uuid.uuid4())}


def encode(payload: Any) -> bytes:
    return json.dumps(payload).encode()


@dataclass
class OperationState:
    info: dict[str, Any]
    remaining: list[str]

    @property
    def terminal(self) -> bool:
        return self.info["status"] in TERMINAL_STATUSES

    def advance(self) -> None:
        if not self.remaining:
            return
        status = self.remaining.pop(0)
        self.info["status"] = status
        self.info["updated_at"] = now()
        if status == "failed":
            self.info["failures_count"] += 1
            self.info["error"] = "compute failed to start (injected fault)"
            self.info["retry_at"] = now()
        if status == "error":
            self.info["failures_count"] += 1
            self.info["error"] = "operation failed permanently (injected fault)"
        if status == "finished":
            self.info.pop("error", None)
            self.info.pop("retry_at", None)


@dataclass
class BranchState:
    info: dict[str, Any]
    compute: Compute
    roles: dict[str, dict[str, Any]] = field(default_factory=dict)
    passwords: dict[str, str | None] = field(default_factory=dict)
    databases: dict[str, dict[str, Any]] = field(default_factory=dict)
    annotation: dict[str, str] = field(default_factory=dict)

    @property
    def id(self) -> str:
        return self.info["id"]

    def annotation_data(self) -> dict[str, Any]:
        return {"object": {"type": "console/branch", "id": self.id}, "value": self.annotation}

    def role(self, name: str) -> dict[str, Any]:
        if name not in self.roles:
            raise ApiError(404, f"role {name} not found")
        return self.roles[name]

    def database(self, name: str) -> dict[str, Any]:
        if name not in self.databases:
            raise ApiError(404, f"database {name} not found")
        return self.databases[name]


@dataclass
class ProjectState:
    info: dict[str, Any]
    branches: dict[str, BranchState] = field(default_factory=dict)
    endpoints: dict[str, dict[str, Any]] = field(default_factory=dict)
    operations: dict[str, OperationState] = field(default_factory=dict)

    @property
    def id(self) -> str:
        return self.info["id"]

    @property
    def default_branch(self) -> BranchState:
        return next(b for b in self.branches.values() if b.info["default"])

    def busy(self) -> bool:
        return any(not op.terminal for op in self.operations.values())

    def branch(self, branch_id: str) -> BranchState:
        branch = self.branches.get(branch_id)
        if branch is None:
            raise ApiError(404, f"branch {branch_id} not found")
        return branch

    def endpoint(self, endpoint_id: str) -> dict[str, Any]:
        endpoint = self.endpoints.get(endpoint_id)
        if endpoint is None:
            raise ApiError(404, f"endpoint {endpoint_id} not found")
        return endpoint

    def branch_endpoints(self, branch_id: str) -> list[dict[str, Any]]:
        return [e for e in self.endpoints.values() if e["branch_id"] == branch_id]
