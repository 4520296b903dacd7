"""A stateful fake of the Neon API v2, checked against Neon's OpenAPI document, on real PostgreSQL.

`NeonFake` keeps projects, branches, endpoints, roles, databases and operations in memory
(neon_emulator.state) and is served over HTTP on loopback by neon_emulator.api_server, with
Bearer authentication (`fake.api_key`; a missing or wrong key gets 401). The handlers of each
resource live in their own module (projects, branches, endpoints, roles, databases, operations,
connections): functions `(fake, path parameters, query, body) -> (status, payload)` listed in the
module's ROUTES; this class holds what they share.

Every request is checked against the pinned document (neon_emulator.spec) in strict mode:
unknown body fields and unknown query parameters are errors too. An invalid request gets a 400
with a Neon-style body (`{"code", "message", "request_id"}`) and is appended to `fake.violations`.
Every response of the fake is checked as well; an invalid one is a bug of the fake: it is logged,
appended to `fake.response_errors` and answered with a 500.

Semantics shared by every resource (what a provider relies on):
- Mutating calls return operations; they run on the clock (`fake.clock`, seconds since the
  epoch; `time.time` unless injected), one after another per project, each
  `fake.operation_seconds` long (default 1 s), whether or not anyone polls them
  (neon_emulator.operations). While an operation of a project is not finished, other mutating
  calls on it get 423 Locked (project DELETE excepted).
- Roles and databases created or dropped with SQL appear in (vanish from) the API, as on Neon;
  the fake does not know the passwords of roles made with SQL.
- DELETE of a branch, endpoint, role or database that does not exist answers
  `fake.gone_delete_status` (204 as the document says; set 404 to exercise that path).
- `fake.plan = "free"` applies Free plan limits (neon_emulator.limits). The default plan has none.
- `fake.calls` records (method, path template, status) of every request; `write_calls()` and
  `reveal_calls()` filter it. A request whose response is lost is recorded with the status
  the fake would have sent.
- `fake.faults` injects failures (neon_emulator.faults documents the API).
- A branch's `expires_at` is honoured on the clock: before each request, expired branches are
  deleted with their endpoints and clusters (neon_emulator.expiry).
"""

from __future__ import annotations

import atexit
import itertools
import math
import secrets
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from neon_emulator import branches, connections, databases, endpoints, expiry, operations, projects, roles, users
from neon_emulator.computes import ComputeFactory
from neon_emulator.faults import Faults
from neon_emulator.spec import SpecValidator
from neon_emulator.state import ApiError, BranchState, ProjectState

# How long an operation runs: Neon's take about a second (the OpenAPI document's finished example
# spans one second from created_at to updated_at).
DEFAULT_OPERATION_SECONDS = 1.0


def checked_operation_seconds(seconds: float) -> float:
    """`seconds` as an operation duration: a finite number >= 0 (else ValueError)."""
    if isinstance(seconds, bool) or not isinstance(seconds, int | float) or not 0 <= seconds < math.inf:
        raise ValueError(f"operation_seconds must be a finite number of seconds >= 0, not {seconds!r}")
    return float(seconds)


# A route handler: (the fake, path parameters, query, body) -> (status, payload).
Handler = Callable[["NeonFake", dict[str, str], dict[str, list[str]], dict[str, Any]], tuple[int, Any]]
ROUTES: dict[tuple[str, str], Handler] = {
    route: handler
    for module in (projects, connections, operations, branches, endpoints, roles, databases, users)
    for route, handler in module.ROUTES.items()
}


class NeonFake:
    """The fake control plane: state, dispatch (and the 423 lock), call log, faults, shared lookups."""

    def __init__(
        self,
        api_key: str | None = None,
        validator: SpecValidator | None = None,
        data_dir: Path | None = None,
        operation_seconds: float = DEFAULT_OPERATION_SECONDS,
        clock: Callable[[], float] = time.time,
    ):
        """`data_dir`: where the clusters' files go (default: the system's temporary directory).

        `operation_seconds` and `clock` are the defaults that `reset()` restores.
        """
        self.operation_seconds = operation_seconds
        self.clock = clock
        self._defaults = (self.operation_seconds, clock)
        self.api_key = api_key or "neon-fake-" + secrets.token_hex(16)
        self.validator = validator or SpecValidator()
        self.faults = Faults()
        self.computes = ComputeFactory(data_dir)
        self.computes.prepare_in_background()
        self.lock = threading.RLock()
        self.projects: dict[str, ProjectState] = {}
        self.calls: list[tuple[str, str, int]] = []
        self.violations: list[str] = []
        self.response_errors: list[str] = []
        self.gone_delete_status = 204
        self.plan = "launch"
        self.database_ids = itertools.count(1)
        atexit.register(self.close)

    # ----- call log -------------------------------------------------------------------------

    def write_calls(self) -> list[tuple[str, str, int]]:
        return [call for call in self.calls if call[0] != "GET"]

    def reveal_calls(self) -> list[tuple[str, str, int]]:
        return [call for call in self.calls if call[1].endswith("/reveal_password")]

    # ----- lifecycle ------------------------------------------------------------------------

    def stop_computes(self) -> None:
        """Stop and remove every cluster of every project."""
        with self.lock:
            for project in self.projects.values():
                for branch in project.branches.values():
                    branch.compute.stop()
            self.projects.clear()

    def close(self) -> None:
        """Stop every cluster and remove the cluster template: the fake is done."""
        self.stop_computes()
        self.computes.close()

    def reset(self) -> None:
        """Back to an empty account: no projects (clusters stopped), calls, violations, faults; default options."""
        with self.lock:
            self.stop_computes()
            self.calls.clear()
            self.violations.clear()
            self.response_errors.clear()
            self.faults.clear()
            self.operation_seconds, self.clock = self._defaults
            self.gone_delete_status = 204
            self.plan = "launch"

    @property
    def operation_seconds(self) -> float:
        """How long each operation runs (seconds of `clock`)."""
        return self._operation_seconds

    @operation_seconds.setter
    def operation_seconds(self, seconds: float) -> None:
        self._operation_seconds = checked_operation_seconds(seconds)

    # ----- dispatch -------------------------------------------------------------------------

    @staticmethod
    def routes() -> list[tuple[str, str]]:
        """(method, path template) of every operation the fake implements."""
        return list(ROUTES)

    def dispatch(self, method: str, template: str, params: dict[str, str], query: dict[str, list[str]], body: Any):
        """(status, payload) of one validated, authenticated request."""
        handler = ROUTES.get((method, template))
        if handler is None:
            raise ApiError(501, f"{method} {template} is not implemented by the local Neon emulator")
        with self.lock:
            expiry.sweep(self, self.clock())
            if (
                method != "GET"
                and "project_id" in params
                and not (method == "DELETE" and template == "/projects/{project_id}")
            ):
                project = self.projects.get(params["project_id"])
                if project is not None and project.busy(self.clock()):
                    raise ApiError(423, "project already has running operations, scheduling of new ones is prohibited")
            return handler(self, params, query, body or {})

    # ----- shared by the handlers -----------------------------------------------------------

    def project(self, params: dict[str, str]) -> ProjectState:
        """The project named by the path parameters (404 if there is none)."""
        project = self.projects.get(params["project_id"])
        if project is None:
            raise ApiError(404, f"project {params['project_id']} not found")
        return project

    def synced_branch(self, project: ProjectState, branch_id: str) -> BranchState:
        """The branch, its roles and databases brought up to date with its cluster.

        As on Neon, roles and databases created or dropped with SQL show up in (or vanish from)
        the API. Passwords of roles made with SQL are unknown to the fake (reveal_password: 404).
        A suspended compute is started first: the catalog lives in its server.
        """
        branch = project.branch(branch_id)
        if not branch.compute.running:
            branch.compute.resume()
            for endpoint in project.branch_endpoints(branch.id):
                if endpoints.endpoint_compute(project, endpoint) is branch.compute:
                    endpoints.mark_active(endpoint)
        role_names, database_owners = branch.compute.catalog()
        for name in role_names - branch.roles.keys():
            branch.roles[name] = roles.role_info(branch, name)
            branch.passwords[name] = None
        for name in branch.roles.keys() - role_names:
            del branch.roles[name]
            del branch.passwords[name]
        for name, owner in database_owners.items():
            if name not in branch.databases:
                branch.databases[name] = databases.database_info(self, branch, name, owner)
            branch.databases[name]["owner_name"] = owner
        for name in branch.databases.keys() - database_owners.keys():
            del branch.databases[name]
        return branch

    def gone(self, what: str) -> tuple[int, Any]:
        """The answer to a DELETE of something that does not exist (`gone_delete_status`)."""
        if self.gone_delete_status == 404:
            raise ApiError(404, f"{what} not found")
        return self.gone_delete_status, None
