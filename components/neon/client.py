"""A small client of the Neon API v2 over httpx: timeouts, bounded retries, operation polling.

Retry rules (inside one total time budget per call):
- 423 Locked, 429 Too Many Requests and 503 are retried for every method;
- 502, 504 and connection errors/timeouts are retried only for idempotent methods;
- every wait is exponential backoff with jitter, so never shorter than half the initial backoff; a
  longer Retry-After replaces it (with jitter on top); a wait that would end past the budget is
  not started: the call fails at once;
- a POST that creates an object is never repeated blindly: before it, the client notes which
  objects of that name already exist; when its response is lost (connection error, timeout,
  500/502/504) it lists them again and adopts the one that is new; only when none is new is the
  POST sent again.

Responses are read as plain dicts with `.get`, so unknown fields and enum values never break
parsing. The API key lives only in the headers of the httpx client; it is never an attribute,
never in a repr and never in an error message.
"""

from __future__ import annotations

import email.utils
import math
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC
from typing import Any
from urllib.parse import quote

import httpx

from components.defaults import NEON_API_URL
from components.neon.errors import (
    NeonAPIError,
    NeonError,
    NeonNotFound,
    NeonOperationFailed,
    NeonRetryBudgetExceeded,
    NeonTransportError,
)

OPERATION_SUCCEEDED = frozenset({"finished", "skipped"})
OPERATION_FAILED = frozenset({"error", "cancelled"})
RETRY_ALWAYS = frozenset({423, 429, 503})
RETRY_IF_IDEMPOTENT = frozenset({502, 504})
RESPONSE_MAYBE_LOST = frozenset({500, 502, 504})
IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "PATCH", "DELETE"})

Json = dict[str, Any]
PROJECTS_PAGE = 400  # the largest page GET /projects serves


@dataclass(frozen=True)
class ClientPolicy:
    """Timeouts, retry budget and operation polling; tests shrink these to run fast."""

    connect_timeout_seconds: float = 10.0
    read_timeout_seconds: float = 60.0
    retry_budget_seconds: float = 180.0
    backoff_initial_seconds: float = 0.5
    backoff_max_seconds: float = 20.0
    operation_poll_seconds: float = 0.5
    operation_poll_max_seconds: float = 5.0
    operation_deadline_seconds: float = 900.0

    def __post_init__(self) -> None:
        for name, value in vars(self).items():
            if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value < math.inf:
                raise ValueError(f"ClientPolicy.{name} must be a positive number of seconds, got {value!r}")
        if self.backoff_max_seconds < self.backoff_initial_seconds:
            raise ValueError(
                f"ClientPolicy.backoff_max_seconds ({self.backoff_max_seconds:g}) is below "
                f"backoff_initial_seconds ({self.backoff_initial_seconds:g})"
            )


def _segment(value: str) -> str:
    return quote(value, safe="")


def _named(items: list[Json], name: str) -> list[Json]:
    return [item for item in items if isinstance(item, dict) and item.get("name") == name]


def _retry_after_seconds(response: httpx.Response) -> float | None:
    """Retry-After as seconds from now (delta-seconds or an HTTP date), or None when absent or unreadable.

    A negative delay or a date in the past gives 0: the backoff then decides. `inf` stays infinite.
    """
    value = response.headers.get("retry-after", "").strip()
    try:
        seconds = float(value)
    except ValueError:
        seconds = _seconds_until(value)
    if seconds is None or math.isnan(seconds):
        return None
    return max(0.0, seconds)


def _seconds_until(http_date: str) -> float | None:
    """Seconds from now to an HTTP date (naive dates taken as UTC), or None when it is not one."""
    try:
        when = email.utils.parsedate_to_datetime(http_date)
        return (when if when.tzinfo else when.replace(tzinfo=UTC)).timestamp() - time.time()
    except (ValueError, OverflowError):  # OverflowError: absurd years or offsets
        return None


def _api_error(method: str, path: str, response: httpx.Response) -> NeonAPIError:
    code = message = request_id = None
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict):
        code = body.get("code") if isinstance(body.get("code"), str) else None
        message = body.get("message") if isinstance(body.get("message"), str) else None
        request_id = body.get("request_id") if isinstance(body.get("request_id"), str) else None
    request_id = request_id or response.headers.get("x-neon-ret-request-id") or response.headers.get("x-request-id")
    kind = NeonNotFound if response.status_code == 404 else NeonAPIError
    return kind(method, path, response.status_code, code, message, request_id)


def _success_body(method: str, path: str, response: httpx.Response) -> Json:
    """The JSON object of a successful answer ({} when empty); anything else is a clear error."""
    if not response.content:
        return {}
    try:
        body = response.json()
    except ValueError:
        raise NeonAPIError(method, path, response.status_code, message="the answer is not JSON") from None
    return body if isinstance(body, dict) else {}


class NeonClient:
    """Calls of the Neon API that this project needs, each returning Neon's JSON body as a dict."""

    def __init__(
        self,
        api_key: str,
        base_url: str = NEON_API_URL,
        policy: ClientPolicy | None = None,
        *,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ):
        if not api_key:
            raise NeonError("no Neon API key: set the secret config neon:apiKey or the NEON_API_KEY variable")
        self.base_url = base_url.rstrip("/")
        self.policy = policy or ClientPolicy()
        self._sleep = sleep
        self._clock = clock
        self._http = httpx.Client(
            base_url=self.base_url,
            headers={"Authorization": f"Bearer {api_key}", "Accept": "application/json"},
            timeout=httpx.Timeout(self.policy.read_timeout_seconds, connect=self.policy.connect_timeout_seconds),
            transport=transport,
        )

    def __repr__(self) -> str:
        return f"NeonClient(base_url={self.base_url!r})"

    def __enter__(self) -> NeonClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    # --- the retry loop ---------------------------------------------------------------------

    def _backoff(self, attempt: int) -> float:
        """Exponential backoff with jitter: between half and all of min(max, initial * 2^(attempt-1))."""
        ceiling = min(self.policy.backoff_max_seconds, self.policy.backoff_initial_seconds * 2 ** (attempt - 1))
        return ceiling / 2 + random.random() * ceiling / 2  # noqa: S311 (jitter, not cryptography)

    def _delay(self, attempt: int, retry_after: float | None) -> float:
        """The wait before the next attempt: the backoff, or a longer Retry-After plus up to 10% jitter.

        The backoff is the floor: Retry-After 0, negative, unreadable or in the past never waits less.
        """
        backoff = self._backoff(attempt)
        if retry_after is None or retry_after <= backoff:
            return backoff
        return retry_after * (1 + random.random() / 10)  # noqa: S311 (jitter, not cryptography)

    def request(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, Any] | None = None,
        body: Json | None = None,
        idempotent: bool | None = None,
        rediscover: Callable[[], Json | None] | None = None,
    ) -> Json:
        """One API call with retries. `rediscover` (for creating POSTs) finds the object if a lost response hid it."""
        idempotent = method in IDEMPOTENT_METHODS if idempotent is None else idempotent
        budget = self.policy.retry_budget_seconds
        deadline = self._clock() + budget
        attempt = 0
        while True:
            attempt += 1
            retry_after = None
            try:
                response = self._http.request(method, path, params=params, json=body)
            except httpx.TransportError as exc:
                error: NeonError = NeonTransportError(f"{method} {path}: no response ({type(exc).__name__})")
                if rediscover is not None:
                    found = rediscover()
                    if found is not None:
                        return found
                elif not idempotent:
                    raise error from None
            else:
                if response.status_code < 400:
                    return _success_body(method, path, response)
                error = _api_error(method, path, response)
                status = response.status_code
                if rediscover is not None and status in RESPONSE_MAYBE_LOST:
                    found = rediscover()
                    if found is not None:
                        return found
                    if status == 500:
                        raise error
                elif not (status in RETRY_ALWAYS or (idempotent and status in RETRY_IF_IDEMPOTENT)):
                    raise error
                retry_after = _retry_after_seconds(response)
            delay = self._delay(attempt, retry_after)
            if self._clock() + delay > deadline:
                raise NeonRetryBudgetExceeded(method, path, attempt, budget, error, delay, retry_after) from None
            self._sleep(delay)

    def _get(self, path: str, **params: Any) -> Json:
        return self.request("GET", path, params={k: v for k, v in params.items() if v is not None} or None)

    # --- operations -------------------------------------------------------------------------

    def wait_for_operations(self, project_id: str, operations: list[Json] | None) -> None:
        """Poll every operation until all are terminal; `failed` is not terminal (Neon retries it)."""
        pending = {op["id"]: op for op in operations or [] if isinstance(op, dict) and op.get("id")}
        deadline = self._clock() + self.policy.operation_deadline_seconds
        interval = self.policy.operation_poll_seconds
        while True:
            for op_id, op in list(pending.items()):
                if op.get("status") in OPERATION_SUCCEEDED:
                    del pending[op_id]
                elif op.get("status") in OPERATION_FAILED:
                    raise NeonOperationFailed(op, "failed")
            if not pending:
                return
            if self._clock() + interval > deadline:
                slowest = next(iter(pending.values()))
                raise NeonOperationFailed(
                    slowest, f"did not finish within {self.policy.operation_deadline_seconds:g} s"
                )
            self._sleep(interval)
            interval = min(interval * 1.5, self.policy.operation_poll_max_seconds)
            for op_id in pending:
                latest = self._get(f"/projects/{_segment(project_id)}/operations/{_segment(op_id)}").get("operation")
                pending[op_id] = {**pending[op_id], **latest} if isinstance(latest, dict) else pending[op_id]

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
