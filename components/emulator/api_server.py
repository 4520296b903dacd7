"""The HTTP side of the fake Neon API: loopback server, authentication, validation, faults, call log.

Order of work for one request: match the path against the document (unknown path: 404 and a
violation), check the Bearer key (401), validate the request strictly (400 and a violation),
apply a fault rule if one matches, run the handler, validate the response, send it (or lose
it, or delay it). An invalid response or an unexpected exception is a bug of the fake: logged,
recorded in `fake.response_errors` and answered with a 500.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, unquote, urlsplit

from components.emulator.neon_fake import ApiError, NeonFake, encode, error_body
from components.emulator.spec import API_PREFIX

log = logging.getLogger(__name__)


@dataclass
class Reply:
    status: int
    payload: object = None
    headers: dict[str, str] = field(default_factory=dict)
    lose: bool = False
    delay: float = 0.0


def handle(fake: NeonFake, method: str, target: str, headers: dict[str, str], body: bytes) -> Reply:
    """The reply of the fake to one HTTP request (recorded in fake.calls)."""
    parts = urlsplit(target)
    path = parts.path.removeprefix(API_PREFIX) if parts.path.startswith(API_PREFIX + "/") else None
    query = parse_qs(parts.query, keep_blank_values=True)
    matched = fake.validator.match(method, path) if path is not None else None
    if matched is None:
        message = f"{method} {parts.path} is not an operation of the Neon API v2"
        log.warning("spec violation: %s", message)
        with fake.lock:
            fake.violations.append(message)
            fake.calls.append((method, parts.path, 404))
        return Reply(404, error_body(message))
    template, raw_params = matched
    reply = _reply(fake, method, template, path, {k: unquote(v) for k, v in raw_params.items()}, query, headers, body)
    with fake.lock:
        fake.calls.append((method, template, reply.status))
    return reply


def _reply(fake, method, template, path, params, query, headers, body) -> Reply:
    authorization = next((v for k, v in headers.items() if k.lower() == "authorization"), "")
    if authorization != f"Bearer {fake.api_key}":
        return Reply(401, error_body("authentication required: missing or invalid API key"))
    problems = fake.validator.validate_request(method, template, path, query, headers, body)
    if problems:
        message = f"{method} {template}: " + "; ".join(problems)
        log.warning("spec violation: %s", message)
        with fake.lock:
            fake.violations.append(message)
        return Reply(400, error_body(f"request does not match the Neon API: {'; '.join(problems)}"))
    fault = fake.faults.take(method, template, path)
    if fault is not None and fault.kind == "status":
        retry = {"Retry-After": f"{fault.retry_after:g}"} if fault.retry_after is not None else {}
        message = fault.message or f"injected fault: HTTP {fault.status}"
        return Reply(fault.status, error_body(message), retry)
    try:
        status, payload = fake.dispatch(method, template, params, query, json.loads(body) if body else None)
    except ApiError as error:
        status, payload = error.status, error_body(error.message, error.code)
    except Exception as error:  # a bug of the fake, or one of its PostgreSQL servers failing
        message = f"the fake failed on {method} {template}: {type(error).__name__}: {error}"
        log.exception(message)
        with fake.lock:
            fake.response_errors.append(message)
        return Reply(500, error_body(message))
    problems = fake.validator.validate_response(method, path, status, encode(payload) if payload is not None else None)
    if problems:
        message = f"the fake's response to {method} {template} ({status}) breaks the Neon API: " + "; ".join(problems)
        log.error(message)
        with fake.lock:
            fake.response_errors.append(message)
        status, payload = 500, error_body(message)
    return Reply(
        status,
        payload,
        lose=fault is not None and fault.kind == "lose_response",
        delay=fault.seconds if fault is not None and fault.kind == "delay" else 0.0,
    )


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out in two writes: no 40 ms delayed-ACK stalls

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        reply = handle(self.server.fake, self.command, self.path, dict(self.headers.items()), body)
        if reply.lose:
            self.close_connection = True
            return
        if reply.delay:
            time.sleep(reply.delay)
        data = encode(reply.payload) if reply.payload is not None else b""
        try:
            self.send_response(reply.status)
            for name, value in reply.headers.items():
                self.send_header(name, value)
            if data:
                self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True  # the client gave up (timeout)

    do_GET = do_POST = do_PATCH = do_PUT = do_DELETE = _serve

    def log_message(self, format: str, *args) -> None:
        log.debug("%s " + format, self.client_address[0], *args)


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], fake: NeonFake):
        self.fake = fake
        super().__init__(address, _Handler)


class ApiServer:
    """A NeonFake served over HTTP in a background thread."""

    def __init__(self, fake: NeonFake, host: str = "127.0.0.1", port: int = 0):
        self.fake = fake
        self._server = _Server((host, port), fake)
        self._thread = threading.Thread(target=self._server.serve_forever, name="neon-fake-api", daemon=True)
        self._thread.start()

    @property
    def port(self) -> int:
        return self._server.server_address[1]

    @property
    def url(self) -> str:
        """The API base URL, e.g. http://127.0.0.1:4010/api/v2."""
        return f"http://{self._server.server_address[0]}:{self.port}{API_PREFIX}"

    def close(self) -> None:
        """Stop serving and stop every cluster of the fake."""
        self._server.shutdown()
        self._server.server_close()
        self.fake.close()
