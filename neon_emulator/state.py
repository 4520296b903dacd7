"""The fake's state: projects, branches, operations; ids, passwords, errors and the wire format.

`ProjectState` holds the API Project object (`info`), its branches (id -> BranchState), endpoints
(id -> API Endpoint object) and operations (id -> OperationState, in creation order). A
`BranchState` holds the API Branch, its real cluster (`compute`), its roles (name -> API Role, no
password), the roles' passwords (name -> password, None for NOLOGIN roles and roles made with
SQL) and its databases (name -> API Database). The lookups (`project.branch(id)`,
`branch.role(name)`, ...) answer 404 with a Neon-style message for what does not exist.
"""

from __future__ import annotations

import bisect
import json
import secrets
import string
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from neon_emulator.computes import Compute

OPERATION_ERRORS = {
    "failed": "compute failed to start (injected fault)",
    "error": "operation failed permanently (injected fault)",
}
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


def stamp(seconds: float) -> str:
    """The API timestamp of a clock time (seconds since the epoch)."""
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def now() -> str:
    return stamp(time.time())


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
    """An operation: its fixed fields (`info`: id, action, ids, created_at) and its `timeline`.

    The timeline lists (clock time, status) of every change, in order, the first `scheduling`
    at creation. What the API shows (`at(t)`) is a function of the clock only: reading an
    operation never moves it on.
    """

    info: dict[str, Any]
    timeline: list[tuple[float, str]]

    @property
    def ends_at(self) -> float:
        """When the operation reaches its terminal status."""
        return self.timeline[-1][0]

    def at(self, t: float) -> dict[str, Any]:
        """The API Operation object as it stands at clock time `t`."""
        index = max(bisect.bisect_right([time for time, _ in self.timeline], t) - 1, 0)
        changed, status = self.timeline[index]
        started = next(time for time, state in self.timeline if state != "scheduling")
        view = {
            **self.info,
            "status": status,
            "failures_count": sum(1 for _, state in self.timeline[: index + 1] if state in ("failed", "error")),
            "updated_at": stamp(changed),
            "total_duration_ms": round(max(min(t, self.ends_at) - started, 0) * 1000),
        }
        if status in OPERATION_ERRORS:
            view["error"] = OPERATION_ERRORS[status]
        if status == "failed":
            view["retry_at"] = stamp(self.timeline[index + 1][0])
        return view


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

    def busy(self, t: float) -> bool:
        """Whether an operation of the project is unfinished at clock time `t`."""
        return self.free_at() > t

    def free_at(self) -> float:
        """When the last operation of the project ends (0 if it has none): the next one starts then."""
        return max((op.ends_at for op in self.operations.values()), default=0.0)

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
