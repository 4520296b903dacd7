"""Checks of compute sizes and of the Free plan's limits (`fake.plan = "free"`; the default plan has none).

The Free plan allows 10 branches per project, a history retention of at most 21600 s, at most
2 CU per compute, no protected branches and no IP Allow or Private Networking restrictions
(Neon: protected branches on paid plans, IP Allow on Scale).
"""

from __future__ import annotations

from typing import Any

from neon_emulator.state import ApiError

FREE_PLAN_BRANCHES = 10
FREE_PLAN_HISTORY_SECONDS = 21600
FREE_PLAN_MAX_CU = 2.0


def check_compute_size(plan: str, settings: dict[str, Any]) -> None:
    low, high = settings.get("autoscaling_limit_min_cu"), settings.get("autoscaling_limit_max_cu")
    if low is not None and high is not None and low > high:
        raise ApiError(400, "autoscaling_limit_min_cu must not exceed autoscaling_limit_max_cu")
    if plan == "free" and max(low or 0, high or 0) > FREE_PLAN_MAX_CU:
        raise ApiError(400, f"the Free plan allows at most {FREE_PLAN_MAX_CU:g} compute units")


def check_history(plan: str, seconds: int | None) -> None:
    if seconds is not None and plan == "free" and seconds > FREE_PLAN_HISTORY_SECONDS:
        raise ApiError(400, f"history_retention_seconds exceeds the plan limit of {FREE_PLAN_HISTORY_SECONDS}")


def check_protected(plan: str, protected: bool) -> None:
    if protected and plan == "free":
        raise ApiError(400, "protected branches are not available on the Free plan")


def check_branch_count(plan: str, branches: int) -> None:
    """Room for one more branch in a project that has `branches`."""
    if plan == "free" and branches >= FREE_PLAN_BRANCHES:
        raise ApiError(400, f"the Free plan allows at most {FREE_PLAN_BRANCHES} branches per project")


def check_network(plan: str, settings: dict[str, Any]) -> None:
    """Project settings restricting client addresses: not on the Free plan."""
    ips = (settings.get("allowed_ips") or {}).get("ips")
    if plan == "free" and (ips or settings.get("block_public_connections")):
        raise ApiError(400, "IP Allow and blocked public connections are not available on the Free plan")


def check_unprotected(branch_info: dict[str, Any], action: str) -> None:
    """Neon refuses to delete or reset a protected branch, and to delete its computes."""
    if branch_info.get("protected"):
        raise ApiError(400, f"branch {branch_info['id']} is protected: cannot {action}")
