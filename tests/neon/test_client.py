"""NeonClient against scripted transports: retry classes, backoff, lost responses, operations, errors."""

from __future__ import annotations

import json
from collections.abc import Callable

import httpx
import pytest

from components.neon.client import ClientPolicy, NeonClient
from components.neon.errors import (
    NeonAPIError,
    NeonError,
    NeonNotFound,
    NeonOperationFailed,
    NeonRetryBudgetExceeded,
    NeonTransportError,
)

API_KEY = "neon-test-key-0123456789abcdef"
POLICY = ClientPolicy(
    retry_budget_seconds=60,
    backoff_initial_seconds=1,
    backoff_max_seconds=8,
    operation_poll_seconds=1,
    operation_poll_max_seconds=2,
    operation_deadline_seconds=30,
)


class FakeTime:
    """A clock that only moves when the client sleeps."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


Handler = Callable[[httpx.Request], httpx.Response]


def scripted(*answers: httpx.Response | Exception | Handler) -> tuple[httpx.MockTransport, list[httpx.Request]]:
    """A transport answering requests in order (the last answer repeats)."""
    seen: list[httpx.Request] = []

    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        answer = answers[min(len(seen), len(answers)) - 1]
        if isinstance(answer, Exception):
            raise answer
        if callable(answer):
            return answer(request)
        return answer

    return httpx.MockTransport(handle), seen


def make_client(transport: httpx.MockTransport, time: FakeTime | None = None, policy: ClientPolicy = POLICY):
    time = time or FakeTime()
    return NeonClient(API_KEY, "https://neon.test/api/v2", policy, transport=transport, sleep=time.sleep,
                      clock=time.clock)


def error(status: int, **headers: str) -> httpx.Response:
    return httpx.Response(status, json={"code": f"E{status}", "message": f"status {status}"}, headers=headers)


OK = httpx.Response(200, json={"ok": True})


@pytest.mark.parametrize("method", ["GET", "POST", "PATCH", "DELETE"])
@pytest.mark.parametrize("status", [423, 429, 503])
def test_locked_rate_limited_and_unavailable_are_retried_for_every_method(method: str, status: int) -> None:
    transport, seen = scripted(error(status), error(status), OK)
    assert make_client(transport).request(method, "/x") == {"ok": True}
    assert len(seen) == 3


@pytest.mark.parametrize("status", [502, 504])
def test_bad_gateway_and_timeout_statuses_are_retried_only_for_idempotent_methods(status: int) -> None:
    transport, seen = scripted(error(status), OK)
    assert make_client(transport).request("GET", "/x") == {"ok": True}
    assert len(seen) == 2

    transport, seen = scripted(error(status), OK)
    with pytest.raises(NeonAPIError) as caught:
        make_client(transport).request("POST", "/x")
    assert caught.value.status == status
    assert len(seen) == 1


def test_connection_errors_are_retried_only_for_idempotent_methods() -> None:
    transport, seen = scripted(httpx.ConnectError("refused"), httpx.ReadTimeout("slow"), OK)
    assert make_client(transport).request("DELETE", "/x") == {"ok": True}
    assert len(seen) == 3

    transport, seen = scripted(httpx.ReadTimeout("slow"), OK)
    with pytest.raises(NeonTransportError, match="POST /x: no response"):
        make_client(transport).request("POST", "/x")
    assert len(seen) == 1


def test_server_errors_and_client_errors_are_not_retried() -> None:
    for status in (400, 401, 409, 500):
        transport, seen = scripted(error(status), OK)
        with pytest.raises(NeonAPIError):
            make_client(transport).request("GET", "/x")
        assert len(seen) == 1


def test_retry_after_is_honoured_and_backoff_grows_with_jitter() -> None:
    time = FakeTime()
    transport, _ = scripted(error(429, **{"Retry-After": "7"}), error(423), error(423), error(423), OK)
    make_client(transport, time).request("GET", "/x")
    assert time.sleeps[0] == 7
    # exponential: attempt n waits within [2^(n-1)/2, 2^(n-1)] seconds (initial 1 s)
    for attempt, delay in enumerate(time.sleeps[1:], start=2):
        ceiling = 2 ** (attempt - 1)
        assert ceiling / 2 <= delay <= ceiling
    assert time.sleeps[3] > time.sleeps[1]


def test_backoff_is_capped() -> None:
    time = FakeTime()
    transport, _ = scripted(*([error(503)] * 8), OK)
    make_client(transport, time).request("GET", "/x")
    assert max(time.sleeps) <= POLICY.backoff_max_seconds


def test_exhausted_budget_names_attempts_and_last_error() -> None:
    time = FakeTime()
    transport, seen = scripted(error(423))
    with pytest.raises(NeonRetryBudgetExceeded) as caught:
        make_client(transport, time).request("PATCH", "/projects/p-1")
    message = str(caught.value)
    assert "PATCH /projects/p-1" in message and "retry budget of 60 s" in message and "HTTP 423" in message
    assert caught.value.attempts == len(seen) > 3
    assert time.now <= POLICY.retry_budget_seconds


def test_retry_after_beyond_the_budget_fails_at_once() -> None:
    time = FakeTime()
    transport, seen = scripted(error(429, **{"Retry-After": "3600"}), OK)
    with pytest.raises(NeonRetryBudgetExceeded):
        make_client(transport, time).request("GET", "/x")
    assert len(seen) == 1 and time.sleeps == []


def _branch_list(*names: str) -> httpx.Response:
    return httpx.Response(200, json={"branches": [{"id": f"br-{n}", "name": n, "extra": {"x": 1}} for n in names]})


def test_lost_create_response_adopts_the_created_object_and_waits_for_its_operations() -> None:
    pending = {"operations": [_operation("running"), {**_operation("finished"), "id": "op-0"}]}
    answers = {
        "/api/v2/projects/p-1/branches": _branch_list("main", "dev"),
        "/api/v2/projects/p-1/operations": httpx.Response(200, json=pending),
        "/api/v2/projects/p-1/operations/op-1": httpx.Response(200, json={"operation": _operation("finished")}),
    }
    transport, seen = scripted(httpx.ReadTimeout("lost"), lambda request: answers[request.url.path])
    response = make_client(transport).create_branch("p-1", {"name": "dev"}, [{"type": "read_write"}])
    assert response["branch"]["id"] == "br-dev"
    assert [(r.method, r.url.path.removeprefix("/api/v2")) for r in seen] == [
        ("POST", "/projects/p-1/branches"),
        ("GET", "/projects/p-1/branches"),
        ("GET", "/projects/p-1/operations"),
        ("GET", "/projects/p-1/operations/op-1"),
    ]


def test_lost_create_that_did_not_happen_is_posted_again() -> None:
    created = httpx.Response(201, json={"branch": {"id": "br-dev", "name": "dev"}, "operations": []})
    transport, seen = scripted(error(502), _branch_list("main"), created)
    response = make_client(transport).create_branch("p-1", {"name": "dev"}, [])
    assert response["branch"]["id"] == "br-dev"
    assert [r.method for r in seen] == ["POST", "GET", "POST"]


def test_internal_error_on_create_adopts_when_created_and_fails_otherwise() -> None:
    transport, _ = scripted(error(500), _branch_list("dev"))
    assert make_client(transport).create_branch("p-1", {"name": "dev"}, [])["branch"]["id"] == "br-dev"
    transport, seen = scripted(error(500), _branch_list("main"))
    with pytest.raises(NeonAPIError) as caught:
        make_client(transport).create_branch("p-1", {"name": "dev"}, [])
    assert caught.value.status == 500 and [r.method for r in seen] == ["POST", "GET"]


def _operation(status: str, **extra: object) -> dict:
    return {"id": "op-1", "action": "create_branch", "status": status, "failures_count": 0, **extra}


def _polls(*statuses: dict) -> Handler:
    answers = iter(statuses)
    return lambda request: httpx.Response(200, json={"operation": next(answers)})


def test_failed_operations_are_polled_until_finished() -> None:
    time = FakeTime()
    transport, seen = scripted(
        _polls(_operation("running"), _operation("failed", failures_count=1), _operation("finished"))
    )
    make_client(transport, time).wait_for_operations("p-1", [_operation("scheduling")])
    assert [r.url.path for r in seen] == ["/api/v2/projects/p-1/operations/op-1"] * 3
    assert time.sleeps[0] == 1 and time.sleeps[-1] <= 2


def test_operation_error_names_id_action_error_and_failures() -> None:
    transport, _ = scripted(
        _polls(_operation("failed", failures_count=1), _operation("error", error="disk full", failures_count=2))
    )
    with pytest.raises(NeonOperationFailed) as caught:
        make_client(transport).wait_for_operations("p-1", [_operation("running")])
    message = str(caught.value)
    for part in ("op-1", "create_branch", "disk full", "failures_count 2", "status error"):
        assert part in message
    assert caught.value.failures_count == 2


def test_cancelled_is_a_failure_and_skipped_a_success() -> None:
    make_client(scripted(OK)[0]).wait_for_operations("p-1", [_operation("skipped")])
    with pytest.raises(NeonOperationFailed, match="status cancelled"):
        make_client(scripted(OK)[0]).wait_for_operations("p-1", [_operation("cancelled")])


def test_operation_stuck_in_failed_hits_the_deadline() -> None:
    time = FakeTime()
    transport, _ = scripted(lambda r: httpx.Response(200, json={"operation": _operation("failed", failures_count=5)}))
    with pytest.raises(NeonOperationFailed, match=r"did not finish within 30 s: status failed.*failures_count 5"):
        make_client(transport, time).wait_for_operations("p-1", [_operation("running")])
    assert time.now <= 30


def test_typed_error_carries_status_code_message_and_request_id() -> None:
    body = {"code": "NOT_FOUND", "message": "branch not found", "request_id": "req-42"}
    transport, _ = scripted(httpx.Response(404, json=body))
    with pytest.raises(NeonNotFound) as caught:
        make_client(transport).get_branch("p-1", "br-x")
    e = caught.value
    assert (e.status, e.code, e.message, e.request_id) == (404, "NOT_FOUND", "branch not found", "req-42")
    assert str(e) == (
        "GET /projects/p-1/branches/br-x failed with HTTP 404 (NOT_FOUND): branch not found [request id req-42]"
    )


def test_request_id_header_and_non_json_error_bodies() -> None:
    transport, _ = scripted(httpx.Response(409, text="<html>conflict</html>", headers={"x-neon-ret-request-id": "r-9"}))
    with pytest.raises(NeonAPIError) as caught:
        make_client(transport).request("GET", "/x")
    assert caught.value.request_id == "r-9" and caught.value.code is None


def test_unknown_fields_and_enum_values_are_tolerated() -> None:
    endpoints = {"endpoints": [
        {"id": "ep-1", "type": "read_write", "host": "h", "brand_new": [1, 2], "current_state": "hibernating"},
        {"id": "ep-2", "type": "quantum", "host": "q"},
    ], "unexpected": None}
    transport, _ = scripted(httpx.Response(200, json=endpoints))
    assert make_client(transport).read_write_endpoint("p-1", "br-1")["id"] == "ep-1"
    transport, _ = scripted(httpx.Response(200, json={"roles": None}))
    assert make_client(transport).list_roles("p-1", "br-1") == []


def test_names_in_paths_are_url_encoded() -> None:
    transport, seen = scripted(httpx.Response(200, json={"database": {"name": "a/b c"}, "operations": []}))
    make_client(transport).update_database("p-1", "br-1", "a/b c", {"owner_name": "o"})
    assert seen[0].url.raw_path == b"/api/v2/projects/p-1/branches/br-1/databases/a%2Fb%20c"
    assert json.loads(seen[0].content) == {"database": {"owner_name": "o"}}


def test_api_key_is_sent_but_never_shown() -> None:
    transport, seen = scripted(error(401), httpx.ReadTimeout("x"))
    client = make_client(transport)
    texts = [repr(client), str(vars(client).get("policy"))]
    for call in (lambda: client.request("GET", "/a"), lambda: client.request("POST", "/b")):
        with pytest.raises(Exception) as caught:
            call()
        texts.append(str(caught.value))
        texts.append(repr(caught.value))
    assert seen[0].headers["authorization"] == f"Bearer {API_KEY}"
    assert all(API_KEY not in text for text in texts)
    assert not any(API_KEY in repr(v) for v in vars(client).values() if not isinstance(v, httpx.Client))


def test_missing_api_key_is_a_clear_error() -> None:
    with pytest.raises(Exception, match="neon:apiKey or the NEON_API_KEY"):
        NeonClient("", "https://neon.test/api/v2")


def test_success_answers_that_are_not_json_objects() -> None:
    transport, _ = scripted(httpx.Response(200, text="<html>maintenance</html>"))
    with pytest.raises(NeonAPIError, match="GET /x failed with HTTP 200: the answer is not JSON"):
        make_client(transport).request("GET", "/x")
    assert make_client(scripted(httpx.Response(204))[0]).request("DELETE", "/x") == {}
    assert make_client(scripted(httpx.Response(200, json=[1, 2]))[0]).request("GET", "/x") == {}


def test_a_password_reset_without_a_password_is_an_error() -> None:
    transport, _ = scripted(httpx.Response(200, json={"role": {"name": "chatkit_owner"}, "operations": []}))
    with pytest.raises(NeonError, match="without a password"):
        make_client(transport).reset_role_password("proj-1", "br-1", "chatkit_owner")
