"""neon-stack: read the stack's settings, build the components, export the stack outputs."""

import pulumi

from components.app import Application, ApplicationArgs
from components.kubernetes import kubernetes_provider
from components.neon.component import NeonDatabase, NeonDatabaseArgs
from components.settings import load_settings

settings = load_settings()

parent = pulumi.StackReference(settings.branch_mode.parent_stack) if settings.branch_mode else None
neon = NeonDatabase(
    "neon",
    NeonDatabaseArgs(
        settings=settings,
        parent_project_id=parent.require_output("projectId") if parent else None,
        parent_branch_id=parent.require_output("primaryBranchId") if parent else None,
    ),
)
cluster = kubernetes_provider("kubernetes", settings.kubernetes)
apps = {
    app.name: Application(
        app.name,
        ApplicationArgs(
            app=app,
            access=neon.databases[app.name],
            migrations=settings.migrations,
            kubernetes=settings.kubernetes,
            kubernetes_provider=cluster,
            protect=settings.protect,
        ),
    )
    for app in settings.apps
}

pulumi.export("projectId", neon.project_id)
pulumi.export("primaryBranchId", neon.primary_branch_id)
pulumi.export("branchIds", neon.branch_ids)
pulumi.export(
    "apps",
    {
        name: {
            "database": app.database,
            "branchId": app.branch_id,
            "namespace": app.namespace,
            "secretName": app.secret_name,
            "daprComponentName": app.component_name,
            "latestMigration": app.latest_migration,
            "tables": app.tables,
        }
        for name, app in apps.items()
    },
)
pulumi.export("appDatabaseUrls", pulumi.Output.secret({name: app.app_database_url for name, app in apps.items()}))
pulumi.export("ownerDatabaseUrls", pulumi.Output.secret({name: app.owner_database_url for name, app in apps.items()}))
