"""Drive the real dynamic-provider host (`python -m pulumi.dynamic`) over gRPC, as the engine does.

The host is started with the project root as working directory, exactly like `pulumi up` starts
it, so a provider that does not pickle by reference or does not import from the project
directory fails here the way it would fail for users. A minimal fake Engine service receives
the host's log calls.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from concurrent import futures
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
from google.protobuf import empty_pb2, struct_pb2
from pulumi.dynamic.dynamic import ResourceProvider, serialize_provider
from pulumi.output import Unknown
from pulumi.runtime import rpc
from pulumi.runtime.proto import engine_pb2_grpc, provider_pb2, provider_pb2_grpc

PROJECT_ROOT = Path(__file__).resolve().parents[2]
PROVIDER_KEY = "__provider"
URN = "urn:pulumi:test::neon-stack::pulumi-python:dynamic:Resource::under-test"


class ProviderHostError(Exception):
    """A provider method failed inside the host; `details` is what the engine would show."""

    def __init__(self, code: grpc.StatusCode, details: str):
        self.code = code
        self.details = details
        super().__init__(f"{code.name}: {details}")


@dataclass
class CheckResult:
    inputs: dict[str, Any]
    failures: list[tuple[str, str]]


@dataclass
class DiffOutcome:
    changes: bool | None
    replaces: list[str]
    delete_before_replace: bool


class _FakeEngine(engine_pb2_grpc.EngineServicer):
    def __init__(self) -> None:
        self.logs: list[str] = []

    def Log(self, request, context):
        self.logs.append(request.message)
        return empty_pb2.Empty()

    def GetRootResource(self, request, context):
        raise NotImplementedError

    def SetRootResource(self, request, context):
        raise NotImplementedError


def _to_struct(props: dict[str, Any]) -> struct_pb2.Struct:
    """Plain values as the engine sends them; pulumi Unknown values become the unknown sentinel."""

    def plain(value: Any) -> Any:
        if isinstance(value, Unknown):
            return rpc.UNKNOWN
        if isinstance(value, dict):
            return {k: plain(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [plain(v) for v in value]
        return value

    struct = struct_pb2.Struct()
    struct.update(plain(props))
    return struct


def _from_struct(struct: struct_pb2.Struct) -> dict[str, Any]:
    props = rpc.deserialize_properties(struct, keep_unknowns=True)
    props.pop(PROVIDER_KEY, None)
    return props


class ProviderHost:
    """A running host process; call provider methods with a provider INSTANCE and plain props."""

    def __init__(self, process: subprocess.Popen, channel: grpc.Channel, engine: _FakeEngine):
        self._process = process
        self._channel = channel
        self._stub = provider_pb2_grpc.ResourceProviderStub(channel)
        self.engine_logs = engine.logs
        self._output: list[str] = []
        self._reader = threading.Thread(target=self._drain, daemon=True)
        self._reader.start()

    def _drain(self) -> None:
        for line in self._process.stdout:
            self._output.append(line)

    def output(self) -> str:
        """Everything the host printed (stdout and stderr) so far."""
        return "".join(self._output)

    def _call(self, method: str, request: Any) -> Any:
        try:
            return getattr(self._stub, method)(request, timeout=120)
        except grpc.RpcError as error:
            raise ProviderHostError(error.code(), error.details()) from None

    @staticmethod
    def _with_provider(provider: ResourceProvider, props: dict[str, Any]) -> struct_pb2.Struct:
        return _to_struct({**props, PROVIDER_KEY: serialize_provider(provider)})

    def configure(self, config: dict[str, str]) -> None:
        self._call("Configure", provider_pb2.ConfigureRequest(args=_to_struct(config), acceptSecrets=False))

    def check(self, provider: ResourceProvider, olds: dict[str, Any], news: dict[str, Any]) -> CheckResult:
        response = self._call(
            "Check",
            provider_pb2.CheckRequest(
                urn=URN, olds=self._with_provider(provider, olds), news=self._with_provider(provider, news)
            ),
        )
        return CheckResult(_from_struct(response.inputs), [(f.property, f.reason) for f in response.failures])

    def diff(self, provider: ResourceProvider, id_: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffOutcome:
        response = self._call(
            "Diff",
            provider_pb2.DiffRequest(
                id=id_, urn=URN, olds=self._with_provider(provider, olds), news=self._with_provider(provider, news)
            ),
        )
        changes = {
            provider_pb2.DiffResponse.DIFF_SOME: True,
            provider_pb2.DiffResponse.DIFF_NONE: False,
        }.get(response.changes)
        return DiffOutcome(changes, list(response.replaces), response.deleteBeforeReplace)

    def create(self, provider: ResourceProvider, props: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        response = self._call(
            "Create", provider_pb2.CreateRequest(urn=URN, properties=self._with_provider(provider, props))
        )
        return response.id, _from_struct(response.properties)

    def read(
        self, provider: ResourceProvider, id_: str, props: dict[str, Any]
    ) -> tuple[str, dict[str, Any], dict[str, Any] | None]:
        response = self._call(
            "Read", provider_pb2.ReadRequest(id=id_, urn=URN, properties=self._with_provider(provider, props))
        )
        inputs = _from_struct(response.inputs) if response.HasField("inputs") else None
        return response.id, _from_struct(response.properties), inputs

    def update(
        self, provider: ResourceProvider, id_: str, olds: dict[str, Any], news: dict[str, Any]
    ) -> dict[str, Any]:
        response = self._call(
            "Update",
            provider_pb2.UpdateRequest(
                id=id_, urn=URN, olds=self._with_provider(provider, olds), news=self._with_provider(provider, news)
            ),
        )
        return _from_struct(response.properties)

    def delete(self, provider: ResourceProvider, id_: str, props: dict[str, Any]) -> None:
        request = provider_pb2.DeleteRequest(id=id_, urn=URN, properties=self._with_provider(provider, props))
        self._call("Delete", request)


@contextmanager
def start_provider_host(env: dict[str, str] | None = None) -> Iterator[ProviderHost]:
    """Start `python -m pulumi.dynamic <engine>` in the project root; stop it on exit."""
    engine = _FakeEngine()
    engine_server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    engine_pb2_grpc.add_EngineServicer_to_server(engine, engine_server)
    engine_port = engine_server.add_insecure_port("127.0.0.1:0")
    engine_server.start()
    process = subprocess.Popen(
        [sys.executable, "-m", "pulumi.dynamic", f"127.0.0.1:{engine_port}"],
        cwd=PROJECT_ROOT,
        env={**_base_env(), **(env or {})},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    channel = None
    try:
        first_line = process.stdout.readline().strip()
        if not first_line.isdigit():
            rest = process.stdout.read() if process.poll() is not None else ""
            raise RuntimeError(f"provider host did not start: {first_line}\n{rest}")
        channel = grpc.insecure_channel(f"127.0.0.1:{first_line}")
        grpc.channel_ready_future(channel).result(timeout=30)
        yield ProviderHost(process, channel, engine)
    finally:
        if channel is not None:
            channel.close()
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
        engine_server.stop(0)


def _base_env() -> dict[str, str]:
    """The host's environment: ours minus anything that would put the project on sys.path for it."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONSAFEPATH")}
    env["PULUMI_PROJECT"] = "neon-stack"
    return env
