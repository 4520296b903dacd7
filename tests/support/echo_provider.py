"""A minimal dynamic provider used to prove the provider-host harness itself."""

from __future__ import annotations

from typing import Any

from pulumi import Output, ResourceOptions
from pulumi.dynamic import (
    CheckFailure,
    CheckResult,
    ConfigureRequest,
    CreateResult,
    DiffResult,
    ReadResult,
    Resource,
    ResourceProvider,
    UpdateResult,
)
from pulumi.output import Unknown


class EchoProvider(ResourceProvider):
    """Echoes its inputs; reports which config value it saw and which inputs were unknown."""

    def configure(self, req: ConfigureRequest) -> None:
        self._greeting = req.config.get("neon-stack:greeting")

    def check(self, olds: dict[str, Any], news: dict[str, Any]) -> CheckResult:
        unknown = sorted(k for k, v in news.items() if isinstance(v, Unknown))
        size = news.get("size")
        # Numbers cross the gRPC boundary as floats, whatever the program declared.
        failures = [CheckFailure("size", "size must be positive")] if isinstance(size, float) and size <= 0 else []
        return CheckResult({**news, "unknownInputs": unknown}, failures)

    def diff(self, id_: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        changed = [k for k in ("name", "size") if olds.get(k) != news.get(k)]
        return DiffResult(changes=bool(changed), replaces=[k for k in changed if k == "name"])

    def create(self, props: dict[str, Any]) -> CreateResult:
        return CreateResult(f"echo-{props['name']}", {**props, "greeting": self._greeting})

    def read(self, id_: str, props: dict[str, Any]) -> ReadResult:
        return ReadResult(id_, props, {"name": props["name"], "size": props["size"]})

    def update(self, id_: str, olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        return UpdateResult({**news, "greeting": self._greeting, "previousSize": olds["size"]})

    def delete(self, id_: str, props: dict[str, Any]) -> None:
        if props.get("name") == "undeletable":
            raise RuntimeError(f"refusing to delete {id_}")


class Echo(Resource, module="test", name="Echo"):
    """A dynamic resource backed by EchoProvider, for harness tests."""

    greeting: Output[str]
    size: Output[float]

    def __init__(self, name: str, props: dict[str, Any], opts: ResourceOptions | None = None):
        super().__init__(EchoProvider(), name, {"greeting": None, **props}, opts)
