"""The HTTP side of the fake Neon API: loopback server, authentication, validation, faults, call log.

Order of work for one request: match the path against the document (unknown path: 404 and a
violation), check the Bearer key (401), parse the body as strict JSON and validate the request
(400 and a violation), apply a fault rule if one matches, run the handler, validate the
response, send it (or lose it, or delay it). An invalid response or an unexpected exception is a
bug of the fake: logged, recorded in `fake.response_errors` and answered with a 500.

Every request gets an HTTP status, whatever arrives. Before anything is read past the headers,
Content-Length is checked: a Transfer-Encoding gets 411; a value that is not a plain decimal
number, or repeated with different values, 400; above MAX_BODY_BYTES 413 (also in answer to
`Expect: 100-continue`). Reads time out after `read_timeout_seconds`: a body shorter than its
Content-Length gets 408 (400 as soon as the client closes), headers that stop arriving 408, an
idle connection is closed. A request line above 64 KiB gets 414, a header line above 64 KiB or
more than 100 headers 431 (the standard library's limits). Errors of the HTTP layer are
Neon-style JSON too and close the connection. Log lines and recorded violations are cut to
LOG_TEXT_LIMIT characters, unprintable characters escaped.
"""

from __future__ import annotations

import json
import logging
import math
import re
import sys
import threading
import time
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from neon_emulator.fake import NeonFake
from neon_emulator.spec import API_PREFIX
from neon_emulator.state import ApiError, encode, error_body

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 1 << 20  # Neon's request bodies are a few KiB
READ_TIMEOUT_SECONDS = 10.0  # above httpx's 5 s keep-alive expiry: a client never reuses a connection we closed
LOG_TEXT_LIMIT = 1000
_CONTENT_LENGTH = re.compile(r"[0-9]{1,19}")


def _printable(text: str, limit: int = LOG_TEXT_LIMIT) -> str:
    """`text` fit for one log line: unprintable characters escaped, at most `limit` characters (and a note)."""
    shown = "".join(c if c.isprintable() else repr(c)[1:-1] for c in text[:limit])
    if len(text) <= limit and len(shown) <= limit:
        return shown
    return f"{shown[:limit]}... ({len(text)} characters in all)"


@dataclass
class Reply:
    status: int
    payload: object = None
    headers: dict[str, str] = field(default_factory=dict)
    lose: bool = False
    delay: float = 0.0


def handle(fake: NeonFake, method: str, target: str, headers: dict[str, str], body: bytes) -> Reply:
    """The reply of the fake to one HTTP request (recorded in fake.calls)."""
    try:
        parts = urlsplit(target)
    except ValueError:  # e.g. an unbalanced "[" in what looks like a host
        return _not_an_operation(fake, method, target, f"{method} {target} is not a valid request target", 400)
    path = parts.path.removeprefix(API_PREFIX) if parts.path.startswith(API_PREFIX + "/") else None
    query = parse_qs(parts.query, keep_blank_values=True)
    matched = fake.validator.match(method, path) if path is not None else None
    if matched is None:
        message = f"{method} {parts.path} is not an operation of the Neon API v2"
        return _not_an_operation(fake, method, parts.path, message, 404)
    template, raw_params = matched
    params = {k: unquote(v) for k, v in raw_params.items()}
    try:
        reply = _reply(fake, method, template, path, params, query, headers, body)
    except Exception as error:  # a bug of the fake, or one of its PostgreSQL servers failing
        message = _printable(f"the fake failed on {method} {template}: {type(error).__name__}: {error}")
        log.exception(message)
        with fake.lock:
            fake.response_errors.append(message)
        reply = Reply(500, error_body(message))
    with fake.lock:
        fake.calls.append((method, template, reply.status))
    return reply


def _not_an_operation(fake: NeonFake, method: str, path: str, message: str, status: int) -> Reply:
    message = _printable(message)
    log.warning("spec violation: %s", message)
    with fake.lock:
        fake.violations.append(message)
        fake.calls.append((method, _printable(path), status))
    return Reply(status, error_body(message))


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON value")


def _finite(text: str) -> float:
    number = float(text)
    if math.isinf(number):
        raise ValueError(f"the number {_printable(text, 40)} is out of range")
    return number


def _parse_json(body: bytes) -> tuple[Any, str | None]:
    """(value, None) for a body of strict JSON (None when empty), else (None, the problem).

    Strict: UTF-8, no NaN/Infinity, no number that overflows a float, nesting within the
    interpreter's recursion limit.
    """
    if not body:
        return None, None
    try:
        return json.loads(body.decode("utf-8"), parse_constant=_reject_constant, parse_float=_finite), None
    except UnicodeDecodeError as error:
        return None, f"request body is not UTF-8 (byte {error.start})"
    except RecursionError:
        return None, "request body is nested too deeply"
    except ValueError as error:
        return None, f"request body is not JSON: {error}"


def _reply(fake, method, template, path, params, query, headers, body) -> Reply:
    authorization = next((v for k, v in headers.items() if k.lower() == "authorization"), "")
    if authorization != f"Bearer {fake.api_key}":
        return Reply(401, error_body("authentication required: missing or invalid API key"))
    payload, problem = _parse_json(body)
    problems = [problem] if problem else fake.validator.validate_request(method, template, path, query, headers, body)
    if problems:
        message = _printable(f"{method} {template}: " + "; ".join(problems))
        log.warning("spec violation: %s", message)
        with fake.lock:
            fake.violations.append(message)
        return Reply(400, error_body(_printable(f"request does not match the Neon API: {'; '.join(problems)}")))
    fault = fake.faults.take(method, template, path)
    if fault is not None and fault.kind == "status":
        message = fault.message or f"injected fault: HTTP {fault.status}"
        return Reply(fault.status, error_body(message), fault.headers())
    try:
        status, answer = fake.dispatch(method, template, params, query, payload)
    except ApiError as error:
        status, answer = error.status, error_body(error.message, error.code)
    problems = fake.validator.validate_response(method, path, status, encode(answer) if answer is not None else None)
    if problems:
        broken = f"the fake's response to {method} {template} ({status}) breaks the Neon API"
        message = _printable(f"{broken}: {'; '.join(problems)}")
        log.error(message)
        with fake.lock:
            fake.response_errors.append(message)
        status, answer = 500, error_body(message)
    return Reply(
        status,
        answer,
        lose=fault is not None and fault.kind == "lose_response",
        delay=fault.seconds if fault is not None and fault.kind == "delay" else 0.0,
    )


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out in two writes: no 40 ms delayed-ACK stalls

    def setup(self) -> None:
        self.timeout = self.server.read_timeout_seconds  # every read and write of this connection
        super().setup()

    def parse_request(self) -> bool:
        """The standard parsing, plus: headers that stop arriving get 408, HTTP/0.9 gets 400."""
        try:
            parsed = super().parse_request()
        except TimeoutError:
            self.send_error(HTTPStatus.REQUEST_TIMEOUT, "the request headers did not arrive in time")
            return False
        if parsed and self.request_version == "HTTP/0.9":
            self.send_error(HTTPStatus.BAD_REQUEST, "HTTP/0.9 requests are not supported")
            return False
        return parsed

    def handle_expect_100(self) -> bool:
        """`Expect: 100-continue`: a body that would be refused is refused before the client sends it."""
        return self._body_length() is not None and super().handle_expect_100()

    def _body_length(self) -> int | None:
        """The announced body length (0 when none), or None once the request was refused for it."""
        if "Transfer-Encoding" in self.headers:
            self.send_error(HTTPStatus.LENGTH_REQUIRED, "send the body with a Content-Length, not a Transfer-Encoding")
            return None
        announced = self.headers.get_all("Content-Length") or ["0"]
        values = {value.strip(" \t") for value in announced}  # only spaces and tabs: HTTP's whitespace
        if len(values) > 1 or not _CONTENT_LENGTH.fullmatch(next(iter(values))):
            self.send_error(HTTPStatus.BAD_REQUEST, f"invalid Content-Length: {', '.join(announced)}")
            return None
        length = int(values.pop())
        if length > MAX_BODY_BYTES:
            self.send_error(
                HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
                f"a body of {length} bytes is above the limit of {MAX_BODY_BYTES} bytes",
            )
            return None
        return length

    def _read_body(self) -> bytes | None:
        """The whole body, read within `read_timeout_seconds`; None once the request was refused."""
        length = self._body_length()
        if length is None:
            return None
        timeout = self.server.read_timeout_seconds
        deadline = time.monotonic() + timeout
        body = bytearray()
        try:
            while len(body) < length:
                self.connection.settimeout(max(deadline - time.monotonic(), 0.001))
                chunk = self.rfile.read1(length - len(body))
                if not chunk:
                    self.send_error(HTTPStatus.BAD_REQUEST, f"the body ended after {len(body)} of its {length} bytes")
                    return None
                body += chunk
        except TimeoutError:
            self.send_error(
                HTTPStatus.REQUEST_TIMEOUT,
                f"{len(body)} of the {length} bytes of the body arrived within {timeout:g} s",
            )
            return None
        self.connection.settimeout(timeout)
        return bytes(body)

    def _serve(self) -> None:
        body = self._read_body()
        if body is None:
            return
        reply = handle(self.server.fake, self.command, self.path, dict(self.headers.items()), body)
        if reply.lose:
            self.close_connection = True
            return
        if reply.delay:
            time.sleep(reply.delay)
        self._send(reply.status, reply.payload, reply.headers)

    do_GET = do_POST = do_PATCH = do_PUT = do_DELETE = _serve

    def _send(self, status: int, payload: object, headers: dict[str, str]) -> None:
        data = encode(payload) if payload is not None else b""
        try:
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            if data:
                self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True  # the client gave up (timeout)

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """An error of the HTTP layer: a Neon-style JSON body, always with a status line, then the connection closes."""
        if self.request_version == "HTTP/0.9":
            self.request_version = "HTTP/1.0"  # a 0.9 answer would have no status line at all
        message = _printable(message or HTTPStatus(code).phrase)
        self.log_error("code %d, message %s", code, message)
        self._send(code, error_body(message), {"Connection": "close"})
        self.close_connection = True

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s %s", self.client_address[0], _printable(format % args))


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], fake: NeonFake, read_timeout_seconds: float):
        self.fake = fake
        self.read_timeout_seconds = read_timeout_seconds
        super().__init__(address, _Handler)

    def handle_error(self, request: object, client_address: tuple[str, int]) -> None:
        """A connection that broke (reset by the client, ...): one short line. Anything else is a bug: traceback."""
        error = sys.exc_info()[1]
        if isinstance(error, OSError):
            log.debug("connection from %s broke: %s", client_address[0], _printable(f"{type(error).__name__}: {error}"))
        else:
            log.exception("the HTTP server of the fake failed on a request from %s", client_address[0])


class ApiServer:
    """A NeonFake served over HTTP in a background thread."""

    def __init__(
        self, fake: NeonFake, host: str = "127.0.0.1", port: int = 0, read_timeout_seconds: float = READ_TIMEOUT_SECONDS
    ):
        self.fake = fake
        self._server = _Server((host, port), fake, read_timeout_seconds)
        self._thread = threading.Thread(target=self._server.serve_forever, name="neon-fake-api", daemon=True)
        self._thread.start()

    @property
    def port(self) -> int:
        return self._server.server_address[1]

    @property
    def url(self) -> str:
        """The API base URL, e.g. http://127.0.0.1:4010/api/v2."""
        return f"http://{self._server.server_address[0]}:{self.port}{API_PREFIX}"

    @property
    def read_timeout_seconds(self) -> float:
        """How long a connection may stay silent (idle, mid-headers, mid-body); applies to new connections."""
        return self._server.read_timeout_seconds

    @read_timeout_seconds.setter
    def read_timeout_seconds(self, seconds: float) -> None:
        self._server.read_timeout_seconds = seconds

    def close(self) -> None:
        """Stop serving and stop every cluster of the fake."""
        self._server.shutdown()
        self._server.server_close()
        self.fake.close()
