"""A stateful fake of the Neon API v2, checked against Neon's OpenAPI document, on real PostgreSQL.

`NeonFake` keeps projects, branches, endpoints, roles, databases and operations in memory and
serves them over HTTP on loopback (`fake.serve()` -> base URL ending in `/api/v2`) with Bearer
authentication (`fake.api_key`; a missing or wrong key gets 401).

Every request is checked against the pinned document (components.emulator.spec) in strict mode:
unknown body fields and unknown query parameters are errors too. An invalid request gets a 400
with a Neon-style body (`{"code", "message", "request_id"}`) and is appended to `fake.violations`.
Every response of the fake is checked as well; an invalid one is a bug of the fake: it is logged,
appended to `fake.response_errors` and answered with a 500.

State model (all in `fake.projects`, a dict id -> ProjectState):
- ProjectState: `info` (the API Project object), `branches` (id -> BranchState), `endpoints`
  (id -> API Endpoint object), `operations` (id -> OperationState).
- BranchState: `info` (API Branch), `compute` (a real PostgreSQL + PgBouncer cluster,
  components.emulator.computes.Compute), `roles` (name -> API Role, no password),
  `passwords` (name -> password, None for NOLOGIN roles), `databases` (name -> API Database).
- OperationState: `info` (API Operation) and the statuses it still has to go through.

Semantics (what a provider relies on):
- Mutating calls return operations in status `scheduling`; each poll (GET of the operation, or a
  listing of the project's operations) moves an operation one step: running, then finished
  (`fake.operation_polls` polls in all, default 2). While any operation of a project is not
  terminal, other mutating calls on it get 423 Locked (project DELETE excepted).
- Project create makes the default branch, a read_write endpoint, the owner role (password in
  the response) and the database, and returns connection_uris with pooler_host.
- Each branch owns one real cluster; a child starts as a physical copy of its parent (data,
  roles, passwords). `init_source: schema-only` empties the user tables; children of a protected
  branch get a new password for every role (changed in the cluster too). `parent_lsn` and
  `parent_timestamp` are recorded, but the copy is always of the parent's current state.
- Roles and databases created or dropped with SQL appear in (vanish from) the API, as on Neon;
  the fake does not know the passwords of roles made with SQL.
- A branch has at most one read_write endpoint; all endpoints of a branch answer on its
  cluster: host `127.0.0.1:<port>`, pooled twin `127.0.0.2:<port>` (PgBouncer), TLS on.
- Branch delete is refused for the default branch, a branch with children and a protected
  branch. DELETE of a branch, endpoint, role or database that does not exist answers
  `fake.gone_delete_status` (204 as the document says; set 404 to exercise that path).
- `fake.plan = "free"` applies Free plan limits: 10 branches per project, history retention
  <= 21600 s, at most 2 CU per compute, no protected branches. The default plan has none.
- `fake.calls` records (method, path template, status) of every request; `write_calls()` and
  `reveal_calls()` filter it. A request whose response is lost is recorded with the status
  the fake would have sent.
- `fake.faults` injects failures (components.emulator.faults documents the API).
"""

from __future__ import annotations

import atexit
import copy
import itertools
import json
import secrets
import string
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from components.emulator.computes import Compute, ComputeFactory
from components.emulator.faults import Faults
from components.emulator.spec import SpecValidator
from components.settings import NEON_REGIONS
from components.uri import pooled_host, postgres_uri

TERMINAL_STATUSES = frozenset({"finished", "skipped", "error", "cancelled"})
RESERVED_ROLES = frozenset({"postgres", "neon_superuser", "cloud_admin", "web_access"})
FREE_PLAN_BRANCHES = 10
FREE_PLAN_HISTORY_SECONDS = 21600
FREE_PLAN_MAX_CU = 2.0
DEFAULT_REGION = "aws-us-east-2"
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


def _name_id(prefix: str = "") -> str:
    tail = "".join(secrets.choice(string.ascii_lowercase + string.digits) for _ in range(8))
    return f"{prefix}{secrets.choice(_ADJECTIVES)}-{secrets.choice(_NOUNS)}-{tail}"


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

    def branch_endpoints(self, branch_id: str) -> list[dict[str, Any]]:
        return [e for e in self.endpoints.values() if e["branch_id"] == branch_id]


# A bound handler method: (path parameters, query, body) -> (status, payload).
Handler = Callable[[dict[str, str], dict[str, list[str]], dict[str, Any]], tuple[int, Any]]


class NeonFake:
    """The fake control plane: state, request handling, validation, call log and faults."""

    def __init__(
        self, api_key: str | None = None, validator: SpecValidator | None = None, data_dir: Path | None = None
    ):
        """`data_dir`: where the clusters' files go (default: the system's temporary directory)."""
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
        self.operation_polls = 2
        self.gone_delete_status = 204
        self.plan = "launch"
        self._database_ids = itertools.count(1)
        self._routes: dict[tuple[str, str], Handler] = {
            ("GET", "/projects"): self.list_projects,
            ("POST", "/projects"): self.create_project,
            ("GET", "/projects/{project_id}"): self.get_project,
            ("PATCH", "/projects/{project_id}"): self.update_project,
            ("DELETE", "/projects/{project_id}"): self.delete_project,
            ("GET", "/projects/{project_id}/connection_uri"): self.connection_uri,
            ("GET", "/projects/{project_id}/operations"): self.list_operations,
            ("GET", "/projects/{project_id}/operations/{operation_id}"): self.get_operation,
            ("GET", "/projects/{project_id}/branches"): self.list_branches,
            ("POST", "/projects/{project_id}/branches"): self.create_branch,
            ("GET", "/projects/{project_id}/branches/{branch_id}"): self.get_branch,
            ("PATCH", "/projects/{project_id}/branches/{branch_id}"): self.update_branch,
            ("DELETE", "/projects/{project_id}/branches/{branch_id}"): self.delete_branch,
            ("GET", "/projects/{project_id}/branches/{branch_id}/endpoints"): self.list_branch_endpoints,
            ("GET", "/projects/{project_id}/endpoints"): self.list_endpoints,
            ("POST", "/projects/{project_id}/endpoints"): self.create_endpoint,
            ("GET", "/projects/{project_id}/endpoints/{endpoint_id}"): self.get_endpoint,
            ("PATCH", "/projects/{project_id}/endpoints/{endpoint_id}"): self.update_endpoint,
            ("DELETE", "/projects/{project_id}/endpoints/{endpoint_id}"): self.delete_endpoint,
            ("GET", "/projects/{project_id}/branches/{branch_id}/roles"): self.list_roles,
            ("POST", "/projects/{project_id}/branches/{branch_id}/roles"): self.create_role,
            ("GET", "/projects/{project_id}/branches/{branch_id}/roles/{role_name}"): self.get_role,
            ("DELETE", "/projects/{project_id}/branches/{branch_id}/roles/{role_name}"): self.delete_role,
            (
                "GET",
                "/projects/{project_id}/branches/{branch_id}/roles/{role_name}/reveal_password",
            ): self.reveal_password,
            (
                "POST",
                "/projects/{project_id}/branches/{branch_id}/roles/{role_name}/reset_password",
            ): self.reset_password,
            ("GET", "/projects/{project_id}/branches/{branch_id}/databases"): self.list_databases,
            ("POST", "/projects/{project_id}/branches/{branch_id}/databases"): self.create_database,
            ("GET", "/projects/{project_id}/branches/{branch_id}/databases/{database_name}"): self.get_database,
            ("PATCH", "/projects/{project_id}/branches/{branch_id}/databases/{database_name}"): self.update_database,
            ("DELETE", "/projects/{project_id}/branches/{branch_id}/databases/{database_name}"): self.delete_database,
        }
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
        """Back to an empty account: no projects (clusters stopped), calls, violations or faults."""
        with self.lock:
            self.stop_computes()
            self.calls.clear()
            self.violations.clear()
            self.response_errors.clear()
            self.faults.clear()
            self.operation_polls = 2
            self.gone_delete_status = 204
            self.plan = "launch"

    def finish_operations(self) -> None:
        """Complete every pending operation at once (for tests that do not poll)."""
        with self.lock:
            for project in self.projects.values():
                for operation in project.operations.values():
                    while not operation.terminal:
                        operation.advance()

    # ----- dispatch -------------------------------------------------------------------------

    def routes(self) -> list[tuple[str, str]]:
        """(method, path template) of every operation the fake implements."""
        return list(self._routes)

    def dispatch(self, method: str, template: str, params: dict[str, str], query: dict[str, list[str]], body: Any):
        """(status, payload) of one validated, authenticated request."""
        handler = self._routes.get((method, template))
        if handler is None:
            raise ApiError(501, f"{method} {template} is not implemented by the local Neon emulator")
        with self.lock:
            if (
                method != "GET"
                and "project_id" in params
                and not (method == "DELETE" and template == "/projects/{project_id}")
            ):
                project = self.projects.get(params["project_id"])
                if project is not None and project.busy():
                    raise ApiError(423, "project already has running operations, scheduling of new ones is prohibited")
            return handler(params, query, body or {})

    # ----- lookups --------------------------------------------------------------------------

    def _project(self, params: dict[str, str]) -> ProjectState:
        project = self.projects.get(params["project_id"])
        if project is None:
            raise ApiError(404, f"project {params['project_id']} not found")
        return project

    def _branch(self, project: ProjectState, branch_id: str) -> BranchState:
        branch = project.branches.get(branch_id)
        if branch is None:
            raise ApiError(404, f"branch {branch_id} not found")
        return branch

    def _synced_branch(self, project: ProjectState, branch_id: str) -> BranchState:
        """The branch, its roles and databases brought up to date with its cluster.

        As on Neon, roles and databases created or dropped with SQL show up in (or vanish from)
        the API. Passwords of roles made with SQL are unknown to the fake (reveal_password: 404).
        """
        branch = self._branch(project, branch_id)
        roles, databases = branch.compute.catalog()
        for name in roles - branch.roles.keys():
            branch.roles[name] = self._role_info(branch, name)
            branch.passwords[name] = None
        for name in branch.roles.keys() - roles:
            del branch.roles[name]
            del branch.passwords[name]
        for name, owner in databases.items():
            if name not in branch.databases:
                branch.databases[name] = self._database_info(branch, name, owner)
            branch.databases[name]["owner_name"] = owner
        for name in branch.databases.keys() - databases.keys():
            del branch.databases[name]
        return branch

    def _role(self, branch: BranchState, name: str) -> dict[str, Any]:
        if name not in branch.roles:
            raise ApiError(404, f"role {name} not found")
        return branch.roles[name]

    def _database(self, branch: BranchState, name: str) -> dict[str, Any]:
        if name not in branch.databases:
            raise ApiError(404, f"database {name} not found")
        return branch.databases[name]

    def _gone(self, what: str) -> tuple[int, Any]:
        if self.gone_delete_status == 404:
            raise ApiError(404, f"{what} not found")
        return self.gone_delete_status, None

    # ----- operations -----------------------------------------------------------------------

    def _operation(
        self, project: ProjectState, action: str, branch_id: str | None = None, endpoint_id: str | None = None
    ) -> dict[str, Any]:
        stamp = now()
        info: dict[str, Any] = {
            "id": str(uuid.uuid4()),
            "project_id": project.id,
            "action": action,
            "status": "scheduling",
            "failures_count": 0,
            "created_at": stamp,
            "updated_at": stamp,
            "total_duration_ms": 0,
        }
        if branch_id:
            info["branch_id"] = branch_id
        if endpoint_id:
            info["endpoint_id"] = endpoint_id
        steps = ["running"] * max(self.operation_polls - 1, 0)
        outcome = self.faults.take_operation(action)
        if outcome == "recovered":
            steps += ["failed", "finished"]
        elif outcome == "error":
            steps += ["failed", "error"]
        else:
            steps.append("finished")
        project.operations[info["id"]] = OperationState(info, steps)
        return info

    def _config_operations(self, project: ProjectState, branch: BranchState) -> list[dict[str, Any]]:
        """`apply_config` on each endpoint of the branch (roles, databases, passwords changed)."""
        endpoints = project.branch_endpoints(branch.id)
        if not endpoints:
            return []
        return [self._operation(project, "apply_config", branch.id, e["id"]) for e in endpoints]

    def get_operation(self, params, query, body):
        project = self._project(params)
        operation = project.operations.get(params["operation_id"])
        if operation is None:
            raise ApiError(404, f"operation {params['operation_id']} not found")
        operation.advance()
        return 200, {"operation": operation.info}

    def list_operations(self, params, query, body):
        project = self._project(params)
        for operation in project.operations.values():
            operation.advance()
        operations = [op.info for op in reversed(project.operations.values())]
        payload: dict[str, Any] = {"operations": operations}
        if operations:
            payload["pagination"] = {"cursor": operations[-1]["id"]}
        return 200, payload

    # ----- plan limits ----------------------------------------------------------------------

    def _check_compute_size(self, settings: dict[str, Any]) -> None:
        low, high = settings.get("autoscaling_limit_min_cu"), settings.get("autoscaling_limit_max_cu")
        if low is not None and high is not None and low > high:
            raise ApiError(400, "autoscaling_limit_min_cu must not exceed autoscaling_limit_max_cu")
        if self.plan == "free" and max(low or 0, high or 0) > FREE_PLAN_MAX_CU:
            raise ApiError(400, f"the Free plan allows at most {FREE_PLAN_MAX_CU:g} compute units")

    def _check_history(self, seconds: int | None) -> None:
        if seconds is not None and self.plan == "free" and seconds > FREE_PLAN_HISTORY_SECONDS:
            raise ApiError(400, f"history_retention_seconds exceeds the plan limit of {FREE_PLAN_HISTORY_SECONDS}")

    def _check_protected(self, protected: bool) -> None:
        if protected and self.plan == "free":
            raise ApiError(400, "protected branches are not available on the Free plan")

    # ----- projects -------------------------------------------------------------------------

    def _project_list_item(self, project: ProjectState) -> dict[str, Any]:
        keys = (
            "id",
            "platform_id",
            "region_id",
            "name",
            "provisioner",
            "default_endpoint_settings",
            "settings",
            "pg_version",
            "proxy_host",
            "branch_logical_size_limit",
            "branch_logical_size_limit_bytes",
            "store_passwords",
            "cpu_used_sec",
            "creation_source",
            "created_at",
            "updated_at",
            "owner_id",
            "org_id",
            "history_retention_seconds",
        )
        item = {k: project.info[k] for k in keys if k in project.info}
        item["active_time"] = 0
        return item

    def list_projects(self, params, query, body):
        search = query.get("search", [""])[0].lower()
        limit = int(query.get("limit", ["10"])[0])
        cursor = query.get("cursor", [""])[0]
        org_id = query.get("org_id", [None])[0]
        projects = [
            p
            for p in self.projects.values()
            if (search in p.info["name"].lower() or search in p.id)
            and (org_id is None or p.info.get("org_id") == org_id)
        ]
        if cursor:
            ids = [p.id for p in projects]
            projects = projects[ids.index(cursor) + 1 :] if cursor in ids else []
        page = projects[:limit]
        payload: dict[str, Any] = {
            "projects": [self._project_list_item(p) for p in page],
            "applications": {},
            "integrations": {},
        }
        if page:
            payload["pagination"] = {"cursor": page[-1].id}
        return 200, payload

    def get_project(self, params, query, body):
        return 200, {"project": self._project(params).info}

    def create_project(self, params, query, body):
        spec = body.get("project", {})
        region = spec.get("region_id", DEFAULT_REGION)
        if region not in NEON_REGIONS:
            raise ApiError(400, f"region {region} is not supported")
        self._check_history(spec.get("history_retention_seconds"))
        endpoint_settings = copy.deepcopy(spec.get("default_endpoint_settings", {}))
        self._check_compute_size(endpoint_settings)
        branch_spec = spec.get("branch", {})
        role_name = branch_spec.get("role_name", "neondb_owner")
        database_name = branch_spec.get("database_name", "neondb")
        if role_name in RESERVED_ROLES or role_name.startswith("pg_"):
            raise ApiError(400, f"role name {role_name} is reserved")
        stamp = now()
        project_id = _name_id()
        info: dict[str, Any] = {
            "id": project_id,
            "platform_id": "aws",
            "region_id": region,
            "name": spec.get("name", project_id),
            "provisioner": "k8s-neonvm",
            "default_endpoint_settings": endpoint_settings,
            "settings": copy.deepcopy(spec.get("settings", {})),
            "pg_version": spec.get("pg_version", 17),
            "proxy_host": "127.0.0.1",
            "branch_logical_size_limit": 0,
            "branch_logical_size_limit_bytes": 0,
            "store_passwords": spec.get("store_passwords", True),
            "cpu_used_sec": 0,
            "creation_source": "console",
            "history_retention_seconds": spec.get("history_retention_seconds", 86400),
            "created_at": stamp,
            "updated_at": stamp,
            "consumption_period_start": stamp,
            "consumption_period_end": stamp,
            "active_time_seconds": 0,
            "compute_time_seconds": 0,
            "written_data_bytes": 0,
            "data_transfer_bytes": 0,
            "data_storage_bytes_hour": 0,
            "owner_id": "local-emulator-user",
        }
        if "org_id" in spec:
            info["org_id"] = spec["org_id"]
        project = ProjectState(info)
        compute = self.computes.fresh()
        branch = BranchState(self._branch_info(project, branch_spec.get("name", "main"), None, "parent-data"), compute)
        branch.info["default"] = branch.info["primary"] = True
        branch.annotation = dict(branch_spec.get("annotations", {}))
        project.branches[branch.id] = branch
        self.projects[project_id] = project
        try:
            endpoint = self._new_endpoint(project, branch, {"type": "read_write"})
            password = new_password()
            compute.create_role(role_name, password)
            branch.roles[role_name] = self._role_info(branch, role_name)
            branch.passwords[role_name] = password
            compute.create_database(database_name, role_name)
            branch.databases[database_name] = self._database_info(branch, database_name, role_name)
        except BaseException:
            del self.projects[project_id]
            compute.stop()
            raise
        operations = [
            self._operation(project, "create_timeline", branch.id),
            self._operation(project, "start_compute", branch.id, endpoint["id"]),
        ]
        return 201, {
            "project": info,
            "connection_uris": [self._connection_details(branch, endpoint, database_name, role_name)],
            "roles": [dict(branch.roles[role_name], password=password)],
            "databases": [branch.databases[database_name]],
            "operations": operations,
            "branch": branch.info,
            "endpoints": [endpoint],
        }

    def update_project(self, params, query, body):
        project = self._project(params)
        changes = body.get("project", {})
        self._check_history(changes.get("history_retention_seconds"))
        if "default_endpoint_settings" in changes:
            self._check_compute_size(changes["default_endpoint_settings"])
            project.info["default_endpoint_settings"] = copy.deepcopy(changes["default_endpoint_settings"])
        if "settings" in changes:
            project.info["settings"] = {**project.info.get("settings", {}), **copy.deepcopy(changes["settings"])}
        for key in ("name", "history_retention_seconds"):
            if key in changes:
                project.info[key] = changes[key]
        project.info["updated_at"] = now()
        return 200, {"project": project.info, "operations": []}

    def delete_project(self, params, query, body):
        project = self._project(params)
        protected = [b.info["name"] for b in project.branches.values() if b.info["protected"]]
        if protected:
            raise ApiError(400, f"project has protected branches ({', '.join(protected)}) and cannot be deleted")
        del self.projects[project.id]
        for branch in project.branches.values():
            branch.compute.stop()
        return 200, {"project": project.info}

    def connection_uri(self, params, query, body):
        project = self._project(params)
        branch = self._branch(project, query.get("branch_id", [project.default_branch.id])[0])
        if "endpoint_id" in query:
            endpoint = project.endpoints.get(query["endpoint_id"][0])
            if endpoint is None or endpoint["branch_id"] != branch.id:
                raise ApiError(404, f"endpoint {query['endpoint_id'][0]} not found on branch {branch.id}")
        else:
            endpoint = next((e for e in project.branch_endpoints(branch.id) if e["type"] == "read_write"), None)
            if endpoint is None:
                raise ApiError(404, f"branch {branch.id} has no read_write endpoint")
        role, database = query["role_name"][0], query["database_name"][0]
        self._role(branch, role)
        self._database(branch, database)
        password = branch.passwords[role]
        if password is None:
            raise ApiError(400, f"role {role} cannot log in")
        pooled = query.get("pooled", ["false"])[0] == "true"
        if pooled:
            # PgBouncer 1.18 offers no SCRAM channel binding, so the emulator's pooled URI omits it.
            uri = postgres_uri(role, password, pooled_host(endpoint["host"]), database)
        else:
            uri = postgres_uri(role, password, endpoint["host"], database, channel_binding=True)
        return 200, {"uri": uri}

    def _connection_details(self, branch: BranchState, endpoint: dict[str, Any], database: str, role: str):
        password = branch.passwords[role] or ""
        return {
            "connection_uri": postgres_uri(role, password, endpoint["host"], database, channel_binding=True),
            "connection_parameters": {
                "database": database,
                "password": password,
                "role": role,
                "host": endpoint["host"],
                "pooler_host": pooled_host(endpoint["host"]),
            },
        }

    # ----- branches -------------------------------------------------------------------------

    def _branch_info(self, project: ProjectState, name: str, parent: BranchState | None, init_source: str):
        stamp = now()
        info: dict[str, Any] = {
            "id": _name_id("br-"),
            "project_id": project.id,
            "name": name,
            "current_state": "ready",
            "state_changed_at": stamp,
            "logical_size": 0,
            "creation_source": "console",
            "primary": False,
            "default": False,
            "protected": False,
            "cpu_used_sec": 0,
            "compute_time_seconds": 0,
            "active_time_seconds": 0,
            "written_data_bytes": 0,
            "data_transfer_bytes": 0,
            "created_at": stamp,
            "updated_at": stamp,
            "init_source": init_source,
        }
        if parent is not None:
            info["parent_id"] = parent.id
            info["parent_lsn"] = "0/1F4A2B8"
            info["parent_timestamp"] = stamp
        return info

    def _check_branch_name(self, project: ProjectState, name: str, exclude: str | None = None) -> None:
        if any(b.info["name"] == name and b.id != exclude for b in project.branches.values()):
            raise ApiError(409, f"branch with name {name} already exists")

    @staticmethod
    def _check_expiry(value: str | None) -> None:
        if value is None:
            return
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            raise ApiError(400, f"expires_at {value} is not an RFC 3339 timestamp") from None
        if moment.tzinfo is None or moment <= datetime.now(UTC):
            raise ApiError(400, "expires_at must be a timestamp in the future")

    def list_branches(self, params, query, body):
        project = self._project(params)
        search = query.get("search", [""])[0].lower()
        matching = [b for b in project.branches.values() if search in b.info["name"].lower() or search in b.id]
        branches = [b.info for b in matching]
        annotations = {b.id: b.annotation_data() for b in matching if b.annotation}
        return 200, {"branches": branches, "annotations": annotations, "pagination": {}}

    def get_branch(self, params, query, body):
        branch = self._branch(self._project(params), params["branch_id"])
        return 200, {"branch": branch.info, "annotation": branch.annotation_data()}

    def create_branch(self, params, query, body):
        project = self._project(params)
        spec = body.get("branch", {})
        endpoint_specs = body.get("endpoints", [])
        parent = self._synced_branch(project, spec.get("parent_id", project.default_branch.id))
        init_source = spec.get("init_source", "parent-data")
        if init_source not in ("parent-data", "schema-only"):
            raise ApiError(400, f"init_source must be parent-data or schema-only, not {init_source}")
        if sum(1 for e in endpoint_specs if e["type"] == "read_write") > 1:
            raise ApiError(400, "a branch can have only one read_write endpoint")
        for endpoint_spec in endpoint_specs:
            self._check_compute_size(endpoint_spec)
        self._check_protected(spec.get("protected", False))
        self._check_expiry(spec.get("expires_at"))
        if self.plan == "free" and len(project.branches) >= FREE_PLAN_BRANCHES:
            raise ApiError(400, f"the Free plan allows at most {FREE_PLAN_BRANCHES} branches per project")
        info = self._branch_info(project, "", parent, init_source)
        info["name"] = spec.get("name", info["id"])
        self._check_branch_name(project, info["name"])
        for key in ("protected", "expires_at", "parent_lsn", "parent_timestamp"):
            if key in spec:
                info[key] = spec[key]
        compute = self.computes.branch(parent.compute)
        branch = BranchState(info, compute)
        try:
            if init_source == "schema-only":
                compute.truncate_user_tables(list(parent.databases))
            for name, role in parent.roles.items():
                branch.roles[name] = dict(role, branch_id=branch.id)
                branch.passwords[name] = parent.passwords[name]
                if parent.info["protected"] and parent.passwords[name] is not None:
                    branch.passwords[name] = new_password()
                    compute.set_password(name, branch.passwords[name])
            for name, database in parent.databases.items():
                branch.databases[name] = dict(database, branch_id=branch.id, id=next(self._database_ids))
        except BaseException:
            compute.stop()
            raise
        project.branches[branch.id] = branch
        operations = [self._operation(project, "create_branch", branch.id)]
        endpoints = [self._new_endpoint(project, branch, endpoint_spec) for endpoint_spec in endpoint_specs]
        operations += [self._operation(project, "start_compute", branch.id, e["id"]) for e in endpoints]
        payload: dict[str, Any] = {
            "branch": info,
            "endpoints": endpoints,
            "operations": operations,
            "roles": list(branch.roles.values()),
            "databases": list(branch.databases.values()),
        }
        read_write = next((e for e in endpoints if e["type"] == "read_write"), None)
        if read_write is not None:
            payload["connection_uris"] = [
                self._connection_details(branch, read_write, db["name"], db["owner_name"])
                for db in branch.databases.values()
                if branch.passwords.get(db["owner_name"])
            ]
        return 201, payload

    def update_branch(self, params, query, body):
        project = self._project(params)
        branch = self._branch(project, params["branch_id"])
        changes = body.get("branch", {})
        if "name" in changes:
            self._check_branch_name(project, changes["name"], exclude=branch.id)
        if "protected" in changes:
            self._check_protected(changes["protected"])
        if changes.get("expires_at") is not None:
            self._check_expiry(changes["expires_at"])
        for key in ("name", "protected"):
            if key in changes:
                branch.info[key] = changes[key]
        if "expires_at" in changes:
            if changes["expires_at"] is None:
                branch.info.pop("expires_at", None)
            else:
                branch.info["expires_at"] = changes["expires_at"]
        branch.info["updated_at"] = now()
        return 200, {"branch": branch.info, "operations": []}

    def delete_branch(self, params, query, body):
        project = self._project(params)
        branch = project.branches.get(params["branch_id"])
        if branch is None:
            return self._gone(f"branch {params['branch_id']}")
        if branch.info["default"]:
            raise ApiError(400, "cannot delete the project's default branch")
        children = [b.id for b in project.branches.values() if b.info.get("parent_id") == branch.id]
        if children:
            raise ApiError(400, f"branch {branch.id} has child branches ({', '.join(children)}) and cannot be deleted")
        if branch.info["protected"]:
            raise ApiError(400, f"branch {branch.id} is protected and cannot be deleted")
        operations = []
        for endpoint in project.branch_endpoints(branch.id):
            del project.endpoints[endpoint["id"]]
            operations.append(self._operation(project, "suspend_compute", branch.id, endpoint["id"]))
        operations.append(self._operation(project, "delete_timeline", branch.id))
        del project.branches[branch.id]
        branch.compute.stop()
        return 200, {"branch": branch.info, "operations": operations}

    # ----- endpoints ------------------------------------------------------------------------

    def _new_endpoint(self, project: ProjectState, branch: BranchState, spec: dict[str, Any]) -> dict[str, Any]:
        if spec["type"] == "read_write" and any(e["type"] == "read_write" for e in project.branch_endpoints(branch.id)):
            raise ApiError(400, f"branch {branch.id} already has a read_write endpoint")
        defaults = project.info.get("default_endpoint_settings", {})
        stamp = now()
        endpoint: dict[str, Any] = {
            "host": branch.compute.host,
            "id": _name_id("ep-"),
            "project_id": project.id,
            "branch_id": branch.id,
            "autoscaling_limit_min_cu": spec.get(
                "autoscaling_limit_min_cu", defaults.get("autoscaling_limit_min_cu", 0.25)
            ),
            "autoscaling_limit_max_cu": spec.get(
                "autoscaling_limit_max_cu", defaults.get("autoscaling_limit_max_cu", 0.25)
            ),
            "region_id": project.info["region_id"],
            "type": spec["type"],
            "current_state": "active",
            "pooler_enabled": spec.get("pooler_enabled", False),
            "pooler_mode": "transaction",
            "disabled": spec.get("disabled", False),
            "passwordless_access": spec.get("passwordless_access", True),
            "creation_source": "console",
            "created_at": stamp,
            "updated_at": stamp,
            "started_at": stamp,
            "settings": copy.deepcopy(spec.get("settings", {"pg_settings": {}})),
            "proxy_host": "127.0.0.1",
            "suspend_timeout_seconds": spec.get("suspend_timeout_seconds", defaults.get("suspend_timeout_seconds", 0)),
            "provisioner": spec.get("provisioner", "k8s-neonvm"),
        }
        if "name" in spec:
            endpoint["name"] = spec["name"]
        project.endpoints[endpoint["id"]] = endpoint
        return endpoint

    def _endpoint(self, project: ProjectState, endpoint_id: str) -> dict[str, Any]:
        endpoint = project.endpoints.get(endpoint_id)
        if endpoint is None:
            raise ApiError(404, f"endpoint {endpoint_id} not found")
        return endpoint

    def list_endpoints(self, params, query, body):
        return 200, {"endpoints": list(self._project(params).endpoints.values())}

    def list_branch_endpoints(self, params, query, body):
        project = self._project(params)
        branch = self._branch(project, params["branch_id"])
        return 200, {"endpoints": project.branch_endpoints(branch.id)}

    def get_endpoint(self, params, query, body):
        return 200, {"endpoint": self._endpoint(self._project(params), params["endpoint_id"])}

    def create_endpoint(self, params, query, body):
        project = self._project(params)
        spec = body["endpoint"]
        branch = self._branch(project, spec["branch_id"])
        if spec.get("region_id", project.info["region_id"]) != project.info["region_id"]:
            raise ApiError(400, f"region_id must be the project's region {project.info['region_id']}")
        self._check_compute_size(spec)
        endpoint = self._new_endpoint(project, branch, spec)
        operations = [self._operation(project, "start_compute", branch.id, endpoint["id"])]
        return 201, {"endpoint": endpoint, "operations": operations}

    def update_endpoint(self, params, query, body):
        project = self._project(params)
        endpoint = self._endpoint(project, params["endpoint_id"])
        changes = body.get("endpoint", {})
        if changes.get("branch_id", endpoint["branch_id"]) != endpoint["branch_id"]:
            raise ApiError(400, "the local emulator cannot move an endpoint to another branch")
        self._check_compute_size(
            {
                "autoscaling_limit_min_cu": changes.get(
                    "autoscaling_limit_min_cu", endpoint["autoscaling_limit_min_cu"]
                ),
                "autoscaling_limit_max_cu": changes.get(
                    "autoscaling_limit_max_cu", endpoint["autoscaling_limit_max_cu"]
                ),
            }
        )
        for key in (
            "autoscaling_limit_min_cu",
            "autoscaling_limit_max_cu",
            "suspend_timeout_seconds",
            "settings",
            "disabled",
            "passwordless_access",
            "name",
            "provisioner",
            "pooler_enabled",
        ):
            if key in changes:
                endpoint[key] = copy.deepcopy(changes[key])
        endpoint["updated_at"] = now()
        operations = [self._operation(project, "apply_config", endpoint["branch_id"], endpoint["id"])]
        return 200, {"endpoint": endpoint, "operations": operations}

    def delete_endpoint(self, params, query, body):
        project = self._project(params)
        endpoint = project.endpoints.pop(params["endpoint_id"], None)
        if endpoint is None:
            return self._gone(f"endpoint {params['endpoint_id']}")
        endpoint["current_state"] = "idle"
        operations = [self._operation(project, "suspend_compute", endpoint["branch_id"], endpoint["id"])]
        return 200, {"endpoint": endpoint, "operations": operations}

    # ----- roles ----------------------------------------------------------------------------

    @staticmethod
    def _role_info(branch: BranchState, name: str) -> dict[str, Any]:
        stamp = now()
        return {
            "branch_id": branch.id,
            "name": name,
            "protected": False,
            "authentication_method": "password",
            "created_at": stamp,
            "updated_at": stamp,
        }

    def list_roles(self, params, query, body):
        branch = self._synced_branch(self._project(params), params["branch_id"])
        return 200, {"roles": list(branch.roles.values())}

    def get_role(self, params, query, body):
        branch = self._synced_branch(self._project(params), params["branch_id"])
        return 200, {"role": self._role(branch, params["role_name"])}

    def create_role(self, params, query, body):
        project = self._project(params)
        branch = self._synced_branch(project, params["branch_id"])
        name = body["role"]["name"]
        if name in RESERVED_ROLES or name.startswith("pg_") or not name or len(name) > 63:
            raise ApiError(400, f"role name {name!r} is reserved or invalid")
        if name in branch.roles:
            raise ApiError(409, f"role {name} already exists")
        password = None if body["role"].get("no_login") else new_password()
        branch.compute.create_role(name, password)
        role = self._role_info(branch, name)
        if password is None:
            role["authentication_method"] = "no_login"
        branch.roles[name] = role
        branch.passwords[name] = password
        shown = dict(role, password=password) if password else role
        return 201, {"role": shown, "operations": self._config_operations(project, branch)}

    def delete_role(self, params, query, body):
        project = self._project(params)
        branch = self._synced_branch(project, params["branch_id"])
        name = params["role_name"]
        if name not in branch.roles:
            return self._gone(f"role {name}")
        owned = [db["name"] for db in branch.databases.values() if db["owner_name"] == name]
        if owned:
            raise ApiError(400, f"role {name} owns databases ({', '.join(owned)}) and cannot be deleted")
        branch.compute.drop_role(name)
        role = branch.roles.pop(name)
        branch.passwords.pop(name)
        return 200, {"role": role, "operations": self._config_operations(project, branch)}

    def reveal_password(self, params, query, body):
        project = self._project(params)
        branch = self._synced_branch(project, params["branch_id"])
        self._role(branch, params["role_name"])
        if not project.info["store_passwords"]:
            raise ApiError(412, "storing passwords is disabled for this project")
        password = branch.passwords[params["role_name"]]
        if password is None:
            raise ApiError(404, f"role {params['role_name']} has no password")
        return 200, {"password": password}

    def reset_password(self, params, query, body):
        project = self._project(params)
        branch = self._synced_branch(project, params["branch_id"])
        role = self._role(branch, params["role_name"])
        if branch.passwords[role["name"]] is None:
            raise ApiError(400, f"role {role['name']} cannot log in")
        password = new_password()
        branch.compute.set_password(role["name"], password)
        branch.passwords[role["name"]] = password
        role["updated_at"] = now()
        return 200, {"role": dict(role, password=password), "operations": self._config_operations(project, branch)}

    # ----- databases ------------------------------------------------------------------------

    def _database_info(self, branch: BranchState, name: str, owner: str) -> dict[str, Any]:
        stamp = now()
        return {
            "id": next(self._database_ids),
            "branch_id": branch.id,
            "name": name,
            "owner_name": owner,
            "created_at": stamp,
            "updated_at": stamp,
        }

    def list_databases(self, params, query, body):
        branch = self._synced_branch(self._project(params), params["branch_id"])
        return 200, {"databases": list(branch.databases.values())}

    def get_database(self, params, query, body):
        branch = self._synced_branch(self._project(params), params["branch_id"])
        return 200, {"database": self._database(branch, params["database_name"])}

    def create_database(self, params, query, body):
        project = self._project(params)
        branch = self._synced_branch(project, params["branch_id"])
        name, owner = body["database"]["name"], body["database"]["owner_name"]
        if not name or len(name) > 63 or name in ("postgres", "template0", "template1"):
            raise ApiError(400, f"database name {name!r} is reserved or invalid")
        if name in branch.databases:
            raise ApiError(409, f"database {name} already exists")
        if owner not in branch.roles:
            raise ApiError(404, f"role {owner} not found")
        branch.compute.create_database(name, owner)
        database = self._database_info(branch, name, owner)
        branch.databases[name] = database
        return 201, {"database": database, "operations": self._config_operations(project, branch)}

    def update_database(self, params, query, body):
        project = self._project(params)
        branch = self._synced_branch(project, params["branch_id"])
        database = self._database(branch, params["database_name"])
        changes = body.get("database", {})
        owner = changes.get("owner_name", database["owner_name"])
        new_name = changes.get("name", database["name"])
        if owner not in branch.roles:
            raise ApiError(404, f"role {owner} not found")
        if new_name != database["name"] and new_name in branch.databases:
            raise ApiError(409, f"database {new_name} already exists")
        if owner != database["owner_name"]:
            branch.compute.set_database_owner(database["name"], owner)
            database["owner_name"] = owner
        if new_name != database["name"]:
            branch.compute.rename_database(database["name"], new_name)
            del branch.databases[database["name"]]
            database["name"] = new_name
            branch.databases[new_name] = database
        database["updated_at"] = now()
        return 200, {"database": database, "operations": self._config_operations(project, branch)}

    def delete_database(self, params, query, body):
        project = self._project(params)
        branch = self._synced_branch(project, params["branch_id"])
        database = branch.databases.get(params["database_name"])
        if database is None:
            return self._gone(f"database {params['database_name']}")
        branch.compute.drop_database(database["name"])
        del branch.databases[database["name"]]
        return 200, {"database": database, "operations": self._config_operations(project, branch)}


def error_body(message: str, code: str = "") -> dict[str, Any]:
    return {"code": code, "message": message, "request_id": str(uuid.uuid4())}


def encode(payload: Any) -> bytes:
    return json.dumps(payload).encode()
