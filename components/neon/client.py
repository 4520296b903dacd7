"""The Neon API calls this project needs, over `components.neon.session` (timeouts, retries), and
operation polling.

A POST that creates an object is never repeated blindly: before it, the client notes which objects
of that name already exist; when its response is lost (connection error, timeout, 500/502/504) it
lists them again and adopts the one that is new; only when none is new is the POST sent again.

Responses are read as plain dicts with `.get`, so unknown fields and enum values never break
parsing.
"""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import quote

from components.neon.errors import NeonError, NeonNotFound, NeonOperationFailed
from components.neon.session import ApiSession, Json

OPERATION_SUCCEEDED = frozenset({"finished", "skipped"})
OPERATION_FAILED = frozenset({"error", "cancelled"})
PROJECTS_PAGE = 400  # the largest page GET /projects serves
# A poll timed for an operation's expected end comes this much after it.
POLL_AFTER_EXPECTED_END_SECONDS = 0.05
# How long the last operation seen finishing took, by API base URL: shared by the clients of one
# process (a provider host makes a client per call, and one API's operations take alike).
_OPERATION_SECONDS: dict[str, float] = {}


def _segment(value: str) -> str:
    return quote(value, safe="")


def _named(items: list[Json], name: str) -> list[Json]:
    return [item for item in items if isinstance(item, dict) and item.get("name") == name]


def _seconds(milliseconds: object) -> float:
    """An API duration in ms as seconds (0 when absent or not a number)."""
    valid = isinstance(milliseconds, int | float) and not isinstance(milliseconds, bool)
    return milliseconds / 1000 if valid else 0.0


class NeonClient(ApiSession):
    """Calls of the Neon API that this project needs, each returning Neon's JSON body as a dict."""

    # --- operations -------------------------------------------------------------------------

    def wait_for_operations(self, project_id: str, operations: list[Json] | None) -> None:
        """Poll every operation until all are terminal; `failed` is not terminal (Neon retries it).

        Polls follow the operations' own timing (`_next_poll`); until this client has seen one
        finish, and whenever one runs late, the interval grows from operation_poll_seconds by 1.5x
        up to operation_poll_max_seconds."""
        pending = {op["id"]: op for op in operations or [] if isinstance(op, dict) and op.get("id")}
        deadline = self._clock() + self.policy.operation_deadline_seconds
        interval = self.policy.operation_poll_seconds
        ran_before: dict[str, object] = {}
        while True:
            for op_id, op in list(pending.items()):
                if op.get("status") in OPERATION_SUCCEEDED:
                    self._learn_duration(op)
                    del pending[op_id]
                elif op.get("status") in OPERATION_FAILED:
                    raise NeonOperationFailed(op, "failed")
            if not pending:
                return
            moving = [op for op_id, op in pending.items() if op.get("total_duration_ms") != ran_before.get(op_id, -1)]
            ran_before = {op_id: op.get("total_duration_ms") for op_id, op in pending.items()}
            wait = self._next_poll(moving, interval)
            if self._clock() + wait > deadline:
                slowest = next(iter(pending.values()))
                raise NeonOperationFailed(
                    slowest, f"did not finish within {self.policy.operation_deadline_seconds:g} s"
                )
            self._sleep(wait)
            interval = min(interval * 1.5, self.policy.operation_poll_max_seconds)
            for op_id in pending:
                latest = self._get(f"/projects/{_segment(project_id)}/operations/{_segment(op_id)}").get("operation")
                pending[op_id] = {**pending[op_id], **latest} if isinstance(latest, dict) else pending[op_id]

    def _learn_duration(self, operation: Json) -> None:
        """Remember how long a finished operation took (`total_duration_ms`), to time the polls of
        this process's later waits on the same API."""
        duration = _seconds(operation.get("total_duration_ms"))
        if duration > 0:
            _OPERATION_SECONDS[self.base_url] = duration

    def _next_poll(self, moving: list[Json], interval: float) -> float:
        """Seconds until the next poll: just after the soonest expected end among the operations first
        seen or run on since the last poll (`moving`): an operation lasts what the last finished one
        took, less what it has run (`total_duration_ms`); at most operation_poll_max_seconds.
        `interval` (the backoff) before any operation finished, and when none of them has an end
        ahead: an overdue or queued operation is not polled more often than the backoff allows."""
        typical = _OPERATION_SECONDS.get(self.base_url)
        if typical is None:
            return interval
        ahead = [typical - _seconds(op.get("total_duration_ms")) for op in moving]
        ahead = [remaining for remaining in ahead if remaining > 0]
        if not ahead:
            return interval
        return min(min(ahead) + POLL_AFTER_EXPECTED_END_SECONDS, self.policy.operation_poll_max_seconds)

    def pending_operations(self, project_id: str) -> list[Json]:
        """The project's operations that are not terminal yet (to wait for after adopting an object)."""
        operations = self._get(f"/projects/{_segment(project_id)}/operations").get("operations") or []
        done = OPERATION_SUCCEEDED | OPERATION_FAILED
        return [op for op in operations if isinstance(op, dict) and op.get("status") not in done]

    def _adopted(self, project_id: str, kind: str, found: Json) -> Json:
        """A creation answer for an object found after a lost response: its pending operations included."""
        return {kind: found, "operations": self.pending_operations(project_id), "adopted": True}

    def _done(self, project_id: str, response: Json) -> Json:
        self.wait_for_operations(project_id, response.get("operations"))
        return response

    def _create(
        self, kind: str, path: str, body: Json, project_id: str | None, same: Callable[[], list[Json]], key: str = "id"
    ) -> Json:
        """A creating POST (answer and operations) that neither leaves an orphan nor adopts what it did not make.

        `same` lists the objects this POST could be mistaken for (same name; for an endpoint, same
        branch and type). Their `key` (the id; a role has none, its name is unique per branch) is
        noted BEFORE the POST. After a lost answer only an object with a new key is adopted; none
        new means the POST did not happen and it is sent again; several new ones mean something
        else is creating the same object right now: a clear error, nothing adopted. `project_id`
        is None for a project (the object is its own project).
        """
        before = {item.get(key) for item in same()}

        def rediscover() -> Json | None:
            new = [item for item in same() if item.get(key) not in before]
            if len(new) > 1:
                shown = ", ".join(str(item.get(key)) for item in new)
                raise NeonError(
                    f"POST {path}: the answer was lost and {len(new)} matching {kind} objects appeared since the "
                    f"request ({shown}); cannot tell which one this call made: delete the extra ones by hand"
                )
            return self._adopted(project_id or new[0]["id"], kind, new[0]) if new else None

        response = self.request("POST", path, body=body, rediscover=rediscover)
        return self._done(project_id or response[kind]["id"], response)

    # --- projects ---------------------------------------------------------------------------

    def find_projects(self, name: str, org_id: str | None = None) -> list[Json]:
        """Projects whose name is exactly `name` (search, then exact match), over every page."""
        found: list[Json] = []
        cursor = None
        while True:
            page = self._get("/projects", search=name, org_id=org_id, limit=PROJECTS_PAGE, cursor=cursor)
            projects = [p for p in page.get("projects") or [] if isinstance(p, dict)]
            found += [p for p in projects if p.get("name") == name]
            previous, cursor = cursor, (page.get("pagination") or {}).get("cursor")
            if len(projects) < PROJECTS_PAGE or not cursor or cursor == previous:
                return found

    def create_project(self, spec: Json) -> Json:
        """Create a project (with its default branch, endpoint, owner role and database) and wait for it.

        Project names are not unique: after a lost answer only a project of that name that did not
        exist before the POST is adopted.
        """
        return self._create(
            "project",
            "/projects",
            {"project": spec},
            None,
            lambda: self.find_projects(spec["name"], spec.get("org_id")),
        )

    def get_project(self, project_id: str) -> Json:
        return self._get(f"/projects/{_segment(project_id)}").get("project") or {}

    def update_project(self, project_id: str, changes: Json) -> Json:
        response = self.request("PATCH", f"/projects/{_segment(project_id)}", body={"project": changes})
        return self._done(project_id, response).get("project") or {}

    def delete_project(self, project_id: str) -> None:
        self._delete(project_id, f"/projects/{_segment(project_id)}")

    def _delete(self, project_id: str, path: str) -> None:
        """DELETE treating 404 as already gone; waits for any operations the deletion returns."""
        try:
            response = self.request("DELETE", path)
        except NeonNotFound:
            return
        self.wait_for_operations(project_id, response.get("operations"))

    # --- branches and endpoints -------------------------------------------------------------

    def list_branches(self, project_id: str) -> list[Json]:
        return self._get(f"/projects/{_segment(project_id)}/branches").get("branches") or []

    def find_branch(self, project_id: str, name: str) -> Json | None:
        return next(iter(_named(self.list_branches(project_id), name)), None)

    def get_branch(self, project_id: str, branch_id: str) -> Json:
        return self._get(f"/projects/{_segment(project_id)}/branches/{_segment(branch_id)}").get("branch") or {}

    def create_branch(self, project_id: str, branch: Json, endpoints: list[Json]) -> Json:
        return self._create(
            "branch",
            f"/projects/{_segment(project_id)}/branches",
            {"branch": branch, "endpoints": endpoints},
            project_id,
            lambda: _named(self.list_branches(project_id), branch["name"]),
        )

    def update_branch(self, project_id: str, branch_id: str, changes: Json) -> Json:
        path = f"/projects/{_segment(project_id)}/branches/{_segment(branch_id)}"
        return self._done(project_id, self.request("PATCH", path, body={"branch": changes})).get("branch") or {}

    def delete_branch(self, project_id: str, branch_id: str) -> None:
        self._delete(project_id, f"/projects/{_segment(project_id)}/branches/{_segment(branch_id)}")

    def branch_endpoints(self, project_id: str, branch_id: str) -> list[Json]:
        path = f"/projects/{_segment(project_id)}/branches/{_segment(branch_id)}/endpoints"
        return self._get(path).get("endpoints") or []

    def read_write_endpoint(self, project_id: str, branch_id: str) -> Json | None:
        return next((e for e in self.branch_endpoints(project_id, branch_id) if e.get("type") == "read_write"), None)

    def create_endpoint(self, project_id: str, endpoint: Json) -> Json:
        response = self._create(
            "endpoint",
            f"/projects/{_segment(project_id)}/endpoints",
            {"endpoint": endpoint},
            project_id,
            lambda: [
                e for e in self.branch_endpoints(project_id, endpoint["branch_id"]) if e.get("type") == endpoint["type"]
            ],
        )
        return response.get("endpoint") or {}

    def get_endpoint(self, project_id: str, endpoint_id: str) -> Json:
        return self._get(f"/projects/{_segment(project_id)}/endpoints/{_segment(endpoint_id)}").get("endpoint") or {}

    def delete_endpoint(self, project_id: str, endpoint_id: str) -> None:
        self._delete(project_id, f"/projects/{_segment(project_id)}/endpoints/{_segment(endpoint_id)}")

    def update_endpoint(self, project_id: str, endpoint_id: str, changes: Json) -> Json:
        path = f"/projects/{_segment(project_id)}/endpoints/{_segment(endpoint_id)}"
        return self._done(project_id, self.request("PATCH", path, body={"endpoint": changes})).get("endpoint") or {}

    # --- roles ------------------------------------------------------------------------------

    def _roles_path(self, project_id: str, branch_id: str) -> str:
        return f"/projects/{_segment(project_id)}/branches/{_segment(branch_id)}/roles"

    def list_roles(self, project_id: str, branch_id: str) -> list[Json]:
        return self._get(self._roles_path(project_id, branch_id)).get("roles") or []

    def find_role(self, project_id: str, branch_id: str, name: str) -> Json | None:
        return next(iter(_named(self.list_roles(project_id, branch_id), name)), None)

    def create_role(self, project_id: str, branch_id: str, name: str) -> Json:
        """Create a role; the answer's role carries the password, unless a lost response made us adopt it."""
        return self._create(
            "role",
            self._roles_path(project_id, branch_id),
            {"role": {"name": name}},
            project_id,
            lambda: _named(self.list_roles(project_id, branch_id), name),
            key="name",
        )

    def reset_role_password(self, project_id: str, branch_id: str, name: str) -> str:
        """A new password for the role. Repeating a reset whose answer was lost is harmless: the last one wins."""
        path = f"{self._roles_path(project_id, branch_id)}/{_segment(name)}/reset_password"
        response = self._done(project_id, self.request("POST", path, idempotent=True))
        password = (response.get("role") or {}).get("password")
        if not password:
            raise NeonError(f"resetting the password of role {name!r} answered without a password")
        return password

    def delete_role(self, project_id: str, branch_id: str, name: str) -> None:
        self._delete(project_id, f"{self._roles_path(project_id, branch_id)}/{_segment(name)}")

    # --- databases --------------------------------------------------------------------------

    def _databases_path(self, project_id: str, branch_id: str) -> str:
        return f"/projects/{_segment(project_id)}/branches/{_segment(branch_id)}/databases"

    def list_databases(self, project_id: str, branch_id: str) -> list[Json]:
        return self._get(self._databases_path(project_id, branch_id)).get("databases") or []

    def find_database(self, project_id: str, branch_id: str, name: str) -> Json | None:
        return next(iter(_named(self.list_databases(project_id, branch_id), name)), None)

    def create_database(self, project_id: str, branch_id: str, name: str, owner_name: str) -> Json:
        response = self._create(
            "database",
            self._databases_path(project_id, branch_id),
            {"database": {"name": name, "owner_name": owner_name}},
            project_id,
            lambda: _named(self.list_databases(project_id, branch_id), name),
        )
        return response.get("database") or {}

    def update_database(self, project_id: str, branch_id: str, name: str, changes: Json) -> Json:
        path = f"{self._databases_path(project_id, branch_id)}/{_segment(name)}"
        return self._done(project_id, self.request("PATCH", path, body={"database": changes})).get("database") or {}

    def delete_database(self, project_id: str, branch_id: str, name: str) -> None:
        self._delete(project_id, f"{self._databases_path(project_id, branch_id)}/{_segment(name)}")
