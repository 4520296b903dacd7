"""Stack settings: read once from the stack's config, validated, returned as typed objects.

Every problem is collected (not only the first) and reported with the config key that holds
it, before the program declares any resource. Defaults live here and are declared again,
with their types, in Pulumi.yaml; a test keeps the two in agreement.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

PROJECT = "neon-stack"
PROJECT_ROOT = Path(__file__).resolve().parent.parent
SCHEMA_ROOT = PROJECT_ROOT / "schema"

NEON_API_URL = "https://console.neon.tech/api/v2"
NEON_REGIONS = frozenset(
    {
        "aws-us-east-1",
        "aws-us-east-2",
        "aws-us-west-2",
        "aws-eu-central-1",
        "aws-eu-west-2",
        "aws-ap-southeast-1",
        "aws-ap-southeast-2",
        "aws-sa-east-1",
    }
)
PG_VERSIONS = range(14, 19)
MAX_COMPUTE_UNITS = 56.0
BRANCH_INIT_SOURCES = ("parent-data", "schema-only")
KUBERNETES_MODES = ("cluster", "render")

_APP_NAME = re.compile(r"^[a-z][a-z0-9_]{0,29}$")
DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_PG_DURATION = re.compile(r"^[0-9]+(ms|s|min|h|d)?$")
GO_DURATION = re.compile(r"^([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h))+$")
_VERSION = re.compile(r"^[0-9]+$")
_STACK_REF = re.compile(r"^[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+)?$")


# Each setting: default (as a Python value) and the type its raw config value parses to.
DEFAULTS: dict[str, Any] = {
    "projectName": "",
    "adoptProjectId": "",
    "region": "aws-us-east-2",
    "pgVersion": 17,
    "orgId": "",
    "historyRetentionSeconds": 21600,
    "computeMinCu": "0.25",
    "computeMaxCu": "1",
    "suspendTimeoutSeconds": 300,
    "branches": [],
    "parentStack": "",
    "branchName": "",
    "branchInitSource": "parent-data",
    "protect": False,
    "apps": ["chatkit", "learnflow"],
    "allowDestructiveMigrations": True,
    "allowOutOfOrderMigrations": False,
    "migrationLockTimeout": "10s",
    "migrationStatementTimeout": "15min",
    "baselineVersions": [],
    "passwordVersion": 1,
    "kubernetesMode": "cluster",
    "kubeconfig": "",
    "kubeContext": "",
    "renderDirectory": "rendered",
    "createNamespaces": True,
    "namespaces": [],
    "secretName": "postgres-credentials",
    "daprComponentName": "statestore",
    "daprScopes": [],
    "daprInitTimeout": "30s",
    "channelBinding": False,
}

# Settings of other namespaces that the program reads (they cannot be typed in Pulumi.yaml).
NEON_API_URL_KEY = "neon:apiUrl"
NEON_API_KEY_KEY = "neon:apiKey"
NEON_API_KEY_ENV = "NEON_API_KEY"


class SettingsError(ValueError):
    """One or more invalid settings; each message starts with the config key that holds it."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__(
            "invalid stack configuration:\n" + "\n".join(f"  - {p}" for p in problems)
        )


@dataclass(frozen=True)
class ComputeSettings:
    """Autoscaling range and auto-suspend of read-write endpoints."""

    min_cu: float
    max_cu: float
    suspend_timeout_seconds: int


@dataclass(frozen=True)
class NeonSettings:
    """The Neon project this stack owns (or adopts)."""

    project_name: str
    adopt_project_id: str | None
    region: str
    pg_version: int
    org_id: str | None
    history_retention_seconds: int
    compute: ComputeSettings
    extra_branches: tuple[str, ...]


@dataclass(frozen=True)
class BranchModeSettings:
    """Branch mode: this stack owns a branch of another stack's project, not a project."""

    parent_stack: str
    branch_name: str
    init_source: str


@dataclass(frozen=True)
class MigrationSettings:
    allow_destructive: bool
    allow_out_of_order: bool
    lock_timeout: str
    statement_timeout: str


@dataclass(frozen=True)
class KubernetesSettings:
    mode: str
    kubeconfig: str | None
    context: str | None
    render_directory: str
    create_namespaces: bool


@dataclass(frozen=True)
class AppSettings:
    """One application: its database, roles, schema files and Kubernetes objects."""

    name: str
    schema_dir: Path
    database: str
    owner_role: str
    app_role: str
    namespace: str
    secret_name: str
    dapr_component_name: str
    dapr_scopes: tuple[str, ...]
    dapr_init_timeout: str
    baseline_version: str | None
    password_version: int
    channel_binding: bool


@dataclass(frozen=True)
class StackSettings:
    stack: str
    protect: bool
    neon: NeonSettings
    branch_mode: BranchModeSettings | None
    migrations: MigrationSettings
    kubernetes: KubernetesSettings
    apps: tuple[AppSettings, ...]


class _Reader:
    """Reads raw config values (strings, or JSON for arrays) and records every problem."""

    def __init__(self, raw: Mapping[str, Any]):
        self.raw = raw
        self.problems: list[str] = []

    def fail(self, key: str, message: str) -> None:
        self.problems.append(f"{_qualified(key)}: {message}")

    def _value(self, key: str) -> Any:
        value = self.raw.get(_qualified(key))
        return DEFAULTS[key] if value is None else value

    def string(self, key: str, check: Callable[[str], str | None] | None = None) -> str:
        value = self._value(key)
        if not isinstance(value, str):
            self.fail(key, f"expected a string, got {value!r}")
            return DEFAULTS[key]
        value = value.strip()
        problem = check(value) if check else None
        if problem:
            self.fail(key, problem)
        return value

    def integer(self, key: str, low: int, high: int) -> int:
        value = self._value(key)
        try:
            number = int(str(value).strip())
        except ValueError:
            self.fail(key, f"expected an integer, got {value!r}")
            return DEFAULTS[key]
        if not low <= number <= high:
            self.fail(key, f"{number} is out of range ({low} to {high})")
        return number

    def boolean(self, key: str) -> bool:
        value = self._value(key)
        if isinstance(value, bool):
            return value
        text = str(value).strip().lower()
        if text in ("true", "false"):
            return text == "true"
        self.fail(key, f"expected true or false, got {value!r}")
        return DEFAULTS[key]

    def compute_units(self, key: str) -> float:
        value = self._value(key)
        try:
            units = float(str(value).strip())
        except ValueError:
            self.fail(key, f"expected a number of compute units such as 0.25, got {value!r}")
            return float(DEFAULTS[key])
        if not 0.25 <= units <= MAX_COMPUTE_UNITS or (units * 4) % 1:
            self.fail(key, f"{units} CU is not a multiple of 0.25 between 0.25 and {MAX_COMPUTE_UNITS:g}")
        return units

    def string_list(self, key: str) -> list[str]:
        value = self._value(key)
        if isinstance(value, str):
            try:
                value = json.loads(value) if value.strip() else []
            except json.JSONDecodeError:
                self.fail(key, "expected a list of strings (set it with `pulumi config set --path`)")
                return []
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            self.fail(key, f"expected a list of strings, got {value!r}")
            return []
        return [v.strip() for v in value]

    def app_map(self, key: str, apps: list[str]) -> dict[str, str]:
        """Entries `app=value` of a list setting, keyed by app."""
        mapping: dict[str, str] = {}
        for entry in self.string_list(key):
            app, sep, value = entry.partition("=")
            app, value = app.strip(), value.strip()
            if not sep or not value:
                self.fail(key, f"entry {entry!r} is not of the form app=value")
            elif app not in apps:
                self.fail(key, f"entry {entry!r} names {app!r}, which is not in neon-stack:apps")
            elif app in mapping:
                self.fail(key, f"app {app!r} appears more than once")
            else:
                mapping[app] = value
        return mapping


def _qualified(key: str) -> str:
    return key if ":" in key else f"{PROJECT}:{key}"


def _one_of(choices: tuple[str, ...] | frozenset[str]) -> Callable[[str], str | None]:
    def check(value: str) -> str | None:
        if value not in choices:
            return f"{value!r} is not one of {', '.join(sorted(choices))}"
        return None

    return check


def _matches(pattern: re.Pattern[str], what: str, max_length: int = 253) -> Callable[[str], str | None]:
    def check(value: str) -> str | None:
        if not pattern.match(value) or len(value) > max_length:
            return f"{value!r} is not {what}"
        return None

    return check


def _http_url(value: str) -> str | None:
    parsed = urlparse(value)
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        return f"{value!r} is not an http(s) URL"
    return None


def parse_settings(raw: Mapping[str, Any], stack: str, schema_root: Path | None = None) -> StackSettings:
    """Parse raw config (keys like `neon-stack:region`; values as Pulumi passes them).

    `schema_root` (default: the project's `schema/`) holds one directory of SQL files per app.
    Raises SettingsError listing every invalid value with its key.
    """
    schema_root = SCHEMA_ROOT if schema_root is None else schema_root
    r = _Reader(raw)
    unknown = sorted(
        k for k in raw if k.startswith(f"{PROJECT}:") and k.split(":", 1)[1] not in DEFAULTS
    )
    for key in unknown:
        r.problems.append(f"{key}: not a setting of this project (see the README's configuration reference)")

    if raw.get(NEON_API_URL_KEY):
        r.string(NEON_API_URL_KEY, _http_url)  # validated here; the Neon providers read it in configure()
    compute = ComputeSettings(
        min_cu=r.compute_units("computeMinCu"),
        max_cu=r.compute_units("computeMaxCu"),
        suspend_timeout_seconds=r.integer("suspendTimeoutSeconds", -1, 604800),
    )
    if compute.max_cu < compute.min_cu:
        r.fail("computeMaxCu", f"{compute.max_cu:g} is below computeMinCu ({compute.min_cu:g})")

    extra_branches = r.string_list("branches")
    for name in sorted({b for b in extra_branches if extra_branches.count(b) > 1}):
        r.fail("branches", f"branch {name!r} appears more than once")
    for name in extra_branches:
        if not name or len(name) > 256:
            r.fail("branches", f"{name!r} is not a valid branch name (1 to 256 characters)")

    neon = NeonSettings(
        project_name=r.string("projectName") or f"{PROJECT}-{stack}",
        adopt_project_id=r.string("adoptProjectId") or None,
        region=r.string("region", _one_of(NEON_REGIONS)),
        pg_version=r.integer("pgVersion", PG_VERSIONS.start, PG_VERSIONS.stop - 1),
        org_id=r.string("orgId") or None,
        history_retention_seconds=r.integer("historyRetentionSeconds", 0, 2592000),
        compute=compute,
        extra_branches=tuple(extra_branches),
    )

    parent_stack = r.string(
        "parentStack",
        lambda v: None if not v or _STACK_REF.match(v) else f"{v!r} is not a stack name (org/project/stack)",
    )
    branch_name = r.string("branchName")
    init_source = r.string("branchInitSource", _one_of(BRANCH_INIT_SOURCES))
    branch_mode = None
    if parent_stack:
        branch_mode = BranchModeSettings(parent_stack, branch_name or stack, init_source)
        if neon.adopt_project_id:
            r.fail("adoptProjectId", "cannot be combined with neon-stack:parentStack (branch mode owns no project)")
        if neon.extra_branches:
            r.fail("branches", "cannot be combined with neon-stack:parentStack (branch mode owns one branch)")
    elif branch_name:
        r.fail("branchName", "only applies in branch mode (set neon-stack:parentStack)")

    migrations = MigrationSettings(
        allow_destructive=r.boolean("allowDestructiveMigrations"),
        allow_out_of_order=r.boolean("allowOutOfOrderMigrations"),
        lock_timeout=r.string("migrationLockTimeout", _matches(_PG_DURATION, "a PostgreSQL duration such as 10s")),
        statement_timeout=r.string(
            "migrationStatementTimeout", _matches(_PG_DURATION, "a PostgreSQL duration such as 15min")
        ),
    )

    kube_mode = r.string("kubernetesMode", _one_of(KUBERNETES_MODES))
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

    apps = _parse_apps(r, schema_root)
    protect = r.boolean("protect")
    if r.problems:
        raise SettingsError(r.problems)
    return StackSettings(stack, protect, neon, branch_mode, migrations, kubernetes, apps)


def _parse_apps(r: _Reader, schema_root: Path) -> tuple[AppSettings, ...]:
    names = r.string_list("apps")
    if not names:
        r.fail("apps", "lists no application")
    for name in sorted({n for n in names if names.count(n) > 1}):
        r.fail("apps", f"application {name!r} appears more than once")
    for name in names:
        if not _APP_NAME.match(name):
            r.fail("apps", f"{name!r} is not an application name (lowercase letters, digits, _; 30 at most)")
        elif not any((schema_root / name).glob("*.sql")):
            r.fail("apps", f"application {name!r} has no SQL files in {schema_root / name}")

    namespaces = r.app_map("namespaces", names)
    for app, namespace in namespaces.items():
        if not DNS_LABEL.match(namespace) or len(namespace) > 63:
            r.fail("namespaces", f"{namespace!r} (for {app}) is not a DNS-1123 label")
    scopes = r.app_map("daprScopes", names)
    for app, ids in scopes.items():
        if any(not i.strip() for i in ids.split(",")):
            r.fail("daprScopes", f"entry for {app} has an empty app id")
    baselines = r.app_map("baselineVersions", names)
    for app, version in baselines.items():
        if not _VERSION.match(version):
            r.fail("baselineVersions", f"{version!r} (for {app}) is not a migration version number")

    secret_name = r.string("secretName", _matches(DNS_SUBDOMAIN, "a DNS-1123 subdomain"))
    component_name = r.string("daprComponentName", _matches(DNS_SUBDOMAIN, "a DNS-1123 subdomain"))
    init_timeout = r.string("daprInitTimeout", _matches(GO_DURATION, "a duration such as 30s"))
    password_version = r.integer("passwordVersion", 1, 2**31 - 1)
    channel_binding = r.boolean("channelBinding")

    return tuple(
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
        )
        for name in dict.fromkeys(names)
    )


def stack_config() -> dict[str, Any]:
    """Every config value of the running stack (Pulumi's environment, then values set in-process)."""
    from pulumi.runtime import config as runtime_config

    return {**runtime_config.get_config_env(), **runtime_config.CONFIG.get()}


def load_settings() -> StackSettings:
    """Settings of the running Pulumi stack."""
    import pulumi

    return parse_settings(stack_config(), pulumi.get_stack())
