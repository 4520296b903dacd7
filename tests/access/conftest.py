"""A Neon-like cluster for the access tests: `neon_superuser`, owner roles, app databases with their schema.

Roles are cluster-wide and the PostgreSQL server is shared by the whole test session, so every
application made here gets unique names (`chatkit_access3`, `chatkit_access3_owner`, `chatkit_access3_app`).
"""

from __future__ import annotations

import base64
import itertools
import secrets
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass

import psycopg
import pulumi
import pulumi_kubernetes as k8s
import pytest
from psycopg import sql

from components.access.app_role import AppRoleProvider
from components.access.kubernetes import AppKubernetes, AppKubernetesArgs, KubernetesObjectsArgs, kubernetes_provider
from components.access.role_names import alternate_role, group_role
from components.settings import DEFAULTS, PROJECT_ROOT, SCHEMA_ROOT
from components.uri import Credentials, pooled_host, postgres_uri
from neon_emulator.servers import PgBouncer, PostgresServer
from tests.support.manifests import declared_manifests
from tests.support.pulumi_mocks import run_program

APPS = ("chatkit", "learnflow")
_numbers = itertools.count()


@dataclass
class NeonApp:
    """One application's database on the simulated Neon branch."""

    app: str
    database: str
    owner: str
    owner_password: str
    app_role: str
    direct_host: str

    def owner_url(self) -> str:
        return postgres_uri(self.owner, self.owner_password, self.direct_host, self.database)

    @property
    def alternate_role(self) -> str:
        return alternate_role(self.app_role)

    @property
    def group_role(self) -> str:
        return group_role(self.app_role)

    def role_props(self, password_version: int = 1) -> dict:
        """Inputs of the AppRole provider for this application, as check() returns them."""
        news = {
            "admin_url": self.owner_url(),
            "role_name": self.app_role,
            "database": self.database,
            "owner_role": self.owner,
            "app_schema": "public",
            "dapr_schema": "dapr",
            "password_version": password_version,
        }
        checked = AppRoleProvider().check({}, news)
        assert not checked.failures, checked.failures
        return checked.inputs

    def app_url(self, password: str, *, pooled: bool = True, role: str | None = None) -> str:
        """The URI of `role` (default: the app role) with `password`, on the pooled or the direct host."""
        host = pooled_host(self.direct_host) if pooled else self.direct_host
        return postgres_uri(role or self.app_role, password, host, self.database)



def apply_schema(app: str, url: str) -> None:
    """Apply schema/<app> with the project's migration CLI, as the owner, over the direct URI."""
    result = subprocess.run(
        [sys.executable, "-m", "components.migrations", "apply", "--dir", str(SCHEMA_ROOT / app),
         "--database-url", url],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, f"migration CLI failed for {app}: {result.stderr[-2000:]}"


@pytest.fixture(scope="session")
def neon_superuser(postgres: PostgresServer) -> str:
    """The group role Neon puts API-made roles in (CREATEDB, CREATEROLE, read/write all data)."""
    with psycopg.connect(postgres.url(), autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_roles WHERE rolname = 'neon_superuser'").fetchone():
            conn.execute(
                "CREATE ROLE neon_superuser NOLOGIN CREATEDB CREATEROLE BYPASSRLS REPLICATION "
                "IN ROLE pg_read_all_data, pg_write_all_data"
            )
    return "neon_superuser"


@pytest.fixture(scope="session")
def make_neon_app(postgres: PostgresServer, neon_superuser: str) -> Callable[..., NeonApp]:
    """Factory: a database owned by `<app>_N_owner` (as Neon's API makes it), its schema applied."""

    def make(app: str, *, schema: bool = True) -> NeonApp:
        base = f"{app}_access{next(_numbers)}"
        neon_app = NeonApp(
            app=app,
            database=base,
            owner=f"{base}_owner",
            owner_password=secrets.token_urlsafe(24),
            app_role=f"{base}_app",
            direct_host=f"{postgres.host}:{postgres.port}",
        )
        with psycopg.connect(postgres.url(), autocommit=True) as conn:
            conn.execute(
                sql.SQL("CREATE ROLE {} LOGIN CREATEDB CREATEROLE IN ROLE {} PASSWORD {}").format(
                    sql.Identifier(neon_app.owner), sql.Identifier(neon_superuser), sql.Literal(neon_app.owner_password)
                )
            )
            conn.execute(
                sql.SQL("CREATE DATABASE {} OWNER {}").format(
                    sql.Identifier(neon_app.database), sql.Identifier(neon_app.owner)
                )
            )
        if schema:
            apply_schema(app, neon_app.owner_url())
        return neon_app

    return make


def app_kubernetes_args(
    app_name: str, credentials: pulumi.Input[Credentials], provider: k8s.Provider, protect: bool = False,
    **overrides: object,
) -> AppKubernetesArgs:
    """AppKubernetes inputs of `app_name`: the stack's default names, a namespace it creates, then `overrides`."""
    values = {
        "namespace": app_name,
        "namespace_policy": "create",
        "secret_name": DEFAULTS["secretName"],
        "dapr_component_name": DEFAULTS["daprComponentName"],
        "dapr_scopes": (),
        "dapr_init_timeout": DEFAULTS["daprInitTimeout"],
    }
    objects = KubernetesObjectsArgs(**{**values, **overrides})
    return AppKubernetesArgs(
        app_name=app_name, credentials=credentials, objects=objects, provider=provider, protect=protect
    )


def declared_objects(neon_app: NeonApp, password: str, login_role: str | None = None) -> tuple[dict, dict]:
    """The Secret and the Dapr Component that AppKubernetes declares for this app (captured under mocks),
    as the Kubernetes provider receives them and render mode writes them; the Secret logs in as
    `login_role` (default: the app role)."""
    host = pooled_host(neon_app.direct_host)

    def program() -> None:
        credentials = pulumi.Output.secret(password).apply(
            lambda p: Credentials(login_role or neon_app.app_role, p, host, neon_app.database)
        )
        provider = kubernetes_provider("k8s", render_directory="rendered")
        AppKubernetes(neon_app.app, app_kubernetes_args(neon_app.app, credentials, provider))

    secret, component = declared_manifests(run_program(program, config={}))  # one of each, in that order
    return secret, component


@dataclass
class ProvisionedApp:
    neon: NeonApp
    password: str
    outputs: dict
    database_url: str
    """DATABASE_URL exactly as the app's Kubernetes Secret carries it (pooled, TLS)."""
    secret: dict
    component: dict
    """The app's Secret and Dapr Component manifests."""


@pytest.fixture(scope="module")
def provisioned(make_neon_app: Callable[..., NeonApp], pgbouncer: PgBouncer) -> dict[str, ProvisionedApp]:
    """Both applications with their schema and their app role (made by the provider), behind PgBouncer."""
    result = {}
    for app in APPS:
        neon_app = make_neon_app(app)
        result[app] = provision(neon_app)
    return result


def provision(neon_app: NeonApp) -> ProvisionedApp:
    """The app role made by the provider, and the Secret and Component declared for it."""
    outs = AppRoleProvider().create(neon_app.role_props()).outs
    secret, component = declared_objects(neon_app, outs["password"])
    url = base64.b64decode(secret["data"]["DATABASE_URL"]).decode()
    return ProvisionedApp(neon_app, outs["password"], outs, url, secret, component)
