"""Production controls against the fake Neon API: the project's IP Allow list and protected default
branch (in place, removable, refused clearly where the plan has none), read replicas, and an
environment on a protected primary whose extra branch and replica the stack can log in to."""

from __future__ import annotations

from dataclasses import replace

import psycopg
import pytest

from components.neon.endpoint import ReadReplicaProvider
from components.neon.errors import NeonError
from components.neon.project import ProjectProvider
from tests.neon.helpers import APPS_DATABASE, APPS_ROLE, checked, current_user, project_inputs
from tests.neon.test_component import PROJECT, environment, login, run


def failures(provider, news) -> dict[str, str]:
    return {f.property: f.reason for f in provider.check({}, news).failures}


def test_check_refuses_allow_list_entries_neon_would_refuse() -> None:
    bad = failures(ProjectProvider(), project_inputs(allowed_ips=["10.0.0.1/8", "10.0.0.9-10.0.0.1"]))
    assert set(bad) == {"allowed_ips"} and "host bits" in bad["allowed_ips"]
    assert failures(ProjectProvider(), project_inputs(allowed_ips="10.0.0.1"))["allowed_ips"].startswith(
        "allowed_ips must be a list")
    assert failures(ProjectProvider(), project_inputs(allowed_ips=["2001:db8::/32", "192.0.2.1-192.0.2.9"])) == {}


def test_state_from_before_these_inputs_shows_no_change() -> None:
    provider = ProjectProvider()
    inputs = checked(provider, project_inputs())
    old_state = {k: v for k, v in inputs.items() if k not in ("allowed_ips", "protect_default_branch")}
    assert provider.diff("p", old_state, inputs).changes is False
    assert provider.diff("p", old_state, {**inputs, "allowed_ips": ["192.0.2.1"]}).replaces == []
    # A refresh diffs the state against what read() returns, which has none of them for such a state.
    assert provider.diff("p", inputs, old_state).changes is False


def test_allow_list_and_protection_are_set_in_place_and_removed_explicitly(configured, neon_api) -> None:
    provider = configured(ProjectProvider)
    inputs = checked(provider, project_inputs(allowed_ips=["127.0.0.1"], protect_default_branch=True))
    outs = provider.create(inputs).outs
    live = neon_api.projects[outs["project_id"]]
    assert live.info["settings"]["allowed_ips"] == {"ips": ["127.0.0.1"], "protected_branches_only": False}
    assert live.default_branch.info["protected"] is True
    assert current_user(APPS_ROLE, outs["owner_password"], outs["host"], APPS_DATABASE) == APPS_ROLE
    with pytest.raises(NeonError, match="protectPrimaryBranch"):
        provider.delete(outs["project_id"], outs)

    opened = checked(provider, {**inputs, "allowed_ips": [], "protect_default_branch": False})
    diff = provider.diff(outs["project_id"], outs, opened)
    assert (diff.changes, diff.replaces) == (True, [])
    neon_api.calls.clear()
    updated = provider.update(outs["project_id"], outs, opened).outs
    assert live.info["settings"]["allowed_ips"] == {"ips": [], "protected_branches_only": False}
    assert live.default_branch.info["protected"] is False
    assert provider.read(outs["project_id"], updated).outs["allowed_ips"] == []
    provider.delete(outs["project_id"], updated)
    assert outs["project_id"] not in neon_api.projects


def test_a_plan_without_protected_branches_gets_an_error_naming_the_setting(configured, neon_api) -> None:
    neon_api.fake.plan = "free"
    provider = configured(ProjectProvider)
    with pytest.raises(NeonError, match="neon-stack:protectPrimaryBranch") as raised:
        provider.create(checked(provider, project_inputs(protect_default_branch=True)))
    assert "paid Neon plan" in str(raised.value)


def test_read_replica_lifecycle(configured, neon_api) -> None:
    project = configured(ProjectProvider).create(checked(ProjectProvider(), project_inputs())).outs
    provider = configured(ReadReplicaProvider)
    inputs = checked(provider, {"project_id": project["project_id"], "branch_id": project["default_branch_id"]})
    created = provider.create(inputs)
    endpoint = neon_api.projects[project["project_id"]].endpoints[created.id]
    assert endpoint["type"] == "read_only" and created.outs["host"] != project["host"]
    conninfo = dict(user=APPS_ROLE, password=project["owner_password"], dbname=APPS_DATABASE, sslmode="require")
    host, port = created.outs["pooled_host"].split(":")
    with psycopg.connect(host=host, port=port, **conninfo) as conn:
        with pytest.raises(psycopg.errors.ReadOnlySqlTransaction):
            conn.execute("CREATE TABLE t (id int)")

    resized = checked(provider, {**inputs, "max_cu": 2})
    assert provider.diff(created.id, created.outs, resized).replaces == []
    provider.update(created.id, created.outs, resized)
    assert endpoint["autoscaling_limit_max_cu"] == 2
    assert provider.diff(created.id, created.outs, {**inputs, "branch_id": "br-other"}).replaces == ["branch_id"]
    provider.delete(created.id, created.outs)
    assert created.id not in neon_api.projects[project["project_id"]].endpoints
    assert provider.read(created.id, created.outs).id == ""


def test_a_protected_primary_with_an_extra_branch_and_a_replica_converges(neon_api) -> None:
    mode = replace(PROJECT, extra_branches=("preview",), protect_primary_branch=True, read_replicas=2,
                   allowed_ips=("127.0.0.1",))
    args = environment(mode)
    first = run(args, neon_api)
    outputs = first.outputs
    project = next(iter(neon_api.projects.values()))
    assert project.default_branch.info["protected"] is True
    assert sorted(e["type"] for e in project.endpoints.values()) == ["read_only", "read_only", "read_write",
                                                                    "read_write"]
    # Neon gave the child of the protected branch new passwords: the stack reset and knows them.
    for branch in ("main", "preview"):
        for app in ("chatkit", "learnflow"):
            assert login(outputs[f"{branch}/{app}/direct_uri"]) == f"{app}_owner@{app}"
    assert outputs["main/chatkit/owner_password"] != outputs["preview/chatkit/owner_password"]

    neon_api.calls.clear()
    second = run(args, neon_api, state=first.state)
    assert neon_api.write_calls() == [] and second.outputs == outputs
