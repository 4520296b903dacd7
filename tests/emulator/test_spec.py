"""The pinned OpenAPI document: fetched once, checked by sha256, loaded with string response codes."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import pytest

from neon_emulator import spec

pytestmark = pytest.mark.host  # `npm pack` fetches the document on first use


def test_document_matches_its_pin_and_is_cached() -> None:
    path = spec.document_path()
    assert hashlib.sha256(path.read_bytes()).hexdigest() == spec.DOCUMENT_SHA256
    assert path.parent == spec.cache_directory()
    assert (path.parent / spec.TARBALL_NAME).exists()
    assert spec.document_path() == path


def test_response_codes_are_strings() -> None:
    responses = spec.load_document()["paths"]["/projects"]["post"]["responses"]
    assert set(responses) == {"201", "default"}


def test_tampered_document_is_extracted_again_from_the_cached_tarball(tmp_path: Path, monkeypatch) -> None:
    cache = tmp_path / "neon-openapi"
    cache.mkdir()
    shutil.copy(spec.cache_directory() / spec.TARBALL_NAME, cache / spec.TARBALL_NAME)
    (cache / f"public-v2-for-users-{spec.VERSION}.yaml").write_text("openapi: 3.0.3\n")
    monkeypatch.setenv("NEON_STACK_CACHE", str(tmp_path))
    monkeypatch.setenv("PATH", str(tmp_path))  # no npm: the cached tarball must be enough
    path = spec.document_path()
    assert hashlib.sha256(path.read_bytes()).hexdigest() == spec.DOCUMENT_SHA256


def test_tarball_with_another_digest_is_refused(tmp_path: Path, monkeypatch) -> None:
    cache = tmp_path / "neon-openapi"
    cache.mkdir()
    (cache / spec.TARBALL_NAME).write_bytes(b"not the pinned package")
    monkeypatch.setenv("NEON_STACK_CACHE", str(tmp_path))
    monkeypatch.setenv("PATH", str(tmp_path))  # npm cannot fetch a replacement
    with pytest.raises(spec.SpecError, match="npm pack"):
        spec.document_path()
