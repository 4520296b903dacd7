"""The emulator's HTTP server over raw sockets: every request gets a status, nothing hangs, logs stay short.

Each exchange writes bytes as a client may (broken ones included) and reads one HTTP answer
with the standard library's parser, so a traceback, a dropped connection or an answer without
a status line fails the test.
"""

from __future__ import annotations

import http.client
import json
import logging
import socket
import time
from dataclasses import dataclass

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from neon_emulator.api_server import LOG_TEXT_LIMIT, MAX_BODY_BYTES
from tests.support.neon_fixtures import NeonApi

ROLES = "/api/v2/projects/no-such-project/branches/br-none/roles"
SEPARATORS = set(b"\r\n \t\x0b\x0c\x1c\x1d\x1e\x1f\x85\xa0")  # end a request line or split it into words
FUZZ = settings(suppress_health_check=[HealthCheck.function_scoped_fixture])  # examples: the profile


@dataclass
class Answer:
    status: int
    body: bytes
    closed: bool  # the server ended the connection after answering

    @property
    def message(self) -> str:
        return json.loads(self.body)["message"]


def exchange(api: NeonApi, data: bytes, *, half_close: bool = False, timeout: float = 10.0) -> Answer:
    """Send `data` on a new connection and read one answer."""
    with socket.create_connection(("127.0.0.1", api.server.port), timeout=timeout) as sock:
        try:
            sock.sendall(data)
            if half_close:
                sock.shutdown(socket.SHUT_WR)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server answered and closed before reading everything: the answer is still there
        response = http.client.HTTPResponse(sock)
        response.begin()
        body = response.read()
        sock.settimeout(0.2)
        try:
            closed = sock.recv(1) == b""
        except TimeoutError:
            closed = False
        except ConnectionResetError:
            closed = True
        return Answer(response.status, body, closed)


def post(api: NeonApi, body: bytes, *, length: str | None = None, extra: str = "") -> bytes:
    """A POST creating a role, with the fake's key; `length` overrides the Content-Length header (None: the body's)."""
    head = (
        f"POST {ROLES} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {api.api_key}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body) if length is None else length}\r\n{extra}\r\n"
    )
    return head.encode("latin-1") + body


def still_serving(api: NeonApi) -> None:
    assert httpx.get(f"{api.url}/projects", headers=api.headers, timeout=5).status_code == 200


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        (b'{"role": {"name": "\xff\xfe"}}', "not UTF-8"),
        (b'{"role": ', "not JSON"),
        (b"<html>hello</html>", "not JSON"),
        (b'{"role": {"name": NaN}}', "NaN is not a JSON value"),
        (b'{"role": {"name": "x", "no_login": 1e999}}', "out of range"),
        ('{"role": {"name": "x"}}'.encode("utf-16"), "not UTF-8"),
        (b"[" * 100_000 + b"]" * 100_000, "nested too deeply"),
    ],
)
def test_bodies_that_are_not_strict_utf8_json_get_400(neon_api: NeonApi, body: bytes, problem: str) -> None:
    answer = exchange(neon_api, post(neon_api, body))
    assert answer.status == 400 and problem in answer.message
    [violation] = neon_api.take_violations()
    assert problem in violation
    assert not answer.closed  # a request that broke the API, not HTTP: the connection stays usable


@pytest.mark.parametrize("length", ["abc", "-1", "+5", "1e3", "0x10", "", "²", "0\x1f", "9" * 20, "5, 5"])
def test_an_invalid_content_length_gets_400_and_the_connection_closes(neon_api: NeonApi, length: str) -> None:
    answer = exchange(neon_api, post(neon_api, b"{}", length=length))
    assert answer.status == 400 and "invalid Content-Length" in answer.message and answer.closed
    still_serving(neon_api)


def test_two_different_content_lengths_get_400(neon_api: NeonApi) -> None:
    answer = exchange(neon_api, post(neon_api, b"{}", extra="Content-Length: 3\r\n"))
    assert answer.status == 400 and "invalid Content-Length: 2, 3" in answer.message and answer.closed


def test_a_missing_content_length_means_no_body(neon_api: NeonApi) -> None:
    request = f"POST {ROLES} HTTP/1.1\r\nAuthorization: Bearer {neon_api.api_key}\r\n\r\n".encode()
    answer = exchange(neon_api, request)
    assert answer.status == 400  # the operation requires a body
    assert neon_api.take_violations()


def test_a_content_length_longer_than_the_body_times_out_with_408(neon_api: NeonApi, monkeypatch) -> None:
    monkeypatch.setattr(neon_api.server, "read_timeout_seconds", 0.5)
    started = time.monotonic()
    answer = exchange(neon_api, post(neon_api, b'{"role": {', length="100"))
    elapsed = time.monotonic() - started
    assert answer.status == 408 and "10 of the 100 bytes" in answer.message and answer.closed
    assert 0.4 < elapsed < 3


def test_a_body_cut_short_by_the_client_gets_400(neon_api: NeonApi) -> None:
    answer = exchange(neon_api, post(neon_api, b'{"role": {', length="100"), half_close=True)
    assert answer.status == 400 and "ended after 10 of its 100 bytes" in answer.message


def test_headers_that_stop_arriving_get_408(neon_api: NeonApi, monkeypatch) -> None:
    monkeypatch.setattr(neon_api.server, "read_timeout_seconds", 0.5)
    answer = exchange(neon_api, f"GET {ROLES} HTTP/1.1\r\nHost: x\r\n".encode())
    assert answer.status == 408 and answer.closed


@pytest.mark.parametrize("length", [MAX_BODY_BYTES + 1, 10**12, 10**19 - 1])
def test_a_huge_body_is_refused_with_413_before_it_is_read(neon_api: NeonApi, length: int) -> None:
    started = time.monotonic()
    answer = exchange(neon_api, post(neon_api, b"{", length=str(length)))  # the body never comes
    assert answer.status == 413 and f"{length} bytes" in answer.message and answer.closed
    assert time.monotonic() - started < 2


def test_expect_100_continue_gets_413_instead_of_continue(neon_api: NeonApi) -> None:
    answer = exchange(neon_api, post(neon_api, b"", length=str(MAX_BODY_BYTES * 8), extra="Expect: 100-continue\r\n"))
    assert answer.status == 413
    request = post(neon_api, b"", length="2", extra="Expect: 100-continue\r\n")
    with socket.create_connection(("127.0.0.1", neon_api.server.port), timeout=5) as sock:
        sock.sendall(request)
        assert sock.recv(100).startswith(b"HTTP/1.1 100 Continue")


def test_chunked_bodies_get_411(neon_api: NeonApi) -> None:
    request = (
        f"POST {ROLES} HTTP/1.1\r\nAuthorization: Bearer {neon_api.api_key}\r\n"
        "Transfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n"
    )
    answer = exchange(neon_api, request.encode())
    assert answer.status == 411 and answer.closed


def test_a_huge_url_gets_414_and_short_log_lines(neon_api: NeonApi, caplog) -> None:
    caplog.set_level(logging.DEBUG, logger="neon_emulator.api_server")
    answer = exchange(neon_api, b"GET /api/v2/" + b"a" * (1 << 20) + b" HTTP/1.1\r\n\r\n")
    assert answer.status == 414 and answer.closed
    assert_short_printable_logs(caplog)
    still_serving(neon_api)


def test_a_long_binary_url_is_answered_logged_short_and_escaped(neon_api: NeonApi, caplog) -> None:
    caplog.set_level(logging.DEBUG, logger="neon_emulator.api_server")
    binary = bytes(set(range(0x100)) - SEPARATORS - set(b"?#"))  # all of it is path
    target = b"/api/v2/projects/\x1b[31m" + binary * 200 + b"\x00\x7f"
    answer = exchange(neon_api, b"GET " + target + b" HTTP/1.1\r\nAuthorization: Bearer x\r\n\r\n")
    assert answer.status == 404 and answer.message.endswith("characters in all)")  # the path, cut short
    assert_short_printable_logs(caplog)
    assert all(len(v) < LOG_TEXT_LIMIT + 100 and v.isprintable() for v in neon_api.take_violations())


def test_a_target_that_is_not_a_url_gets_400(neon_api: NeonApi) -> None:
    answer = exchange(neon_api, b"GET http://[::1/api/v2/projects HTTP/1.1\r\n\r\n")
    assert answer.status == 400 and "not a valid request target" in answer.message
    assert neon_api.take_violations()


def test_huge_and_binary_headers_are_answered(neon_api: NeonApi, caplog) -> None:
    caplog.set_level(logging.DEBUG, logger="neon_emulator.api_server")
    huge = exchange(neon_api, b"GET /api/v2/projects HTTP/1.1\r\nX-Big: " + b"b" * 70_000 + b"\r\n\r\n")
    assert huge.status == 431 and huge.closed
    many = b"".join(b"X-%d: v\r\n" % n for n in range(101))
    assert exchange(neon_api, b"GET /api/v2/projects HTTP/1.1\r\n" + many + b"\r\n").status == 431
    binary = exchange(neon_api, b"GET /api/v2/projects HTTP/1.1\r\nAuthorization: \xff\x00\x1b[2J\r\n\r\n")
    assert binary.status == 401
    assert_short_printable_logs(caplog)


def test_http_0_9_and_unknown_methods_get_a_status_line(neon_api: NeonApi) -> None:
    assert exchange(neon_api, b"GET /api/v2/projects\r\n\r\n").status == 400
    assert exchange(neon_api, b"BREW /api/v2/projects HTTP/1.1\r\n\r\n").status == 501
    assert exchange(neon_api, b"GET /api/v2/projects HTTP/2.0\r\n\r\n").status == 505
    assert exchange(neon_api, b"\x00\x01\x02\r\n\r\n").status == 400


def assert_short_printable_logs(caplog) -> None:
    messages = [r.getMessage() for r in caplog.records if r.name == "neon_emulator.api_server"]
    assert messages
    for message in messages:
        assert len(message) < LOG_TEXT_LIMIT + 100, len(message)
        assert message.isprintable(), repr(message[:200])


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=12,
)
BODIES = st.one_of(
    st.binary(max_size=300),
    st.text(max_size=100).map(str.encode),
    JSON_VALUES.map(lambda v: json.dumps(v).encode()),
    st.dictionaries(st.sampled_from(["name", "no_login", "x"]), JSON_VALUES, max_size=3).map(
        lambda role: json.dumps({"role": role}).encode()
    ),
)


@pytest.mark.fuzz
@FUZZ
@given(body=BODIES)
def test_any_body_gets_a_clean_status(neon_api: NeonApi, body: bytes) -> None:
    answer = exchange(neon_api, post(neon_api, body), half_close=True)
    assert answer.status in (400, 404), (answer.status, answer.body)  # 404: valid, but there is no such project
    assert answer.message
    assert (answer.status == 400) == bool(neon_api.take_violations())
    assert neon_api.fake.response_errors == []


TARGET_BYTES = st.binary(min_size=1, max_size=200).filter(lambda target: not set(target) & SEPARATORS)


@pytest.mark.fuzz
@FUZZ
@given(target=TARGET_BYTES, prefixed=st.booleans())
def test_any_request_target_gets_a_status(neon_api: NeonApi, target: bytes, prefixed: bool) -> None:
    target = b"/api/v2/" + target if prefixed else target
    request = b"GET " + target + b" HTTP/1.1\r\nAuthorization: Bearer " + neon_api.api_key.encode() + b"\r\n\r\n"
    answer = exchange(neon_api, request, half_close=True)
    assert 200 <= answer.status < 600
    if answer.status >= 400:
        assert answer.message
    neon_api.take_violations()
    assert neon_api.fake.response_errors == []


@pytest.mark.fuzz
@FUZZ
@given(length=st.integers(-(10**20), 10**20).map(str) | st.text(st.characters(max_codepoint=255), max_size=12))
def test_any_content_length_gets_a_status(neon_api: NeonApi, length: str) -> None:
    length = length.replace("\r", "").replace("\n", "")
    answer = exchange(neon_api, post(neon_api, b'{"role": {"name": "x"}}', length=length), half_close=True)
    assert answer.status in (400, 404, 413), answer.status
    neon_api.take_violations()
    assert neon_api.fake.response_errors == []
