"""Pytest fixtures for the fake Neon API (neon_emulator).

`neon_api` gives each test an empty fake Neon account served over real HTTP; the server is
shared by the whole session, the state (projects and their PostgreSQL clusters, calls, faults,
violations) is reset around every test. At teardown the test fails if any request it made broke
the Neon OpenAPI document (strictly: unknown fields and query parameters included) or if the
fake produced an invalid response. Operations run `TEST_OPERATION_SECONDS` each on the real
clock; a test that needs to control time gives the fake a `FakeClock` with `configure(clock=...)`.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

from neon_emulator.api_server import ApiServer
from neon_emulator.fake import NeonFake
from neon_emulator.faults import Faults
from neon_emulator.state import ProjectState

# Near zero, so waiting for operations costs the suite nothing, yet not zero: a client that does
# not wait for them still meets 423 Locked.
TEST_OPERATION_SECONDS = 0.01


class FakeClock:
    """A clock for the fake that moves only when told (`advance`); starts at the real time."""

    def __init__(self) -> None:
        self.now = float(int(time.time()))

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class NeonApi:
    """What a test sees of the fake: where it is, how to reach it, what happened, what to break."""

    def __init__(self, server: ApiServer):
        self.server = server
        self.fake: NeonFake = server.fake

    @property
    def url(self) -> str:
        """API base URL ending in /api/v2 (the value of neon:apiUrl)."""
        return self.server.url

    @property
    def api_key(self) -> str:
        return self.fake.api_key

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.fake.api_key}"}

    @property
    def faults(self) -> Faults:
        return self.fake.faults

    @property
    def calls(self) -> list[tuple[str, str, int]]:
        """(method, path template relative to /api/v2, status) of every request, in order."""
        return self.fake.calls

    def write_calls(self) -> list[tuple[str, str, int]]:
        return self.fake.write_calls()

    def reveal_calls(self) -> list[tuple[str, str, int]]:
        return self.fake.reveal_calls()

    @property
    def projects(self) -> dict[str, ProjectState]:
        return self.fake.projects

    @property
    def violations(self) -> list[str]:
        return self.fake.violations

    def take_violations(self) -> list[str]:
        """The violations so far, cleared: for tests that send invalid requests on purpose."""
        with self.fake.lock:
            taken = list(self.fake.violations)
            self.fake.violations.clear()
        return taken

    def configure(self, **settings: Any) -> None:
        """Set fake options for this test: operation_seconds, clock, gone_delete_status, plan."""
        for name, value in settings.items():
            if name not in ("operation_seconds", "clock", "gone_delete_status", "plan"):
                raise AttributeError(f"the fake has no option {name!r}")
            setattr(self.fake, name, value)


@pytest.fixture(scope="session")
def neon_api_server() -> Iterator[ApiServer]:
    server = ApiServer(NeonFake(operation_seconds=TEST_OPERATION_SECONDS))
    try:
        yield server
    finally:
        server.close()


@pytest.fixture
def neon_api(neon_api_server: ApiServer) -> Iterator[NeonApi]:
    fake = neon_api_server.fake
    fake.reset()
    handle = NeonApi(neon_api_server)
    yield handle
    violations, response_errors = list(fake.violations), list(fake.response_errors)
    fake.reset()
    assert not response_errors, "the fake Neon API sent responses that break the Neon API document:\n" + "\n".join(
        response_errors
    )
    assert not violations, "requests broke the Neon API document:\n" + "\n".join(violations)
