"""Branch expiry: `expires_at` checked against the fake's clock, and expired branches deleted.

Neon takes an `expires_at` in RFC 3339 with a time zone, in the future and at most 30 days ahead
(its branch expiration guide), and deletes an expired branch with a background job. Here that job
is `sweep`, run before every request at the clock's time: an expired branch goes with its
endpoints, its cluster and its pooler stopped and removed. Like `delete_branch`, it never takes a
branch that still has children (kept until they are gone); the deletion schedules no operation,
so it never locks the project.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from neon_emulator.state import ApiError, BranchState, ProjectState

if TYPE_CHECKING:
    from neon_emulator.fake import NeonFake

MAX_EXPIRY_SECONDS = 30 * 86400


def expiry_time(value: str) -> float:
    """Seconds since the epoch of an `expires_at` value (400 if it is no RFC 3339 timestamp with a zone)."""
    try:
        moment = datetime.fromisoformat(value)
    except (TypeError, ValueError):
        raise ApiError(400, f"expires_at {value} is not an RFC 3339 timestamp") from None
    if moment.tzinfo is None:
        raise ApiError(400, f"expires_at {value} has no time zone")
    return moment.timestamp()


def check_expiry(value: str | None, now: float) -> None:
    """Refuse an `expires_at` (None: none asked for) that is not in the next 30 days of clock time `now`."""
    if value is None:
        return
    moment = expiry_time(value)
    if moment <= now:
        raise ApiError(400, "expires_at must be a timestamp in the future")
    if moment > now + MAX_EXPIRY_SECONDS:
        raise ApiError(400, "expires_at must be at most 30 days in the future")


def expired(branch: BranchState, now: float) -> bool:
    value = branch.info.get("expires_at")
    return value is not None and expiry_time(value) <= now


def sweep(fake: NeonFake, now: float) -> None:
    """Delete every branch expired at clock time `now` that has no children, as Neon's background job does."""
    for project in fake.projects.values():
        for branch in [b for b in project.branches.values() if expired(b, now) and not _has_children(project, b)]:
            for endpoint in project.branch_endpoints(branch.id):
                del project.endpoints[endpoint["id"]]
            del project.branches[branch.id]
            branch.compute.stop()


def _has_children(project: ProjectState, branch: BranchState) -> bool:
    return any(b.info.get("parent_id") == branch.id for b in project.branches.values())
