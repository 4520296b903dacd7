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
    """Retries stopped: the next wait would end past the call's total time budget.

    `last_error` says why a retry was needed; `wait_seconds` is the wait that did not fit (backoff,
    or the server's Retry-After when that was longer).
    """

    def __init__(
        self,
        method: str,
        path: str,
        attempts: int,
        budget_seconds: float,
        last_error: Exception,
        wait_seconds: float,
        retry_after_seconds: float | None = None,
    ):
        self.last_error = last_error
        self.attempts = attempts
        self.wait_seconds = wait_seconds
        asked = f" (Retry-After said {retry_after_seconds:g} s)" if retry_after_seconds is not None else ""
        super().__init__(
            f"{method} {path}: gave up after {attempts} attempts: the next wait of {wait_seconds:.3g} s{asked} "
            f"would end past the retry budget of {budget_seconds:g} s; last error: {last_error}"
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
