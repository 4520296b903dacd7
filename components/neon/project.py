"""Dynamic resource `pulumi-python:dynamic/neon:Project`: a Neon project with its default branch.

One POST creates the project, its default branch with a read-write endpoint, the owner role
(whose password comes back once, in that answer) and the first database. With `adopt_id` an
existing project is brought under the stack instead: nothing is recreated, mutable settings are
aligned, and roles/databases are left to the Role and Database resources (no password is known).

Region, PostgreSQL version and organization force replacement; name, history retention and
compute settings are updated in place (compute also on the default branch's endpoint). The
initial branch/role/database names and `adopt_id` are used at creation only.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pulumi
from pulumi.dynamic import CheckResult, CreateResult, DiffResult, ReadResult, Resource, UpdateResult

from components.defaults import (
    HISTORY_RETENTION_MAX,
    HISTORY_RETENTION_SECONDS,
    MAX_CU,
    MIN_CU,
    NEON_REGIONS,
    PG_MAX_IDENTIFIER_BYTES,
    PG_VERSION,
    PG_VERSIONS,
    PRIMARY_BRANCH,
    PROTECT_PRIMARY_BRANCH,
    SUSPEND_TIMEOUT_SECONDS,
    ip_allow_entry_problem,
)
from components.neon.client import NeonClient
from components.neon.endpoint import (
    align_endpoint,
    check_compute,
    compute_from_endpoint,
    created_read_write_endpoint,
    endpoint_matches,
    endpoint_outputs,
    endpoint_settings,
)
from components.neon.errors import NeonAPIError, NeonError, NeonNotFound
from components.neon.provider import NeonProvider
from components.neon.session import ClientPolicy, Json
from components.providers import InputChecker, diff_from_state, plain_inputs

REPLACE_KEYS = ("region_id", "pg_version", "org_id")
# Inputs added after the first stacks were made: a state without them holds these defaults (no diff).
ACCESS_DEFAULTS = {
    "allowed_ips": [],
    "allowed_ips_protected_branches_only": False,
    "block_public_connections": False,
    "protect_default_branch": PROTECT_PRIMARY_BRANCH,
}
UPDATE_KEYS = ("name", "history_retention_seconds", "min_cu", "max_cu", "suspend_timeout_seconds", *ACCESS_DEFAULTS)
SECRET_OUTPUTS = ["owner_password"]


class ProjectProvider(NeonProvider):
    def check(self, olds: dict[str, Any], news: dict[str, Any]) -> CheckResult:
        c = InputChecker(news)
        c.default("pg_version", PG_VERSION)
        c.default("history_retention_seconds", HISTORY_RETENTION_SECONDS)
        c.default("branch_name", PRIMARY_BRANCH)
        c.string("name")
        c.one_of("region_id", NEON_REGIONS)
        c.integer("pg_version", PG_VERSIONS.start, PG_VERSIONS.stop - 1)
        c.string("org_id", required=False)
        c.integer("history_retention_seconds", 0, HISTORY_RETENTION_MAX)
        check_compute(c)
        c.string("branch_name")
        c.string("role_name", max_length=PG_MAX_IDENTIFIER_BYTES)
        c.string("database_name", max_length=PG_MAX_IDENTIFIER_BYTES)
        c.string("adopt_id", required=False)
        for key, value in ACCESS_DEFAULTS.items():
            c.default(key, value)
            if isinstance(value, bool):
                c.boolean(key)
        _check_allowed_ips(c)
        return c.result()

    def diff(self, id_: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        # Refresh diffs the state against what read() found, which lacks these for an older state.
        return diff_from_state({**ACCESS_DEFAULTS, **olds}, {**ACCESS_DEFAULTS, **news}, REPLACE_KEYS, UPDATE_KEYS)

    def create(self, props: dict[str, Any]) -> CreateResult:
        inputs = plain_inputs(props)
        with self.client() as client:
            if inputs.get("adopt_id"):
                outs = _adopt(client, inputs)
            else:
                outs = _create(client, inputs)
        return CreateResult(outs["project_id"], outs)

    def update(self, id_: str, olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        news = plain_inputs(news)
        with self.client() as client:
            _align_settings(client, id_, client.get_project(id_), news)
            _align_protection(client, id_, olds["default_branch_id"], news)
            endpoint = align_endpoint(client, id_, olds["default_branch_id"], news)
        return UpdateResult({**olds, **news, **endpoint_outputs(endpoint)})

    def delete(self, id_: str, props: dict[str, Any]) -> None:
        if props.get("protect_default_branch"):
            raise NeonError(
                f"Neon project {id_} has a protected default branch and cannot be deleted: set "
                "protect_default_branch (neon-stack:protectPrimaryBranch) to false and run `pulumi up` first"
            )
        with self.client() as client:
            client.delete_project(id_)

    def read(self, id_: str, props: dict[str, Any]) -> ReadResult:
        with self.client() as client:
            try:
                project = client.get_project(id_)
            except NeonNotFound:
                return ReadResult("", {})
            endpoint = client.read_write_endpoint(id_, props["default_branch_id"]) or {}
        settings = project.get("default_endpoint_settings") or {}
        refreshed = {
            "name": project.get("name", props.get("name")),
            "region_id": project.get("region_id", props.get("region_id")),
            "pg_version": project.get("pg_version", props.get("pg_version")),
            "history_retention_seconds": project.get(
                "history_retention_seconds", props.get("history_retention_seconds")
            ),
            **compute_from_endpoint(settings),
            # Only the inputs the state holds: a state from before they existed stays as it is.
            **{k: v for k, v in _access_from_project(project).items() if k in props},
            **(endpoint_outputs(endpoint) if endpoint else {}),
        }
        return ReadResult(id_, {**plain_inputs(props), **refreshed})


def _create(client: NeonClient, inputs: dict[str, Any]) -> dict[str, Any]:
    spec: Json = {
        "name": inputs["name"],
        "region_id": inputs["region_id"],
        "pg_version": inputs["pg_version"],
        "history_retention_seconds": inputs["history_retention_seconds"],
        "default_endpoint_settings": endpoint_settings(inputs),
        "branch": {
            "name": inputs["branch_name"],
            "role_name": inputs["role_name"],
            "database_name": inputs["database_name"],
        },
    }
    if inputs.get("org_id"):
        spec["org_id"] = inputs["org_id"]
    network = _network_changes({}, inputs)
    if network:
        spec["settings"] = network
    response = client.create_project(spec)
    project_id = response["project"]["id"]
    branch = response.get("branch") or _default_branch(client, project_id)
    _align_protection(client, project_id, branch["id"], inputs, branch)
    endpoint = created_read_write_endpoint(response) or align_endpoint(client, project_id, branch["id"], inputs)
    role = next((r for r in response.get("roles") or [] if r.get("name") == inputs["role_name"]), {})
    password = role.get("password") or client.reset_role_password(project_id, branch["id"], inputs["role_name"])
    return _outputs(inputs, project_id, branch["id"], endpoint, password)


def _adopt(client: NeonClient, inputs: dict[str, Any]) -> dict[str, Any]:
    """Bring an existing project under the stack; immutable settings must already match."""
    project_id = inputs["adopt_id"]
    try:
        project = client.get_project(project_id)
    except NeonNotFound:
        raise NeonError(f"cannot adopt Neon project {project_id}: it does not exist (adopt_id)") from None
    for key in REPLACE_KEYS:
        live, wanted = project.get(key), inputs.get(key)
        if wanted is not None and live is not None and live != wanted:
            raise NeonError(
                f"cannot adopt Neon project {project_id}: its {key} is {live!r} but the stack asks for "
                f"{wanted!r}, which Neon cannot change; set {key} to {live!r}"
            )
    _align_settings(client, project_id, project, inputs)
    branch = _default_branch(client, project_id)
    _align_protection(client, project_id, branch["id"], inputs, branch)
    endpoint = align_endpoint(client, project_id, branch["id"], inputs)
    return _outputs(inputs, project_id, branch["id"], endpoint, None)


def _default_branch(client: NeonClient, project_id: str) -> Json:
    branches = client.list_branches(project_id)
    found = next((b for b in branches if b.get("default") or b.get("primary")), None)
    if found is None:
        raise NeonError(f"Neon project {project_id} has no default branch")
    return found


def _align_settings(client: NeonClient, project_id: str, project: Json, inputs: dict[str, Any]) -> None:
    """PATCH the project's mutable settings when they differ from the inputs."""
    wanted: Json = {
        "name": inputs["name"],
        "history_retention_seconds": inputs["history_retention_seconds"],
        "default_endpoint_settings": endpoint_settings(inputs),
    }
    current_defaults = project.get("default_endpoint_settings") or {}
    network = _network_changes(project.get("settings") or {}, inputs)
    if network:
        wanted["settings"] = network
    if (
        project.get("name") != wanted["name"]
        or project.get("history_retention_seconds") != wanted["history_retention_seconds"]
        or not endpoint_matches(current_defaults, inputs)
        or network
    ):
        client.update_project(project_id, wanted)


def _check_allowed_ips(c: InputChecker) -> None:
    if not c.known("allowed_ips"):
        return
    entries = c.inputs["allowed_ips"]
    if not isinstance(entries, list) or not all(isinstance(e, str) for e in entries):
        c.fail("allowed_ips", f"allowed_ips must be a list of strings, got {entries!r}")
        return
    problems = [problem for problem in map(ip_allow_entry_problem, entries) if problem]
    if problems:
        c.fail("allowed_ips", "allowed_ips: " + "; ".join(problems))


def _network_changes(live: Json, inputs: dict[str, Any]) -> Json:
    """The project `settings` fields whose live value differs from the inputs.

    Neon merges a PATCH's settings into the project's, so restoring open access must be said:
    `allowed_ips` with an empty `ips` list (the document: empty or unset lets every address in)
    and `block_public_connections: false`; leaving them out would keep the old restriction.
    """
    changes: Json = {}
    allowed = live.get("allowed_ips") or {}
    wanted = {
        "ips": list(inputs["allowed_ips"]),
        "protected_branches_only": inputs["allowed_ips_protected_branches_only"],
    }
    only_protected = bool(allowed.get("protected_branches_only"))
    current = {"ips": list(allowed.get("ips") or []), "protected_branches_only": only_protected}
    if current != wanted:
        changes["allowed_ips"] = wanted
    if bool(live.get("block_public_connections")) != inputs["block_public_connections"]:
        changes["block_public_connections"] = inputs["block_public_connections"]
    return changes


def _access_from_project(project: Json) -> dict[str, Any]:
    """The network inputs as Neon reports them (for refresh)."""
    settings = project.get("settings") or {}
    allowed = settings.get("allowed_ips") or {}
    return {
        "allowed_ips": list(allowed.get("ips") or []),
        "allowed_ips_protected_branches_only": bool(allowed.get("protected_branches_only")),
        "block_public_connections": bool(settings.get("block_public_connections")),
    }


def _align_protection(
    client: NeonClient, project_id: str, branch_id: str, inputs: dict[str, Any], branch: Json | None = None
) -> None:
    """Mark the default branch protected, or not, as `protect_default_branch` asks (PATCH only on a change).

    Neon offers protected branches on paid plans only: its refusal is reported with the input's name.
    """
    wanted = inputs["protect_default_branch"]
    branch = branch if branch is not None else client.get_branch(project_id, branch_id)
    if bool(branch.get("protected")) == wanted:
        return
    try:
        client.update_branch(project_id, branch_id, {"protected": wanted})
    except NeonAPIError as error:
        raise NeonError(
            f"protect_default_branch: Neon refused to set protected={str(wanted).lower()} on the default branch "
            f"{branch_id} ({error.message}); protected branches need a paid Neon plan "
            "(stack setting neon-stack:protectPrimaryBranch)"
        ) from None


def _outputs(
    inputs: dict[str, Any], project_id: str, branch_id: str, endpoint: Json, password: str | None
) -> dict[str, Any]:
    return {
        **inputs,
        "project_id": project_id,
        "default_branch_id": branch_id,
        **endpoint_outputs(endpoint),
        "owner_role": inputs["role_name"],
        "owner_password": password,
    }


@dataclass
class ProjectArgs:
    """Inputs of a Neon project. `role_name`/`database_name` name the owner role and first database."""

    name: pulumi.Input[str]
    region_id: pulumi.Input[str]
    role_name: pulumi.Input[str]
    database_name: pulumi.Input[str]
    pg_version: pulumi.Input[int] = PG_VERSION
    org_id: pulumi.Input[str] | None = None
    history_retention_seconds: pulumi.Input[int] = HISTORY_RETENTION_SECONDS
    min_cu: pulumi.Input[float] = MIN_CU
    max_cu: pulumi.Input[float] = MAX_CU
    suspend_timeout_seconds: pulumi.Input[int] = SUSPEND_TIMEOUT_SECONDS
    branch_name: pulumi.Input[str] = PRIMARY_BRANCH
    adopt_id: pulumi.Input[str] | None = None
    allowed_ips: pulumi.Input[list[str]] = ()
    """IP Allow entries (address, CIDR, first-last); empty: every address may connect."""
    allowed_ips_protected_branches_only: pulumi.Input[bool] = False
    block_public_connections: pulumi.Input[bool] = False
    protect_default_branch: pulumi.Input[bool] = PROTECT_PRIMARY_BRANCH


class Project(Resource, module="neon", name="Project"):
    project_id: pulumi.Output[str]
    default_branch_id: pulumi.Output[str]
    endpoint_id: pulumi.Output[str]
    host: pulumi.Output[str]
    pooled_host: pulumi.Output[str]
    owner_role: pulumi.Output[str]
    owner_password: pulumi.Output[str | None]
    database_name: pulumi.Output[str]

    def __init__(self, name: str, args: ProjectArgs, opts: pulumi.ResourceOptions | None = None,
                 policy: ClientPolicy | None = None):
        props = {
            **vars(args),
            "project_id": None,
            "default_branch_id": None,
            "endpoint_id": None,
            "host": None,
            "pooled_host": None,
            "owner_role": None,
            "owner_password": None,
        }
        opts = pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(additional_secret_outputs=SECRET_OUTPUTS))
        super().__init__(ProjectProvider(policy), name, props, opts)
