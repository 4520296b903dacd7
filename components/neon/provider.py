"""What every Neon dynamic provider shares: credentials, input checks, state-only diffs.

Credentials are read in `configure()` (stack config `neon:apiUrl`, secret `neon:apiKey`, else the
`NEON_API_KEY` environment variable) and `__getstate__` keeps them out of every pickle, so the
provider stored in state never holds them. A client is made per call: nothing unpicklable
lives on the provider.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import Any

from pulumi.dynamic import CheckFailure, ConfigureRequest, DiffResult, ResourceProvider
from pulumi.output import Unknown

from components.neon.client import ClientPolicy, Json, NeonClient
from components.settings import NEON_API_KEY_ENV, NEON_API_KEY_KEY, NEON_API_URL, NEON_API_URL_KEY
from components.uri import pooled_host

_RUNTIME_ONLY = ("_api_key", "_api_url")


def is_unknown(value: Any) -> bool:
    return isinstance(value, Unknown)


def plain_inputs(props: dict[str, Any]) -> dict[str, Any]:
    """Inputs without the host's reserved keys (`__provider`), whole numbers as int.

    Over gRPC every number arrives as a float (protobuf Struct); Neon's integer fields reject 17.0.
    """
    return {
        k: int(v) if isinstance(v, float) and v.is_integer() else v
        for k, v in props.items()
        if not k.startswith("__")
    }


class NeonProvider(ResourceProvider):
    """Base of the Neon providers. `policy` (timeouts, retries, polling) is the only pickled attribute."""

    def __init__(self, policy: ClientPolicy | None = None):
        super().__init__()
        self.policy = policy

    def __getstate__(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if k not in _RUNTIME_ONLY}

    def configure(self, req: ConfigureRequest) -> None:
        self._api_url = req.config.get(NEON_API_URL_KEY) or None
        self._api_key = req.config.get(NEON_API_KEY_KEY) or None

    def client(self) -> NeonClient:
        api_key = getattr(self, "_api_key", None) or os.environ.get(NEON_API_KEY_ENV, "")
        return NeonClient(api_key, getattr(self, "_api_url", None) or NEON_API_URL, self.policy)


class InputChecker:
    """Collects check failures; unknown values (preview) are never judged."""

    def __init__(self, news: dict[str, Any]):
        self.inputs = plain_inputs(news)
        self.failures: list[CheckFailure] = []

    def fail(self, key: str, reason: str) -> None:
        self.failures.append(CheckFailure(key, reason))

    def default(self, key: str, value: Any) -> None:
        if self.inputs.get(key) is None:
            self.inputs[key] = value

    def string(self, key: str, *, required: bool = True, max_length: int = 256) -> None:
        value = self.inputs.get(key)
        if is_unknown(value) or (value is None and not required):
            return
        if not isinstance(value, str) or not value.strip():
            self.fail(key, f"{key} must be a non-empty string, got {value!r}")
        elif len(value) > max_length:
            self.fail(key, f"{key} is longer than {max_length} characters")

    def one_of(self, key: str, choices: Iterable[str]) -> None:
        value, choices = self.inputs.get(key), sorted(choices)
        if not is_unknown(value) and value not in choices:
            self.fail(key, f"{key} {value!r} is not one of {', '.join(choices)}")

    def integer(self, key: str, low: int, high: int) -> None:
        value = self.inputs.get(key)
        if is_unknown(value):
            return
        if isinstance(value, float) and value.is_integer():
            value = self.inputs[key] = int(value)
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            self.fail(key, f"{key} must be an integer from {low} to {high}, got {value!r}")

    def boolean(self, key: str) -> None:
        value = self.inputs.get(key)
        if not is_unknown(value) and not isinstance(value, bool):
            self.fail(key, f"{key} must be true or false, got {value!r}")

    def compute(self, min_key: str = "min_cu", max_key: str = "max_cu") -> None:
        """Autoscaling limits: multiples of 0.25 CU, at least 0.25, max not below min."""
        limits = {}
        for key in (min_key, max_key):
            value = self.inputs.get(key)
            if is_unknown(value):
                continue
            if isinstance(value, bool) or not isinstance(value, int | float) or value < 0.25 or (value * 4) % 1:
                self.fail(key, f"{key} must be a multiple of 0.25 compute units, at least 0.25, got {value!r}")
            else:
                limits[key] = self.inputs[key] = float(value)
        if len(limits) == 2 and limits[max_key] < limits[min_key]:
            self.fail(max_key, f"{max_key} ({limits[max_key]:g}) is below {min_key} ({limits[min_key]:g})")
        self.integer("suspend_timeout_seconds", -1, 604800)


def _differs(old: Any, new: Any) -> bool:
    if is_unknown(new):
        return True
    if isinstance(old, int | float) and isinstance(new, int | float) and not isinstance(old, bool):
        return float(old) != float(new)
    return old != new


def diff_from_state(
    olds: dict[str, Any],
    news: dict[str, Any],
    replace_keys: Iterable[str],
    update_keys: Iterable[str],
    delete_before_replace: bool = False,
) -> DiffResult:
    """Compare new inputs with the outputs in state; no API call. Keys not listed never cause a change."""
    replaces = [k for k in replace_keys if _differs(olds.get(k), news.get(k))]
    updates = [k for k in update_keys if _differs(olds.get(k), news.get(k))]
    return DiffResult(
        changes=bool(replaces or updates),
        replaces=replaces,
        delete_before_replace=bool(replaces) and delete_before_replace,
    )


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
