"""Typed errors of the Neon control plane client.

No error ever carries the API key, a password or a request body: only the HTTP method, the
path (ids and names), Neon's error code and message, and the request id Neon assigned.
"""

from __future__ import annotations


class NeonError(Exception):
    """Base of every error raised by the Neon client and providers."""


class NeonAPIError(NeonError):
    """Neon answered with an error status."""

    def __init__(
        self,
        method: str,
        path: str,
        status: int,
        code: str | None = None,
        message: str | None = None,
        request_id: str | None = None,
    ):
        self.method = method
        self.path = path
        self.status = status
        self.code = code
        self.message = message
        self.request_id = request_id
        detail = f"{method} {path} failed with HTTP {status}"
        if code:
            detail += f" ({code})"
        if message:
            detail += f": {message}"
        if request_id:
            detail += f" [request id {request_id}]"
        super().__init__(detail)


class NeonNotFound(NeonAPIError):
    """HTTP 404: the object does not exist (or no longer exists)."""


class NeonTransportError(NeonError):
    """The request could not be sent, or its response was lost (connection error, timeout)."""


class NeonRetryBudgetExceeded(NeonError):
    """Retries stopped because the call's total time budget ran out; `last_error` says why they were needed."""

    def __init__(self, method: str, path: str, attempts: int, budget_seconds: float, last_error: Exception):
        self.last_error = last_error
        self.attempts = attempts
        super().__init__(
            f"{method} {path}: gave up after {attempts} attempts within the retry budget of "
            f"{budget_seconds:g} s; last error: {last_error}"
        )


class NeonOperationFailed(NeonError):
    """A Neon operation ended in `error` or `cancelled`, or did not finish before the deadline."""

    def __init__(self, operation: dict, reason: str):
        self.operation_id = operation.get("id")
        self.action = operation.get("action")
        self.status = operation.get("status")
        self.error_text = operation.get("error")
        self.failures_count = operation.get("failures_count")
        super().__init__(
            f"Neon operation {self.operation_id} ({self.action}) {reason}: status {self.status}, "
            f"error {self.error_text!r}, failures_count {self.failures_count}"
        )
