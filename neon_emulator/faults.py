"""Fault injection for the fake Neon API: the failures a real control plane produces.

Each rule matches requests by method (None = any) and path: either a template of the Neon
document (`/projects/{project_id}/branches`, matched exactly) or a regular expression matched
in full against the concrete path (`/projects/[^/]+/branches`). Paths are relative to `/api/v2`.
A rule fires `times` times (None = forever); a request fires at most one rule, the
first added that matches.

- `add(method, path, status, times=1, retry_after=None, message=None)`: answer `status`
  (423, 429, 500, 502, 503, ...) with a Neon-style error body and, when `retry_after` is set,
  a `Retry-After` header (a number of seconds, or a string sent as it is: an HTTP date,
  garbage). Nothing is changed.
- `lose_response_after_commit(method, path, times=1)`: the request is carried out (the object
  IS created/changed/deleted) and the connection is then closed without a response.
- `delay(method, path, seconds, times=1)`: the request is carried out, then the response waits
  `seconds` before it is sent (a slow control plane; a client with a shorter timeout gives up
  while the change has happened).
- `fail_operations(action=None, outcome="recovered", times=1)`: the next operations created
  (with this `action`, e.g. "create_branch", or any) are `failed` (failures_count 1, an error
  message, `retry_at`) once their duration has run, and one duration later outcome "recovered"
  goes on to `finished`; outcome "error" ends in `error` with failures_count 2.
- `clear()`: remove every rule.
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass


@dataclass
class Fault:
    method: str | None
    path: str
    kind: str  # "status", "lose_response", "delay"
    times: int | None
    status: int = 0
    retry_after: float | str | None = None
    message: str | None = None
    seconds: float = 0.0

    def headers(self) -> dict[str, str]:
        """The Retry-After header of a status fault, if it has one."""
        if self.retry_after is None:
            return {}
        value = self.retry_after if isinstance(self.retry_after, str) else f"{self.retry_after:g}"
        return {"Retry-After": value}

    def matches(self, method: str, template: str, path: str) -> bool:
        if self.method is not None and self.method.upper() != method.upper():
            return False
        return self.path == template or re.fullmatch(self.path, path) is not None


@dataclass
class OperationFault:
    action: str | None
    outcome: str  # "recovered" or "error"
    times: int | None


class Faults:
    """The fault rules of one fake; thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._rules: list[Fault] = []
        self._operation_rules: list[OperationFault] = []

    def add(
        self,
        method: str | None,
        path: str,
        status: int,
        times: int | None = 1,
        retry_after: float | str | None = None,
        message: str | None = None,
    ) -> Fault:
        if not 400 <= status <= 599:
            raise ValueError(f"a fault status must be an HTTP error status, not {status}")
        return self._add(Fault(method, path, "status", times, status=status, retry_after=retry_after, message=message))

    def lose_response_after_commit(self, method: str | None, path: str, times: int | None = 1) -> Fault:
        return self._add(Fault(method, path, "lose_response", times))

    def delay(self, method: str | None, path: str, seconds: float, times: int | None = 1) -> Fault:
        return self._add(Fault(method, path, "delay", times, seconds=seconds))

    def fail_operations(self, action: str | None = None, outcome: str = "recovered", times: int | None = 1) -> None:
        if outcome not in ("recovered", "error"):
            raise ValueError(f"outcome must be 'recovered' or 'error', not {outcome!r}")
        with self._lock:
            self._operation_rules.append(OperationFault(action, outcome, times))

    def clear(self) -> None:
        with self._lock:
            self._rules.clear()
            self._operation_rules.clear()

    def _add(self, fault: Fault) -> Fault:
        with self._lock:
            self._rules.append(fault)
        return fault

    def take(self, method: str, template: str, path: str) -> Fault | None:
        """The first rule matching this request, used once; a request fires at most one rule."""
        with self._lock:
            for fault in self._rules:
                if fault.matches(method, template, path):
                    if fault.times is not None:
                        fault.times -= 1
                        if fault.times <= 0:
                            self._rules.remove(fault)
                    return fault
        return None

    def take_operation(self, action: str) -> str | None:
        """The outcome forced on a new operation with this action, if any."""
        with self._lock:
            for rule in self._operation_rules:
                if rule.action in (None, action):
                    if rule.times is not None:
                        rule.times -= 1
                    self._operation_rules = [r for r in self._operation_rules if r.times is None or r.times > 0]
                    return rule.outcome
        return None
