"""Benchmark: how many Neon API calls the stack makes, next to the Terraform provider kislerdm/neon.

Measured (against the fake Neon API, started here, with real PostgreSQL behind it):
1. a fresh environment: project + 2 extra branches + 2 apps (owner role and database each, on
   every branch), through NeonEnvironment with its providers run for real;
2. a second `up` with nothing changed (diff from state: must make zero writes and zero reveals);
3. a refresh of every resource (read(): must make zero reveals).

Modelled for kislerdm/neon v0.15 from its documented behaviour (see the project's notes on the
Neon API): operations polled every 100 ms, 423/429/500 retried every 1 s (up to 120 times), every
plan refreshes every resource and reveals every role's password. The same polling and retry
arithmetic is applied to our client's default policy for operations and locks lasting D seconds.

Run: `venv/bin/python benchmarks/bench_neon_calls.py`.
"""

from __future__ import annotations

import argparse
import base64
import math
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import dill
import pulumi
from pulumi.dynamic import Config, ConfigureRequest

from components.defaults import HISTORY_RETENTION_SECONDS, MAX_CU, MIN_CU, PG_VERSION, REGION, SUSPEND_TIMEOUT_SECONDS
from components.neon.component import (
    ComputeArgs,
    NeonEnvironment,
    NeonEnvironmentArgs,
    OwnedDatabaseArgs,
    ProjectModeArgs,
)
from components.neon.session import ClientPolicy
from neon_emulator.api_server import ApiServer
from neon_emulator.fake import NeonFake
from tests.support.pulumi_mocks import run_program

APPS = ("chatkit", "learnflow")
EXTRA_BRANCHES = ["preview", "staging"]
OPERATION_SECONDS = (1, 3, 10)
LOCK_SECONDS = (2, 10, 60)


def summarise(calls: list[tuple[str, str, int]]) -> dict[str, int]:
    ok = [c for c in calls if c[2] < 400]
    return {
        "total calls": len(calls),
        "writes (succeeded)": sum(1 for c in ok if c[0] != "GET"),
        "writes answered 423/429 (retried)": sum(1 for c in calls if c[0] != "GET" and c[2] in (423, 429)),
        "operation polls": sum(1 for c in calls if c[1].startswith("/projects/{project_id}/operations")),
        "password reveals": sum(1 for c in calls if c[1].endswith("/reveal_password")),
        "password resets": sum(1 for c in ok if c[1].endswith("/reset_password")),
        "other reads": sum(
            1 for c in calls
            if c[0] == "GET" and "/operations" not in c[1] and not c[1].endswith("/reveal_password")
        ),
    }


def our_polls(seconds: float, policy: ClientPolicy) -> int:
    """Polls our client makes for one operation lasting `seconds` (growing interval, capped)."""
    waited, interval, polls = 0.0, policy.operation_poll_seconds, 0
    while waited < seconds:
        waited += interval
        polls += 1
        interval = min(interval * 1.5, policy.operation_poll_max_seconds)
    return polls


def our_lock_retries(seconds: float, policy: ClientPolicy) -> int:
    """Attempts our client makes while a 423 lasts `seconds` (mean backoff: 3/4 of the ceiling)."""
    waited, attempt = 0.0, 1
    while waited < seconds:
        waited += 0.75 * min(policy.backoff_max_seconds, policy.backoff_initial_seconds * 2 ** (attempt - 1))
        attempt += 1
    return attempt


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--operation-seconds", type=float, default=None,
                        help="how long each emulated operation runs (default: the emulator's own)")
    options = parser.parse_args()
    fake = NeonFake() if options.operation_seconds is None else NeonFake(operation_seconds=options.operation_seconds)
    server = ApiServer(fake)
    try:
        args = NeonEnvironmentArgs(
            mode=ProjectModeArgs(
                name="neon-stack-bench",
                region_id=REGION,
                pg_version=PG_VERSION,
                org_id=None,
                history_retention_seconds=HISTORY_RETENTION_SECONDS,
                adopt_id=None,
                extra_branches=EXTRA_BRANCHES,
            ),
            databases=[OwnedDatabaseArgs(app, f"{app}_owner", channel_binding=False) for app in APPS],
            compute=ComputeArgs(MIN_CU, MAX_CU, SUSPEND_TIMEOUT_SECONDS),
            protect=False,
        )

        def program() -> None:
            db = NeonEnvironment("neon", args)
            pulumi.export("branch_ids", db.branch_ids)

        config = {"neon:apiUrl": server.url, "neon:apiKey": fake.api_key}
        started = time.perf_counter()
        fresh = run_program(program, config={}, stack="bench", run_providers=True, provider_config=config)
        fresh_seconds = time.perf_counter() - started
        operations = sum(len(p.operations) for p in fake.projects.values())
        figures = {"fresh environment": summarise(fake.calls)}
        fake.calls.clear()
        run_program(program, config={}, stack="bench", run_providers=True, provider_config=config,
                    state=fresh.state)
        figures["second up, nothing changed"] = summarise(fake.calls)
        fake.calls.clear()
        for entry in fresh.state.values():  # what `pulumi refresh` does: the provider from state, read()
            provider = dill.loads(base64.b64decode(entry["provider"]))  # noqa: S301 - our own provider
            provider.configure(ConfigureRequest(Config(config, "neon-stack")))
            provider.read(entry["id"], entry["outputs"])
        figures["refresh of every resource"] = summarise(fake.calls)
    finally:
        server.close()

    resources = len(fresh.state)
    roles = sum(1 for urn in fresh.state if "neon:Role" in urn)
    print(f"Work: project + {len(EXTRA_BRANCHES)} extra branches, {len(APPS)} apps -> {resources} resources "
          f"({roles} owner roles), {operations} Neon operations of {fake.operation_seconds:g} s each (one after"
          f" another per project)\nfresh environment: {fresh_seconds:.1f} s wall time, "
          f"{figures['fresh environment']['operation polls']} operation polls\n")
    print(f"{'ours, measured against the fake':36}" + "".join(f"{name:>30}" for name in figures))
    for row in next(iter(figures.values())):
        print(f"{row:36}" + "".join(f"{figures[name][row]:>30}" for name in figures))

    # kislerdm/neon: project, role, database on the default branch; 2 branches + 2 endpoints (no inline
    # endpoints); copied roles on extra branches cannot be adopted, so it manages no resource for them.
    tf_resources, tf_roles = 7, 1
    print("\nkislerdm/neon v0.15, from its documented behaviour, same work:")
    print(f"  fresh environment: {tf_resources} creating POSTs (ours: "
          f"{figures['fresh environment']['writes (succeeded)']} writes incl. "
          f"{figures['fresh environment']['password resets']} resets that give every (branch, app) its own login)")
    print(f"  second plan/apply, nothing changed: {tf_resources} refresh GETs + {tf_roles} password reveals "
          f"per plan (ours: {figures['second up, nothing changed']['total calls']} calls, "
          f"{figures['second up, nothing changed']['password reveals']} reveals)")
    print(f"  explicit refresh: {tf_resources} GETs + {tf_roles} reveals (ours: "
          f"{figures['refresh of every resource']['total calls']} GETs for {resources} resources, "
          f"{figures['refresh of every resource']['password reveals']} reveals)")

    policy = ClientPolicy()
    print("\nPolls per operation lasting D seconds (kislerdm: every 100 ms, no deadline; ours: "
          f"{policy.operation_poll_seconds:g} s growing x1.5 to {policy.operation_poll_max_seconds:g} s for the first "
          "operation a process waits for; later ones as long as the last finished one: 1 poll each, just after"
          " their expected end):")
    for seconds in OPERATION_SECONDS:
        tf, ours = math.ceil(seconds / 0.1), our_polls(seconds, policy)
        print(f"  D={seconds:>2} s: kislerdm {tf:>4}  ours {ours:>3}  ratio {tf / ours:5.1f}x   "
              f"-> for the {operations} operations of a fresh environment: {tf * operations} vs {ours * operations}")
    print("Attempts while the project stays locked (423) for D seconds (kislerdm: every 1 s; ours: exponential "
          f"backoff from {policy.backoff_initial_seconds:g} s to {policy.backoff_max_seconds:g} s with jitter):")
    for seconds in LOCK_SECONDS:
        tf, ours = min(120, math.ceil(seconds / 1.0)) + 1, our_lock_retries(seconds, policy)
        print(f"  D={seconds:>2} s: kislerdm {tf:>4}  ours {ours:>3}  ratio {tf / ours:5.1f}x")
    second = figures["second up, nothing changed"]
    verdict = "OK" if second["writes (succeeded)"] == 0 and second["password reveals"] == 0 else "FAILED"
    print(f"\nSecond run: zero writes and zero reveals -> {verdict}")


if __name__ == "__main__":
    main()
