"""Lifecycle of each Neon provider by direct calls against the fake Neon API (real PostgreSQL behind it)."""

from __future__ import annotations

import psycopg
import pytest
from pulumi.output import Unknown

from components.neon.branch import BranchProvider
from components.neon.database import DatabaseProvider
from components.neon.errors import NeonError
from components.neon.project import ProjectProvider
from components.neon.role import RoleProvider
from components.uri import postgres_uri
from tests.neon.helpers import (
    APPS_DATABASE,
    APPS_ROLE,
    all_branches,
    all_databases,
    all_roles,
    checked,
    current_user,
    project_inputs,
)


def failures(provider, news) -> dict[str, str]:
    return {f.property: f.reason for f in provider.check({}, news).failures}


def test_project_check_applies_defaults_and_names_bad_fields() -> None:
    provider = ProjectProvider()
    inputs = checked(provider, project_inputs())
    assert (inputs["pg_version"], inputs["history_retention_seconds"], inputs["suspend_timeout_seconds"]) == (
        17, 21600, 300)
    assert (inputs["min_cu"], inputs["max_cu"], inputs["branch_name"]) == (0.25, 1.0, "main")
    bad = failures(provider, project_inputs(region_id="azure-eastus2", pg_version=13, min_cu=0.1, name=""))
    assert set(bad) == {"region_id", "pg_version", "min_cu", "name"}
    assert "azure-eastus2" in bad["region_id"] and "aws-us-east-2" in bad["region_id"]
    assert "below min_cu" in failures(provider, project_inputs(min_cu=2, max_cu=1))["max_cu"]


def test_check_tolerates_unknown_values_during_preview() -> None:
    unknown = Unknown()
    assert failures(ProjectProvider(), project_inputs(name=unknown, region_id=unknown, max_cu=unknown)) == {}
    assert failures(BranchProvider(), {"project_id": unknown, "name": "dev", "parent_id": unknown}) == {}
    assert failures(RoleProvider(), {"project_id": unknown, "branch_id": unknown, "name": "r"}) == {}
    assert failures(DatabaseProvider(), {"project_id": unknown, "branch_id": unknown, "name": unknown,
                                         "owner_name": unknown}) == {}
    olds = {**project_inputs(), "pg_version": 17}
    diff = ProjectProvider().diff("p", olds, {**olds, "pg_version": unknown})
    assert diff.replaces == ["pg_version"]


def test_project_lifecycle(configured, neon_api) -> None:
    provider = configured(ProjectProvider)
    inputs = checked(provider, project_inputs())
    created = provider.create(inputs)
    outs = created.outs
    assert created.id == outs["project_id"] in neon_api.projects
    assert [c[:2] for c in neon_api.write_calls()] == [("POST", "/projects")]
    assert outs["host"].startswith("127.0.0.1:") and outs["pooled_host"].startswith("127.0.0.2:")
    assert {k: outs[k] for k in inputs} == inputs
    assert current_user(APPS_ROLE, outs["owner_password"], outs["host"], APPS_DATABASE) == APPS_ROLE
    assert current_user(APPS_ROLE, outs["owner_password"], outs["pooled_host"], APPS_DATABASE) == APPS_ROLE

    calls_before = len(neon_api.calls)
    assert provider.diff(created.id, outs, inputs).changes is False
    for key, value in (("region_id", "aws-eu-central-1"), ("pg_version", 16), ("org_id", "org-1")):
        assert provider.diff(created.id, outs, {**inputs, key: value}).replaces == [key]
    assert len(neon_api.calls) == calls_before, "diff must not call the API"

    news = checked(provider, {**inputs, "name": "renamed", "max_cu": 2, "history_retention_seconds": 3600})
    diff = provider.diff(created.id, outs, news)
    assert (diff.changes, diff.replaces) == (True, [])
    updated = provider.update(created.id, outs, news).outs
    assert updated["owner_password"] == outs["owner_password"] and updated["name"] == "renamed"
    live = neon_api.projects[created.id]
    assert (live.info["name"], live.info["history_retention_seconds"]) == ("renamed", 3600)
    assert live.endpoints[outs["endpoint_id"]]["autoscaling_limit_max_cu"] == 2
    assert provider.diff(created.id, updated, news).changes is False

    read = provider.read(created.id, updated)
    assert read.id == created.id and read.outs["name"] == "renamed" and read.outs["max_cu"] == 2
    assert read.outs["owner_password"] == outs["owner_password"]
    assert neon_api.reveal_calls() == []

    provider.delete(created.id, updated)
    assert created.id not in neon_api.projects
    provider.delete(created.id, updated)  # already gone
    assert provider.read(created.id, updated).id == ""


def test_project_adoption_changes_nothing_it_does_not_have_to(configured, client, neon_api) -> None:
    settings = {"autoscaling_limit_min_cu": 0.25, "autoscaling_limit_max_cu": 0.25, "suspend_timeout_seconds": 0}
    made_by_hand = client.create_project({"name": "by-hand", "region_id": "aws-us-east-2", "pg_version": 17,
                                          "history_retention_seconds": 86400, "default_endpoint_settings": settings})
    project_id = made_by_hand["project"]["id"]
    neon_api.calls.clear()
    provider = configured(ProjectProvider)
    inputs = checked(provider, project_inputs(name="by-hand", adopt_id=project_id, max_cu=0.25,
                                              suspend_timeout_seconds=0, history_retention_seconds=86400))
    adopted = provider.create(inputs)
    assert adopted.id == project_id and len(neon_api.projects) == 1
    assert neon_api.write_calls() == [], "an adopted project that already matches needs no change"
    assert adopted.outs["default_branch_id"] == made_by_hand["branch"]["id"]
    assert adopted.outs["owner_password"] is None, "adoption reveals and resets nothing"

    neon_api.calls.clear()
    provider.create({**inputs, "name": "now-managed"})
    assert [c[:2] for c in neon_api.write_calls()] == [("PATCH", "/projects/{project_id}")]
    assert neon_api.projects[project_id].info["name"] == "now-managed"

    with pytest.raises(NeonError, match=r"its region_id is 'aws-us-east-2'.*set region_id to 'aws-us-east-2'"):
        provider.create({**inputs, "region_id": "aws-us-west-2"})
    with pytest.raises(NeonError, match="does not exist"):
        provider.create({**inputs, "adopt_id": "no-such-project"})


@pytest.fixture
def project(configured):
    provider = configured(ProjectProvider)
    return provider.create(checked(provider, project_inputs())).outs


def branch_inputs(provider, project, **overrides):
    return checked(provider, {"project_id": project["project_id"], "parent_id": project["default_branch_id"],
                              "name": "dev", **overrides})


def test_branch_lifecycle(configured, neon_api, project) -> None:
    provider = configured(BranchProvider)
    inputs = branch_inputs(provider, project)
    neon_api.calls.clear()
    created = provider.create(inputs)
    outs = created.outs
    assert [c[:2] for c in neon_api.write_calls()] == [("POST", "/projects/{project_id}/branches")]
    assert outs["parent_branch_id"] == project["default_branch_id"] and outs["host"] != project["host"]
    # Neon copied the owner role (and its password) to the child branch.
    assert current_user(APPS_ROLE, project["owner_password"], outs["pooled_host"], APPS_DATABASE) == APPS_ROLE

    assert provider.diff(created.id, outs, inputs).changes is False
    for key, value in (("project_id", "other"), ("parent_id", "br-other"), ("init_source", "schema-only"),
                       ("parent_timestamp", "2026-01-01T00:00:00Z")):
        diff = provider.diff(created.id, outs, {**inputs, key: value})
        assert diff.replaces == [key]
    assert provider.diff(created.id, outs, {**inputs, "parent_id": "br-other"}).delete_before_replace is True
    assert provider.diff(created.id, outs, {**inputs, "parent_id": "br-x", "name": "d2"}).delete_before_replace is False

    news = checked(provider, {**inputs, "name": "develop", "min_cu": 0.5, "max_cu": 2, "suspend_timeout_seconds": 600})
    assert provider.diff(created.id, outs, news).replaces == []
    updated = provider.update(created.id, outs, news).outs
    live = neon_api.projects[project["project_id"]]
    assert live.branches[created.id].info["name"] == "develop"
    endpoint = live.endpoints[outs["endpoint_id"]]
    assert (endpoint["autoscaling_limit_min_cu"], endpoint["autoscaling_limit_max_cu"],
            endpoint["suspend_timeout_seconds"]) == (0.5, 2, 600)
    assert updated["host"] == outs["host"] and provider.diff(created.id, updated, news).changes is False

    protected = checked(provider, {**news, "protected": True})
    updated = provider.update(created.id, updated, protected).outs
    with pytest.raises(NeonError, match=r"'develop' .* is protected and cannot be deleted: set protected to false"):
        provider.delete(created.id, updated)
    unprotected = checked(provider, {**news, "protected": False})
    updated = provider.update(created.id, updated, unprotected).outs
    assert provider.read(created.id, updated).outs == updated

    provider.delete(created.id, updated)
    assert created.id not in live.branches
    provider.delete(created.id, updated)
    assert provider.read(created.id, updated).id == ""


def test_branch_adoption_by_name(configured, neon_api, project) -> None:
    provider = configured(BranchProvider)
    first = provider.create(branch_inputs(provider, project))
    neon_api.calls.clear()
    adopted = provider.create(branch_inputs(provider, project, adopt=True, max_cu=0.5))
    assert adopted.id == first.id and adopted.outs["endpoint_id"] == first.outs["endpoint_id"]
    assert [c[:2] for c in neon_api.write_calls()] == [("PATCH", "/projects/{project_id}/endpoints/{endpoint_id}")]
    assert len(all_branches(neon_api)) == 2


def role_inputs(provider, project, branch_id=None, **overrides):
    return checked(provider, {"project_id": project["project_id"],
                              "branch_id": branch_id or project["default_branch_id"], "name": "learnflow_owner",
                              **overrides})


def test_role_lifecycle(configured, neon_api, project) -> None:
    provider = configured(RoleProvider)
    inputs = role_inputs(provider, project)
    neon_api.calls.clear()
    created = provider.create(inputs)
    password = created.outs["password"]
    assert [c[:2] for c in neon_api.write_calls()] == [("POST", "/projects/{project_id}/branches/{branch_id}/roles")]
    assert current_user("learnflow_owner", password, project["host"], APPS_DATABASE) == "learnflow_owner"

    calls = len(neon_api.calls)
    assert provider.diff(created.id, created.outs, inputs).changes is False
    assert provider.diff(created.id, created.outs, {**inputs, "known_password": "x", "adopt": True}).changes is False
    assert provider.diff(created.id, created.outs, {**inputs, "name": "other"}).replaces == ["name"]
    assert provider.diff(created.id, created.outs, {**inputs, "branch_id": "br-x"}).replaces == ["branch_id"]
    assert len(neon_api.calls) == calls
    assert provider.read(created.id, created.outs).outs["password"] == password
    assert provider.update(created.id, created.outs, inputs).outs["password"] == password
    assert neon_api.reveal_calls() == []

    provider.delete(created.id, created.outs)
    assert ("learnflow_owner" not in neon_api.projects[project["project_id"]].default_branch.roles)
    provider.delete(created.id, created.outs)
    assert provider.read(created.id, created.outs).id == ""


def test_role_adoption_resets_the_password_once_or_uses_the_known_one(configured, neon_api, project) -> None:
    branch = configured(BranchProvider).create(branch_inputs(BranchProvider(), project)).outs
    provider = configured(RoleProvider)
    neon_api.calls.clear()
    adopted = provider.create(role_inputs(provider, project, branch["branch_id"], name=APPS_ROLE, adopt=True))
    assert [c[1] for c in neon_api.write_calls()] == [
        "/projects/{project_id}/branches/{branch_id}/roles/{role_name}/reset_password"]
    assert current_user(APPS_ROLE, adopted.outs["password"], branch["host"], APPS_DATABASE) == APPS_ROLE
    # The primary branch keeps its own password.
    assert current_user(APPS_ROLE, project["owner_password"], project["host"], APPS_DATABASE) == APPS_ROLE

    neon_api.calls.clear()
    known = provider.create(role_inputs(provider, project, name=APPS_ROLE, adopt=True,
                                        known_password=project["owner_password"]))
    assert neon_api.write_calls() == [] and known.outs["password"] == project["owner_password"]
    assert sorted(all_roles(neon_api)) == sorted(
        [(project["default_branch_id"], APPS_ROLE), (branch["branch_id"], APPS_ROLE)])


def test_database_lifecycle(configured, neon_api, project) -> None:
    roles = configured(RoleProvider)
    other = roles.create(role_inputs(roles, project)).outs
    provider = configured(DatabaseProvider)
    inputs = checked(provider, {"project_id": project["project_id"], "branch_id": project["default_branch_id"],
                                "name": "learnflow", "owner_name": APPS_ROLE})
    neon_api.calls.clear()
    created = provider.create(inputs)
    assert [c[:2] for c in neon_api.write_calls()] == [
        ("POST", "/projects/{project_id}/branches/{branch_id}/databases")]
    assert current_user(APPS_ROLE, project["owner_password"], project["host"], "learnflow") == APPS_ROLE
    assert provider.diff(created.id, created.outs, inputs).changes is False
    assert provider.diff(created.id, created.outs, {**inputs, "name": "x"}).replaces == ["name"]

    news = {**inputs, "owner_name": "learnflow_owner"}
    diff = provider.diff(created.id, created.outs, news)
    assert (diff.changes, diff.replaces) == (True, [])
    updated = provider.update(created.id, created.outs, news).outs
    assert updated["owner_name"] == "learnflow_owner"
    branch = neon_api.projects[project["project_id"]].default_branch
    assert branch.databases["learnflow"]["owner_name"] == "learnflow_owner"
    with psycopg.connect(postgres_uri("learnflow_owner", other["password"], project["host"], "learnflow")) as conn:
        owner = conn.execute("SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = 'learnflow'").fetchone()
    assert owner == ("learnflow_owner",)
    assert provider.read(created.id, updated).outs == updated

    neon_api.calls.clear()
    adopted = provider.create({**news, "adopt": True})
    assert adopted.id == created.id and neon_api.write_calls() == []
    assert sorted(all_databases(neon_api)) == sorted(
        [(project["default_branch_id"], APPS_DATABASE), (project["default_branch_id"], "learnflow")])

    provider.delete(created.id, updated)
    assert "learnflow" not in branch.databases
    provider.delete(created.id, updated)
    assert provider.read(created.id, updated).id == ""


def test_branch_adoption_never_takes_the_default_branch_or_another_parents_child(configured, neon_api, project) -> None:
    provider = configured(BranchProvider)
    default_name = neon_api.projects[project["project_id"]].default_branch.info["name"]
    with pytest.raises(NeonError, match="default branch"):
        provider.create(branch_inputs(provider, project, name=default_name, adopt=True))
    child = provider.create(branch_inputs(provider, project, name="dev"))
    with pytest.raises(NeonError, match="already exists with parent"):
        provider.create(branch_inputs(provider, project, name="feature", parent_id=child.id, adopt=True)
                        | {"name": "dev"})
    assert len(all_branches(neon_api)) == 2
