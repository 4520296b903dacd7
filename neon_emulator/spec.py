"""Neon's official OpenAPI document: fetched, pinned, loaded and used to validate API traffic.

The document ships in the npm package `@neondatabase/api-client` under a proprietary license, so
it is never stored in this repository: `document_path()` runs `npm pack` into a cache directory
(`<project>/.cache/neon-openapi/`, or `$NEON_STACK_CACHE/neon-openapi/`), checks the sha256 of the
tarball and of the YAML file, and reuses the cache afterwards.

`SpecValidator` checks requests and responses with openapi-core, plus a strict mode that the
document alone cannot express (none of its schemas forbids additional properties): request body
fields and query parameters the document does not define are errors.
"""

from __future__ import annotations

import functools
import hashlib
import io
import json
import os
import re
import subprocess
import tarfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import yaml
from openapi_core import OpenAPI
from openapi_core.datatypes import RequestParameters
from werkzeug.datastructures import Headers, ImmutableMultiDict

PACKAGE = "@neondatabase/api-client"
VERSION = "2.7.3"
TARBALL_NAME = "neondatabase-api-client-2.7.3.tgz"
TARBALL_SHA256 = "28368170b48c30a77b1413782f8dcfee02535f4088fdd084bb259bf994568558"
DOCUMENT_MEMBER = "package/public-v2-for-users.gen.yaml"
DOCUMENT_SHA256 = "dacf72ea2d63110b3694c705313e0b2104e9652ae1be3fc01ceebe7b17059c44"

# The document's only server: requests are validated as if they were sent there.
SPEC_HOST = "https://console.neon.tech"
API_PREFIX = "/api/v2"

# The checkout this package lives in: its `.cache/` is the default cache.
PROJECT_ROOT = Path(__file__).resolve().parent.parent


class SpecError(RuntimeError):
    """The document could not be fetched or does not match its pin."""


def cache_directory() -> Path:
    root = Path(os.environ["NEON_STACK_CACHE"]) if os.environ.get("NEON_STACK_CACHE") else PROJECT_ROOT / ".cache"
    return root / "neon-openapi"


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def document_path() -> Path:
    """Path of the pinned YAML document, fetching it with `npm pack` on first use."""
    directory = cache_directory()
    document = directory / f"public-v2-for-users-{VERSION}.yaml"
    if document.exists() and _sha256(document.read_bytes()) == DOCUMENT_SHA256:
        return document
    directory.mkdir(parents=True, exist_ok=True)
    tarball = directory / TARBALL_NAME
    if not tarball.exists() or _sha256(tarball.read_bytes()) != TARBALL_SHA256:
        try:
            subprocess.run(
                ["npm", "pack", f"{PACKAGE}@{VERSION}", "--pack-destination", str(directory)],
                check=True,
                capture_output=True,
                text=True,
                timeout=300,
            )
        except (OSError, subprocess.SubprocessError) as error:
            raise SpecError(f"could not fetch {PACKAGE}@{VERSION} with npm pack: {error}") from error
    tarball_bytes = tarball.read_bytes()
    if _sha256(tarball_bytes) != TARBALL_SHA256:
        raise SpecError(f"{tarball} does not match the pinned sha256 {TARBALL_SHA256}")
    with tarfile.open(fileobj=io.BytesIO(tarball_bytes)) as archive:
        member = archive.extractfile(DOCUMENT_MEMBER)
        if member is None:
            raise SpecError(f"{TARBALL_NAME} has no {DOCUMENT_MEMBER}")
        content = member.read()
    if _sha256(content) != DOCUMENT_SHA256:
        raise SpecError(f"{DOCUMENT_MEMBER} does not match the pinned sha256 {DOCUMENT_SHA256}")
    partial = document.with_suffix(f".{os.getpid()}.partial")
    partial.write_bytes(content)
    partial.replace(document)  # atomic: a concurrent reader sees the whole document or none
    return document


def _string_keys(value: Any) -> Any:
    """YAML turns response codes (`201:`) into ints; OpenAPI tools expect strings."""
    if isinstance(value, dict):
        return {str(key): _string_keys(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_string_keys(item) for item in value]
    return value


@functools.cache
def load_document() -> dict[str, Any]:
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # the C build of the safe loader: 10x faster
    return _string_keys(yaml.load(document_path().read_text(), Loader=loader))  # noqa: S506 (a safe loader)


class _Request:
    """The openapi-core request protocol for one HTTP request, addressed to the spec's server."""

    def __init__(self, method: str, path: str, query: Mapping[str, list[str]], headers: Mapping[str, str], body: bytes):
        self.host_url = SPEC_HOST
        self.path = path
        self.method = method.lower()
        self.body = body or None
        header = Headers(dict(headers))
        self.content_type = header.get("Content-Type", "application/json").lower()
        self.parameters = RequestParameters(
            query=ImmutableMultiDict([(k, v) for k, values in query.items() for v in values]),
            header=header,
        )


class _Response:
    def __init__(self, status: int, body: bytes | None):
        self.status_code = status
        self.data = body
        self.headers = Headers({"Content-Type": "application/json"} if body else {})
        self.content_type = "application/json" if body else ""


def _errors_of(error: BaseException) -> list[str]:
    """Readable messages from an openapi-core exception and the schema errors it wraps."""
    messages = [str(error)]
    for cause in (error, error.__cause__):
        for schema_error in getattr(cause, "schema_errors", None) or ():
            where = "/".join(str(p) for p in schema_error.absolute_path) or "(root)"
            messages.append(f"{where}: {schema_error.message}")
    return messages


class SpecValidator:
    """Validates the fake's traffic against the pinned document."""

    def __init__(self) -> None:
        self.document = load_document()
        self.openapi = OpenAPI.from_dict(self.document)
        self._templates = [
            (method, template, re.compile("^" + re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(template)) + "$"))
            for template, item in self.document["paths"].items()
            for method in item
            if method in ("get", "post", "patch", "put", "delete")
        ]

    def operation(self, method: str, template: str) -> dict[str, Any]:
        return self.document["paths"][template][method.lower()]

    def validate_request(
        self,
        method: str,
        template: str,
        path: str,
        query: Mapping[str, list[str]],
        headers: Mapping[str, str],
        body: bytes,
    ) -> list[str]:
        """Every problem with one request (empty if it is valid, strictly)."""
        problems: list[str] = []
        try:
            self.openapi.validate_request(_Request(method, API_PREFIX + path, query, headers, body))
        except Exception as error:  # openapi-core raises a family of unrelated exception types
            problems.extend(_errors_of(error))
        known = {p["name"] for p in self._parameters(method, template) if p.get("in") == "query"}
        problems.extend(f"unknown query parameter {name!r}" for name in query if name not in known)
        if body:
            try:
                payload = json.loads(body)
            except ValueError:
                return [*problems, "request body is not JSON"]
            schema = self._request_schema(method, template)
            if schema is None:
                problems.append("this operation takes no request body")
            else:
                problems.extend(f"unknown field {field!r}" for field in self.unknown_fields(schema, payload))
        return problems

    def validate_response(self, method: str, path: str, status: int, body: bytes | None) -> list[str]:
        try:
            self.openapi.validate_response(
                _Request(method, API_PREFIX + path, {}, {"Authorization": "Bearer x"}, b""), _Response(status, body)
            )
        except Exception as error:  # see validate_request
            return _errors_of(error)
        return []

    def _deref(self, node: Any) -> Any:
        while isinstance(node, dict) and "$ref" in node:
            target: Any = self.document
            for part in node["$ref"].removeprefix("#/").split("/"):
                target = target[part]
            node = target
        return node

    def _parameters(self, method: str, template: str) -> list[dict[str, Any]]:
        item = self.document["paths"][template]
        return [self._deref(p) for p in item.get("parameters", []) + item[method.lower()].get("parameters", [])]

    def _request_schema(self, method: str, template: str) -> dict[str, Any] | None:
        body = self._deref(self.operation(method, template).get("requestBody"))
        if not body:
            return None
        return body.get("content", {}).get("application/json", {}).get("schema")

    def _properties(self, schema: Any) -> tuple[dict[str, Any], Any]:
        """(properties, additionalProperties) of a schema, merged over allOf/anyOf/oneOf."""
        schema = self._deref(schema)
        properties = dict(schema.get("properties", {}))
        extra = schema.get("additionalProperties")
        for key in ("allOf", "anyOf", "oneOf"):
            for part in schema.get(key, []):
                more, more_extra = self._properties(part)
                properties.update(more)
                extra = extra if extra is not None else more_extra
        return properties, extra

    def unknown_fields(self, schema: Any, value: Any, where: str = "") -> Iterator[str]:
        """Paths of fields in `value` that `schema` does not define (free-form maps excepted)."""
        schema = self._deref(schema)
        if isinstance(value, list):
            items = schema.get("items")
            if items is not None:
                for index, item in enumerate(value):
                    yield from self.unknown_fields(items, item, f"{where}[{index}]")
            return
        if not isinstance(value, dict):
            return
        properties, extra = self._properties(schema)
        for key, item in value.items():
            path = f"{where}.{key}" if where else key
            if key in properties:
                yield from self.unknown_fields(properties[key], item, path)
            elif isinstance(extra, dict):
                yield from self.unknown_fields(extra, item, path)
            elif properties or extra is False:
                yield path

    def match(self, method: str, path: str) -> tuple[str, dict[str, str]] | None:
        """(template, path parameters) of the document's operation serving `method path`."""
        candidates = []
        for candidate_method, template, pattern in self._templates:
            if candidate_method == method.lower() and pattern.match(path):
                candidates.append(template)
        if not candidates:
            return None
        # Prefer literal segments over parameters (`/branches/count` over `/branches/{branch_id}`).
        template = max(candidates, key=lambda t: len(re.sub(r"\{[^}]+\}", "", t)))
        names = re.findall(r"\{([^}]+)\}", template)
        values = re.match("^" + re.sub(r"\\\{[^}]+\\\}", "([^/]+)", re.escape(template)) + "$", path).groups()
        return template, dict(zip(names, values, strict=True))
