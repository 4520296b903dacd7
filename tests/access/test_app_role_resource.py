"""AppRole and AppKubernetes in one program (in-process `pulumi up` with real providers against PostgreSQL)."""

from __future__ import annotations

import base64
from urllib.parse import urlsplit

import dill
import psycopg
import pulumi
import pytest

from components.access.app_role import AppRole, AppRoleArgs, AppRoleProvider
from components.access.kubernetes import AppKubernetes, kubernetes_provider
from components.uri import Credentials, pooled_host
from tests.access.conftest import app_kubernetes_args
from tests.support.pulumi_mocks import run_program


def program_for(neon_app, password_version: int):
    def program() -> None:
        role = AppRole(
            "chatkit-role",
            AppRoleArgs(
                admin_url=pulumi.Output.secret(neon_app.owner_url()),
                role_name=neon_app.app_role,
                database=neon_app.database,
                owner_role=neon_app.owner,
                password_version=password_version,
            ),
        )
        host = pooled_host(neon_app.direct_host)
        credentials = pulumi.Output.all(role.login_role, role.password).apply(
            lambda v: Credentials(v[0], v[1], host, neon_app.database)
        )
        provider = kubernetes_provider("k8s", render_directory="rendered")
        AppKubernetes("chatkit", app_kubernetes_args("chatkit", credentials, provider))
        pulumi.export("app_role", role.role_name)
        pulumi.export("app_password", role.password)

    return program


def secret_url(run) -> str:
    (secret,) = run.of_type("kubernetes:core/v1:Secret")
    return base64.b64decode(secret.inputs["data"]["DATABASE_URL"]).decode()


def test_rotation_reaches_the_secret_in_the_same_up(make_neon_app, pgbouncer) -> None:
    neon_app = make_neon_app("chatkit", schema=False)
    first = run_program(program_for(neon_app, 1), config={}, run_providers=True)
    role = first.one("pulumi-python:dynamic/postgres:AppRole", "chatkit-role")
    assert role.type == "pulumi-python:dynamic/postgres:AppRole"
    assert role.options["additional_secret_outputs"] == ["admin_url", "password"]
    assert {"admin_url", "password"} <= role.secret_outputs and "admin_url" in role.secret_inputs
    assert "role_name" not in role.secret_outputs
    assert first.secret_outputs == {"app_password"}
    password = first.outputs["app_password"]
    for resource in first.resources:
        plain = {k: v for k, v in resource.outputs.items() if k not in resource.secret_outputs}
        assert password not in repr(plain) and neon_app.owner_password not in repr(plain)

    again = run_program(program_for(neon_app, 1), config={}, run_providers=True, state=first.state)
    assert [op for _, op in again.operations] == []
    assert secret_url(again) == secret_url(first)

    rotated = run_program(program_for(neon_app, 2), config={}, run_providers=True, state=again.state)
    assert [op for _, op in rotated.operations] == ["update"]
    new_url = secret_url(rotated)
    assert new_url != secret_url(first) and rotated.outputs["app_password"] in new_url
    for url, login in ((new_url, neon_app.alternate_role), (secret_url(first), neon_app.app_role)):
        with psycopg.connect(url, prepare_threshold=None) as conn:
            users = conn.execute("SELECT session_user, current_user").fetchone()
            assert users == (login, neon_app.group_role)

    # The next rotation moves the Secret back to the app role, with a new password: the oldest fails.
    again_rotated = run_program(program_for(neon_app, 3), config={}, run_providers=True, state=rotated.state)
    assert [op for _, op in again_rotated.operations] == ["update"]
    newest = secret_url(again_rotated)
    assert urlsplit(newest).username == neon_app.app_role and newest != secret_url(first)
    psycopg.connect(newest, prepare_threshold=None).close()
    psycopg.connect(new_url, prepare_threshold=None).close()
    with pytest.raises(psycopg.OperationalError, match="SASL authentication failed"):
        psycopg.connect(secret_url(first), prepare_threshold=None)


PICKLED_BEFORE_THE_MOVE = "gASVLgAAAAAAAACME2NvbXBvbmVudHMuYXBwX3JvbGWUjA9BcHBSb2xlUHJvdmlkZXKUk5QpgZQu"
"""The `__provider` input of an app role declared while the provider lived in components/app_role.py."""


def test_providers_pickled_before_and_after_the_move_load_the_current_class() -> None:
    def program() -> None:
        AppRole("r", AppRoleArgs(admin_url="postgresql://o:p@h/d", role_name="a_app", database="a", owner_role="o"))

    current = base64.b64decode(run_program(program, config={}).one("postgres:AppRole", "r").inputs["__provider"])
    old = base64.b64decode(PICKLED_BEFORE_THE_MOVE)
    assert b"components.access.app_role" in current and b"components.app_role" in old
    for blob in (old, current):
        assert type(dill.loads(blob)) is AppRoleProvider  # noqa: S301 - our own provider
