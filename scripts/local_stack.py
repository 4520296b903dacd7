"""`make up` / `make down`: the `local` stack on the local Neon emulator, with the real Pulumi CLI.

up:   start the emulator in the background (pid, log and clusters under .local/), select or create
      stack `local` on a file backend under .local/, make sure its `neon:apiKey` secret is the
      emulator's key, run `pulumi up --stack local --yes`, then print the stack outputs and, per
      application, each table with its row count, read through the app's DATABASE_URL (the app
      role, through the pooler).
down: `pulumi destroy --stack local --yes`, then stop the emulator.
url APP: print APP's DATABASE_URL (for `psql "$(make -s url APP=chatkit)"`).

Nothing here touches the user's own Pulumi login or plugins: PULUMI_HOME and the backend live in
.local/ (git-ignored). The emulator's key and the stack's passphrase are well-known local values
(like other emulators' development credentials): they guard a server on loopback only.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import httpx
import psycopg
from psycopg import sql

from scripts.pulumi_tools import ROOT, ToolchainError, install_kubernetes_plugin, pulumi_env, toolchain

LOCAL = ROOT / ".local"
STACK = "local"
EMULATOR_KEY = "neon-emulator-local"
EMULATOR_PORT = 4010
EMULATOR_URL = f"http://127.0.0.1:{EMULATOR_PORT}/api/v2"
PID_FILE = LOCAL / "emulator.pid"
LOG_FILE = LOCAL / "emulator.log"


class Pulumi:
    """The pulumi CLI with a project-local home and backend."""

    def __init__(self):
        try:
            tools = toolchain()
        except ToolchainError as error:
            sys.exit(str(error))
        (LOCAL / "backend").mkdir(parents=True, exist_ok=True)
        self.env = pulumi_env(tools, LOCAL / "pulumi-home", LOCAL / "backend")
        install_kubernetes_plugin(tools, self.env)

    def __call__(self, *args: str, check: bool = True) -> int:
        code = subprocess.run(["pulumi", *args], cwd=ROOT, env=self.env).returncode
        if check and code != 0:
            sys.exit(f"pulumi {args[0]} failed (exit code {code})")
        return code

    def capture(self, *args: str) -> str:
        """stdout of a command that may fail quietly (empty then)."""
        result = subprocess.run(["pulumi", *args], cwd=ROOT, env=self.env, capture_output=True, text=True)
        return result.stdout if result.returncode == 0 else ""

    def has_stack(self) -> bool:
        selected = subprocess.run(["pulumi", "stack", "select", STACK], cwd=ROOT, env=self.env, capture_output=True)
        return selected.returncode == 0

    def resources(self) -> int:
        exported = self.capture("stack", "export", "--stack", STACK)
        return len(json.loads(exported).get("deployment", {}).get("resources") or []) if exported else 0

    def forget_stack(self, why: str) -> None:
        print(f"{why}: the stack's state no longer matches anything; removing it (its config stays).")
        self("stack", "rm", STACK, "--force", "--yes", "--preserve-config")


# --- the emulator ----------------------------------------------------------------------------


def emulator_pid() -> int | None:
    """The pid of our running emulator, if it runs and answers with our key."""
    try:
        pid = int(PID_FILE.read_text())
        os.kill(pid, 0)
        httpx.get(f"{EMULATOR_URL}/projects", headers={"Authorization": f"Bearer {EMULATOR_KEY}"}).raise_for_status()
    except (OSError, ValueError, httpx.HTTPError):
        return None
    return pid


def start_emulator() -> None:
    LOCAL.mkdir(exist_ok=True)
    with LOG_FILE.open("ab") as log:
        process = subprocess.Popen(
            [str(ROOT / "venv" / "bin" / "python"), "-m", "neon_emulator", "--port", str(EMULATOR_PORT),
             "--api-key", EMULATOR_KEY, "--data-dir", str(LOCAL / "emulator")],
            cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    PID_FILE.write_text(str(process.pid))
    deadline = time.monotonic() + 180  # the first start fetches Neon's OpenAPI document from npm
    while emulator_pid() is None:
        if process.poll() is not None or time.monotonic() > deadline:
            sys.exit(f"the Neon emulator did not start; its log: {LOG_FILE}")
        time.sleep(0.5)
    print(f"Neon emulator running at {EMULATOR_URL} (pid {process.pid}, log {LOG_FILE.relative_to(ROOT)})")


def stop_emulator() -> None:
    pid = emulator_pid()
    if pid is None:
        print("The Neon emulator is not running.")
        return
    os.kill(pid, signal.SIGTERM)  # it stops and removes every cluster it started
    while True:
        try:
            os.kill(pid, 0)
        except OSError:
            break
        time.sleep(0.2)
    PID_FILE.unlink(missing_ok=True)
    print("Neon emulator stopped.")


# --- commands --------------------------------------------------------------------------------


def up() -> None:
    pulumi = Pulumi()
    fresh_emulator = emulator_pid() is None
    if fresh_emulator:
        start_emulator()
    if pulumi.has_stack():
        if fresh_emulator and pulumi.resources():
            pulumi.forget_stack("The emulator was restarted and its data is gone")
            pulumi("stack", "init", STACK)
    else:
        pulumi("stack", "init", STACK)
    if pulumi.capture("config", "get", "--stack", STACK, "neon:apiKey").strip() != EMULATOR_KEY:
        pulumi("config", "set", "--stack", STACK, "--secret", "neon:apiKey", EMULATOR_KEY)
    pulumi("up", "--stack", STACK, "--yes")
    report(pulumi)


def report(pulumi: Pulumi) -> None:
    """Per app, each table and its row count, read as its active login role through the pooler."""
    outputs = json.loads(pulumi.capture("stack", "output", "--stack", STACK, "--json", "--show-secrets"))
    print(f"\nStack {STACK}: project {outputs['projectId']}, branch {outputs['primaryBranchId']}")
    for app, facts in outputs["apps"].items():
        url = outputs["appDatabaseUrls"][app]
        with psycopg.connect(url, prepare_threshold=None) as conn:
            user = conn.execute("SELECT session_user").fetchone()[0]
            tls = "TLS" if conn.pgconn.ssl_in_use else "no TLS"
            print(f"\n{app}: database {facts['database']} as {user} through the pooler {conn.info.host} ({tls}), "
                  f"migrations up to {facts['latestMigration']}, Secret {facts['namespace']}/{facts['secretName']}")
            for table in facts["tables"]:
                schema, name = table.split(".", 1)
                count = conn.execute(sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(schema, name))).fetchone()
                print(f"  {table:<32} {count[0]:>6} rows")
        print(f'  connect: psql "$(make -s url APP={app})"')
    print(f"\nManifests rendered to {ROOT / 'rendered' / 'local'}; `make down` removes everything.")


def down() -> None:
    pulumi = Pulumi()
    if pulumi.has_stack() and pulumi.resources():
        if emulator_pid() is None:
            pulumi.forget_stack("The emulator is not running, so its data is already gone")
        else:
            pulumi("destroy", "--stack", STACK, "--yes")
    stop_emulator()


def url(app: str) -> None:
    pulumi = Pulumi()
    urls = json.loads(pulumi.capture("stack", "output", "--stack", STACK, "--json", "--show-secrets",
                                     "appDatabaseUrls") or "{}")  # fmt: skip
    if app not in urls:
        sys.exit(f"no application {app!r} in stack {STACK} (applications: {', '.join(sorted(urls)) or 'none'})")
    print(urls[app])


if __name__ == "__main__":
    command, *rest = sys.argv[1:] or ["up"]
    {"up": up, "down": down, "url": url}[command](*rest)
