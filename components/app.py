"""One application end to end: schema migrations, least-privilege role, Kubernetes Secret and Dapr Component."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s

from components import dapr
from components.app_role import AppRole, AppRoleArgs
from components.defaults import APP_SCHEMA
from components.kubernetes import AppKubernetes, AppKubernetesArgs
from components.migrations.provider import Migrations, MigrationsArgs
from components.neon.component import DatabaseAccess
from components.settings import AppSettings, KubernetesSettings, MigrationSettings
from components.uri import Credentials


@dataclass
class ApplicationArgs:
    app: AppSettings
    """The application's settings (names, namespace, Dapr options, rotation version)."""
    access: DatabaseAccess
    """Owner access to the application's database on this stack's primary branch."""
    migrations: MigrationSettings
    """How migrations may run (destructive changes, out-of-order files, timeouts)."""
    kubernetes: KubernetesSettings
    """Cluster or render mode, and whether namespaces are created or must exist."""
    kubernetes_provider: k8s.Provider
    """The explicit Kubernetes provider built from those settings."""
    protect: bool
    """Protect (and retain on delete) the migrations, the app role and the Kubernetes objects (production)."""


class Application(pulumi.ComponentResource):
    """Migrations (owner, direct URI) -> app role (owner, direct URI) -> Secret (app role, pooled URI) -> Component."""

    database: pulumi.Output[str]
    branch_id: pulumi.Output[str]
    namespace: pulumi.Output[str]
    secret_name: pulumi.Output[str]
    component_name: pulumi.Output[str]
    latest_migration: pulumi.Output[str]
    tables: pulumi.Output[list[str]]
    app_database_url: pulumi.Output[str]
    """Pooled URI as the application role (secret)."""
    owner_database_url: pulumi.Output[str]
    """Direct URI as the database owner (secret): for migrations and administration, never for applications."""

    def __init__(self, name: str, args: ApplicationArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("neon-stack:app:Application", name, None, opts)
        app, access = args.app, args.access
        child = pulumi.ResourceOptions(parent=self, protect=args.protect, retain_on_delete=args.protect)

        schema = Migrations(
            f"{name}-schema",
            MigrationsArgs(
                database_url=access.direct_uri,
                app=app.name,
                schema_dir=app.schema_dir,
                allow_destructive=args.migrations.allow_destructive,
                allow_out_of_order=args.migrations.allow_out_of_order,
                lock_timeout=args.migrations.lock_timeout,
                statement_timeout=args.migrations.statement_timeout,
                baseline_version=app.baseline_version,
            ),
            child,
        )
        role = AppRole(
            f"{name}-role",
            AppRoleArgs(
                admin_url=access.direct_uri,
                role_name=app.app_role,
                database=app.database,
                owner_role=app.owner_role,
                app_schema=APP_SCHEMA,
                dapr_schema=dapr.SCHEMA,
                password_version=app.password_version,
            ),
            pulumi.ResourceOptions.merge(child, pulumi.ResourceOptions(depends_on=[schema])),
        )
        credentials = pulumi.Output.secret(
            pulumi.Output.all(role.role_name, role.password, access.pooled_host, access.database).apply(
                lambda parts: Credentials(*parts, channel_binding=app.channel_binding)
            )
        )
        app_database_url = pulumi.Output.secret(credentials.apply(Credentials.uri))
        kubernetes = AppKubernetes(
            f"{name}-kubernetes",
            AppKubernetesArgs(
                app=app,
                credentials=credentials,
                provider=args.kubernetes_provider,
                kubernetes=args.kubernetes,
                protect=args.protect,
            ),
            child,
        )

        self.database = access.database
        self.branch_id = access.branch_id
        self.namespace = kubernetes.namespace
        self.secret_name = kubernetes.secret_name
        self.component_name = kubernetes.component_name
        self.latest_migration = schema.latest_version
        self.tables = schema.tables
        self.app_database_url = app_database_url
        self.owner_database_url = pulumi.Output.secret(access.direct_uri)
        self.register_outputs(
            {
                "database": self.database,
                "branchId": self.branch_id,
                "namespace": self.namespace,
                "secretName": self.secret_name,
                "componentName": self.component_name,
                "latestMigration": self.latest_migration,
                "tables": self.tables,
                "appDatabaseUrl": self.app_database_url,
                "ownerDatabaseUrl": self.owner_database_url,
            }
        )
