"""One application end to end: schema migrations, least-privilege role, Kubernetes Secret and Dapr Component."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pulumi
import pulumi_kubernetes as k8s

from components.access.app_role import AppRole, AppRoleArgs
from components.access.kubernetes import AppKubernetes, AppKubernetesArgs, KubernetesObjectsArgs
from components.migrations.provider import Migrations, MigrationsArgs
from components.neon.component import DatabaseAccess
from components.uri import Credentials


@dataclass
class ApplicationArgs:
    """Inputs of one application, each passed as it is to the resource that uses it."""

    app_name: str
    """The application: names its migrations in messages and labels its Kubernetes objects."""
    access: DatabaseAccess
    """Owner access to the application's database on this stack's primary branch."""
    schema_dir: Path
    """Directory of the application's migration files."""
    baseline_version: str | None
    """Files up to this version are recorded as applied without running; None: every file runs."""
    allow_destructive_migrations: bool
    """Whether pending destructive statements (DROP, TRUNCATE, ...) may run."""
    allow_out_of_order_migrations: bool
    """Whether a new file below the highest applied version may be applied."""
    migration_lock_timeout: str
    """`lock_timeout` of every migration transaction (a PostgreSQL duration)."""
    migration_statement_timeout: str
    """`statement_timeout` of every migration transaction (a PostgreSQL duration)."""
    app_role: pulumi.Input[str]
    """Name of the app role, first of the two least-privilege login roles the application connects as."""
    password_version: pulumi.Input[int]
    """Change it to rotate: the Secret moves to the other login role, with a new password."""
    channel_binding: bool
    """Whether the application's URI and PG* variables require channel binding."""
    kubernetes_objects: KubernetesObjectsArgs
    """The namespace and the names of the application's Secret and Dapr Component."""
    kubernetes_provider: k8s.Provider
    """The explicit Kubernetes provider of the namespace, the Secret and the Component."""
    protect: bool
    """Protect (and retain on delete) the migrations, the app role and the Kubernetes objects (production)."""
    connect_timeout_seconds: int | None = None
    """`connect_timeout` of the application's URIs and PGCONNECT_TIMEOUT; None: libpq's default (none)."""


class Application(pulumi.ComponentResource):
    """Migrations (owner, direct URI) -> app role (owner, direct URI) -> Secret (app role, pooled URI) -> Component."""

    database: pulumi.Output[str]
    branch_id: pulumi.Output[str]
    namespace: pulumi.Output[str]
    secret_name: pulumi.Output[str]
    dapr_component_name: pulumi.Output[str]
    latest_migration: pulumi.Output[str]
    tables: pulumi.Output[list[str]]
    app_database_url: pulumi.Output[str]
    """Pooled URI as the active login role (secret)."""
    login_role: pulumi.Output[str]
    """The login role the Secret and `app_database_url` carry: the app role or its alternate."""
    owner_database_url: pulumi.Output[str]
    """Direct URI as the database owner (secret): for migrations and administration, never for applications."""
    app_read_only_database_url: pulumi.Output[str] | None
    """Pooled URI of a read replica as the application role (secret); None: no read replica."""
    summary: dict[str, pulumi.Output]
    """The outputs that are not secret, under the names the stack output `apps` shows them."""

    def __init__(self, name: str, args: ApplicationArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("neon-stack:app:Application", name, None, opts)
        access = args.access
        child = pulumi.ResourceOptions(parent=self, protect=args.protect, retain_on_delete=args.protect)

        schema = Migrations(
            f"{name}-schema",
            MigrationsArgs(
                database_url=access.direct_uri,
                app=args.app_name,
                schema_dir=args.schema_dir,
                allow_destructive=args.allow_destructive_migrations,
                allow_out_of_order=args.allow_out_of_order_migrations,
                lock_timeout=args.migration_lock_timeout,
                statement_timeout=args.migration_statement_timeout,
                baseline_version=args.baseline_version,
            ),
            child,
        )
        role = AppRole(
            f"{name}-role",
            AppRoleArgs(
                admin_url=access.direct_uri,
                role_name=args.app_role,
                database=access.database,
                owner_role=access.owner_role,
                password_version=args.password_version,
            ),
            pulumi.ResourceOptions.merge(child, pulumi.ResourceOptions(depends_on=[schema])),
        )
        def app_login(host: pulumi.Output[str]) -> pulumi.Output[Credentials]:
            """The active login role on `host`, with the channel binding and connect timeout the application gets."""
            return pulumi.Output.secret(
                pulumi.Output.all(role.login_role, role.password, host, access.database).apply(
                    lambda parts: Credentials(
                        *parts, channel_binding=args.channel_binding, connect_timeout=args.connect_timeout_seconds
                    )
                )
            )

        credentials = app_login(access.pooled_host)
        read_only = app_login(access.read_only_pooled_host) if access.read_only_pooled_host is not None else None
        kubernetes = AppKubernetes(
            f"{name}-kubernetes",
            AppKubernetesArgs(
                app_name=args.app_name,
                credentials=credentials,
                objects=args.kubernetes_objects,
                provider=args.kubernetes_provider,
                protect=args.protect,
                read_only_credentials=read_only,
            ),
            child,
        )

        self.database = pulumi.Output.from_input(access.database)
        self.branch_id = access.branch_id
        self.namespace = kubernetes.namespace
        self.secret_name = kubernetes.secret_name
        self.dapr_component_name = kubernetes.dapr_component_name
        self.latest_migration = schema.latest_version
        self.tables = schema.tables
        self.app_database_url = pulumi.Output.secret(credentials.apply(Credentials.uri))
        self.login_role = role.login_role
        self.owner_database_url = pulumi.Output.secret(access.direct_uri)
        self.app_read_only_database_url = (
            pulumi.Output.secret(read_only.apply(Credentials.uri)) if read_only is not None else None
        )
        self.summary = {
            "database": self.database,
            "branchId": self.branch_id,
            "namespace": self.namespace,
            "secretName": self.secret_name,
            "daprComponentName": self.dapr_component_name,
            "latestMigration": self.latest_migration,
            "tables": self.tables,
            "loginRole": self.login_role,
        }
        self.register_outputs(
            {
                **self.summary,
                "appDatabaseUrl": self.app_database_url,
                "ownerDatabaseUrl": self.owner_database_url,
                "appReadOnlyDatabaseUrl": self.app_read_only_database_url,
            }
        )
