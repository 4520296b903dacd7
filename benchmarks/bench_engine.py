"""Benchmark: the real Pulumi CLI on the `local` stack against the Neon emulator (started here).

Prints, each over interleaved rounds (min / median / max):
1. `pulumi preview` of an up-to-date `local` stack, next to the floor: a preview of an empty
   Python program that only imports `pulumi_kubernetes` (the engine, language host and SDK start-up
   every preview pays), and their ratio;
2. a fresh `pulumi up` of `local` (project, 2 apps: 22 resources) and a `pulumi destroy`;
3. Neon API calls per phase, counted at the emulator: fresh up, no-op up, one new migration.

Run: `venv/bin/python benchmarks/bench_engine.py` (after `make toolchain`).
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from neon_emulator.api_server import ApiServer
from neon_emulator.fake import NeonFake
from scripts.pulumi_tools import install_kubernetes_plugin, pulumi_env, toolchain
from tests.support.pulumi_cli import PulumiCli, copy_project

ROUNDS = 5
FLOOR_PROGRAM = "import pulumi\nimport pulumi_kubernetes  # noqa: F401\n"


def timed(action) -> float:
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


def spread(samples: list[float]) -> str:
    return f"{min(samples):6.2f} / {statistics.median(samples):6.2f} / {max(samples):6.2f} s"


def calls(fake: NeonFake, since: int) -> str:
    made = fake.calls[since:]
    kinds = Counter("write" if method != "GET" else "read" for method, _, _ in made)
    polls = sum(1 for _, path, _ in made if "/operations" in path)
    locked = sum(1 for method, _, status in made if method != "GET" and status == 423)
    return (f"{len(made):3d} calls: {kinds['write']} writes ({locked} answered 423), "
            f"{kinds['read']} reads ({polls} operation polls)")


def main() -> None:
    tools = toolchain()
    with tempfile.TemporaryDirectory(prefix="bench-engine-") as scratch:
        root = Path(scratch)
        home = root / "home"
        install_kubernetes_plugin(tools, pulumi_env(tools, home, root / "backend"))
        server = ApiServer(NeonFake())
        try:
            fake = server.fake
            project = copy_project(root / "project")
            stack = PulumiCli(project, home, tools, backend=root / "backend")
            stack.init("local", {"neon:apiUrl": server.url}, secrets={"neon:apiKey": fake.api_key})

            floor_dir = root / "floor"
            floor_dir.mkdir()
            (floor_dir / "Pulumi.yaml").write_text("name: floor\nruntime: python\n")
            (floor_dir / "__main__.py").write_text(FLOOR_PROGRAM)
            floor = PulumiCli(floor_dir, home, tools, backend=root / "backend")
            floor.init("floor", {})

            ups, destroys = [], []
            start = len(fake.calls)
            ups.append(timed(lambda: stack.up("local")))
            fresh_calls = calls(fake, start)
            start = len(fake.calls)
            stack.up("local")
            noop_calls = calls(fake, start)
            (project / "schema" / "chatkit" / "0004_comment_users.sql").write_text(
                "COMMENT ON TABLE users IS 'ChatKit accounts';\n"
            )
            start = len(fake.calls)
            stack.up("local")
            migration_calls = calls(fake, start)

            previews, floors = [], []
            for _ in range(ROUNDS):
                previews.append(timed(lambda: stack.preview("local", "--expect-no-changes")))
                floors.append(timed(lambda: floor.preview("floor")))
            for _ in range(ROUNDS - 1):
                destroys.append(timed(lambda: stack.run("destroy", "--stack", "local", "--yes", "--skip-preview")))
                ups.append(timed(lambda: stack.up("local")))
        finally:
            server.close()

    print(f"real pulumi CLI {tools.bin / 'pulumi'}, {ROUNDS} interleaved rounds (min / median / max)")
    print(f"  preview, local stack up to date       {spread(previews)}")
    print(f"  preview, empty program (floor)        {spread(floors)}")
    ratios = [p / f for p, f in zip(previews, floors, strict=True)]
    print(f"  ratio preview / floor (paired)        {min(ratios):6.2f} / {statistics.median(ratios):6.2f} / "
          f"{max(ratios):6.2f}")  # fmt: skip
    print(f"  up, fresh local stack                 {spread(ups)}")
    print(f"  destroy                               {spread(destroys)}")
    print("Neon API calls per phase (at the emulator)")
    print(f"  fresh up                              {fresh_calls}")
    print(f"  no-op up                              {noop_calls}")
    print(f"  one new migration                     {migration_calls}")


if __name__ == "__main__":
    main()
