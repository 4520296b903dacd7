"""A branch with a TTL: expires_at set by the provider, pushed forward by updates, gone once expired."""

from __future__ import annotations

import time
from datetime import datetime

import pytest

from components.defaults import BRANCH_EXPIRY_PUSH_SECONDS
from components.neon.branch import BranchProvider, expires_at, expiry_due, has_expired
from components.neon.errors import NeonError
from components.neon.project import ProjectProvider
from tests.neon.helpers import checked, project_inputs
from tests.support.neon_fixtures import FakeClock

WEEK = 7 * 86400


def seconds(stamp: str) -> float:
    return datetime.fromisoformat(stamp).timestamp()


@pytest.fixture
def project(configured):
    provider = configured(ProjectProvider)
    return provider.create(checked(provider, project_inputs())).outs


def inputs(provider, project, **overrides):
    return checked(provider, {"project_id": project["project_id"], "parent_id": project["default_branch_id"],
                              "name": "pr-1", "ttl_seconds": WEEK, **overrides})


def test_the_ttl_is_checked_against_neons_limits(configured) -> None:
    provider = configured(BranchProvider)
    for ttl in (3599, 30 * 86400 + 1, "7d"):
        result = provider.check({}, {"project_id": "p", "name": "b", "ttl_seconds": ttl})
        assert [f.property for f in result.failures] == ["ttl_seconds"], ttl
    assert provider.check({}, {"project_id": "p", "name": "b", "ttl_seconds": None}).failures == []


def test_an_expiry_is_pushed_only_once_an_hour_of_it_has_passed() -> None:
    now = 1_800_000_000.0
    assert expires_at(WEEK, now) == "2027-01-22T08:00:00Z"
    fresh = expires_at(WEEK, now)
    assert not expiry_due(fresh, WEEK, now + BRANCH_EXPIRY_PUSH_SECONDS)
    assert expiry_due(fresh, WEEK, now + BRANCH_EXPIRY_PUSH_SECONDS + 1)
    assert expiry_due(None, WEEK, now)
    assert not expiry_due(fresh, None, now + WEEK)
    assert not has_expired(fresh, now + WEEK - 1) and has_expired(fresh, now + WEEK) and not has_expired(None, now)


def test_a_branch_whose_expiry_has_passed_is_replaced(configured) -> None:
    provider = configured(BranchProvider)
    news = {"project_id": "p", "name": "pr-1", "ttl_seconds": WEEK}
    olds = {**news, "expires_at": expires_at(WEEK, time.time() - WEEK - 1)}
    diff = provider.diff("br-1", olds, news)
    assert (diff.changes, diff.replaces, bool(diff.delete_before_replace)) == (True, ["expires_at"], False)


def test_create_sets_update_pushes_and_removal_clears_the_expiry(configured, neon_api, project) -> None:
    provider = configured(BranchProvider)
    news = inputs(provider, project)
    created = provider.create(news)
    live = neon_api.projects[project["project_id"]].branches[created.id]
    assert created.outs["expires_at"] == live.info["expires_at"]
    assert abs(seconds(live.info["expires_at"]) - (time.time() + WEEK)) < 5

    # No change right after an up (a preview shows nothing), one once an hour of the TTL has passed.
    assert provider.diff(created.id, created.outs, news).changes is False
    aged = {**created.outs, "expires_at": expires_at(WEEK, time.time() - BRANCH_EXPIRY_PUSH_SECONDS - 60)}
    diff = provider.diff(created.id, aged, news)
    assert diff.changes is True and diff.replaces == []
    pushed = provider.update(created.id, aged, news).outs
    assert pushed["expires_at"] == live.info["expires_at"]
    assert seconds(pushed["expires_at"]) > seconds(aged["expires_at"])
    assert provider.read(created.id, pushed).outs == pushed

    shorter = inputs(provider, project, ttl_seconds=3600)
    assert provider.diff(created.id, pushed, shorter).changes is True
    assert abs(seconds(provider.update(created.id, pushed, shorter).outs["expires_at"]) - (time.time() + 3600)) < 5
    without = inputs(provider, project, ttl_seconds=None)
    cleared = provider.update(created.id, pushed, without).outs
    assert cleared["expires_at"] is None and "expires_at" not in live.info
    assert provider.diff(created.id, cleared, without).changes is False


def test_an_adopted_branch_gets_the_expiry(configured, neon_api, project) -> None:
    provider = configured(BranchProvider)
    first = provider.create(inputs(provider, project, ttl_seconds=None))
    adopted = provider.create(inputs(provider, project, adopt=True))
    assert adopted.id == first.id
    assert neon_api.projects[project["project_id"]].branches[first.id].info["expires_at"] == adopted.outs["expires_at"]


def test_an_expired_branch_is_gone_at_refresh_and_destroy(configured, neon_api, project) -> None:
    provider = configured(BranchProvider)
    news = inputs(provider, project, ttl_seconds=3600)
    created = provider.create(news)
    clock = FakeClock()
    neon_api.configure(clock=clock)
    clock.advance(3600 + 5)
    assert provider.read(created.id, created.outs).id == ""
    assert created.id not in neon_api.projects[project["project_id"]].branches
    gone = r"'pr-1' .* no longer exists \(it may have expired\): run `pulumi up --refresh`"
    with pytest.raises(NeonError, match=gone):
        provider.update(created.id, {**created.outs, "expires_at": None}, news)
    provider.delete(created.id, created.outs)
