"""`parse_settings`: a stack's raw config, every key read and checked, as `StackSettings`.

Every problem is collected (not only the first) and reported with the config key that holds it,
before the program declares any resource.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from components.access.role_names import alternate_role, group_role
from components.defaults import (
    BRANCH_INIT_SOURCES,
    DAPR_SERVICE_SUFFIX,
    HISTORY_RETENTION_MAX,
    KUBERNETES_BUILT_IN_NAMESPACES,
    KUBERNETES_MAX_LABEL,
    NEON_REGIONS,
    PASSWORD_VERSION_MAX,
    PG_CONNECT_TIMEOUT_MAX,
    PG_CONNECT_TIMEOUT_MIN,
    PG_MAX_IDENTIFIER_BYTES,
    PG_RESERVED_DATABASES,
    PG_RESERVED_ROLE_PREFIX,
    PG_VERSIONS,
    READ_REPLICAS_MAX,
    SUSPEND_TIMEOUT_MAX,
    SUSPEND_TIMEOUT_NEVER,
    ip_allow_entry_problem,
    suspend_timeout_problem,
)
from components.settings.keys import DEFAULTS, NEON_API_URL_KEY, PROJECT, SCHEMA_ROOT
from components.settings.network import uncovered
from components.settings.objects import (
    AppSettings,
    BranchModeSettings,
    ComputeSettings,
    KubernetesSettings,
    MigrationSettings,
    NeonSettings,
    NetworkSettings,
    SettingsError,
    StackSettings,
)
from components.settings.reader import (
    DNS_SUBDOMAIN,
    Reader,
    branch_name_problem,
    branch_ttl,
    dapr_timeout,
    http_url,
    is_dns_label,
    matches,
    neon_id,
    neon_name,
    one_of,
    pg_timeout,
    shown,
    ttl_seconds,
)

KUBERNETES_MODES = ("cluster", "render")

# Applied with fullmatch; ASCII classes only, as in `components.settings.reader`.
_APP_NAME = re.compile(r"[a-z][a-z0-9_]*")
_LABEL_VALUE = re.compile(r"([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?")
_VERSION = re.compile(r"[0-9]+")
_STACK_REF = re.compile(r"[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+)?")


def parse_settings(raw: Mapping[str, Any], stack: str, schema_root: Path | None = None) -> StackSettings:
    """Parse raw config (keys like `neon-stack:region`; values as Pulumi passes them).

    `schema_root` (default: the project's `schema/`) holds one directory of SQL files per app.
    Raises SettingsError listing every invalid value with its key.
    """
    schema_root = SCHEMA_ROOT if schema_root is None else schema_root
    r = Reader(raw)
    unknown = sorted(
        k for k in raw if k.startswith(f"{PROJECT}:") and k.split(":", 1)[1] not in DEFAULTS
    )
    for key in unknown:
        r.problems.append(f"{key}: not a setting of this project (see the README's configuration reference)")

    if raw.get(NEON_API_URL_KEY):
        r.string(NEON_API_URL_KEY, http_url)  # validated here; the Neon providers read it in configure()
    compute = ComputeSettings(
        min_cu=r.compute_units("computeMinCu"),
        max_cu=r.compute_units("computeMaxCu"),
        suspend_timeout_seconds=r.integer("suspendTimeoutSeconds", SUSPEND_TIMEOUT_NEVER, SUSPEND_TIMEOUT_MAX),
    )
    if compute.max_cu < compute.min_cu:
        r.fail("computeMaxCu", f"{compute.max_cu:g} is below computeMinCu ({compute.min_cu:g})")
    problem = suspend_timeout_problem(compute.suspend_timeout_seconds)
    if problem:
        r.fail("suspendTimeoutSeconds", problem)

    extra_branches = r.string_list("branches")
    for name in sorted({b for b in extra_branches if extra_branches.count(b) > 1}):
        r.fail("branches", f"branch {shown(name)} appears more than once")
    for name in dict.fromkeys(extra_branches):
        problem = branch_name_problem(name)
        if problem:
            r.fail("branches", problem)

    neon = NeonSettings(
        project_name=r.string("projectName", neon_name) or f"{PROJECT}-{stack}",
        adopt_project_id=r.string("adoptProjectId", neon_id) or None,
        region=r.string("region", one_of(NEON_REGIONS)),
        pg_version=r.integer("pgVersion", PG_VERSIONS.start, PG_VERSIONS.stop - 1),
        org_id=r.string("orgId", neon_id) or None,
        history_retention_seconds=r.integer("historyRetentionSeconds", 0, HISTORY_RETENTION_MAX),
        compute=compute,
        extra_branches=tuple(extra_branches),
        network=_parse_network(r),
        protect_primary_branch=r.boolean("protectPrimaryBranch"),
        read_replicas=r.integer("readReplicas", 0, READ_REPLICAS_MAX),
    )

    parent_stack = r.string(
        "parentStack",
        lambda v: None if not v or _STACK_REF.fullmatch(v) else f"{shown(v)} is not a stack name (org/project/stack)",
    )
    branch_name = r.string("branchName")
    init_source = r.string("branchInitSource", one_of(BRANCH_INIT_SOURCES))
    ttl = r.string("branchTtl", branch_ttl)
    branch_mode = None
    if parent_stack:
        branch_mode = BranchModeSettings(parent_stack, branch_name or stack, init_source, ttl_seconds(ttl))
        problem = branch_name_problem(branch_mode.branch_name)
        if problem:
            r.fail("branchName", problem if branch_name else f"empty, so the stack name is used: {problem}")
        if neon.adopt_project_id:
            r.fail("adoptProjectId", "cannot be combined with neon-stack:parentStack (branch mode owns no project)")
        if neon.extra_branches:
            r.fail("branches", "cannot be combined with neon-stack:parentStack (branch mode owns one branch)")
    elif branch_name:
        r.fail("branchName", "only applies in branch mode (set neon-stack:parentStack)")
    if branch_mode:
        _refuse_project_controls(r, neon)
    else:
        _check_deployers_let_in(r, neon)
    if ttl and not parent_stack:
        r.fail("branchTtl", "only applies in branch mode (set neon-stack:parentStack)")

    migrations = MigrationSettings(
        allow_destructive=r.boolean("allowDestructiveMigrations"),
        allow_out_of_order=r.boolean("allowOutOfOrderMigrations"),
        lock_timeout=r.string("migrationLockTimeout", pg_timeout),
        statement_timeout=r.string("migrationStatementTimeout", pg_timeout),
    )

    kube_mode = r.string("kubernetesMode", one_of(KUBERNETES_MODES))
    render_directory = r.string("renderDirectory")
    if kube_mode == "render" and not render_directory:
        r.fail("renderDirectory", "must be set when neon-stack:kubernetesMode is render")
    kubernetes = KubernetesSettings(
        mode=kube_mode,
        kubeconfig=r.string("kubeconfig") or None,
        context=r.string("kubeContext") or None,
        render_directory=render_directory,
        create_namespaces=r.boolean("createNamespaces"),
    )

    apps = _parse_apps(r, schema_root, kubernetes.create_namespaces)
    protect = r.boolean("protect")
    if r.problems:
        raise SettingsError(r.problems)
    return StackSettings(stack, protect, neon, branch_mode, migrations, kubernetes, apps)


# Settings of the project itself: a branch-mode stack owns no project and no primary branch.
def _parse_network(r: Reader) -> NetworkSettings:
    allowed = r.string_list("allowedIps")
    for entry in allowed:
        problem = ip_allow_entry_problem(entry)
        if problem:
            r.fail("allowedIps", problem)
    network = NetworkSettings(
        allowed_ips=tuple(allowed),
        protected_branches_only=r.boolean("allowedIpsProtectedBranchesOnly"),
        block_public_connections=r.boolean("blockPublicConnections"),
    )
    if network.protected_branches_only and not allowed:
        r.fail("allowedIpsProtectedBranchesOnly", "has no effect while neon-stack:allowedIps is empty")
    return network


def _check_deployers_let_in(r: Reader, neon: NeonSettings) -> None:
    """Refuse, before anything changes, network settings that would lock out the machine running the stack:
    its migrations and app-role SQL connect to the primary branch's direct endpoint."""
    network = neon.network
    deployers = r.string_list("deployerIps")
    for problem in filter(None, map(ip_allow_entry_problem, deployers)):
        r.fail("deployerIps", problem)
    private = r.boolean("deployersUsePrivateNetworking")
    if network.block_public_connections and not private:
        r.fail(
            "blockPublicConnections",
            "would refuse this stack's own migrations and app-role SQL, which connect from the machine running it "
            "over the public internet: run the stack from a network with Neon Private Networking and set "
            "neon-stack:deployersUsePrivateNetworking to true, or leave blockPublicConnections false",
        )
    restricted = network.allowed_ips and (neon.protect_primary_branch or not network.protected_branches_only)
    malformed = any(ip_allow_entry_problem(entry) for entry in network.allowed_ips + tuple(deployers))
    if not restricted or private or malformed:  # malformed entries are reported by key already
        return
    if not deployers:
        r.fail(
            "allowedIps",
            "restricts the primary branch, whose direct endpoint this stack's migrations and app-role SQL use: "
            "name the addresses of every machine that runs the stack (laptops, CI runners) in "
            "neon-stack:deployerIps, inside allowedIps",
        )
    for entry in uncovered(deployers, list(network.allowed_ips)):
        r.fail(
            "allowedIps",
            f"does not cover {shown(entry)} of neon-stack:deployerIps: the stack's own migrations and app-role SQL "
            "would be refused from there (add it to allowedIps)",
        )


def _refuse_project_controls(r: Reader, neon: NeonSettings) -> None:
    """Branch mode owns no project: its network, protection and replica settings belong to the
    parent stack. Compared with their defaults, not by presence: the engine passes Pulumi.yaml's
    defaults to the program as if they were set."""
    chosen = {
        "allowedIps": bool(neon.network.allowed_ips),
        "allowedIpsProtectedBranchesOnly": neon.network.protected_branches_only,
        "blockPublicConnections": neon.network.block_public_connections,
        "deployerIps": bool(r.string_list("deployerIps")),
        "deployersUsePrivateNetworking": r.boolean("deployersUsePrivateNetworking"),
        "protectPrimaryBranch": neon.protect_primary_branch,
        "readReplicas": neon.read_replicas > 0,
    }
    for key in (key for key, set_here in chosen.items() if set_here):
        r.fail(key, "is a setting of the project: set it on the parent stack (branch mode owns no project)")


def _parse_apps(r: Reader, schema_root: Path, create_namespaces: bool) -> tuple[AppSettings, ...]:
    names = r.string_list("apps")
    if not names:
        r.fail("apps", "lists no application")
    for name in sorted({n for n in names if names.count(n) > 1}):
        r.fail("apps", f"application {shown(name)} appears more than once")

    namespaces = r.app_map("namespaces", names)
    for app, namespace in namespaces.items():
        if not is_dns_label(namespace):
            r.fail("namespaces", f"{shown(namespace)} (for {app}) is not a DNS-1123 label")
    scopes = r.app_map("daprScopes", names)
    for app, ids in scopes.items():
        for app_id in (i.strip() for i in ids.split(",")):
            if not is_dns_label(app_id + DAPR_SERVICE_SUFFIX):
                r.fail(
                    "daprScopes",
                    f"{shown(app_id)} (for {app}) is not a Dapr app id (lowercase letters, digits and -, a letter "
                    f"or digit first, {KUBERNETES_MAX_LABEL - len(DAPR_SERVICE_SUFFIX)} characters at most)",
                )
    baselines = r.app_map("baselineVersions", names)
    for app, version in baselines.items():
        if not _VERSION.fullmatch(version):
            r.fail("baselineVersions", f"{shown(version)} (for {app}) is not a migration version number")

    # Kubernetes object names; Dapr also needs a Component's name to be a URL path segment, which these are.
    secret_name = r.string("secretName", matches(DNS_SUBDOMAIN, "a DNS-1123 subdomain"))
    component_name = r.string("daprComponentName", matches(DNS_SUBDOMAIN, "a DNS-1123 subdomain"))
    init_timeout = r.string("daprInitTimeout", dapr_timeout)
    password_version = r.integer("passwordVersion", 1, PASSWORD_VERSION_MAX)
    channel_binding = r.boolean("channelBinding")
    connect_timeout = r.integer("connectTimeoutSeconds", PG_CONNECT_TIMEOUT_MIN, PG_CONNECT_TIMEOUT_MAX)

    apps = tuple(
        AppSettings(
            name=name,
            schema_dir=schema_root / name,
            database=name,
            owner_role=f"{name}_owner",
            app_role=f"{name}_app",
            namespace=namespaces.get(name, name.replace("_", "-")),
            secret_name=secret_name,
            dapr_component_name=component_name,
            dapr_scopes=tuple(i.strip() for i in scopes[name].split(",")) if name in scopes else (),
            dapr_init_timeout=init_timeout,
            baseline_version=baselines.get(name),
            password_version=password_version,
            channel_binding=channel_binding,
            connect_timeout_seconds=connect_timeout,
        )
        for name in dict.fromkeys(names)
    )
    for app in apps:
        if not _APP_NAME.fullmatch(app.name):
            r.fail("apps", f"{shown(app.name)} is not an application name (a letter, then letters, digits and _)")
    well_formed = [app for app in apps if _APP_NAME.fullmatch(app.name)]
    for app in well_formed:
        problem = _derived_name_problem(app, app.name in namespaces)
        if problem:
            r.fail("apps", f"application {shown(app.name)}: {problem}")
        elif not any(app.schema_dir.glob("*.sql")):  # after the length checks: a long name is an OSError here
            r.fail("apps", f"application {shown(app.name)} has no SQL files in {app.schema_dir}")
    _check_namespaces(r, well_formed, set(namespaces), create_namespaces)
    return apps


def _derived_name_problem(app: AppSettings, namespace_overridden: bool) -> str | None:
    """Why a name made from a well-formed app name would be refused where it is used, or None.

    Every statement quotes these names (psycopg's sql.Identifier, Neon's API), so an SQL keyword is
    fine; the app role provider takes lowercase identifiers of 63 bytes at most, like these.
    """
    names = (("database", app.database), ("owner role", app.owner_role), ("app role", app.app_role),
             ("alternate login role", alternate_role(app.app_role)), ("group role", group_role(app.app_role)))
    for what, name in names:
        if len(name.encode()) > PG_MAX_IDENTIFIER_BYTES:
            return f"its {what} {shown(name)} would be longer than PostgreSQL's {PG_MAX_IDENTIFIER_BYTES} bytes"
    if any(role.startswith(PG_RESERVED_ROLE_PREFIX) for role in (app.owner_role, app.app_role)):
        roles = f"{shown(app.owner_role)} and {shown(app.app_role)}"
        return f"its roles {roles} would start with {PG_RESERVED_ROLE_PREFIX}, which PostgreSQL reserves"
    if app.database in PG_RESERVED_DATABASES:
        return f"its database {shown(app.database)} already exists on every Neon branch"
    if not namespace_overridden and not is_dns_label(app.namespace):
        return f"its namespace {shown(app.namespace)} would not be a DNS-1123 label (set one in neon-stack:namespaces)"
    if not _LABEL_VALUE.fullmatch(app.name):
        return "it is the value of the label app.kubernetes.io/name, which must end with a letter or a digit"
    return None


def _check_namespaces(
    r: Reader, apps: list[AppSettings], overridden: set[str], create_namespaces: bool
) -> None:
    """Each app in a namespace of its own that the stack can make: two apps in one namespace would declare
    the same Secret and Component (their names are stack-wide), and the same Namespace if it is created.

    A default namespace (`_` turned to `-`) is never another app's default, so a shared namespace
    always involves neon-stack:namespaces.
    """
    first_app: dict[str, AppSettings] = {}
    for app in apps:
        source = "neon-stack:namespaces" if app.name in overridden else "neon-stack:apps"
        if create_namespaces and app.namespace in KUBERNETES_BUILT_IN_NAMESPACES:
            r.fail(
                source,
                f"namespace {shown(app.namespace)} of {app.name} exists in every cluster and cannot be created by the "
                "stack (choose another in neon-stack:namespaces, or set neon-stack:createNamespaces false)",
            )
        other = first_app.setdefault(app.namespace, app)
        if other is app:
            continue
        other_source = "neon-stack:namespaces" if other.name in overridden else "neon-stack:apps"
        shared = "Namespace, " if create_namespaces else ""
        r.fail(
            "namespaces",
            f"{app.name} ({source}) and {other.name} ({other_source}) are both in namespace {shown(app.namespace)}, "
            f"so they would declare the same {shared}Secret {shown(app.secret_name)} (neon-stack:secretName) and "
            f"Component {shown(app.dapr_component_name)} (neon-stack:daprComponentName): give each its own namespace",
        )


def stack_config() -> dict[str, Any]:
    """Every config value of the running stack (Pulumi's environment, then values set in-process)."""
    from pulumi.runtime import config as runtime_config

    return {**runtime_config.get_config_env(), **runtime_config.CONFIG.get()}


def load_settings() -> StackSettings:
    """Settings of the running Pulumi stack."""
    import pulumi

    return parse_settings(stack_config(), pulumi.get_stack())
