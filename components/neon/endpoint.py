"""A branch's read-write endpoint as the Project and Branch providers manage it: compute inputs
checked, sent to Neon, compared with what Neon reports, and turned into outputs; and read replicas,
`pulumi-python:dynamic/neon:ReadReplica`: read-only endpoints of a branch with the same compute
inputs (resized in place; another project or branch replaces one)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pulumi
from pulumi.dynamic import CheckResult, CreateResult, DiffResult, ReadResult, Resource, UpdateResult

from components.defaults import (
    MAX_CU,
    MIN_CU,
    SUSPEND_TIMEOUT_MAX,
    SUSPEND_TIMEOUT_NEVER,
    SUSPEND_TIMEOUT_SECONDS,
    compute_units_problem,
    suspend_timeout_problem,
)
from components.neon.client import NeonClient
from components.neon.errors import NeonNotFound
from components.neon.provider import NeonProvider
from components.neon.session import ClientPolicy, Json
from components.providers import InputChecker, diff_from_state, plain_inputs
from components.uri import pooled_host


def check_compute(c: InputChecker) -> None:
    """The compute inputs, defaults filled in: autoscaling limits Neon accepts (components.defaults),
    max not below min, and the auto-suspend time."""
    c.default("min_cu", MIN_CU)
    c.default("max_cu", MAX_CU)
    c.default("suspend_timeout_seconds", SUSPEND_TIMEOUT_SECONDS)
    limits = {}
    for key in ("min_cu", "max_cu"):
        if c.number(key):
            problem = compute_units_problem(c.inputs[key])
            if problem:
                c.fail(key, problem)
            else:
                limits[key] = c.inputs[key]
    if len(limits) == 2 and limits["max_cu"] < limits["min_cu"]:
        c.fail("max_cu", f"max_cu ({limits['max_cu']:g}) is below min_cu ({limits['min_cu']:g})")
    if c.integer("suspend_timeout_seconds", SUSPEND_TIMEOUT_NEVER, SUSPEND_TIMEOUT_MAX):
        c.rule("suspend_timeout_seconds", suspend_timeout_problem)


def endpoint_settings(inputs: dict[str, Any]) -> dict[str, Any]:
    """Neon's endpoint fields for the autoscaling and suspend inputs."""
    return {
        "autoscaling_limit_min_cu": float(inputs["min_cu"]),
        "autoscaling_limit_max_cu": float(inputs["max_cu"]),
        "suspend_timeout_seconds": int(inputs["suspend_timeout_seconds"]),
    }


def endpoint_matches(endpoint: dict[str, Any], inputs: dict[str, Any]) -> bool:
    wanted = endpoint_settings(inputs)
    return all(_numbers_equal(endpoint.get(k), v) for k, v in wanted.items())


def _numbers_equal(a: Any, b: Any) -> bool:
    try:
        return float(a) == float(b)
    except (TypeError, ValueError):
        return False


def compute_from_endpoint(endpoint: dict[str, Any]) -> dict[str, Any]:
    """The compute inputs as Neon reports them (for refresh); missing fields are left out."""
    found = {
        "min_cu": endpoint.get("autoscaling_limit_min_cu"),
        "max_cu": endpoint.get("autoscaling_limit_max_cu"),
        "suspend_timeout_seconds": endpoint.get("suspend_timeout_seconds"),
    }
    return {k: v for k, v in found.items() if isinstance(v, int | float)}


def created_read_write_endpoint(response: Json) -> Json | None:
    """The read-write endpoint among those a creating call answered with."""
    return next((e for e in response.get("endpoints") or [] if e.get("type") == "read_write"), None)


def align_endpoint(client: NeonClient, project_id: str, branch_id: str, inputs: dict[str, Any]) -> Json:
    """The branch's read-write endpoint, created or resized to match the inputs."""
    endpoint = client.read_write_endpoint(project_id, branch_id)
    if endpoint is None:
        spec = {"branch_id": branch_id, "type": "read_write", **endpoint_settings(inputs)}
        return client.create_endpoint(project_id, spec)
    if not endpoint_matches(endpoint, inputs):
        endpoint = client.update_endpoint(project_id, endpoint["id"], endpoint_settings(inputs)) or endpoint
    return endpoint


def endpoint_outputs(endpoint: Json) -> dict[str, Any]:
    return {"endpoint_id": endpoint["id"], "host": endpoint["host"], "pooled_host": pooled_host(endpoint["host"])}


READ_ONLY = "read_only"
REPLICA_REPLACE_KEYS = ("project_id", "branch_id")
REPLICA_UPDATE_KEYS = ("min_cu", "max_cu", "suspend_timeout_seconds")


class ReadReplicaProvider(NeonProvider):
    """A read-only endpoint: it serves the branch's data and refuses writes (Neon's read replicas)."""

    def check(self, olds: dict[str, Any], news: dict[str, Any]) -> CheckResult:
        c = InputChecker(news)
        c.string("project_id")
        c.string("branch_id")
        check_compute(c)
        return c.result()

    def diff(self, id_: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        return diff_from_state(olds, news, REPLICA_REPLACE_KEYS, REPLICA_UPDATE_KEYS)

    def create(self, props: dict[str, Any]) -> CreateResult:
        inputs = plain_inputs(props)
        spec = {"branch_id": inputs["branch_id"], "type": READ_ONLY, **endpoint_settings(inputs)}
        with self.client() as client:
            endpoint = client.create_endpoint(inputs["project_id"], spec)
        return CreateResult(endpoint["id"], {**inputs, **endpoint_outputs(endpoint)})

    def update(self, id_: str, olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        news = plain_inputs(news)
        with self.client() as client:
            endpoint = client.update_endpoint(news["project_id"], id_, endpoint_settings(news))
        return UpdateResult({**news, **endpoint_outputs(endpoint or {"id": id_, "host": olds["host"]})})

    def delete(self, id_: str, props: dict[str, Any]) -> None:
        with self.client() as client:
            client.delete_endpoint(props["project_id"], id_)

    def read(self, id_: str, props: dict[str, Any]) -> ReadResult:
        with self.client() as client:
            try:
                endpoint = client.get_endpoint(props["project_id"], id_)
            except NeonNotFound:
                return ReadResult("", {})
        return ReadResult(id_, {**plain_inputs(props), **compute_from_endpoint(endpoint), **endpoint_outputs(endpoint)})


@dataclass
class ReadReplicaArgs:
    """A read-only endpoint of `branch_id` with the stack's autoscaling and suspend settings."""

    project_id: pulumi.Input[str]
    branch_id: pulumi.Input[str]
    min_cu: pulumi.Input[float] = MIN_CU
    max_cu: pulumi.Input[float] = MAX_CU
    suspend_timeout_seconds: pulumi.Input[int] = SUSPEND_TIMEOUT_SECONDS


class ReadReplica(Resource, module="neon", name="ReadReplica"):
    endpoint_id: pulumi.Output[str]
    host: pulumi.Output[str]
    pooled_host: pulumi.Output[str]

    def __init__(self, name: str, args: ReadReplicaArgs, opts: pulumi.ResourceOptions | None = None,
                 policy: ClientPolicy | None = None):
        props = {**vars(args), **dict.fromkeys(("endpoint_id", "host", "pooled_host"))}
        super().__init__(ReadReplicaProvider(policy), name, props, opts)
