"""Fixtures for the tests of the fake Neon API: an HTTP client logged in to the fixture's account."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.support.neon_fixtures import NeonApi


@pytest.fixture
def client(neon_api: NeonApi) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=neon_api.url, headers=neon_api.headers, timeout=30) as http:
        yield http
