"""`NeonEnvironment` (type token `neon-stack:neon:NeonDatabase`): the Neon side of one stack.

Project mode: a project (or an adopted one, `adopt_id`) whose default branch is the primary;
per database its owner role and the database it owns (the first one's come with the project
itself); then each extra branch as a child of the primary, created AFTER the roles and databases
so Neon copies them; on those branches the roles and databases are adopted, each role's password
reset once so the stack knows it.

Branch mode: no project; one branch of the parent stack's project/branch, with its own
endpoint, where the copied owner roles and databases are adopted the same way.

In project mode the project may also carry an IP Allow list (or block public connections), protect
its default branch, and have read replicas: read-only endpoints `<name>-replica-<n>` on the primary
branch, with the compute of the read-write ones. With several replicas, the database at position i
is read through replica i mod n, so the reading load of several apps is spread over them.

`protect` sets protect and retain_on_delete on the project, branches, owner roles and databases.
The class was `NeonDatabase`; its type token keeps that name, since it is part of every URN.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pulumi

from components.defaults import PRIMARY_BRANCH
from components.neon.branch import Branch, BranchArgs
from components.neon.database import Database, DatabaseArgs
from components.neon.endpoint import ReadReplica, ReadReplicaArgs
from components.neon.project import Project, ProjectArgs
from components.neon.role import Role, RoleArgs
from components.uri import postgres_uri


@dataclass
class DatabaseAccess:
    """Everything needed to reach one database on one branch; passwords and URIs are secrets."""

    branch_name: str
    branch_id: pulumi.Output[str]
    database: str
    """The database's name, known before it exists: connect with a URI, which waits for the database."""
    owner_role: str
    owner_password: pulumi.Output[str]
    host: pulumi.Output[str]
    pooled_host: pulumi.Output[str]
    direct_uri: pulumi.Output[str]
    pooled_uri: pulumi.Output[str]
    read_only_pooled_host: pulumi.Output[str] | None = None
    """The pooled host of the read replica this database is read through; None: the branch has none."""


@dataclass
class OwnedDatabaseArgs:
    """A database and the owner role it belongs to, made (or adopted) on every branch of the environment."""

    name: str
    """Database name; it also names the database's Pulumi resources and keys `databases`."""
    owner_role: str
    """Owner role of the database (an API-made role that runs the migrations)."""
    channel_binding: bool
    """Whether the database's owner URIs require channel binding."""


@dataclass
class ComputeArgs:
    """Autoscaling range and auto-suspend of every read-write endpoint of the environment."""

    min_cu: pulumi.Input[float]
    """Lowest compute size, in compute units."""
    max_cu: pulumi.Input[float]
    """Highest compute size, in compute units."""
    suspend_timeout_seconds: pulumi.Input[int]
    """Idle seconds before the compute suspends (0: Neon's default, -1: never)."""


@dataclass
class ProjectModeArgs:
    """The environment owns a project (made, or adopted) and, besides its default branch, extra branches."""

    name: pulumi.Input[str]
    """Project name."""
    region_id: pulumi.Input[str]
    """Neon region, e.g. aws-us-east-2."""
    pg_version: pulumi.Input[int]
    """PostgreSQL major version."""
    org_id: pulumi.Input[str] | None
    """Organization that owns the project; None: the API key's own account."""
    history_retention_seconds: pulumi.Input[int]
    """How far back point-in-time restores and branches may reach."""
    adopt_id: pulumi.Input[str] | None
    """Id of an existing project to adopt instead of making one; None: make one."""
    extra_branches: Sequence[str]
    """Branches made as children of the primary branch after its roles and databases, so they copy them."""
    allowed_ips: Sequence[str] = ()
    """The project's IP Allow list (addresses, CIDR ranges, ranges first-last); empty: every address."""
    allowed_ips_protected_branches_only: bool = False
    """Apply `allowed_ips` to protected branches only."""
    block_public_connections: bool = False
    """Refuse connections from the public internet (Neon Private Networking)."""
    protect_primary_branch: bool = False
    """Mark the default branch protected: Neon then refuses to delete or reset it."""
    read_replicas: int = 0
    """How many read-only endpoints the primary branch gets."""


@dataclass
class BranchModeArgs:
    """The environment owns one branch of another environment's project, and no project."""

    parent_project_id: pulumi.Input[str]
    """The parent's project (the parent stack's `projectId`)."""
    parent_branch_id: pulumi.Input[str]
    """The branch this one starts from (the parent stack's `primaryBranchId`)."""
    branch_name: str
    """Name of this environment's branch; it keys `branch_ids` and `connections`."""
    init_source: pulumi.Input[str]
    """`parent-data` (schema and data) or `schema-only`."""
    ttl_seconds: int | None = None
    """The branch expires this long after the last `up`; None: never."""


@dataclass
class NeonEnvironmentArgs:
    """Inputs of a Neon environment."""

    mode: ProjectModeArgs | BranchModeArgs
    """Project mode (the environment owns a project) or branch mode (one branch of a parent's project)."""
    databases: Sequence[OwnedDatabaseArgs]
    """The databases with their owner roles, on every branch; in project mode the first comes with the project."""
    compute: ComputeArgs
    """The compute of every read-write endpoint."""
    protect: bool
    """Protect (and retain on delete) the project, branches, owner roles and databases (production)."""


@dataclass
class _BranchHandle:
    name: str
    id: pulumi.Output[str]
    host: pulumi.Output[str]
    pooled_host: pulumi.Output[str]


class NeonEnvironment(pulumi.ComponentResource):
    """One environment on Neon: a project or a branch of another's, its branches, owner roles and databases."""

    project_id: pulumi.Output[str]
    primary_branch_id: pulumi.Output[str]
    branch_ids: pulumi.Output[dict[str, str]]
    """Branch name -> id, the primary branch included."""
    databases: dict[str, DatabaseAccess]
    """Database name -> access on the primary branch."""
    connections: dict[tuple[str, str], DatabaseAccess]
    """(branch name, database name) -> access, on every branch."""

    def __init__(self, name: str, args: NeonEnvironmentArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("neon-stack:neon:NeonDatabase", name, None, opts)  # the old class name: in every URN
        self._name = name
        self._args = args
        self.connections = {}
        if isinstance(args.mode, BranchModeArgs):
            primary = self._branch_mode(args.mode)
        else:
            primary = self._project_mode(args.mode)
        self.primary_branch_id = primary.id
        self.databases = {db: access for (branch, db), access in self.connections.items() if branch == primary.name}
        branches = {branch: access.branch_id for (branch, _), access in self.connections.items()}
        self.branch_ids = pulumi.Output.all(**branches).apply(dict)
        self.register_outputs(
            {"projectId": self.project_id, "primaryBranchId": self.primary_branch_id, "branchIds": self.branch_ids}
        )

    def _opts(self, **extra: object) -> pulumi.ResourceOptions:
        protect = self._args.protect
        return pulumi.ResourceOptions(parent=self, protect=protect, retain_on_delete=protect, **extra)

    def _project_mode(self, mode: ProjectModeArgs) -> _BranchHandle:
        databases = self._args.databases
        project = Project(
            f"{self._name}-project",
            ProjectArgs(
                name=mode.name,
                region_id=mode.region_id,
                role_name=databases[0].owner_role,
                database_name=databases[0].name,
                pg_version=mode.pg_version,
                org_id=mode.org_id,
                history_retention_seconds=mode.history_retention_seconds,
                **vars(self._args.compute),
                adopt_id=mode.adopt_id,
                allowed_ips=list(mode.allowed_ips),
                allowed_ips_protected_branches_only=mode.allowed_ips_protected_branches_only,
                block_public_connections=mode.block_public_connections,
                protect_default_branch=mode.protect_primary_branch,
            ),
            self._opts(),
        )
        self.project_id = project.project_id
        primary = _BranchHandle(PRIMARY_BRANCH, project.default_branch_id, project.host, project.pooled_host)
        replicas = [
            ReadReplica(
                f"{self._name}-replica-{number}",
                ReadReplicaArgs(self.project_id, primary.id, **vars(self._args.compute)),
                self._opts(),
            )
            for number in range(1, mode.read_replicas + 1)
        ]
        created = []
        for index, database in enumerate(databases):
            # The project's creation made the first owner role: its password is already known.
            known = pulumi.Output.all(project.owner_role, project.owner_password).apply(
                lambda v, role=database.owner_role: v[1] if v[0] == role else None
            )
            replica = replicas[index % len(replicas)].pooled_host if replicas else None
            created += self._database_on_branch(primary, database, f"{self._name}-{database.name}", known, replica)
        for branch_name in mode.extra_branches:
            branch = Branch(
                f"{self._name}-branch-{branch_name}",
                BranchArgs(
                    project_id=self.project_id,
                    name=branch_name,
                    parent_id=primary.id,
                    **vars(self._args.compute),
                    adopt=True,
                ),
                self._opts(depends_on=created),
            )
            handle = _BranchHandle(branch_name, branch.branch_id, branch.host, branch.pooled_host)
            for database in databases:
                self._database_on_branch(handle, database, f"{self._name}-{branch_name}-{database.name}", None)
        return primary

    def _branch_mode(self, mode: BranchModeArgs) -> _BranchHandle:
        self.project_id = pulumi.Output.from_input(mode.parent_project_id)
        branch = Branch(
            f"{self._name}-branch",
            BranchArgs(
                project_id=mode.parent_project_id,
                name=mode.branch_name,
                parent_id=mode.parent_branch_id,
                init_source=mode.init_source,
                **vars(self._args.compute),
                adopt=True,
                ttl_seconds=mode.ttl_seconds,
            ),
            self._opts(),
        )
        handle = _BranchHandle(mode.branch_name, branch.branch_id, branch.host, branch.pooled_host)
        for database in self._args.databases:
            self._database_on_branch(handle, database, f"{self._name}-{database.name}", None)
        return handle

    def _database_on_branch(
        self,
        branch: _BranchHandle,
        owned: OwnedDatabaseArgs,
        prefix: str,
        known_password: pulumi.Input[str] | None,
        read_only_pooled_host: pulumi.Output[str] | None = None,
    ) -> list[pulumi.Resource]:
        """Owner role and database on `branch` (created, or adopted when they exist); the database is
        read through the replica at `read_only_pooled_host`, if any."""
        role = Role(
            f"{prefix}-owner",
            RoleArgs(self.project_id, branch.id, owned.owner_role, adopt=True, known_password=known_password),
            self._opts(),
        )
        database = Database(
            f"{prefix}-database",
            DatabaseArgs(self.project_id, branch.id, owned.name, owned.owner_role, adopt=True),
            self._opts(depends_on=[role]),
        )
        password = pulumi.Output.secret(role.password)

        def uri(host: pulumi.Output[str]) -> pulumi.Output[str]:
            """Known only once the database exists, so whoever connects with it waits for the database."""

            def build(values: list[str]) -> str:
                secret, address, _database_id = values
                binding = owned.channel_binding
                return postgres_uri(owned.owner_role, secret, address, owned.name, channel_binding=binding)

            return pulumi.Output.secret(pulumi.Output.all(password, host, database.id).apply(build))

        self.connections[(branch.name, owned.name)] = DatabaseAccess(
            branch_name=branch.name,
            branch_id=branch.id,
            database=owned.name,
            owner_role=owned.owner_role,
            owner_password=password,
            host=branch.host,
            pooled_host=branch.pooled_host,
            direct_uri=uri(branch.host),
            pooled_uri=uri(branch.pooled_host),
            read_only_pooled_host=read_only_pooled_host,
        )
        return [role, database]
