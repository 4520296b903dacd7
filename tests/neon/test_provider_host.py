"""Each Neon provider through the real dynamic-provider host over gRPC, as `pulumi up` runs it."""

from __future__ import annotations

import base64

import pytest
from pulumi.dynamic.dynamic import serialize_provider
from pulumi.output import Unknown

from components.neon.branch import BranchProvider
from components.neon.database import DatabaseProvider
from components.neon.project import ProjectProvider
from components.neon.role import RoleProvider
from tests.neon.conftest import FAST, provider_config
from tests.neon.helpers import APPS_DATABASE, APPS_ROLE, current_user, project_inputs
from tests.support.provider_host import ProviderHostError, start_provider_host


@pytest.fixture
def host(neon_api):
    with start_provider_host(env={"NEON_API_KEY": ""}) as running:
        running.configure(provider_config(neon_api))
        yield running


def assert_nothing_leaked(host, neon_api, *secrets: str) -> None:
    texts = [host.output(), *host.engine_logs]
    for secret in (neon_api.api_key, *secrets):
        assert secret and all(secret not in text for text in texts)


@pytest.mark.host
def test_every_provider_through_the_host(host, neon_api) -> None:
    project_provider = ProjectProvider(FAST)
    checked = host.check(project_provider, {}, project_inputs())
    assert checked.failures == []
    project_id, project = host.create(project_provider, checked.inputs)
    assert project["project_id"] == project_id and project["owner_password"]
    inputs = {k: v for k, v in checked.inputs.items() if not k.startswith("__")}
    assert host.diff(project_provider, project_id, project, inputs).changes is False
    replace = host.diff(project_provider, project_id, project, {**inputs, "region_id": "aws-us-west-2"})
    assert replace.replaces == ["region_id"]
    renamed = host.update(project_provider, project_id, project, {**inputs, "name": "renamed"})
    assert renamed["name"] == "renamed" and renamed["owner_password"] == project["owner_password"]
    assert neon_api.projects[project_id].info["name"] == "renamed"

    branches = BranchProvider(FAST)
    branch_inputs = host.check(branches, {}, {"project_id": project_id, "name": "dev",
                                              "parent_id": project["default_branch_id"]}).inputs
    branch_id, branch = host.create(branches, branch_inputs)
    assert host.diff(branches, branch_id, branch, branch_inputs).changes is False
    moved = host.diff(branches, branch_id, branch, {**branch_inputs, "parent_id": "br-other"})
    assert moved.replaces == ["parent_id"] and moved.delete_before_replace
    resized = host.update(branches, branch_id, branch, {**branch_inputs, "max_cu": 2.0})
    assert neon_api.projects[project_id].endpoints[branch["endpoint_id"]]["autoscaling_limit_max_cu"] == 2
    _, refreshed, _ = host.read(branches, branch_id, resized)
    assert refreshed["max_cu"] == 2 and refreshed["host"] == branch["host"]

    roles = RoleProvider(FAST)
    role_inputs = host.check(roles, {}, {"project_id": project_id, "branch_id": branch_id,
                                         "name": "learnflow_owner"}).inputs
    role_id, role = host.create(roles, role_inputs)
    assert current_user("learnflow_owner", role["password"], branch["host"], APPS_DATABASE) == "learnflow_owner"
    assert host.diff(roles, role_id, role, role_inputs).changes is False
    assert host.diff(roles, role_id, role, {**role_inputs, "name": "x"}).replaces == ["name"]
    _, role_refreshed, _ = host.read(roles, role_id, role)
    assert role_refreshed["password"] == role["password"]

    databases = DatabaseProvider(FAST)
    db_inputs = host.check(databases, {}, {"project_id": project_id, "branch_id": branch_id, "name": "learnflow",
                                           "owner_name": "learnflow_owner"}).inputs
    db_id, db = host.create(databases, db_inputs)
    assert host.diff(databases, db_id, db, db_inputs).changes is False
    assert host.diff(databases, db_id, db, {**db_inputs, "name": "other"}).replaces == ["name"]
    owner_change = {**db_inputs, "owner_name": "chatkit_owner"}
    assert host.diff(databases, db_id, db, owner_change).replaces == []
    assert host.update(databases, db_id, db, owner_change)["owner_name"] == "chatkit_owner"
    assert current_user("learnflow_owner", role["password"], branch["pooled_host"], "learnflow") == "learnflow_owner"

    # Adoption through the host: the same objects, no creating POST.
    posts = len([c for c in neon_api.write_calls() if c[0] == "POST"])
    adopted_project_id, adopted = host.create(project_provider, {**inputs, "name": "renamed", "adopt_id": project_id})
    adopted_branch_id, _ = host.create(branches, {**branch_inputs, "adopt": True})
    adopted_db_id, _ = host.create(databases, {**owner_change, "adopt": True})
    assert (adopted_project_id, adopted_branch_id, adopted_db_id) == (project_id, branch_id, db_id)
    assert adopted["host"] == project["host"]
    assert len([c for c in neon_api.write_calls() if c[0] == "POST"]) == posts
    # The role Neon copied to the branch: adopted with one password reset, which then logs in.
    _, copied = host.create(roles, {**role_inputs, "name": APPS_ROLE, "adopt": True})
    resets = [c for c in neon_api.write_calls() if c[1].endswith("/reset_password")]
    assert len(resets) == 1 and len([c for c in neon_api.write_calls() if c[0] == "POST"]) == posts + 1
    assert current_user(APPS_ROLE, copied["password"], branch["host"], "learnflow") == APPS_ROLE

    host.delete(databases, db_id, db)
    host.delete(roles, role_id, role)
    host.delete(branches, branch_id, resized)
    host.delete(project_provider, project_id, renamed)
    assert neon_api.projects == {}
    assert neon_api.reveal_calls() == []
    assert_nothing_leaked(host, neon_api, project["owner_password"], role["password"], copied["password"])


@pytest.mark.host
def test_check_through_the_host_reports_failures_and_accepts_unknowns(host) -> None:
    result = host.check(ProjectProvider(FAST), {}, project_inputs(region_id="mars-1", pg_version=Unknown()))
    assert [p for p, _ in result.failures] == ["region_id"]
    assert "mars-1" in result.failures[0][1]


@pytest.mark.host
def test_provider_errors_reach_the_engine_without_secrets(host, neon_api) -> None:
    with pytest.raises(ProviderHostError) as caught:
        host.create(ProjectProvider(FAST), {**project_inputs(), "adopt_id": "no-such-project", "pg_version": 17,
                                            "history_retention_seconds": 21600, "min_cu": 0.25, "max_cu": 1,
                                            "suspend_timeout_seconds": 300, "branch_name": "main"})
    assert "cannot adopt Neon project no-such-project" in caught.value.details
    assert neon_api.api_key not in caught.value.details
    assert_nothing_leaked(host, neon_api)


def test_pickled_provider_never_holds_the_api_key(configured, neon_api) -> None:
    for cls in (ProjectProvider, BranchProvider, RoleProvider, DatabaseProvider):
        provider = configured(cls)
        assert provider.client() is not None  # configured: the key is known to the live object
        pickled = base64.b64decode(serialize_provider(provider))
        assert neon_api.api_key.encode() not in pickled
        assert b"components.neon" in pickled, "providers pickle by reference to their module"
