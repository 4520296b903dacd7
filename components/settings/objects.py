"""The typed settings a stack's config parses to, and the error that lists what is wrong with it."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


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
class NetworkSettings:
    """Who may connect to the project's computes (Neon's project settings `allowed_ips` and
    `block_public_connections`); Neon's own forms of entries, checked."""

    allowed_ips: tuple[str, ...]
    protected_branches_only: bool
    block_public_connections: bool


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
    network: NetworkSettings
    protect_primary_branch: bool
    read_replicas: int


@dataclass(frozen=True)
class BranchModeSettings:
    """Branch mode: this stack owns a branch of another stack's project, not a project."""

    parent_stack: str
    branch_name: str
    init_source: str
    ttl_seconds: int | None = None
    """How long after the last `up` the branch expires; None: never."""


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
    connect_timeout_seconds: int


@dataclass(frozen=True)
class StackSettings:
    stack: str
    protect: bool
    neon: NeonSettings
    branch_mode: BranchModeSettings | None
    migrations: MigrationSettings
    kubernetes: KubernetesSettings
    apps: tuple[AppSettings, ...]
