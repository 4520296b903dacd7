"""Password rotation through the real engine: each `up` after a raised `passwordVersion` moves the
Secret to the other login role with a new password, and the URL pods still hold keeps working
until the rotation after."""

from __future__ import annotations

import base64
import urllib.parse
from pathlib import Path

import psycopg

from tests.engine.test_local_stack import APPS, rendered_file, rendered_secret, summary
from tests.support.dapr_harness import run_harness
from tests.support.pulumi_cli import PulumiCli


def rotate(stack: PulumiCli, version: int) -> dict:
    """Raise passwordVersion, `up`, and return the new stack outputs."""
    stack.run("config", "set", "--stack", "local", "neon-stack:passwordVersion", str(version))
    up = stack.up("local")
    # Per app: the role (a new password on the other login role), and the Secret that carries it.
    assert summary(up.stdout) == [f"~ {len(APPS)} updated", f"+-{len(APPS)} replaced",
                                   f"{2 * len(APPS)} changes. 18 unchanged"], up.stdout
    return stack.outputs("local")


def logs_in(url: str) -> str | None:
    """The login role `url` logs in as through the pooler, or None when its password is refused."""
    try:
        with psycopg.connect(url, prepare_threshold=None, connect_timeout=10) as conn:
            user, current = conn.execute("SELECT session_user, current_user").fetchone()
    except psycopg.OperationalError as error:
        assert "SASL authentication failed" in str(error), error
        return None
    assert current.endswith("_app_g"), current  # every session runs as the group role
    return user


def user(url: str) -> str:
    return urllib.parse.urlsplit(url).username


def test_rotation_moves_the_secret_and_keeps_the_previous_url_until_the_next(
    local_stack: PulumiCli, project: Path
) -> None:
    local_stack.up("local")
    first = local_stack.outputs("local")
    held = psycopg.connect(first["appDatabaseUrls"]["chatkit"], prepare_threshold=None, autocommit=True)

    second = rotate(local_stack, 2)
    for app in APPS:
        old, new = first["appDatabaseUrls"][app], second["appDatabaseUrls"][app]
        assert user(new) == second["apps"][app]["loginRole"] == f"{app}_app_b"
        assert base64.b64decode(rendered_secret(project, app)["data"]["DATABASE_URL"]).decode() == new
        assert (logs_in(old), logs_in(new)) == (f"{app}_app", f"{app}_app_b")
        # Dapr's store, as the new login role, uses and migrates the tables the group owns.
        run = run_harness(rendered_file(project, "Component", app), rendered_file(project, "Secret", app), "steps")
        assert run.failures() == [] and run.code == 0, (run.reports, run.stderr[-2000:])
    assert held.execute("SELECT count(*) FROM users").fetchone() is not None
    held.close()

    third = rotate(local_stack, 3)
    for app in APPS:
        newest = third["appDatabaseUrls"][app]
        assert user(newest) == third["apps"][app]["loginRole"] == f"{app}_app"
        assert base64.b64decode(rendered_secret(project, app)["data"]["DATABASE_URL"]).decode() == newest
        assert logs_in(first["appDatabaseUrls"][app]) is None
        assert (logs_in(second["appDatabaseUrls"][app]), logs_in(newest)) == (f"{app}_app_b", f"{app}_app")
        with psycopg.connect(third["ownerDatabaseUrls"][app]) as conn:
            owners = {owner for (owner,) in conn.execute("SELECT tableowner FROM pg_tables WHERE schemaname = 'dapr'")}
        assert owners == {f"{app}_app_g"}
