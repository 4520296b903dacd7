"""A stack deployed by the program as it was before its modules moved, refreshed and destroyed by
this checkout's program.

Pulumi keeps each dynamic resource's provider in state as a pickle that names its class by module
(`components.schema.provider.MigrationsProvider` before the rename to `components.migrations`), and
`refresh` and `destroy` run that pickle: every module path an older program pickled must still lead
to its provider.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path

from scripts.pulumi_tools import toolchain
from tests.engine.test_local_stack import RENDERED_OBJECTS, summary
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
