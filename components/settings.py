"""Stack settings: read once from the stack's config, validated, returned as typed objects.

Every problem is collected (not only the first) and reported with the config key that holds
it, before the program declares any resource. The defaults and limits come from
`components.defaults`; the defaults are declared again, with their types, in Pulumi.yaml, and a
test keeps the two in agreement.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from components.defaults import (
    ALLOW_DESTRUCTIVE,
    ALLOW_OUT_OF_ORDER,
    BRANCH_INIT_SOURCE,
    BRANCH_INIT_SOURCES,
    DAPR_SERVICE_SUFFIX,
    GO_MAX_DURATION_NS,
    HISTORY_RETENTION_MAX,
    HISTORY_RETENTION_SECONDS,
    KUBERNETES_BUILT_IN_NAMESPACES,
    KUBERNETES_MAX_LABEL,
    KUBERNETES_MAX_SUBDOMAIN,
    LOCK_TIMEOUT,
    MAX_CU,
    MAX_NEON_NAME,
    MIN_CU,
    NEON_REGIONS,
    PASSWORD_VERSION,
    PASSWORD_VERSION_MAX,
    PG_MAX_IDENTIFIER_BYTES,
    PG_MAX_TIMEOUT_MS,
    PG_RESERVED_DATABASES,
    PG_RESERVED_ROLE_PREFIX,
    PG_VERSION,
    PG_VERSIONS,
    PRIMARY_BRANCH,
    REGION,
    STATEMENT_TIMEOUT,
    SUSPEND_TIMEOUT_MAX,
    SUSPEND_TIMEOUT_NEVER,
    SUSPEND_TIMEOUT_SECONDS,
    compute_units_problem,
    suspend_timeout_problem,
)

PROJECT = "neon-stack"
PROJECT_ROOT = Path(__file__).resolve().parent.parent
SCHEMA_ROOT = PROJECT_ROOT / "schema"

KUBERNETES_MODES = ("cluster", "render")

# Patterns are applied with fullmatch; every digit class is ASCII [0-9] (Python's \d and int() also
# take other scripts' digits, `_`, `+` and spaces).
_APP_NAME = re.compile(r"[a-z][a-z0-9_]*")
DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_LABEL_VALUE = re.compile(r"([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?")
_INTEGER = re.compile(r"-?[0-9]+")
_DECIMAL = re.compile(r"[0-9]+(\.[0-9]+)?")
_PG_DURATION = re.compile(r"(0|[1-9][0-9]*)(ms|s|min|h|d)?")  # PostgreSQL reads 010 as octal (8), 08 not at all
GO_DURATION = re.compile(r"^([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h))+$")
_GO_DURATION_PART = re.compile(r"([0-9]+)(?:\.([0-9]+))?(ns|us|µs|ms|s|m|h)")
_VERSION = re.compile(r"[0-9]+")
_STACK_REF = re.compile(r"[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+)?")
_NEON_ID = re.compile(r"[a-z0-9-]{1,60}")  # project and organization ids in Neon's API

_PG_UNIT_MS = {"": 1, "ms": 1, "s": 1000, "min": 60_000, "h": 3_600_000, "d": 86_400_000}
_GO_UNIT_NS = {"ns": 1, "us": 10**3, "µs": 10**3, "ms": 10**6, "s": 10**9, "m": 60 * 10**9, "h": 3600 * 10**9}
_MAX_DIGITS = 20  # more than any range here needs; int() refuses strings of more than 4300 digits


# Each setting: default (as a Python value) and the type its raw config value parses to.
DEFAULTS: dict[str, Any] = {
    "projectName": "",
    "adoptProjectId": "",
    "region": REGION,
    "pgVersion": PG_VERSION,
    "orgId": "",
    "historyRetentionSeconds": HISTORY_RETENTION_SECONDS,
    "computeMinCu": f"{MIN_CU:g}",
    "computeMaxCu": f"{MAX_CU:g}",
    "suspendTimeoutSeconds": SUSPEND_TIMEOUT_SECONDS,
    "branches": [],
    "parentStack": "",
    "branchName": "",
    "branchInitSource": BRANCH_INIT_SOURCE,
    "protect": False,
    "apps": ["chatkit", "learnflow"],
    "allowDestructiveMigrations": ALLOW_DESTRUCTIVE,
    "allowOutOfOrderMigrations": ALLOW_OUT_OF_ORDER,
    "migrationLockTimeout": LOCK_TIMEOUT,
    "migrationStatementTimeout": STATEMENT_TIMEOUT,
    "baselineVersions": [],
    "passwordVersion": PASSWORD_VERSION,
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
            self.fail(key, f"expected a string, got {_shown(value)}")
            return DEFAULTS.get(key, "")  # keys of other namespaces (neon:apiUrl) have no default here
        value = value.strip()
        problem = check(value) if check else None
        if problem:
            self.fail(key, problem)
        return value

    def integer(self, key: str, low: int, high: int) -> int:
        value = self._value(key)
        text = _number_text(value)
        if text is None or not _INTEGER.fullmatch(text):
            self.fail(key, f"expected an integer (ASCII digits), got {_shown(value)}")
            return DEFAULTS[key]
        if len(text) > _MAX_DIGITS:
            self.fail(key, f"a number of {len(text)} digits is out of range ({low} to {high})")
            return DEFAULTS[key]
        number = int(text)
        if not low <= number <= high:
            self.fail(key, f"{number} is out of range ({low} to {high})")
        return number

    def boolean(self, key: str) -> bool:
        value = self._value(key)
        if isinstance(value, bool):
            return value
        text = value.strip().lower() if isinstance(value, str) else None
        if text in ("true", "false"):
            return text == "true"
        self.fail(key, f"expected true or false, got {_shown(value)}")
        return DEFAULTS[key]

    def compute_units(self, key: str) -> float:
        value = self._value(key)
        text = _number_text(value)
        if text is None or not _DECIMAL.fullmatch(text):
            self.fail(key, f"expected a number of compute units such as 0.25, got {_shown(value)}")
            return float(DEFAULTS[key])
        units = float(text)
        problem = compute_units_problem(units)
        if problem:
            self.fail(key, problem)
        return units

    def string_list(self, key: str) -> list[str]:
        value = self._value(key)
        if isinstance(value, str):
            try:
                value = json.loads(value) if value.strip() else []
            except (ValueError, RecursionError):  # not JSON, an integer of over 4300 digits, or nested too deep
                self.fail(key, "expected a list of strings (set it with `pulumi config set --path`)")
                return []
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            self.fail(key, f"expected a list of strings, got {_shown(value)}")
            return []
        return [v.strip() for v in value]

    def app_map(self, key: str, apps: list[str]) -> dict[str, str]:
        """Entries `app=value` of a list setting, keyed by app."""
        mapping: dict[str, str] = {}
        for entry in self.string_list(key):
            app, sep, value = entry.partition("=")
            app, value = app.strip(), value.strip()
            if not sep or not value:
                self.fail(key, f"entry {_shown(entry)} is not of the form app=value")
            elif app not in apps:
                self.fail(key, f"entry {_shown(entry)} names {_shown(app)}, which is not in neon-stack:apps")
            elif app in mapping:
                self.fail(key, f"app {_shown(app)} appears more than once")
            else:
                mapping[app] = value
        return mapping


def _qualified(key: str) -> str:
    return key if ":" in key else f"{PROJECT}:{key}"


def _shown(value: Any, limit: int = 80) -> str:
    """A raw value for a message: its repr, cut short (a value may be a whole JSON document)."""
    try:
        text = repr(value)
    except (ValueError, RecursionError):  # an integer of over 4300 digits, or nesting too deep to print
        return "a value too large to show"
    return text if len(text) <= limit else f"{text[: limit - 3]}..."


def _number_text(value: Any) -> str | None:
    """A numeric setting as text (Pulumi passes text; tests and stack files may pass numbers), or None."""
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        return None
    try:
        return str(value).strip()
    except ValueError:  # an integer of over 4300 digits
        return None


def _one_of(choices: tuple[str, ...] | frozenset[str]) -> Callable[[str], str | None]:
    def check(value: str) -> str | None:
        if value not in choices:
            return f"{_shown(value)} is not one of {', '.join(sorted(choices))}"
        return None

    return check


def _matches(
    pattern: re.Pattern[str], what: str, max_length: int = KUBERNETES_MAX_SUBDOMAIN
) -> Callable[[str], str | None]:
    def check(value: str) -> str | None:
        if not pattern.fullmatch(value) or len(value) > max_length:
            return f"{_shown(value)} is not {what}"
        return None

    return check


def _is_dns_label(value: str, max_length: int = KUBERNETES_MAX_LABEL) -> bool:
    return bool(DNS_LABEL.fullmatch(value)) and len(value) <= max_length


def _http_url(value: str) -> str | None:
    try:
        parts = urlsplit(value)
        port = parts.port  # ValueError unless absent or a number up to 65535
    except ValueError:
        return "is not a URL (malformed host or port)"  # not shown: it may hold a password
    if "@" in parts.netloc:
        return "must not hold a user or password (the API key is neon:apiKey)"
    if parts.scheme not in ("http", "https") or not parts.hostname or port == 0:
        return f"{_shown(value)} is not an http(s) URL"
    return None


def _neon_id(value: str) -> str | None:
    if value and not _NEON_ID.fullmatch(value):
        return f"{_shown(value)} is not a Neon id (1 to 60 lowercase letters, digits and -)"
    return None


def _neon_name(value: str) -> str | None:
    if len(value) > MAX_NEON_NAME:
        return f"is {len(value)} characters long; Neon allows {MAX_NEON_NAME}"
    return None


def _branch_name(name: str) -> str | None:
    """A name Neon accepts for a branch the stack makes: not the default branch's, which the project has."""
    if not name or len(name) > MAX_NEON_NAME:
        return f"{_shown(name)} is not a valid branch name (1 to {MAX_NEON_NAME} characters)"
    if name == PRIMARY_BRANCH:
        return f"{_shown(name)} is the name of the project's default branch"
    return None


def _pg_timeout(value: str) -> str | None:
    """lock_timeout and statement_timeout are int milliseconds: a whole number and unit, at most 2147483647 ms."""
    match = _PG_DURATION.fullmatch(value)
    if not match:
        return (
            f"{_shown(value)} is not a PostgreSQL duration such as 10s (a whole number without leading zeros, "
            "then ms, s, min, h or d)"
        )
    digits, unit = match[1], match[2] or ""
    if len(digits) > _MAX_DIGITS or int(digits) * _PG_UNIT_MS[unit] > PG_MAX_TIMEOUT_MS:
        return f"{_shown(value)} is over PostgreSQL's limit of {PG_MAX_TIMEOUT_MS} ms (about 24.8 days)"
    return None


def _go_duration_ns(value: str) -> int | None:
    """Nanoseconds of a Go duration as time.ParseDuration reads it (each part cut to whole nanoseconds),
    or None if `value` is not one; a part too large for int64 counts as GO_MAX_DURATION_NS + 1."""
    if not GO_DURATION.fullmatch(value):
        return None
    total = 0
    for whole, fraction, unit in _GO_DURATION_PART.findall(value):
        significant = whole.lstrip("0") or "0"
        if len(significant) > _MAX_DIGITS:
            return GO_MAX_DURATION_NS + 1
        digits = fraction[:_MAX_DIGITS]  # finer than a nanosecond of any unit
        total += int(significant) * _GO_UNIT_NS[unit]
        if digits:
            total += int(digits) * _GO_UNIT_NS[unit] // 10 ** len(digits)
    return total


def _dapr_timeout(value: str) -> str | None:
    """Dapr honours an initTimeout above zero that fits time.Duration: daprd 1.18 gives up at once on
    zero and takes its 5s default for what it cannot parse (an overflow); its main branch takes 5s for both."""
    nanoseconds = _go_duration_ns(value)
    if nanoseconds is None:
        return f"{_shown(value)} is not a duration such as 30s"
    if not 0 < nanoseconds <= GO_MAX_DURATION_NS:
        return f"{_shown(value)} must be above zero and at most 2562047h (Go's time.Duration), or Dapr ignores it"
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
        suspend_timeout_seconds=r.integer("suspendTimeoutSeconds", SUSPEND_TIMEOUT_NEVER, SUSPEND_TIMEOUT_MAX),
    )
    if compute.max_cu < compute.min_cu:
        r.fail("computeMaxCu", f"{compute.max_cu:g} is below computeMinCu ({compute.min_cu:g})")
    problem = suspend_timeout_problem(compute.suspend_timeout_seconds)
    if problem:
        r.fail("suspendTimeoutSeconds", problem)

    extra_branches = r.string_list("branches")
    for name in sorted({b for b in extra_branches if extra_branches.count(b) > 1}):
        r.fail("branches", f"branch {_shown(name)} appears more than once")
    for name in dict.fromkeys(extra_branches):
        problem = _branch_name(name)
        if problem:
            r.fail("branches", problem)

    neon = NeonSettings(
        project_name=r.string("projectName", _neon_name) or f"{PROJECT}-{stack}",
        adopt_project_id=r.string("adoptProjectId", _neon_id) or None,
        region=r.string("region", _one_of(NEON_REGIONS)),
        pg_version=r.integer("pgVersion", PG_VERSIONS.start, PG_VERSIONS.stop - 1),
        org_id=r.string("orgId", _neon_id) or None,
        history_retention_seconds=r.integer("historyRetentionSeconds", 0, HISTORY_RETENTION_MAX),
        compute=compute,
        extra_branches=tuple(extra_branches),
    )

    parent_stack = r.string(
        "parentStack",
        lambda v: None if not v or _STACK_REF.fullmatch(v) else f"{_shown(v)} is not a stack name (org/project/stack)",
    )
    branch_name = r.string("branchName")
    init_source = r.string("branchInitSource", _one_of(BRANCH_INIT_SOURCES))
    branch_mode = None
    if parent_stack:
        branch_mode = BranchModeSettings(parent_stack, branch_name or stack, init_source)
        problem = _branch_name(branch_mode.branch_name)
        if problem:
            r.fail("branchName", problem if branch_name else f"empty, so the stack name is used: {problem}")
        if neon.adopt_project_id:
            r.fail("adoptProjectId", "cannot be combined with neon-stack:parentStack (branch mode owns no project)")
        if neon.extra_branches:
            r.fail("branches", "cannot be combined with neon-stack:parentStack (branch mode owns one branch)")
    elif branch_name:
        r.fail("branchName", "only applies in branch mode (set neon-stack:parentStack)")

    migrations = MigrationSettings(
        allow_destructive=r.boolean("allowDestructiveMigrations"),
        allow_out_of_order=r.boolean("allowOutOfOrderMigrations"),
        lock_timeout=r.string("migrationLockTimeout", _pg_timeout),
        statement_timeout=r.string("migrationStatementTimeout", _pg_timeout),
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

    apps = _parse_apps(r, schema_root, kubernetes.create_namespaces)
    protect = r.boolean("protect")
    if r.problems:
        raise SettingsError(r.problems)
    return StackSettings(stack, protect, neon, branch_mode, migrations, kubernetes, apps)


def _parse_apps(r: _Reader, schema_root: Path, create_namespaces: bool) -> tuple[AppSettings, ...]:
    names = r.string_list("apps")
    if not names:
        r.fail("apps", "lists no application")
    for name in sorted({n for n in names if names.count(n) > 1}):
        r.fail("apps", f"application {_shown(name)} appears more than once")

    namespaces = r.app_map("namespaces", names)
    for app, namespace in namespaces.items():
        if not _is_dns_label(namespace):
            r.fail("namespaces", f"{_shown(namespace)} (for {app}) is not a DNS-1123 label")
    scopes = r.app_map("daprScopes", names)
    for app, ids in scopes.items():
        for app_id in (i.strip() for i in ids.split(",")):
            if not _is_dns_label(app_id + DAPR_SERVICE_SUFFIX):
                r.fail(
                    "daprScopes",
                    f"{_shown(app_id)} (for {app}) is not a Dapr app id (lowercase letters, digits and -, a letter "
                    f"or digit first, {KUBERNETES_MAX_LABEL - len(DAPR_SERVICE_SUFFIX)} characters at most)",
                )
    baselines = r.app_map("baselineVersions", names)
    for app, version in baselines.items():
        if not _VERSION.fullmatch(version):
            r.fail("baselineVersions", f"{_shown(version)} (for {app}) is not a migration version number")

    # Kubernetes object names; Dapr also needs a Component's name to be a URL path segment, which these are.
    secret_name = r.string("secretName", _matches(DNS_SUBDOMAIN, "a DNS-1123 subdomain"))
    component_name = r.string("daprComponentName", _matches(DNS_SUBDOMAIN, "a DNS-1123 subdomain"))
    init_timeout = r.string("daprInitTimeout", _dapr_timeout)
    password_version = r.integer("passwordVersion", 1, PASSWORD_VERSION_MAX)
    channel_binding = r.boolean("channelBinding")

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
        )
        for name in dict.fromkeys(names)
    )
    for app in apps:
        if not _APP_NAME.fullmatch(app.name):
            r.fail("apps", f"{_shown(app.name)} is not an application name (a letter, then letters, digits and _)")
    well_formed = [app for app in apps if _APP_NAME.fullmatch(app.name)]
    for app in well_formed:
        problem = _derived_name_problem(app, app.name in namespaces)
        if problem:
            r.fail("apps", f"application {_shown(app.name)}: {problem}")
        elif not any(app.schema_dir.glob("*.sql")):  # after the length checks: a long name is an OSError here
            r.fail("apps", f"application {_shown(app.name)} has no SQL files in {app.schema_dir}")
    _check_namespaces(r, well_formed, set(namespaces), create_namespaces)
    return apps


def _derived_name_problem(app: AppSettings, namespace_overridden: bool) -> str | None:
    """Why a name made from a well-formed app name would be refused where it is used, or None.

    Every statement quotes these names (psycopg's sql.Identifier, Neon's API), so an SQL keyword is
    fine; the app role provider takes lowercase identifiers of 63 bytes at most, like these.
    """
    for what, name in (("database", app.database), ("owner role", app.owner_role), ("app role", app.app_role)):
        if len(name.encode()) > PG_MAX_IDENTIFIER_BYTES:
            return f"its {what} {_shown(name)} would be longer than PostgreSQL's {PG_MAX_IDENTIFIER_BYTES} bytes"
    if any(role.startswith(PG_RESERVED_ROLE_PREFIX) for role in (app.owner_role, app.app_role)):
        roles = f"{_shown(app.owner_role)} and {_shown(app.app_role)}"
        return f"its roles {roles} would start with {PG_RESERVED_ROLE_PREFIX}, which PostgreSQL reserves"
    if app.database in PG_RESERVED_DATABASES:
        return f"its database {_shown(app.database)} already exists on every Neon branch"
    if not namespace_overridden and not _is_dns_label(app.namespace):
        return f"its namespace {_shown(app.namespace)} would not be a DNS-1123 label (set one in neon-stack:namespaces)"
    if not _LABEL_VALUE.fullmatch(app.name):
        return "it is the value of the label app.kubernetes.io/name, which must end with a letter or a digit"
    return None


def _check_namespaces(
    r: _Reader, apps: list[AppSettings], overridden: set[str], create_namespaces: bool
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
                f"namespace {_shown(app.namespace)} of {app.name} exists in every cluster and cannot be created by the "
                "stack (choose another in neon-stack:namespaces, or set neon-stack:createNamespaces false)",
            )
        other = first_app.setdefault(app.namespace, app)
        if other is app:
            continue
        other_source = "neon-stack:namespaces" if other.name in overridden else "neon-stack:apps"
        shared = "Namespace, " if create_namespaces else ""
        r.fail(
            "namespaces",
            f"{app.name} ({source}) and {other.name} ({other_source}) are both in namespace {_shown(app.namespace)}, "
            f"so they would declare the same {shared}Secret {_shown(app.secret_name)} (neon-stack:secretName) and "
            f"Component {_shown(app.dapr_component_name)} (neon-stack:daprComponentName): give each its own namespace",
        )


def stack_config() -> dict[str, Any]:
    """Every config value of the running stack (Pulumi's environment, then values set in-process)."""
    from pulumi.runtime import config as runtime_config

    return {**runtime_config.get_config_env(), **runtime_config.CONFIG.get()}


def load_settings() -> StackSettings:
    """Settings of the running Pulumi stack."""
    import pulumi

    return parse_settings(stack_config(), pulumi.get_stack())
