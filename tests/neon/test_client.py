"""NeonClient against scripted transports: retry classes, backoff and its floor, lost responses, operations, errors."""

from __future__ import annotations

import email.utils
import json
import math
from collections.abc import Callable
from datetime import UTC, datetime

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from components.neon import client as client_module
from components.neon.client import NeonClient
from components.neon.errors import (
    NeonAPIError,
    NeonError,
    NeonNotFound,
    NeonOperationFailed,
    NeonRetryBudgetExceeded,
    NeonTransportError,
)
from components.neon.session import ClientPolicy
from tests.neon.helpers import most_attempts, shortest_wait

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


@given(status=st.integers(400, 599), method=st.sampled_from(["GET", "POST", "PATCH", "DELETE"]))
def test_every_error_status_is_retried_or_raised_by_its_class(status: int, method: str) -> None:
    time = FakeTime()
    transport, seen = scripted(error(status), OK)
    if status in (423, 429, 503) or (status in (502, 504) and method != "POST"):
        assert make_client(transport, time).request(method, "/x") == {"ok": True}
        assert len(seen) == 2 and time.sleeps[0] >= shortest_wait(POLICY, 1)
    else:
        with pytest.raises(NeonAPIError) as caught:
            make_client(transport, time).request(method, "/x")
        assert caught.value.status == status and len(seen) == 1 and time.sleeps == []


def test_retry_after_is_honoured_and_backoff_grows_with_jitter() -> None:
    time = FakeTime()
    transport, _ = scripted(error(429, **{"Retry-After": "7"}), error(423), error(423), error(423), OK)
    make_client(transport, time).request("GET", "/x")
    assert 7 <= time.sleeps[0] <= 7.7  # Retry-After, and up to 10% jitter
    # exponential: attempt n waits within [2^(n-1)/2, 2^(n-1)] seconds (initial 1 s)
    for attempt, delay in enumerate(time.sleeps[1:], start=2):
        ceiling = 2 ** (attempt - 1)
        assert ceiling / 2 <= delay <= ceiling
    assert time.sleeps[3] > time.sleeps[1]


@pytest.mark.parametrize("status", [423, 503])
def test_retry_after_is_honoured_on_every_retried_status(status: int) -> None:
    time = FakeTime()
    transport, _ = scripted(error(status, **{"Retry-After": "5"}), OK)
    make_client(transport, time).request("POST", "/x")
    assert 5 <= time.sleeps[0] <= 5.5


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


@pytest.mark.parametrize("value", ["3600", "1e300", "inf", "Fri, 31 Dec 9999 23:59:59 GMT"])
def test_retry_after_beyond_the_budget_fails_at_once(value: str) -> None:
    time = FakeTime()
    transport, seen = scripted(error(429, **{"Retry-After": value}), OK)
    with pytest.raises(NeonRetryBudgetExceeded, match=r"Retry-After said .* s\) would end past the retry budget"):
        make_client(transport, time).request("GET", "/x")
    assert len(seen) == 1 and time.sleeps == []


# Zero, negative, garbage (any latin-1 text), past dates: none of them may shorten a wait.
USELESS_RETRY_AFTER = st.one_of(
    st.integers(-(10**9), 0).map(str),
    st.floats(max_value=0, allow_nan=False).map(str),
    st.sampled_from(["", "nan", "-inf", "soon", "0x10", "1,5", "Tue, 32 Foo 2020", "\x00"]),
    st.text(st.characters(max_codepoint=255, exclude_characters="\r\n"), max_size=30),
    st.datetimes(max_value=datetime(2020, 1, 1)).map(
        lambda when: email.utils.format_datetime(when.replace(tzinfo=UTC), usegmt=True)
    ),
)
RETRIED = st.sampled_from([423, 429, 503])


@given(status=RETRIED, retry_after=USELESS_RETRY_AFTER, method=st.sampled_from(["GET", "POST"]))
def test_a_retry_after_of_zero_negative_garbage_or_past_never_floods(status: int, retry_after: str, method: str):
    time = FakeTime()
    header = {"Retry-After": retry_after.encode("latin-1")}

    def answer(request: httpx.Request) -> httpx.Response:
        assert len(seen) <= 100, "the client floods the server"  # without a floor the fake clock never moves
        return httpx.Response(status, headers=header, json={})

    transport, seen = scripted(answer)
    with pytest.raises(NeonRetryBudgetExceeded):
        make_client(transport, time).request(method, "/x")
    assert len(seen) <= most_attempts(POLICY) == 18
    for attempt, delay in enumerate(time.sleeps, start=1):
        assert delay >= shortest_wait(POLICY, attempt), (attempt, delay)
    assert time.now <= POLICY.retry_budget_seconds


@given(status=RETRIED, seconds=st.integers(1, 50))
def test_a_usable_retry_after_is_waited_with_jitter(status: int, seconds: int) -> None:
    time = FakeTime()
    transport, _ = scripted(error(status, **{"Retry-After": str(seconds)}), OK)
    make_client(transport, time).request("GET", "/x")
    assert max(seconds, shortest_wait(POLICY, 1)) <= time.sleeps[0] <= max(seconds * 1.1, 1)


@pytest.mark.parametrize(
    ("field", "value"),
    [("backoff_initial_seconds", 0), ("retry_budget_seconds", -1), ("read_timeout_seconds", math.inf)],
)
def test_a_policy_without_a_floor_or_budget_is_refused(field: str, value: float) -> None:
    with pytest.raises(ValueError, match=f"ClientPolicy.{field} must be a positive number of seconds"):
        ClientPolicy(**{field: value})
    with pytest.raises(ValueError, match=r"backoff_max_seconds \(1\) is below backoff_initial_seconds \(5\)"):
        ClientPolicy(backoff_initial_seconds=5, backoff_max_seconds=1)


def _branch_list(*names: str) -> httpx.Response:
    return httpx.Response(200, json={"branches": [{"id": f"br-{n}", "name": n, "extra": {"x": 1}} for n in names]})


def _branches(*ids: str, name: str = "dev") -> httpx.Response:
    return httpx.Response(200, json={"branches": [{"id": i, "name": name} for i in ids]})


def test_lost_create_response_adopts_the_created_object_and_waits_for_its_operations() -> None:
    pending = {"operations": [_operation("running"), {**_operation("finished"), "id": "op-0"}]}
    answers = {
        "/api/v2/projects/p-1/branches": _branch_list("main", "dev"),
        "/api/v2/projects/p-1/operations": httpx.Response(200, json=pending),
        "/api/v2/projects/p-1/operations/op-1": httpx.Response(200, json={"operation": _operation("finished")}),
    }
    lost = httpx.ReadTimeout("lost")
    transport, seen = scripted(_branch_list("main"), lost, lambda request: answers[request.url.path])
    response = make_client(transport).create_branch("p-1", {"name": "dev"}, [{"type": "read_write"}])
    assert response["branch"]["id"] == "br-dev"
    assert [(r.method, r.url.path.removeprefix("/api/v2")) for r in seen] == [
        ("GET", "/projects/p-1/branches"),
        ("POST", "/projects/p-1/branches"),
        ("GET", "/projects/p-1/branches"),
        ("GET", "/projects/p-1/operations"),
        ("GET", "/projects/p-1/operations/op-1"),
    ]


def test_lost_create_that_did_not_happen_is_posted_again() -> None:
    created = httpx.Response(201, json={"branch": {"id": "br-dev", "name": "dev"}, "operations": []})
    transport, seen = scripted(_branch_list("main"), error(502), _branch_list("main"), created)
    response = make_client(transport).create_branch("p-1", {"name": "dev"}, [])
    assert response["branch"]["id"] == "br-dev"
    assert [r.method for r in seen] == ["GET", "POST", "GET", "POST"]


def test_internal_error_on_create_adopts_when_created_and_fails_otherwise() -> None:
    transport, _ = scripted(_branch_list("main"), error(500), _branch_list("dev"), httpx.Response(200, json={}))
    assert make_client(transport).create_branch("p-1", {"name": "dev"}, [])["branch"]["id"] == "br-dev"
    transport, seen = scripted(_branch_list("main"), error(500), _branch_list("main"))
    with pytest.raises(NeonAPIError) as caught:
        make_client(transport).create_branch("p-1", {"name": "dev"}, [])
    assert caught.value.status == 500 and [r.method for r in seen] == ["GET", "POST", "GET"]


def test_a_same_named_object_from_before_is_never_adopted() -> None:
    created = httpx.Response(201, json={"branch": {"id": "br-new", "name": "dev"}, "operations": []})
    transport, seen = scripted(_branches("br-old"), httpx.ReadTimeout("lost"), _branches("br-old"), created)
    assert make_client(transport).create_branch("p-1", {"name": "dev"}, [])["branch"]["id"] == "br-new"
    assert [r.method for r in seen] == ["GET", "POST", "GET", "POST"]

    ops = httpx.Response(200, json={"operations": []})
    transport, seen = scripted(_branches("br-old"), httpx.ReadTimeout("lost"), _branches("br-old", "br-new"), ops)
    response = make_client(transport).create_branch("p-1", {"name": "dev"}, [])
    assert response["branch"]["id"] == "br-new" and response["adopted"]
    assert [r.method for r in seen] == ["GET", "POST", "GET", "GET"]


def test_several_new_same_named_objects_are_a_clear_error_not_a_guess() -> None:
    transport, seen = scripted(_branches("br-old"), httpx.ReadTimeout("lost"), _branches("br-old", "br-a", "br-b"))
    with pytest.raises(NeonError, match=r"2 matching branch objects appeared since the request \(br-a, br-b\)"):
        make_client(transport).create_branch("p-1", {"name": "dev"}, [])
    assert [r.method for r in seen] == ["GET", "POST", "GET"]


def test_a_role_that_existed_before_is_not_adopted_after_a_lost_answer() -> None:
    roles = httpx.Response(200, json={"roles": [{"name": "app_owner", "created_at": "2020-01-01T00:00:00Z"}]})
    exists = httpx.Response(409, json={"code": "", "message": "role app_owner already exists"})
    transport, seen = scripted(roles, httpx.ReadTimeout("lost"), roles, exists)
    with pytest.raises(NeonAPIError) as caught:
        make_client(transport).create_role("p-1", "br-1", "app_owner")
    assert caught.value.status == 409
    assert [r.method for r in seen] == ["GET", "POST", "GET", "POST"]


def test_project_lookups_read_every_page() -> None:
    def page(request: httpx.Request) -> httpx.Response:
        cursor = request.url.params.get("cursor")
        start = int(cursor or 0)
        size = 400 if start < 400 else 3
        projects = [{"id": f"p-{n}", "name": "app" if n % 200 == 0 else "app-x"} for n in range(start, start + size)]
        return httpx.Response(200, json={"projects": projects, "pagination": {"cursor": str(start + size)}})

    transport, seen = scripted(page)
    assert [p["id"] for p in make_client(transport).find_projects("app")] == ["p-0", "p-200", "p-400"]
    assert [r.url.params.get("cursor") for r in seen] == [None, "400"]


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


def _polls_at(time: FakeTime) -> list[float]:
    """The clock readings of the polls so far (sleeps are the only thing that moves it)."""
    readings, now = [], 0.0
    for sleep in time.sleeps:
        now += sleep
        readings.append(now)
    return readings


def test_polls_are_timed_by_how_long_operations_took() -> None:
    """Once an operation was seen to take 1.2 s, the next wait polls just after 1.2 s, not on the backoff."""
    time = FakeTime()
    transport, seen = scripted(_polls(_operation("running", total_duration_ms=900),
                                      _operation("finished", total_duration_ms=1200),
                                      _operation("finished", total_duration_ms=1200)))
    client = make_client(transport, time)
    client.wait_for_operations("p-1", [_operation("running", total_duration_ms=0)])
    assert _polls_at(time) == [1, 2.5]  # nothing learned yet: the backoff (1 s, then x1.5)
    client.wait_for_operations("p-1", [_operation("running", total_duration_ms=0)])
    assert len(seen) == 3 and time.sleeps[-1] == pytest.approx(1.25)


def _stuck_then_finished(polls: int) -> Handler:
    """op-1 runs late and op-2 waits queued behind it, for `polls` polls of each; then both finish."""
    count = {"op-1": 0, "op-2": 0}

    def handle(request: httpx.Request) -> httpx.Response:
        op_id = request.url.path.rsplit("/", 1)[-1]
        count[op_id] += 1
        if count[op_id] > polls:
            return httpx.Response(200, json={"operation": {**_operation("finished"), "id": op_id}})
        ran = {"op-1": 900 + 1000 * count[op_id], "op-2": 0}[op_id]
        status = "running" if op_id == "op-1" else "scheduling"
        return httpx.Response(200, json={"operation": {**_operation(status, total_duration_ms=ran), "id": op_id}})

    return handle


def test_a_late_or_queued_operation_is_polled_no_more_than_the_backoff() -> None:
    """With a learned duration of 1 s, an operation running late (and one queued behind it) costs at
    most one poll more than the backoff alone: one timed poll, then the growing interval."""
    operations = [_operation("running", total_duration_ms=900),
                  {**_operation("scheduling", total_duration_ms=0), "id": "op-2"}]
    backoff_only = FakeTime()
    make_client(scripted(_stuck_then_finished(8))[0], backoff_only).wait_for_operations("p-1", operations)
    client_module._OPERATION_SECONDS["https://neon.test/api/v2"] = 1.0
    timed = FakeTime()
    make_client(scripted(_stuck_then_finished(8))[0], timed).wait_for_operations("p-1", operations)
    assert timed.sleeps[0] == pytest.approx(0.15)  # just after op-1's expected end
    assert len(backoff_only.sleeps) == 9 and len(timed.sleeps) <= 10
    assert timed.sleeps[1:] == backoff_only.sleeps[1:]


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
