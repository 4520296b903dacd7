"""The AppRole provider through the real dynamic-provider host over gRPC, as `pulumi up` runs it."""

from __future__ import annotations

import psycopg
import pytest
from pulumi.output import Unknown

from components.access.app_role import AppRoleProvider
from tests.support.provider_host import ProviderHostError, start_provider_host

pytestmark = pytest.mark.host  # every test talks to a provider-host process


def logs_in(url: str) -> bool:
    try:
        psycopg.connect(url, connect_timeout=5).close()
    except psycopg.OperationalError:
        return False
    return True


def test_lifecycle_through_the_host(pgbouncer, make_neon_app) -> None:
    app = make_neon_app("chatkit", schema=False)
    provider = AppRoleProvider()
    with start_provider_host() as host:
        host.configure({})
        checked = host.check(provider, {}, app.role_props())
        assert checked.failures == []
        news = checked.inputs

        role_id, outs = host.create(provider, news)
        assert role_id == app.app_role
        first_password = outs["password"]
        assert logs_in(app.app_url(first_password))

        assert host.diff(provider, role_id, outs, news).changes is False
        preview = host.diff(provider, role_id, outs, {**news, "admin_url": Unknown()})
        assert (preview.changes, preview.replaces) == (True, [])

        rotated_inputs = host.check(provider, news, app.role_props(password_version=2)).inputs
        assert host.diff(provider, role_id, outs, rotated_inputs).changes is True
        rotated = host.update(provider, role_id, outs, rotated_inputs)
        assert rotated["password"] != first_password
        assert {k: v for k, v in rotated.items() if k != "password"} == {
            **{k: v for k, v in outs.items() if k != "password"},
            "password_version": 2,
            "login_role": app.alternate_role,
        }
        assert logs_in(app.app_url(first_password))  # the previous login role works until the next rotation
        assert logs_in(app.app_url(rotated["password"], role=app.alternate_role))
        assert host.diff(provider, role_id, rotated, rotated_inputs).changes is False

        read_id, read_outs, read_inputs = host.read(provider, role_id, rotated)
        assert read_id == role_id and read_outs == rotated and "password" not in read_inputs

        host.delete(provider, role_id, rotated)
        assert not logs_in(app.app_url(first_password, pooled=False))
        assert not logs_in(app.app_url(rotated["password"], pooled=False, role=app.alternate_role))
        assert host.read(provider, role_id, rotated)[0] == ""

        output = host.output() + "\n".join(host.engine_logs)
        for secret in (first_password, rotated["password"], app.owner_password):
            assert secret not in output


def test_check_failures_and_errors_through_the_host(make_neon_app) -> None:
    app = make_neon_app("learnflow", schema=False)
    provider = AppRoleProvider()
    with start_provider_host() as host:
        host.configure({})
        failures = host.check(provider, {}, {**app.role_props(), "dapr_schema": "Dapr-State"}).failures
        assert [f[0] for f in failures] == ["dapr_schema"]
        with pytest.raises(ProviderHostError) as raised:
            host.create(provider, {**app.role_props(), "app_schema": "missing"})
        assert app.app_role in raised.value.details
        assert app.owner_password not in raised.value.details
        assert app.owner_password not in host.output()
