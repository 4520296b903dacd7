"""Stacks deployed by the program as it was before a change of layout, taken over by this checkout's
program: one from before the modules moved, refreshed and destroyed; one from before the two
alternating login roles, updated to them with its Secret, grants and Dapr state kept.

Pulumi keeps each dynamic resource's provider in state as a pickle that names its class by module
(`components.schema.provider.MigrationsProvider` before the rename to `components.migrations`), and
`refresh` and `destroy` run that pickle: every module path an older program pickled must still lead
to its provider.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path

import psycopg
from psycopg.conninfo import conninfo_to_dict

from scripts.pulumi_tools import toolchain
from tests.engine.test_local_stack import APPS, RENDERED_OBJECTS, rendered_file, summary
from tests.support.dapr_harness import run_harness
from tests.support.neon_fixtures import NeonApi
from tests.support.pulumi_cli import PulumiCli, copy_project_at

# main before the module moves (components/schema/ became components/migrations/).
OLD_PROGRAM = "1fe04ba7f4f4b5caeb659826b8bc08cacba6eb50"
OLD_MIGRATIONS_PROVIDER = b"components.schema.provider"


def pickled_providers(cli: PulumiCli, stack: str) -> dict[str, bytes]:
    """The pickled provider of every dynamic resource in the stack's state, by resource name."""
    state = json.loads(cli.run("stack", "export", "--stack", stack, "--show-secrets").stdout)
    return {
        r["urn"].rsplit("::", 1)[1]: base64.b64decode(json.loads(r["inputs"]["__provider"]["plaintext"]))
        for r in state["deployment"]["resources"]
        if r["type"].startswith("pulumi-python:dynamic/")
    }


def test_a_stack_of_the_old_layout_refreshes_and_destroys_with_this_program(
    pulumi: PulumiCli, pulumi_home: Path, neon_api: NeonApi, tmp_path: Path
) -> None:
    config, secrets = {"neon:apiUrl": neon_api.url}, {"neon:apiKey": neon_api.api_key}
    old = PulumiCli(copy_project_at(OLD_PROGRAM, tmp_path / "old-project"), pulumi_home, toolchain(),
                    backend=tmp_path / "backend")  # fmt: skip
    old.init("local", config, secrets=secrets)
    old.up("local")
    project_id = old.outputs("local")["projectId"]
    pickled = pickled_providers(old, "local")
    migrations = {name for name in pickled if name.endswith("-schema")}
    assert migrations == {"chatkit-schema", "learnflow-schema"}, sorted(pickled)
    for name in migrations:
        assert OLD_MIGRATIONS_PROVIDER in pickled[name], pickled[name]

    # This checkout's program takes the stack over: same backend, same config. The refresh runs the
    # old pickles and finds nothing changed; the state keeps them, so the destroy runs them too.
    pulumi.init("local", config, secrets=secrets)
    refresh = pulumi.run("refresh", "--stack", "local", "--yes", "--skip-preview", "--expect-no-changes",
                         "--exclude", RENDERED_OBJECTS)  # fmt: skip
    lines = summary(refresh.stdout)
    assert lines and all(line.endswith(" unchanged") for line in lines), refresh.output
    assert pickled_providers(pulumi, "local") == pickled

    assert project_id in neon_api.projects
    pulumi.run("destroy", "--stack", "local", "--yes", "--skip-preview")
    assert neon_api.projects == {}
    assert ("DELETE", "/projects/{project_id}", 200) in neon_api.calls
    assert pulumi.export("local")["deployment"].get("resources") in (None, [])


# main before the two alternating login roles: one login role per app, which owned Dapr's tables.
SINGLE_ROLE_PROGRAM = "5d54c5d2287f864f17056ee59df27a01acdeacd1"
MARKER = "kept-across-the-move"


def dapr_table_owners(owner_url: str) -> set[str]:
    with psycopg.connect(owner_url, connect_timeout=10) as conn:
        return {owner for (owner,) in conn.execute("SELECT tableowner FROM pg_tables WHERE schemaname = 'dapr'")}


def grantees(owner_url: str) -> set[str]:
    """Every role granted something on the app's tables, schemas, default privileges or database."""
    with psycopg.connect(owner_url, connect_timeout=10) as conn:
        rows = conn.execute(
            "SELECT grantee::regrole::text FROM pg_class c, aclexplode(c.relacl) WHERE c.relnamespace IN "
            "  (SELECT oid FROM pg_namespace WHERE nspname IN ('public', 'dapr')) "
            "UNION SELECT grantee::regrole::text FROM pg_namespace n, aclexplode(n.nspacl) "
            "UNION SELECT grantee::regrole::text FROM pg_default_acl d, aclexplode(d.defaclacl) "
            "UNION SELECT grantee::regrole::text FROM pg_database d, aclexplode(d.datacl) "
            "WHERE datname = current_database()"
        ).fetchall()
    return {grantee for (grantee,) in rows}


def dapr_steps(component_project: Path, secret_project: Path, app: str) -> None:
    """Dapr's store on the rendered Component and Secret (an unchanged object is not rendered again)."""
    component, secret = rendered_file(component_project, "Component", app), rendered_file(secret_project, "Secret", app)
    run = run_harness(component, secret, "steps")
    assert run.failures() == [] and run.code == 0, (run.reports, run.stderr[-2000:])


def test_a_single_role_stack_moves_to_two_login_roles_keeping_its_secret_grants_and_dapr_state(
    pulumi: PulumiCli, pulumi_home: Path, neon_api: NeonApi, tmp_path: Path
) -> None:
    config, secrets = {"neon:apiUrl": neon_api.url}, {"neon:apiKey": neon_api.api_key}
    old_project = copy_project_at(SINGLE_ROLE_PROGRAM, tmp_path / "old-project")
    old = PulumiCli(old_project, pulumi_home, toolchain(), backend=tmp_path / "backend")
    old.init("local", config, secrets=secrets)
    old.up("local")
    before = old.outputs("local")
    for app in APPS:
        dapr_steps(old_project, old_project, app)  # Dapr's tables, made by the single app role
        with psycopg.connect(before["appDatabaseUrls"][app], prepare_threshold=None, autocommit=True) as conn:
            conn.execute("INSERT INTO dapr.state (key, value) VALUES (%s, 'v')", (MARKER,))
        assert dapr_table_owners(before["ownerDatabaseUrls"][app]) == {f"{app}_app"}
    held = psycopg.connect(before["appDatabaseUrls"]["chatkit"], prepare_threshold=None, autocommit=True)

    # This checkout's program: the roles move to the group; the Secret keeps its role and password and
    # gains connect_timeout (a changed Secret is replaced in render mode).
    pulumi.init("local", config, secrets=secrets)
    up = pulumi.up("local")
    expected = [f"~ {len(APPS)} updated", f"+-{len(APPS)} replaced", f"{2 * len(APPS)} changes. 18 unchanged"]
    assert summary(up.stdout) == expected, up.stdout  # the AppRoles and the Secrets only
    after = pulumi.outputs("local")
    for app in APPS:
        login = conninfo_to_dict(after["appDatabaseUrls"][app])
        assert login.pop("connect_timeout") == "15"
        assert login == conninfo_to_dict(before["appDatabaseUrls"][app])
    assert held.execute("SELECT count(*) FROM users").fetchone() is not None
    for app in APPS:
        owner_url = after["ownerDatabaseUrls"][app]
        assert after["apps"][app]["loginRole"] == f"{app}_app"
        assert dapr_table_owners(owner_url) == {f"{app}_app_g"}
        assert f"{app}_app_g" in grantees(owner_url) and not {f"{app}_app", f"{app}_app_b"} & grantees(owner_url)
        with psycopg.connect(after["appDatabaseUrls"][app], prepare_threshold=None) as conn:
            assert conn.execute("SELECT value FROM dapr.state WHERE key = %s", (MARKER,)).fetchall() == [(b"v",)]

    # The first rotation after the move: a new Secret on the alternate role; the old URL still works.
    pulumi.run("config", "set", "--stack", "local", "neon-stack:passwordVersion", "2")
    pulumi.up("local")
    rotated = pulumi.outputs("local")
    assert held.execute("SELECT count(*) FROM users").fetchone() is not None
    held.close()
    for app in APPS:
        assert rotated["apps"][app]["loginRole"] == f"{app}_app_b"
        for url in (before["appDatabaseUrls"][app], rotated["appDatabaseUrls"][app]):
            with psycopg.connect(url, prepare_threshold=None, connect_timeout=10) as conn:
                assert conn.execute("SELECT value FROM dapr.state WHERE key = %s", (MARKER,)).fetchall() == [(b"v",)]
        with psycopg.connect(rotated["appDatabaseUrls"][app], prepare_threshold=None, autocommit=True) as conn:
            conn.execute("DELETE FROM dapr.dapr_metadata WHERE key LIKE 'last-cleanup-%'")  # Dapr's hourly throttle
        dapr_steps(old_project, pulumi.project, app)
