"""neon-stack: read the stack's settings, map them once to the components' inputs, export the stack outputs."""

import pulumi
import pulumi_kubernetes as k8s

from components.access.application import Application, ApplicationArgs
from components.access.kubernetes import KubernetesObjectsArgs, NamespacePolicy, kubernetes_provider
from components.neon.component import (
    BranchModeArgs,
    ComputeArgs,
    NeonEnvironment,
    NeonEnvironmentArgs,
    OwnedDatabaseArgs,
    ProjectModeArgs,
)
from components.settings import AppSettings, KubernetesSettings, StackSettings, load_settings


def environment_args(settings: StackSettings) -> NeonEnvironmentArgs:
    """Project mode, or branch mode from the parent stack's `projectId` and `primaryBranchId`."""
    neon, branch_mode = settings.neon, settings.branch_mode
    if branch_mode:
        parent = pulumi.StackReference(branch_mode.parent_stack)
        mode = BranchModeArgs(
            parent_project_id=parent.require_output("projectId"),
            parent_branch_id=parent.require_output("primaryBranchId"),
            branch_name=branch_mode.branch_name,
            init_source=branch_mode.init_source,
            ttl_seconds=branch_mode.ttl_seconds,
        )
    else:
        mode = ProjectModeArgs(
            name=neon.project_name,
            region_id=neon.region,
            pg_version=neon.pg_version,
            org_id=neon.org_id,
            history_retention_seconds=neon.history_retention_seconds,
            adopt_id=neon.adopt_project_id,
            extra_branches=neon.extra_branches,
            allowed_ips=neon.network.allowed_ips,
            allowed_ips_protected_branches_only=neon.network.protected_branches_only,
            block_public_connections=neon.network.block_public_connections,
            protect_primary_branch=neon.protect_primary_branch,
            read_replicas=neon.read_replicas,
        )
    return NeonEnvironmentArgs(
        mode=mode,
        databases=[OwnedDatabaseArgs(app.database, app.owner_role, app.channel_binding) for app in settings.apps],
        compute=ComputeArgs(neon.compute.min_cu, neon.compute.max_cu, neon.compute.suspend_timeout_seconds),
        protect=settings.protect,
    )


def namespace_policy(kubernetes: KubernetesSettings) -> NamespacePolicy:
    """Made by the stack, or required: read from the cluster, or only named when rendering."""
    if kubernetes.create_namespaces:
        return "create"
    return "assume" if kubernetes.mode == "render" else "read"


def application_args(
    settings: StackSettings, app: AppSettings, environment: NeonEnvironment, provider: k8s.Provider
) -> ApplicationArgs:
    migrations = settings.migrations
    return ApplicationArgs(
        app_name=app.name,
        access=environment.databases[app.database],
        schema_dir=app.schema_dir,
        baseline_version=app.baseline_version,
        allow_destructive_migrations=migrations.allow_destructive,
        allow_out_of_order_migrations=migrations.allow_out_of_order,
        migration_lock_timeout=migrations.lock_timeout,
        migration_statement_timeout=migrations.statement_timeout,
        app_role=app.app_role,
        password_version=app.password_version,
        channel_binding=app.channel_binding,
        kubernetes_objects=KubernetesObjectsArgs(
            namespace=app.namespace,
            namespace_policy=namespace_policy(settings.kubernetes),
            secret_name=app.secret_name,
            dapr_component_name=app.dapr_component_name,
            dapr_scopes=app.dapr_scopes,
            dapr_init_timeout=app.dapr_init_timeout,
        ),
        kubernetes_provider=provider,
        protect=settings.protect,
        connect_timeout_seconds=app.connect_timeout_seconds,
    )


settings = load_settings()
environment = NeonEnvironment("neon", environment_args(settings))
kubernetes = settings.kubernetes
cluster = kubernetes_provider(
    "kubernetes",
    render_directory=kubernetes.render_directory if kubernetes.mode == "render" else None,
    kubeconfig=kubernetes.kubeconfig,
    context=kubernetes.context,
)
applications = {
    app.name: Application(app.name, application_args(settings, app, environment, cluster)) for app in settings.apps
}

pulumi.export("projectId", environment.project_id)
pulumi.export("primaryBranchId", environment.primary_branch_id)
pulumi.export("branchIds", environment.branch_ids)
pulumi.export("apps", {name: application.summary for name, application in applications.items()})
pulumi.export(
    "appDatabaseUrls",
    pulumi.Output.secret({name: application.app_database_url for name, application in applications.items()}),
)
pulumi.export(
    "ownerDatabaseUrls",
    pulumi.Output.secret({name: application.owner_database_url for name, application in applications.items()}),
)
if settings.neon.read_replicas:
    pulumi.export(
        "appReadOnlyDatabaseUrls",
        pulumi.Output.secret(
            {name: application.app_read_only_database_url for name, application in applications.items()}
        ),
    )
