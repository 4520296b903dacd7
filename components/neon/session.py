"""An authenticated session with the Neon API v2 over httpx: timeouts and one call with bounded retries.

Retry rules (inside one total time budget per call):
- 423 Locked, 429 Too Many Requests and 503 are retried for every method;
- 502, 504 and connection errors/timeouts are retried only for idempotent methods;
- every wait is exponential backoff with jitter, so never shorter than half the initial backoff; a
  longer Retry-After replaces it (with jitter on top); a wait that would end past the budget is
  not started: the call fails at once;
- a creating POST whose response may be lost (connection error, timeout, 500/502/504) asks its
  caller's `rediscover` whether the object exists before it is sent again (`components.neon.client`).

The API key lives only in the headers of the httpx client; it is never an attribute, never in a
repr and never in an error message.
"""

from __future__ import annotations

import email.utils
import math
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC
from typing import Any, Self

import httpx

from components.defaults import NEON_API_URL
from components.neon.errors import NeonAPIError, NeonError, NeonNotFound, NeonRetryBudgetExceeded, NeonTransportError

RETRY_ALWAYS = frozenset({423, 429, 503})
RETRY_IF_IDEMPOTENT = frozenset({502, 504})
RESPONSE_MAYBE_LOST = frozenset({500, 502, 504})
IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "PATCH", "DELETE"})

Json = dict[str, Any]


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


class ApiSession:
    """Calls of the Neon API, each retried by the rules above; the base of `NeonClient`."""

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
        return f"{type(self).__name__}(base_url={self.base_url!r})"

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

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
