"""IP Allow and blocked public access, enforced on the real servers of every endpoint.

Neon's project settings `allowed_ips` (`ips`, `protected_branches_only`) and
`block_public_connections` decide who may connect to a branch's computes: an empty or unset list
lets every address in; with `protected_branches_only` the list applies to protected branches only;
blocking public connections leaves only Private Networking, which the emulator does not have, so
then no client address is let in. Entries are addresses, CIDR ranges or ranges `first-last`.

Each restriction is written as hba rules, for PostgreSQL (its data directory's pg_hba.conf, then a
configuration reload) and for PgBouncer (its `auth_hba_file`, then `RELOAD` on its admin console),
of the branch's cluster and of its read-only standbys. The emulator's own superuser connections and
replication come from 127.0.0.1 and stay allowed; PgBouncer reaches PostgreSQL over its Unix
socket, so a pooled client is judged by PgBouncer alone, a direct one by PostgreSQL.
"""

from __future__ import annotations

import ipaddress
from typing import Any

import psycopg

from neon_emulator.computes import Compute
from neon_emulator.servers import OPEN_HBA, POSTGRES_ADDRESS, SUPERUSER, write_server_file
from neon_emulator.state import ApiError, BranchState, ProjectState

# The emulator's own connections, first in every file: superuser sessions and replication on
# PostgreSQL, the admin console (RELOAD) on PgBouncer.
_POSTGRES_INTERNAL = (
    f"host all {SUPERUSER} {POSTGRES_ADDRESS}/32 scram-sha-256\n"
    f"host replication {SUPERUSER} {POSTGRES_ADDRESS}/32 scram-sha-256\n"
)
_PGBOUNCER_INTERNAL = f"host pgbouncer {SUPERUSER} {POSTGRES_ADDRESS}/32 scram-sha-256\n"


def networks(entry: str) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    """The CIDR blocks of one allow-list entry (400, as Neon answers, when it is none of Neon's forms)."""
    try:
        first, dash, last = entry.partition("-")
        if dash:
            return list(ipaddress.summarize_address_range(ipaddress.ip_address(first), ipaddress.ip_address(last)))
        return [ipaddress.ip_network(entry)]
    except (ValueError, TypeError) as error:
        message = f"allowed_ips: {entry!r} is not a valid IP address, range or CIDR block ({error})"
        raise ApiError(400, message) from None


def check_settings(settings: dict[str, Any]) -> None:
    """Refuse malformed allow-list entries before anything is changed."""
    for entry in (settings.get("allowed_ips") or {}).get("ips") or []:
        networks(entry)


def allowed_networks(project: ProjectState, branch: BranchState) -> list[str] | None:
    """The CIDR blocks clients of `branch` may connect from; None: every address."""
    settings = project.info.get("settings") or {}
    if settings.get("block_public_connections"):
        return []
    allowed = settings.get("allowed_ips") or {}
    ips = allowed.get("ips") or []
    if not ips or (allowed.get("protected_branches_only") and not branch.info.get("protected")):
        return None
    return [str(block) for entry in ips for block in networks(entry)]


def hba(blocks: list[str] | None) -> str:
    """The hba rules of a client restriction (None: open), after the emulator's own lines in each file."""
    if blocks is None:
        return OPEN_HBA
    return "local all all scram-sha-256\n" + "".join(f"host all all {block} scram-sha-256\n" for block in blocks)


def sync(project: ProjectState) -> None:
    """After a change of settings, protection, branches or endpoints: the servers enforce the project's
    network settings (nothing to do for a project that never had any)."""
    settings = project.info.get("settings") or {}
    if "allowed_ips" in settings or "block_public_connections" in settings:
        apply(project)


def apply(project: ProjectState) -> None:
    """Write and load the restriction of every branch of `project` on all of its servers."""
    for branch in project.branches.values():
        rules = hba(allowed_networks(project, branch))
        for compute in (branch.compute, *branch.compute.standbys.values()):
            _load(compute, rules)


def _load(compute: Compute, rules: str) -> None:
    write_server_file(compute.postgres.directory / "data" / "pg_hba.conf", _POSTGRES_INTERNAL + rules)
    with psycopg.connect(compute.postgres.url(), autocommit=True) as conn:
        loaded = conn.execute("SELECT pg_conf_load_time()").fetchone()[0]
        conn.execute("SELECT pg_reload_conf()")
    _wait_for_reload(compute, loaded)
    write_server_file(compute.pgbouncer.hba_file, _PGBOUNCER_INTERNAL + rules)
    admin = compute.pgbouncer.url("pgbouncer", SUPERUSER, compute.postgres.password)
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.pgconn.exec_(b"RELOAD")  # the admin console speaks the simple query protocol only


def _wait_for_reload(compute: Compute, before: Any) -> None:
    """Until new sessions see the reloaded configuration (pg_reload_conf only signals the postmaster)."""
    for _ in range(200):
        with psycopg.connect(compute.postgres.url(), autocommit=True) as conn:
            if conn.execute("SELECT pg_conf_load_time()").fetchone()[0] > before:
                return
    raise RuntimeError("PostgreSQL did not reload pg_hba.conf")
