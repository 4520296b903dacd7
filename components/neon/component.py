"""`NeonDatabase` (`neon-stack:neon:NeonDatabase`): the Neon side of one stack.

Project mode: a project (or an adopted one, `adoptProjectId`) whose default branch is the
primary; per app an owner role `<app>_owner` and a database `<app>` it owns (the first app's
come with the project itself); then each extra branch as a child of the primary, created AFTER
the roles and databases so Neon copies them; on those branches the roles and databases are
adopted, each role's password reset once so the stack knows it.

Branch mode: no project; one branch of the parent stack's project/branch, with its own
endpoint, where the copied owner roles and databases are adopted the same way.

`protect` in the settings sets protect and retain_on_delete on the project, branches, owner
roles and databases.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi

from components.defaults import PRIMARY_BRANCH
from components.neon.branch import Branch, BranchArgs
from components.neon.database import Database, DatabaseArgs
from components.neon.project import Project, ProjectArgs
from components.neon.role import Role, RoleArgs
from components.settings import AppSettings, ComputeSettings, StackSettings
from components.uri import postgres_uri


@dataclass
class DatabaseAccess:
    """Everything needed to reach one app's database on one branch; passwords and URIs are secrets."""

    branch_name: str
    branch_id: pulumi.Output[str]
    database: pulumi.Output[str]
    owner_role: pulumi.Output[str]
    owner_password: pulumi.Output[str]
    host: pulumi.Output[str]
    pooled_host: pulumi.Output[str]
    direct_uri: pulumi.Output[str]
    pooled_uri: pulumi.Output[str]


@dataclass
class NeonDatabaseArgs:
    settings: StackSettings
    parent_project_id: pulumi.Input[str] | None = None
    parent_branch_id: pulumi.Input[str] | None = None


@dataclass
class _BranchHandle:
    name: str
    id: pulumi.Output[str]
    host: pulumi.Output[str]
    pooled_host: pulumi.Output[str]


class NeonDatabase(pulumi.ComponentResource):
    project_id: pulumi.Output[str]
    primary_branch_id: pulumi.Output[str]
    branch_ids: pulumi.Output[dict[str, str]]
    databases: dict[str, DatabaseAccess]
    connections: dict[tuple[str, str], DatabaseAccess]

    def __init__(self, name: str, args: NeonDatabaseArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("neon-stack:neon:NeonDatabase", name, None, opts)
        self._name = name
        self._settings = args.settings
        self.connections = {}
        if args.settings.branch_mode is None:
            primary = self._project_mode()
        else:
            primary = self._branch_mode(args)
        self.primary_branch_id = primary.id
        self.databases = {app: access for (branch, app), access in self.connections.items() if branch == primary.name}
        branches = {branch: access.branch_id for (branch, _), access in self.connections.items()}
        self.branch_ids = pulumi.Output.all(**branches).apply(dict)
        self.register_outputs(
            {"project_id": self.project_id, "primary_branch_id": self.primary_branch_id, "branch_ids": self.branch_ids}
        )

    def _opts(self, **extra: object) -> pulumi.ResourceOptions:
        protect = self._settings.protect
        return pulumi.ResourceOptions(parent=self, protect=protect, retain_on_delete=protect, **extra)

    def _project_mode(self) -> _BranchHandle:
        settings, neon = self._settings, self._settings.neon
        first = settings.apps[0]
        project = Project(
            f"{self._name}-project",
            ProjectArgs(
                name=neon.project_name,
                region_id=neon.region,
                role_name=first.owner_role,
                database_name=first.database,
                pg_version=neon.pg_version,
                org_id=neon.org_id,
                history_retention_seconds=neon.history_retention_seconds,
                **_compute(neon.compute),
                adopt_id=neon.adopt_project_id,
            ),
            self._opts(),
        )
        self.project_id = project.project_id
        primary = _BranchHandle(PRIMARY_BRANCH, project.default_branch_id, project.host, project.pooled_host)
        created = []
        for app in settings.apps:
            # The project's creation made the first app's role: its password is already known.
            known = pulumi.Output.all(project.owner_role, project.owner_password).apply(
                lambda v, role=app.owner_role: v[1] if v[0] == role else None
            )
            created += self._app_on_branch(primary, app, f"{self._name}-{app.name}", known)
        for branch_name in neon.extra_branches:
            branch = Branch(
                f"{self._name}-branch-{branch_name}",
                BranchArgs(
                    project_id=self.project_id,
                    name=branch_name,
                    parent_id=primary.id,
                    **_compute(neon.compute),
                    adopt=True,
                ),
                self._opts(depends_on=created),
            )
            handle = _BranchHandle(branch_name, branch.branch_id, branch.host, branch.pooled_host)
            for app in settings.apps:
                self._app_on_branch(handle, app, f"{self._name}-{branch_name}-{app.name}", None)
        return primary

    def _branch_mode(self, args: NeonDatabaseArgs) -> _BranchHandle:
        mode = self._settings.branch_mode
        if args.parent_project_id is None or args.parent_branch_id is None:
            raise ValueError(
                "NeonDatabase in branch mode (neon-stack:parentStack is set) needs parent_project_id and "
                "parent_branch_id from the parent stack"
            )
        self.project_id = pulumi.Output.from_input(args.parent_project_id)
        branch = Branch(
            f"{self._name}-branch",
            BranchArgs(
                project_id=args.parent_project_id,
                name=mode.branch_name,
                parent_id=args.parent_branch_id,
                init_source=mode.init_source,
                **_compute(self._settings.neon.compute),
                adopt=True,
            ),
            self._opts(),
        )
        handle = _BranchHandle(mode.branch_name, branch.branch_id, branch.host, branch.pooled_host)
        for app in self._settings.apps:
            self._app_on_branch(handle, app, f"{self._name}-{app.name}", None)
        return handle

    def _app_on_branch(
        self, branch: _BranchHandle, app: AppSettings, prefix: str, known_password: pulumi.Input[str] | None
    ) -> list[pulumi.Resource]:
        """Owner role and database of `app` on `branch` (created, or adopted when they exist)."""
        role = Role(
            f"{prefix}-owner",
            RoleArgs(self.project_id, branch.id, app.owner_role, adopt=True, known_password=known_password),
            self._opts(),
        )
        database = Database(
            f"{prefix}-database",
            DatabaseArgs(self.project_id, branch.id, app.database, app.owner_role, adopt=True),
            self._opts(depends_on=[role]),
        )
        password = pulumi.Output.secret(role.password)

        def uri(host: pulumi.Output[str]) -> pulumi.Output[str]:
            """Known only once the database exists, so whoever connects with it waits for the database."""

            def build(values: list[str]) -> str:
                secret, address, _database_id = values
                return postgres_uri(app.owner_role, secret, address, app.database, channel_binding=app.channel_binding)

            return pulumi.Output.secret(pulumi.Output.all(password, host, database.id).apply(build))

        self.connections[(branch.name, app.name)] = DatabaseAccess(
            branch_name=branch.name,
            branch_id=branch.id,
            database=database.id.apply(lambda _: app.database),
            owner_role=role.id.apply(lambda _: app.owner_role),
            owner_password=password,
            host=branch.host,
            pooled_host=branch.pooled_host,
            direct_uri=uri(branch.host),
            pooled_uri=uri(branch.pooled_host),
        )
        return [role, database]


def _compute(compute: ComputeSettings) -> dict[str, float | int]:
    return {
        "min_cu": compute.min_cu,
        "max_cu": compute.max_cu,
        "suspend_timeout_seconds": compute.suspend_timeout_seconds,
    }
