"""Fault matrix against the fake Neon API: every failure converges to exactly one object, or fails clearly.

Each scenario counts the objects in the fake afterwards (no duplicate project, branch, role or
database) and scans what could leak (log records, exception texts) for the API key and passwords.
"""

from __future__ import annotations

import logging
from dataclasses import replace

import pytest

from components.neon.branch import BranchProvider
from components.neon.client import NeonClient
from components.neon.database import DatabaseProvider
from components.neon.errors import NeonAPIError, NeonOperationFailed, NeonRetryBudgetExceeded
from components.neon.project import ProjectProvider
from components.neon.role import RoleProvider
from tests.neon.conftest import FAST
from tests.neon.helpers import (
    APPS_DATABASE,
    APPS_ROLE,
    all_branches,
    all_databases,
    all_roles,
    checked,
    count,
    current_user,
    most_attempts,
    project_inputs,
)

PROJECTS = "/projects"
BRANCHES = "/projects/{project_id}/branches"
ROLES = "/projects/{project_id}/branches/{branch_id}/roles"
DATABASES = "/projects/{project_id}/branches/{branch_id}/databases"
ENDPOINTS = "/projects/{project_id}/endpoints"
ENDPOINT = "/projects/{project_id}/endpoints/{endpoint_id}"
LISTINGS = {
    PROJECTS: PROJECTS,
    BRANCHES: BRANCHES,
    ROLES: ROLES,
    DATABASES: DATABASES,
    ENDPOINTS: BRANCHES + "/{branch_id}/endpoints",
}


@pytest.fixture(autouse=True)
def _capture_logs(caplog):
    caplog.set_level(logging.DEBUG)


def assert_no_leak(caplog, neon_api, *texts: str, secrets: tuple[str, ...] = ()) -> None:
    everything = [r.getMessage() for r in caplog.records] + list(texts)
    for secret in (neon_api.api_key, *secrets):
        assert all(secret not in text for text in everything)


def project_endpoints(neon_api) -> list[dict]:
    return [e for p in neon_api.projects.values() for e in p.endpoints.values()]


def inventory(neon_api) -> tuple:
    """Every branch, endpoint, role and database of the fake, by id or (branch, name)."""
    branches = sorted(b["id"] for b in all_branches(neon_api))
    return branches, sorted(e["id"] for e in project_endpoints(neon_api)), all_roles(neon_api), all_databases(neon_api)


def create_project(configured, policy=FAST):
    provider = configured(ProjectProvider, policy)
    return provider.create(checked(provider, project_inputs())).outs


def create_branch(configured, project, policy=FAST, **overrides):
    provider = configured(BranchProvider, policy)
    inputs = checked(provider, {"project_id": project["project_id"], "parent_id": project["default_branch_id"],
                                "name": "dev", **overrides})
    return provider.create(inputs).outs


def create_role(configured, project, name="learnflow_owner", policy=FAST):
    provider = configured(RoleProvider, policy)
    inputs = checked(provider, {"project_id": project["project_id"], "branch_id": project["default_branch_id"],
                                "name": name})
    return provider.create(inputs).outs


def create_database(configured, project, policy=FAST):
    provider = configured(DatabaseProvider, policy)
    inputs = checked(provider, {"project_id": project["project_id"], "branch_id": project["default_branch_id"],
                                "name": "learnflow", "owner_name": APPS_ROLE})
    return provider.create(inputs).outs


@pytest.mark.parametrize("status", [423, 429, 503])
def test_retryable_statuses_on_every_create_converge_without_duplicates(configured, neon_api, caplog, status):
    for path in (PROJECTS, BRANCHES, ROLES, DATABASES):
        neon_api.faults.add("POST", path, status, times=3)
    project = create_project(configured)
    branch = create_branch(configured, project)
    role = create_role(configured, project)
    create_database(configured, project)
    assert len(neon_api.projects) == 1 and len(all_branches(neon_api)) == 2
    assert len(all_roles(neon_api)) == 3 and len(all_databases(neon_api)) == 3  # the child copied chatkit
    for path in (PROJECTS, BRANCHES, ROLES, DATABASES):
        assert count(neon_api, "POST", path) == 4, path
    assert current_user("learnflow_owner", role["password"], project["host"], APPS_DATABASE) == "learnflow_owner"
    assert current_user(APPS_ROLE, project["owner_password"], branch["host"], APPS_DATABASE) == APPS_ROLE
    assert_no_leak(caplog, neon_api, secrets=(project["owner_password"], role["password"]))


def test_rate_limit_honours_retry_after(configured, neon_api, client):
    neon_api.faults.add("GET", PROJECTS + "/{project_id}", 429, times=2, retry_after=0.05)
    neon_api.faults.add("GET", BRANCHES, 429, times=2)
    project = create_project(configured)
    assert client.get_project(project["project_id"])["id"] == project["project_id"]
    assert [c[2] for c in neon_api.calls if c[1] == PROJECTS + "/{project_id}"] == [429, 429, 200]
    assert len(client.list_branches(project["project_id"])) == 1


PAST = "Wed, 21 Oct 2015 07:28:00 GMT"


@pytest.mark.parametrize("status", [429, 423, 503])
@pytest.mark.parametrize("retry_after", [0, -5, "soon", PAST])
def test_a_retry_after_that_says_now_does_not_flood_the_server(neon_api, status, retry_after):
    policy = replace(FAST, retry_budget_seconds=0.25, backoff_initial_seconds=0.04, backoff_max_seconds=0.16)
    neon_api.faults.add("GET", PROJECTS + "/{project_id}", status, times=None, retry_after=retry_after)
    with NeonClient(neon_api.api_key, neon_api.url, policy) as client, pytest.raises(NeonRetryBudgetExceeded):
        client.get_project("no-such-project")
    sent = count(neon_api, "GET", PROJECTS + "/{project_id}")
    assert 2 <= sent <= most_attempts(policy) == 5, sent  # without a floor: one every few milliseconds


def test_locked_storm_on_updates_converges(configured, neon_api):
    project = create_project(configured)
    provider = configured(ProjectProvider)
    news = checked(provider, project_inputs(max_cu=2, name="renamed"))
    neon_api.faults.add("PATCH", PROJECTS + "/{project_id}", 423, times=5)
    neon_api.faults.add("PATCH", ENDPOINT, 503, times=5)
    provider.update(project["project_id"], project, news)
    live = neon_api.projects[project["project_id"]]
    assert live.info["name"] == "renamed" and live.endpoints[project["endpoint_id"]]["autoscaling_limit_max_cu"] == 2
    assert count(neon_api, "PATCH", ENDPOINT) == 6


@pytest.mark.parametrize("path", [PROJECTS, BRANCHES, ROLES, DATABASES])
def test_lost_responses_after_create_are_adopted_not_duplicated(configured, neon_api, caplog, path):
    # The first POST fails before anything happens (502), the second is carried out but its answer is
    # lost; the first try of each of the three listings (before, after the 502, after the loss) is lost
    # too. The object made by the second POST is adopted.
    neon_api.faults.add("POST", path, 502)
    neon_api.faults.lose_response_after_commit("POST", path)
    neon_api.faults.lose_response_after_commit("GET", LISTINGS[path], times=3)
    project = create_project(configured)
    made = {
        PROJECTS: lambda: project,
        BRANCHES: lambda: create_branch(configured, project),
        ROLES: lambda: create_role(configured, project),
        DATABASES: lambda: create_database(configured, project),
    }[path]()
    assert count(neon_api, "POST", path) == 2, "a POST is sent again only when it did not happen"
    assert count(neon_api, "GET", LISTINGS[path]) == 6
    assert len(neon_api.projects) == 1
    assert len(all_branches(neon_api)) == (2 if path == BRANCHES else 1)
    assert len(all_roles(neon_api)) == (2 if path in (ROLES, BRANCHES) else 1)
    assert len(all_databases(neon_api)) == (2 if path in (DATABASES, BRANCHES) else 1)
    # The password of a role whose creation answer was lost is learnt by one reset, and it works.
    assert current_user(APPS_ROLE, project["owner_password"], project["host"], APPS_DATABASE) == APPS_ROLE
    if path == ROLES:
        assert current_user("learnflow_owner", made["password"], project["host"], APPS_DATABASE) == "learnflow_owner"
    assert_no_leak(caplog, neon_api, secrets=(project["owner_password"],))


@pytest.mark.parametrize("first_fault", ["lose", 502])
def test_a_lost_project_answer_never_adopts_or_duplicates_a_same_named_project(configured, neon_api, first_fault):
    before = create_project(configured)
    if first_fault == "lose":
        neon_api.faults.lose_response_after_commit("POST", PROJECTS, times=2)
    else:
        neon_api.faults.add("POST", PROJECTS, 502)
        neon_api.faults.lose_response_after_commit("POST", PROJECTS)
    made = create_project(configured)
    assert made["project_id"] != before["project_id"]
    assert sorted(neon_api.projects) == sorted([before["project_id"], made["project_id"]])
    assert count(neon_api, "POST", PROJECTS) == (2 if first_fault == "lose" else 3)  # the first made `before`
    assert current_user(APPS_ROLE, made["owner_password"], made["host"], APPS_DATABASE) == APPS_ROLE
    assert current_user(APPS_ROLE, before["owner_password"], before["host"], APPS_DATABASE) == APPS_ROLE


@pytest.mark.parametrize("path", [BRANCHES, ENDPOINTS, ROLES, DATABASES])
def test_a_lost_answer_never_adopts_an_object_that_existed_before(configured, neon_api, client, path):
    # Names (one read_write endpoint per branch) are unique: the POSTs below can only fail, and a lost
    # failure must not make the client take the existing object (and reset that role's password).
    project = create_project(configured)
    project_id, branch_id = project["project_id"], project["default_branch_id"]
    existing = {
        BRANCHES: lambda: create_branch(configured, project),
        ENDPOINTS: lambda: None,
        ROLES: lambda: create_role(configured, project),
        DATABASES: lambda: create_database(configured, project),
    }[path]()
    state = inventory(neon_api)
    neon_api.faults.add("POST", path, 502)
    neon_api.faults.lose_response_after_commit("POST", path)
    again = {
        BRANCHES: lambda: create_branch(configured, project),
        ENDPOINTS: lambda: client.create_endpoint(project_id, {"branch_id": branch_id, "type": "read_write"}),
        ROLES: lambda: create_role(configured, project),
        DATABASES: lambda: create_database(configured, project),
    }[path]
    with pytest.raises(NeonAPIError) as caught:
        again()
    assert caught.value.status == (400 if path == ENDPOINTS else 409)
    assert count(neon_api, "POST", path) == (3 if path == ENDPOINTS else 4)
    assert inventory(neon_api) == state
    if path == ROLES:
        assert current_user("learnflow_owner", existing["password"], project["host"], APPS_DATABASE)


def test_a_lost_endpoint_answer_adopts_the_new_endpoint(configured, neon_api, client):
    project = create_project(configured)
    bare = client.create_branch(project["project_id"], {"name": "bare"}, [])["branch"]
    neon_api.faults.add("POST", ENDPOINTS, 502)
    neon_api.faults.lose_response_after_commit("POST", ENDPOINTS)
    endpoint = client.create_endpoint(project["project_id"], {"branch_id": bare["id"], "type": "read_write"})
    [only] = [e for e in project_endpoints(neon_api) if e["branch_id"] == bare["id"]]
    assert endpoint["id"] == only["id"] and count(neon_api, "POST", ENDPOINTS) == 2


def test_slow_responses_past_the_timeout_are_adopted_or_retried(configured, neon_api):
    slow = replace(FAST, read_timeout_seconds=0.5)
    project = create_project(configured, slow)
    neon_api.faults.delay("POST", BRANCHES, 1.5)
    neon_api.faults.delay("GET", BRANCHES + "/{branch_id}/endpoints", 1.5)
    branch = create_branch(configured, project, slow)
    assert count(neon_api, "POST", BRANCHES) == 1 and len(all_branches(neon_api)) == 2
    assert branch["host"].startswith("127.0.0.1:")


def test_internal_server_error_fails_clearly_and_a_rerun_converges(configured, neon_api, caplog):
    project = create_project(configured)
    neon_api.faults.add("POST", DATABASES, 500, message="database service exploded")
    with pytest.raises(NeonAPIError) as caught:
        create_database(configured, project)
    assert caught.value.status == 500 and "database service exploded" in str(caught.value)
    assert "POST /projects/" in str(caught.value)
    create_database(configured, project)
    assert sorted(name for _, name in all_databases(neon_api)) == [APPS_DATABASE, "learnflow"]
    neon_api.faults.add("GET", ROLES, 500)
    with pytest.raises(NeonAPIError):
        NeonClient(neon_api.api_key, neon_api.url, FAST).list_roles(project["project_id"], project["default_branch_id"])
    assert_no_leak(caplog, neon_api, str(caught.value), secrets=(project["owner_password"],))


def test_bad_gateway_on_create_rediscovers_then_posts_again(configured, neon_api):
    project = create_project(configured)
    neon_api.faults.add("POST", ROLES, 502, times=2)
    neon_api.faults.add("GET", ROLES, 504, times=1)
    role = create_role(configured, project)
    assert count(neon_api, "POST", ROLES) == 3 and len(all_roles(neon_api)) == 2
    assert current_user("learnflow_owner", role["password"], project["host"], APPS_DATABASE) == "learnflow_owner"


def test_failed_operations_that_recover_succeed(configured, neon_api):
    neon_api.faults.fail_operations(outcome="recovered", times=None)
    project = create_project(configured)
    create_branch(configured, project)
    assert len(all_branches(neon_api)) == 2


def test_operation_error_is_reported_with_id_action_and_failures(configured, neon_api, caplog):
    project = create_project(configured)
    neon_api.faults.fail_operations(action="create_branch", outcome="error")
    with pytest.raises(NeonOperationFailed) as caught:
        create_branch(configured, project)
    message = str(caught.value)
    assert caught.value.operation_id in message and "create_branch" in message
    assert "failures_count 2" in message and "status error" in message
    assert_no_leak(caplog, neon_api, message, secrets=(project["owner_password"],))


def test_exhausted_retry_budget_is_a_clear_error(configured, neon_api, caplog):
    project = create_project(configured)
    neon_api.faults.add("POST", BRANCHES, 423, times=None)
    short = replace(FAST, retry_budget_seconds=0.5)
    with pytest.raises(NeonRetryBudgetExceeded) as caught:
        create_branch(configured, project, short)
    message = str(caught.value)
    assert "POST /projects/" in message and "retry budget of 0.5 s" in message and "HTTP 423" in message
    assert len(all_branches(neon_api)) == 1
    assert_no_leak(caplog, neon_api, message)
