"""NeonEnvironment under mocks, its dynamic resources run for real against the fake Neon API.

The URIs the component outputs are used to log in: direct as the owner, pooled through PgBouncer.
"""

from __future__ import annotations

import json
from dataclasses import replace

import psycopg
import pulumi

from components.defaults import HISTORY_RETENTION_SECONDS, MAX_CU, MIN_CU, PG_VERSION, REGION, SUSPEND_TIMEOUT_SECONDS
from components.neon.component import (
    BranchModeArgs,
    ComputeArgs,
    NeonEnvironment,
    NeonEnvironmentArgs,
    OwnedDatabaseArgs,
    ProjectModeArgs,
)
from tests.neon.conftest import provider_config
from tests.neon.helpers import all_branches, all_databases, all_roles
from tests.support.pulumi_mocks import run_program

APPS = ("chatkit", "learnflow")
NEON_TYPES = ("neon:Project", "neon:Branch", "neon:Role", "neon:Database")
COMPUTE = ComputeArgs(MIN_CU, MAX_CU, SUSPEND_TIMEOUT_SECONDS)
PROJECT = ProjectModeArgs(
    name="neon-stack-dev",
    region_id=REGION,
    pg_version=PG_VERSION,
    org_id=None,
    history_retention_seconds=HISTORY_RETENTION_SECONDS,
    adopt_id=None,
    extra_branches=(),
)


def environment(mode: ProjectModeArgs | BranchModeArgs = PROJECT, **changes: object) -> NeonEnvironmentArgs:
    """An environment of the two apps' databases, the default compute, unprotected, with `changes`."""
    databases = [OwnedDatabaseArgs(app, f"{app}_owner", channel_binding=False) for app in APPS]
    return replace(NeonEnvironmentArgs(mode, databases, COMPUTE, protect=False), **changes)


def exporting(args: NeonEnvironmentArgs):
    """A program declaring NeonEnvironment and exporting every access field."""

    def program() -> None:
        db = NeonEnvironment("neon", args)
        pulumi.export("project_id", db.project_id)
        pulumi.export("primary_branch_id", db.primary_branch_id)
        pulumi.export("branch_ids", db.branch_ids)
        pulumi.export("primary_databases", sorted(db.databases))
        for (branch, database), access in db.connections.items():
            for field in ("branch_id", "database", "owner_role", "owner_password", "host", "pooled_host",
                          "direct_uri", "pooled_uri"):
                pulumi.export(f"{branch}/{database}/{field}", getattr(access, field))

    return program


def login(uri: str) -> str:
    with psycopg.connect(uri, connect_timeout=10, prepare_threshold=None) as conn:
        return conn.execute("SELECT current_user || '@' || current_database()").fetchone()[0]


def run(args: NeonEnvironmentArgs, neon_api, state=None):
    return run_program(exporting(args), config={}, run_providers=True, provider_config=provider_config(neon_api),
                       state=state)


def test_project_mode_outputs_connect_and_a_second_run_changes_nothing(neon_api) -> None:
    args = environment(replace(PROJECT, extra_branches=("preview", "staging")))
    first = run(args, neon_api)
    outputs = first.outputs
    assert set(outputs["branch_ids"]) == {"main", "preview", "staging"}
    assert outputs["branch_ids"]["main"] == outputs["primary_branch_id"]
    assert outputs["primary_databases"] == sorted(APPS)
    component = first.one("neon-stack:neon:NeonDatabase", "neon")  # the type token of the class's old name
    assert component.outputs == {
        "projectId": outputs["project_id"],
        "primaryBranchId": outputs["primary_branch_id"],
        "branchIds": outputs["branch_ids"],
    }
    assert len(neon_api.projects) == 1 and len(all_branches(neon_api)) == 3
    assert len(all_roles(neon_api)) == 6 and len(all_databases(neon_api)) == 6

    for branch in ("main", "preview", "staging"):
        for app in APPS:
            prefix = f"{branch}/{app}"
            assert outputs[f"{prefix}/branch_id"] == outputs["branch_ids"][branch]
            assert (outputs[f"{prefix}/database"], outputs[f"{prefix}/owner_role"]) == (app, f"{app}_owner")
            assert login(outputs[f"{prefix}/direct_uri"]) == f"{app}_owner@{app}"
            assert login(outputs[f"{prefix}/pooled_uri"]) == f"{app}_owner@{app}"
            assert outputs[f"{prefix}/pooled_uri"].split("@")[1].startswith("127.0.0.2:")
            assert "sslmode=require" in outputs[f"{prefix}/direct_uri"]
            secret = {f"{prefix}/{f}" for f in ("owner_password", "direct_uri", "pooled_uri")}
            assert secret <= first.secret_outputs
            assert f"{prefix}/host" not in first.secret_outputs
    # Each branch has its own endpoint; roles on extra branches were adopted (one reset each), not created.
    assert len({outputs[f"{b}/chatkit/host"] for b in ("main", "preview", "staging")}) == 3
    # Resources are created concurrently, so some calls meet 423 Locked and are retried: count successes.
    write_paths = [c[1] for c in neon_api.write_calls() if c[2] < 400]
    assert write_paths.count("/projects/{project_id}/branches/{branch_id}/roles") == 1  # learnflow_owner on main
    assert write_paths.count("/projects/{project_id}/branches/{branch_id}/roles/{role_name}/reset_password") == 4
    assert neon_api.reveal_calls() == []

    for resource in first.resources:
        if resource.type.endswith(("neon:Role", "neon:Project")):
            assert set(resource.options["additional_secret_outputs"]) >= (
                {"password"} if resource.type.endswith("Role") else {"owner_password"})
        if resource.type.endswith(NEON_TYPES):
            assert resource.options["protect"] is False and resource.options["parent"].endswith("::neon")
            assert resource.name.startswith("neon-")
    extra = first.one("neon:Branch", "neon-branch-preview")
    primary_children = [r.urn for r in first.resources if r.name.startswith(("neon-chatkit-", "neon-learnflow-"))]
    assert set(primary_children) <= set(extra.options["depends_on"]) and len(primary_children) == 4

    # No password in a non-secret output, input or stack export, nor in the pickled providers.
    passwords = {outputs[f"{b}/{a}/owner_password"] for b in ("main", "preview", "staging") for a in APPS}
    assert len(passwords) == 6  # main/chatkit from the project; every other login was created or reset
    for resource in first.resources:
        visible = {k: v for k, v in resource.outputs.items() if k not in resource.secret_outputs and k != "__provider"}
        visible.update({k: v for k, v in resource.inputs.items() if k not in resource.secret_inputs})
        assert not any(p in json.dumps(visible, default=str) for p in passwords), resource.name
    public = {k: v for k, v in outputs.items() if k not in first.secret_outputs}
    assert not any(p in json.dumps(public) for p in passwords)
    assert all(neon_api.api_key not in entry["provider"] for entry in first.state.values())

    neon_api.calls.clear()
    second = run(args, neon_api, state=first.state)
    assert neon_api.write_calls() == [] and neon_api.reveal_calls() == []
    assert second.outputs == outputs
    assert [op for op in second.operations if op[1] != "diff"] == []


def test_production_inputs_protect_and_retain_every_neon_resource(neon_api) -> None:
    args = environment(replace(PROJECT, name="neon-stack-prod"), protect=True, compute=ComputeArgs(0.5, 2, 0))
    run_ = run(args, neon_api)
    neon = [r for r in run_.resources if r.type.endswith(NEON_TYPES)]
    assert len(neon) == 5
    for resource in neon:
        assert resource.options["protect"] is True and resource.options["retain_on_delete"] is True
    project = next(iter(neon_api.projects.values()))
    endpoint = next(iter(project.endpoints.values()))
    assert (endpoint["autoscaling_limit_min_cu"], endpoint["autoscaling_limit_max_cu"]) == (0.5, 2)
    assert project.info["name"] == "neon-stack-prod"


def test_adopting_a_hand_made_project_recreates_nothing(neon_api, client) -> None:
    made = client.create_project({"name": "team-db", "region_id": "aws-us-east-2", "pg_version": 17,
                                  "branch": {"name": "main", "role_name": "chatkit_owner", "database_name": "chatkit"}})
    project_id = made["project"]["id"]
    with psycopg.connect(made["connection_uris"][0]["connection_uri"]) as conn:
        conn.execute("CREATE TABLE kept (id int)")
        conn.execute("INSERT INTO kept VALUES (42)")
    neon_api.calls.clear()
    adopted = run(environment(replace(PROJECT, name="team-db", adopt_id=project_id)), neon_api)
    assert adopted.outputs["project_id"] == project_id and len(neon_api.projects) == 1
    assert ("POST", "/projects") not in [c[:2] for c in neon_api.write_calls()]
    assert [c[1] for c in neon_api.write_calls() if c[0] == "POST" and c[2] < 400].count(
        "/projects/{project_id}/branches/{branch_id}/databases") == 1  # learnflow only; chatkit adopted
    with psycopg.connect(adopted.outputs["main/chatkit/direct_uri"]) as conn:
        assert conn.execute("SELECT id FROM kept").fetchone() == (42,)


def test_branch_mode_adopts_the_copied_roles_and_databases(neon_api) -> None:
    parent = run(environment(), neon_api)
    neon_api.calls.clear()
    mode = BranchModeArgs(parent.outputs["project_id"], parent.outputs["primary_branch_id"], "pr-7", "schema-only")
    child = run(environment(mode), neon_api)
    assert child.outputs["project_id"] == parent.outputs["project_id"]
    assert set(child.outputs["branch_ids"]) == {"pr-7"}
    assert child.outputs["primary_branch_id"] == child.outputs["branch_ids"]["pr-7"]
    assert len(neon_api.projects) == 1 and len(all_branches(neon_api)) == 2
    writes = [c[:2] for c in neon_api.write_calls() if c[2] < 400]
    assert writes.count(("POST", "/projects/{project_id}/branches")) == 1
    assert writes.count(("POST", "/projects/{project_id}/branches/{branch_id}/roles/{role_name}/reset_password")) == 2
    assert all(path.endswith(("/branches", "/reset_password")) for _, path in writes)
    for app in APPS:
        assert login(child.outputs[f"pr-7/{app}/pooled_uri"]) == f"{app}_owner@{app}"
        # The parent's credentials are untouched by the child's password resets.
        assert login(parent.outputs[f"main/{app}/direct_uri"]) == f"{app}_owner@{app}"
    assert child.outputs["pr-7/chatkit/host"] != parent.outputs["main/chatkit/host"]


def test_preview_of_a_new_stack_checks_everything_and_calls_nothing(neon_api) -> None:
    args = environment(replace(PROJECT, extra_branches=("preview",)))
    planned = run_program(exporting(args), config={}, preview=True, run_providers=True,
                          provider_config=provider_config(neon_api))
    checked_types = sorted({r.type.rsplit(":", 1)[1] for r in planned.resources if r.type.endswith(NEON_TYPES)})
    assert checked_types == ["Branch", "Database", "Project", "Role"]
    assert neon_api.calls == []
