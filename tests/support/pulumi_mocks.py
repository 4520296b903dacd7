"""Run a Pulumi program in-process under mocks, recording every resource and its options.

Each run starts from a fresh root stack, event loop and config, so tests cannot leak into each
other. The recording monitor keeps what `Mocks.new_resource` never sees: protect,
retain_on_delete, additional_secret_outputs, dependencies, parent and provider. Like the engine,
it marks an output secret when its name is in additional_secret_outputs or the same-named input
was secret. A component's outputs are those it registers (`register_outputs`).

With `run_providers=True`, dynamic resources run FOR REAL the way the provider host runs them:
the `__provider` input is unpickled, configured with `provider_config`, then check and create are
called, or diff and update (or a replacement) when `state` (a previous run's `run.state`) holds
the resource. That makes a whole-program test an in-process `pulumi up`.
"""

from __future__ import annotations

import asyncio
import base64
import runpy
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dill
from google.protobuf import empty_pb2
from pulumi.dynamic import Config as DynamicConfig
from pulumi.dynamic import ConfigureRequest
from pulumi.runtime import mocks as runtime_mocks
from pulumi.runtime import rpc, settings
from pulumi.runtime.config import set_all_config
from pulumi.runtime.proto import resource_pb2
from pulumi.runtime.stack import run_in_stack

PROVIDER_KEY = "__provider"
DYNAMIC_PREFIX = "pulumi-python:dynamic"


class ProgramError(Exception):
    """A dynamic provider refused or failed, as `pulumi up` would report it."""


@dataclass
class RecordedResource:
    type: str
    name: str
    urn: str
    id: str
    inputs: dict[str, Any]
    outputs: dict[str, Any]
    secret_inputs: set[str]
    secret_outputs: set[str]
    options: dict[str, Any]
    custom: bool
    read: bool = False


@dataclass
class ProgramRun:
    resources: list[RecordedResource]
    outputs: dict[str, Any]
    secret_outputs: set[str]
    state: dict[str, dict[str, Any]]
    operations: list[tuple[str, str]]
    logs: list[tuple[str, str, str]]

    def of_type(self, type_: str) -> list[RecordedResource]:
        """Resources whose type token equals or ends with `type_`."""
        return [r for r in self.resources if r.type == type_ or r.type.endswith(type_)]

    def one(self, type_: str, name: str) -> RecordedResource:
        found = [r for r in self.of_type(type_) if r.name == name]
        if len(found) != 1:
            names = sorted(r.name for r in self.of_type(type_))
            raise AssertionError(f"expected one {type_} named {name}, found {len(found)} (have {names})")
        return found[0]


def _unwrap(value: Any) -> tuple[Any, bool]:
    """Plain value, and whether it (or anything inside it) was secret."""
    if rpc.is_rpc_secret(value):
        inner, _ = _unwrap(rpc.unwrap_rpc_secret(value))
        return inner, True
    if isinstance(value, dict):
        pairs = {k: _unwrap(v) for k, v in value.items()}
        return {k: v for k, (v, _) in pairs.items()}, any(s for _, s in pairs.values())
    if isinstance(value, list):
        items = [_unwrap(v) for v in value]
        return [v for v, _ in items], any(s for _, s in items)
    return value, False


def _plain_props(props: dict[str, Any]) -> tuple[dict[str, Any], set[str]]:
    plain, secret = {}, set()
    for key, value in props.items():
        plain[key], is_secret = _unwrap(value)
        if is_secret:
            secret.add(key)
    return plain, secret


def _load_provider(blob: str, config: dict[str, str]) -> Any:
    """Unpickle and configure a provider the way the dynamic-provider host does."""
    provider = dill.loads(base64.b64decode(blob))  # noqa: S301 - our own program's provider
    provider.configure(ConfigureRequest(DynamicConfig(config, "neon-stack")))
    return provider


class _Recorder:
    """Mocks behaviour plus the record of one run."""

    def __init__(self, run_providers: bool, provider_config: dict[str, str], state: dict, preview: bool,
                 stack_references: dict[str, dict[str, Any]]):
        self.run_providers = run_providers
        self.provider_config = provider_config
        self.previous_state = state
        self.preview = preview
        self.stack_references = stack_references
        self.resources: list[RecordedResource] = []
        self.state: dict[str, dict[str, Any]] = {}
        self.operations: list[tuple[str, str]] = []
        self.logs: list[tuple[str, str, str]] = []
        self.stack_outputs: dict[str, Any] = {}
        self.stack_secret_outputs: set[str] = set()

    def new_resource(self, urn: str, type_: str, name: str, inputs: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        if type_ == "pulumi:pulumi:StackReference":
            reference = self.stack_references.get(name)
            if reference is None:
                raise ProgramError(f"unknown stack reference {name}")
            return name, {"name": name, "outputs": reference["outputs"],
                          "secretOutputNames": reference.get("secretOutputNames", [])}
        if type_.startswith(DYNAMIC_PREFIX) and self.run_providers:
            return self._run_dynamic(urn, type_, inputs)
        return inputs.get("id") or f"{name}-id", dict(inputs)

    def _run_dynamic(self, urn: str, type_: str, inputs: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        provider_blob = inputs[PROVIDER_KEY]
        provider = _load_provider(provider_blob, self.provider_config)
        news = {k: v for k, v in inputs.items() if k != PROVIDER_KEY}
        previous = self.previous_state.get(urn)
        checked = provider.check(previous["inputs"] if previous else {}, news)
        if checked.failures:
            reasons = "; ".join(f"{f.property}: {f.reason}" for f in checked.failures)
            raise ProgramError(f"{type_} {urn.split('::')[-1]} failed check: {reasons}")
        news = {k: v for k, v in checked.inputs.items() if k != PROVIDER_KEY}
        if previous is None:
            if self.preview:
                return "", dict(news)
            result = provider.create(news)
            self.operations.append((urn, "create"))
            id_, outs = result.id, result.outs or {}
        else:
            id_, outs = previous["id"], previous["outputs"]
            diff = provider.diff(id_, outs, news)
            if self.preview:
                self.operations.append((urn, "diff"))
            elif diff.replaces:
                if diff.delete_before_replace:
                    provider.delete(id_, outs)
                result = provider.create(news)
                if not diff.delete_before_replace:
                    provider.delete(id_, outs)
                self.operations.append((urn, "replace"))
                id_, outs = result.id, result.outs or {}
            elif diff.changes or (diff.changes is None and news != previous["inputs"]):
                outs = provider.update(id_, outs, news).outs or {}
                self.operations.append((urn, "update"))
        self.state[urn] = {"id": id_, "inputs": news, "outputs": outs, "provider": provider_blob}
        return id_, {**outs, PROVIDER_KEY: provider_blob}

    def delete_undeclared(self) -> None:
        """Delete what the previous run declared and this one did not, newest first, like the engine."""
        for urn, entry in reversed(list(self.previous_state.items())):
            if urn in self.state:
                continue
            provider = _load_provider(entry["provider"], self.provider_config)
            provider.delete(entry["id"], entry["outputs"])
            self.operations.append((urn, "delete"))


class _RecordingMonitor(runtime_mocks.MockMonitor):
    def __init__(self, recorder: _Recorder):
        super().__init__(mocks=None)  # type: ignore[arg-type]
        self.recorder = recorder

    def _register(self, request: Any, urn: str, inputs_struct: Any, read: bool, custom: bool) -> Any:
        runtime_mocks._ensure_event_loop()
        raw_inputs = rpc.deserialize_properties(inputs_struct)
        inputs, secret_inputs = _plain_props(raw_inputs)
        id_, outputs = self.recorder.new_resource(urn, request.type, request.name, inputs)
        additional = set(getattr(request, "additionalSecretOutputs", []))
        secret_outputs = {k for k in outputs if k in additional or k in secret_inputs}
        wire = {k: rpc.wrap_rpc_secret(v) if k in secret_outputs else v for k, v in outputs.items()}
        options = {
            "protect": getattr(request, "protect", False),
            "retain_on_delete": getattr(request, "retainOnDelete", False),
            "additional_secret_outputs": sorted(additional),
            "depends_on": sorted(getattr(request, "dependencies", [])),
            "parent": request.parent,
            "provider": request.provider,
            "delete_before_replace": getattr(request, "deleteBeforeReplace", False),
        }
        self.recorder.resources.append(
            RecordedResource(request.type, request.name, urn, id_, inputs, outputs, secret_inputs,
                             secret_outputs, options, custom, read)
        )
        self.resources[urn] = runtime_mocks.MockMonitor.ResourceRegistration(urn, id_, outputs)
        return id_, runtime_mocks._sync_await(rpc.serialize_properties(wire, {}))

    def RegisterResource(self, request):
        urn = self.make_urn(request.parent, request.type, request.name)
        if request.type == "pulumi:pulumi:Stack":
            return resource_pb2.RegisterResourceResponse(urn=urn)
        id_, obj = self._register(request, urn, request.object, read=False, custom=request.custom)
        return resource_pb2.RegisterResourceResponse(urn=urn, id=id_, object=obj)

    def ReadResource(self, request):
        urn = self.make_urn(request.parent, request.type, request.name)
        _, obj = self._register(request, urn, request.properties, read=True, custom=True)
        return resource_pb2.ReadResourceResponse(urn=urn, properties=obj)

    def RegisterResourceOutputs(self, request):
        runtime_mocks._ensure_event_loop()
        plain, secret = _plain_props(rpc.deserialize_properties(request.outputs))
        if "::pulumi:pulumi:Stack::" in request.urn:
            self.recorder.stack_outputs, self.recorder.stack_secret_outputs = plain, secret
        else:
            (component,) = [r for r in self.recorder.resources if r.urn == request.urn]
            component.outputs, component.secret_outputs = plain, secret
        return empty_pb2.Empty()

    def Invoke(self, request):
        raise ProgramError(f"unexpected invoke {request.tok}")


class _RecordingEngine:
    def __init__(self, recorder: _Recorder):
        self.recorder = recorder

    def Log(self, request):
        level = {0: "debug", 1: "info", 2: "warning", 3: "error"}.get(request.severity, "info")
        self.recorder.logs.append((level, request.message, request.urn))

    def GetRootResource(self, request):
        return settings.get_root_resource()

    def SetRootResource(self, request):
        return empty_pb2.Empty()


def run_program(
    program: Callable[[], None] | Path,
    *,
    config: dict[str, str],
    secret_keys: tuple[str, ...] | list[str] = (),
    stack: str = "dev",
    project: str = "neon-stack",
    preview: bool = False,
    run_providers: bool = False,
    provider_config: dict[str, str] | None = None,
    state: dict[str, dict[str, Any]] | None = None,
    stack_references: dict[str, dict[str, Any]] | None = None,
) -> ProgramRun:
    """Run `program` (a callable, or the path of a program directory/file) and return what it declared.

    Exceptions raised by the program or by a provider propagate, as `pulumi up` would fail; the
    exception carries what was declared before the failure as its `partial_run` attribute.
    """
    recorder = _Recorder(run_providers, provider_config or {}, state or {}, preview, stack_references or {})
    loop = asyncio.new_event_loop()
    # A failing resource leaves the SDK's dependent tasks with the same exception: the run re-raises
    # the first one, so the echoes are recorded instead of printed at garbage collection.
    loop.set_exception_handler(lambda _loop, context: recorder.logs.append(("asyncio", context["message"], "")))
    asyncio.set_event_loop(loop)
    try:
        settings.reset_options(project=project, stack=stack, preview=preview)
        set_all_config(dict(config), list(secret_keys))
        monitor = _RecordingMonitor(recorder)
        settings.configure(
            runtime_mocks.MockSettings(
                monitor=monitor,
                monitor_features=set(monitor.GetDeploymentInfo(empty_pb2.Empty()).supportedFeatures),
                engine=_RecordingEngine(recorder),
                project=project,
                stack=stack,
                dry_run=preview,
                organization="organization",
                callbacks=None,
            )
        )
        body = program if callable(program) else (lambda: runpy.run_path(str(program), run_name="__main__"))
        try:
            loop.run_until_complete(run_in_stack(body))
            if run_providers and not preview:
                recorder.delete_undeclared()
        except BaseException as error:
            error.partial_run = _program_run(recorder, dict(state or {}))  # type: ignore[attr-defined]
            raise
    finally:
        pending = asyncio.all_tasks(loop)
        for task in pending:
            task.cancel()
        loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
        loop.close()
        asyncio.set_event_loop(None)
        settings.reset_options()
        set_all_config({}, [])
    return _program_run(recorder, recorder.state if run_providers and not preview else dict(state or {}))


def _program_run(recorder: _Recorder, state: dict[str, dict[str, Any]]) -> ProgramRun:
    return ProgramRun(
        resources=recorder.resources,
        outputs=recorder.stack_outputs,
        secret_outputs=recorder.stack_secret_outputs,
        state=state,
        operations=recorder.operations,
        logs=recorder.logs,
    )


