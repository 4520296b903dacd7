"""Dynamic resource `pulumi-python:dynamic/neon:Branch`: a branch with its read-write endpoint.

The endpoint is created in the same call as the branch. Project, parent, init source and point
in time force replacement (deleting the old branch first when the new one keeps its name, since
names are unique in a project); name and `protected` are updated in place, and the endpoint's
compute settings are updated on the endpoint. With `adopt=True` an existing branch of the same
name is adopted (its endpoint created or resized as needed) instead of creating one.

With `ttl_seconds` the branch expires (Neon deletes it) that long after the last create or update:
`expires_at` is computed by the provider, not by the program, so a preview shows no change for an
input that moves every second. The diff asks for an update, which pushes `expires_at` forward,
once more than BRANCH_EXPIRY_PUSH_SECONDS of the TTL has passed: an `up` within an hour of the
last one changes nothing. Once the `expires_at` in the state has passed, Neon has deleted the
branch (or is about to: creating deletes an expired branch of the name first), so the diff
replaces it: a new branch of the parent, without a refresh (which a stack rendering its manifests
cannot run). A `destroy` then finds nothing to delete.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pulumi
from pulumi.dynamic import CheckResult, CreateResult, DiffResult, ReadResult, Resource, UpdateResult

from components.defaults import (
    BRANCH_EXPIRY_PUSH_SECONDS,
    BRANCH_INIT_SOURCE,
    BRANCH_INIT_SOURCES,
    BRANCH_TTL_MAX_SECONDS,
    BRANCH_TTL_MIN_SECONDS,
    MAX_CU,
    MIN_CU,
    SUSPEND_TIMEOUT_SECONDS,
)
from components.neon.endpoint import (
    align_endpoint,
    check_compute,
    compute_from_endpoint,
    created_read_write_endpoint,
    endpoint_outputs,
    endpoint_settings,
)
from components.neon.errors import NeonError, NeonNotFound
from components.neon.provider import NeonProvider
from components.neon.session import ClientPolicy, Json
from components.providers import InputChecker, diff_from_state, is_unknown, plain_inputs

REPLACE_KEYS = ("project_id", "parent_id", "init_source", "parent_timestamp")
UPDATE_KEYS = ("name", "protected", "min_cu", "max_cu", "suspend_timeout_seconds")
EXPIRY_KEYS = ("ttl_seconds",)


class BranchProvider(NeonProvider):
    def check(self, olds: dict[str, Any], news: dict[str, Any]) -> CheckResult:
        c = InputChecker(news)
        c.default("protected", False)
        c.default("init_source", BRANCH_INIT_SOURCE)
        c.default("adopt", False)
        c.string("project_id")
        c.string("parent_id", required=False)
        c.string("name")
        c.boolean("protected")
        c.one_of("init_source", BRANCH_INIT_SOURCES)
        c.string("parent_timestamp", required=False)
        check_compute(c)
        c.boolean("adopt")
        if c.inputs.get("ttl_seconds") is not None:
            c.integer("ttl_seconds", BRANCH_TTL_MIN_SECONDS, BRANCH_TTL_MAX_SECONDS)
        return c.result()

    def diff(self, id_: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        same_slot = olds.get("project_id") == news.get("project_id") and olds.get("name") == news.get("name")
        now = time.time()
        if has_expired(olds.get("expires_at"), now):
            return DiffResult(changes=True, replaces=["expires_at"])
        result = diff_from_state(olds, news, REPLACE_KEYS, UPDATE_KEYS + EXPIRY_KEYS, delete_before_replace=same_slot)
        if not result.changes and expiry_due(olds.get("expires_at"), news.get("ttl_seconds"), now):
            return DiffResult(changes=True, replaces=[])
        return result

    def create(self, props: dict[str, Any]) -> CreateResult:
        inputs = plain_inputs(props)
        project_id = inputs["project_id"]
        with self.client() as client:
            existing = client.find_branch(project_id, inputs["name"]) if inputs.get("adopt") else None
            if existing is not None and has_expired(existing.get("expires_at"), time.time()):
                client.delete_branch(project_id, existing["id"])  # Neon's deletion of it is late
                existing = None
            if existing is None:
                response = client.create_branch(project_id, _branch_spec(inputs), [_endpoint_spec(inputs)])
                branch = response["branch"]
                endpoint = created_read_write_endpoint(response)
            else:
                _check_adoptable(existing, inputs)
                branch, endpoint = existing, None
            if branch.get("protected", False) != inputs["protected"]:
                branch = client.update_branch(project_id, branch["id"], {"protected": inputs["protected"]}) or branch
            if existing is not None and inputs.get("ttl_seconds"):
                expiry = {"expires_at": expires_at(inputs["ttl_seconds"], time.time())}
                branch = client.update_branch(project_id, branch["id"], expiry) or branch
            if endpoint is None:
                endpoint = align_endpoint(client, project_id, branch["id"], inputs)
        return CreateResult(branch["id"], _outputs(inputs, branch, endpoint))

    def update(self, id_: str, olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        news = plain_inputs(news)
        project_id = news["project_id"]
        with self.client() as client:
            changes = {k: news[k] for k in ("name", "protected") if olds.get(k) != news[k]}
            changes.update(_expiry_change(olds.get("expires_at"), news.get("ttl_seconds")))
            try:
                branch = client.update_branch(project_id, id_, changes) if changes else {}
            except NeonNotFound:
                raise NeonError(
                    f"Neon branch {news['name']!r} ({id_}) no longer exists (it may have expired): "
                    "run `pulumi up --refresh` to make it again"
                ) from None
            endpoint = align_endpoint(client, project_id, id_, news)
        known = {"id": id_, "parent_id": olds.get("parent_branch_id"), "expires_at": olds.get("expires_at")}
        return UpdateResult(_outputs(news, {**known, **changes, **branch}, endpoint))

    def delete(self, id_: str, props: dict[str, Any]) -> None:
        project_id = props["project_id"]
        with self.client() as client:
            try:
                branch = client.get_branch(project_id, id_)
            except NeonNotFound:
                return
            if branch.get("protected"):
                raise NeonError(
                    f"Neon branch {branch.get('name', id_)!r} ({id_}) is protected and cannot be deleted: "
                    "set protected to false and run `pulumi up` first"
                )
            client.delete_branch(project_id, id_)

    def read(self, id_: str, props: dict[str, Any]) -> ReadResult:
        project_id = props["project_id"]
        with self.client() as client:
            try:
                branch = client.get_branch(project_id, id_)
            except NeonNotFound:
                return ReadResult("", {})
            endpoint = client.read_write_endpoint(project_id, id_)
        inputs = plain_inputs(props)
        refreshed = {k: branch[k] for k in ("name", "protected") if k in branch}
        refreshed["expires_at"] = branch.get("expires_at")
        if endpoint:
            refreshed.update(compute_from_endpoint(endpoint))
        outs = {**inputs, **refreshed}
        if endpoint:
            outs.update(endpoint_outputs(endpoint))
        return ReadResult(id_, outs)


def _check_adoptable(branch: Json, inputs: dict[str, Any]) -> None:
    """Adopt only a branch this resource could have made: never the default branch or another parent's child.

    Adopting the parent's own branch would reset its roles' passwords and, on destroy, delete its data.
    """
    name = inputs["name"]
    if branch.get("default") or branch.get("primary"):
        raise NeonError(f"branch {name!r} is the project's default branch: choose another branch name")
    parent = inputs.get("parent_id")
    if parent and branch.get("parent_id") != parent:
        raise NeonError(
            f"branch {name!r} already exists with parent {branch.get('parent_id')!r}, not {parent!r}: "
            "choose another branch name or delete that branch"
        )


def expires_at(ttl_seconds: int, now: float) -> str:
    """The API's `expires_at` (RFC 3339, whole seconds, as Neon requires) `ttl_seconds` after `now`."""
    return datetime.fromtimestamp(int(now) + ttl_seconds, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _seconds(stamp: str) -> float:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


def has_expired(current: str | None, now: float) -> bool:
    """Whether the branch's expiry has passed: Neon deletes it (or is about to), so it is made again."""
    return bool(current) and _seconds(current) <= now


def expiry_due(current: str | None, ttl_seconds: Any, now: float) -> bool:
    """Whether an update should push the expiry forward: it is missing, or more than
    BRANCH_EXPIRY_PUSH_SECONDS earlier than a fresh one would be. An unknown TTL is judged by the diff."""
    if ttl_seconds is None or is_unknown(ttl_seconds):
        return False
    if not current:
        return True
    return _seconds(current) < now + ttl_seconds - BRANCH_EXPIRY_PUSH_SECONDS


def _expiry_change(current: str | None, ttl_seconds: int | None) -> Json:
    """The `expires_at` an update sends: a fresh one with a TTL, null to remove one the TTL no longer asks for."""
    if ttl_seconds:
        return {"expires_at": expires_at(ttl_seconds, time.time())}
    return {"expires_at": None} if current else {}


def _branch_spec(inputs: dict[str, Any]) -> Json:
    spec = {"name": inputs["name"], "protected": inputs["protected"], "init_source": inputs["init_source"]}
    for key in ("parent_id", "parent_timestamp"):
        if inputs.get(key):
            spec[key] = inputs[key]
    if inputs.get("ttl_seconds"):
        spec["expires_at"] = expires_at(inputs["ttl_seconds"], time.time())
    return spec


def _endpoint_spec(inputs: dict[str, Any]) -> Json:
    return {"type": "read_write", **endpoint_settings(inputs)}


def _outputs(inputs: dict[str, Any], branch: Json, endpoint: Json) -> dict[str, Any]:
    return {
        **inputs,
        "branch_id": branch["id"],
        "parent_branch_id": branch.get("parent_id") or inputs.get("parent_id"),
        "expires_at": branch.get("expires_at"),
        **endpoint_outputs(endpoint),
    }


@dataclass
class BranchArgs:
    """A child branch of `parent_id` (default: the project's default branch) with a read-write endpoint."""

    project_id: pulumi.Input[str]
    name: pulumi.Input[str]
    parent_id: pulumi.Input[str] | None = None
    protected: pulumi.Input[bool] = False
    init_source: pulumi.Input[str] = BRANCH_INIT_SOURCE
    parent_timestamp: pulumi.Input[str] | None = None
    min_cu: pulumi.Input[float] = MIN_CU
    max_cu: pulumi.Input[float] = MAX_CU
    suspend_timeout_seconds: pulumi.Input[int] = SUSPEND_TIMEOUT_SECONDS
    adopt: pulumi.Input[bool] = False
    ttl_seconds: pulumi.Input[int] | None = None
    """The branch expires this long after the last create or update; None: never."""


class Branch(Resource, module="neon", name="Branch"):
    branch_id: pulumi.Output[str]
    parent_branch_id: pulumi.Output[str]
    endpoint_id: pulumi.Output[str]
    host: pulumi.Output[str]
    pooled_host: pulumi.Output[str]
    expires_at: pulumi.Output[str | None]

    def __init__(self, name: str, args: BranchArgs, opts: pulumi.ResourceOptions | None = None,
                 policy: ClientPolicy | None = None):
        outputs = ("branch_id", "parent_branch_id", "endpoint_id", "host", "pooled_host", "expires_at")
        props = {**vars(args), **dict.fromkeys(outputs)}
        super().__init__(BranchProvider(policy), name, props, opts)
