"""The GitHub Actions workflows: linted offline by actionlint, and held to the project's deployment rules.

actionlint is built from its Go module (`toolchain/actionlint/go.mod`) by `scripts/pulumi-toolchain.sh`.
The rules checked in Python are the ones a linter cannot know: the Pulumi CLI pinned to the SDK in
requirements.txt, the virtualenv of Pulumi.yaml built before Pulumi runs, minimal token permissions,
every stack previewed, prod deployed after dev and behind an approval.
"""

from __future__ import annotations

import json
import re
import subprocess
import tomllib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from components.settings import PROJECT, PROJECT_ROOT, parse_settings
from scripts.pulumi_tools import toolchain

WORKFLOWS = PROJECT_ROOT / ".github" / "workflows"

LONG_LIVED_STACKS = {"dev", "prod"}
# Stacks that never run in CI: `local` targets the emulator on a developer's machine.
LOCAL_ONLY_STACKS = {"local"}
PULUMI_ACTION = "pulumi/actions@"
ORG = "${{ vars.PULUMI_ORG }}"

# Inputs of pulumi/actions v6 (its action.yml). actionlint only knows the inputs of a few popular
# actions, so a misspelled input of this one would otherwise pass unnoticed.
PULUMI_ACTION_INPUTS = {
    "command", "stack-name", "pulumi-version", "pulumi-version-file", "work-dir", "comment-on-pr",
    "comment-on-pr-number", "comment-on-summary", "github-token", "cloud-url", "secrets-provider",
    "parallel", "message", "config-map", "expect-no-changes", "diff", "replace", "target",
    "target-dependents", "policyPacks", "policyPackConfigs", "refresh", "upsert", "remove",
    "edit-pr-comment", "color", "exclude-protected", "plan", "suppress-outputs", "suppress-progress",
    "always-include-summary",
}  # fmt: skip

Lint = Callable[[list[Path]], list[dict[str, Any]]]


# --- actionlint -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def actionlint() -> Lint:
    """A function linting workflow files, returning actionlint's findings (message, filepath, line...)."""
    binary = toolchain().bin / "actionlint"

    def lint(files: list[Path]) -> list[dict[str, Any]]:
        result = subprocess.run(
            [str(binary), "-no-color", "-format", "{{json .}}", *map(str, files)],
            capture_output=True, text=True, check=False,
        )  # fmt: skip
        # 0: no finding, 1: findings; anything else means actionlint itself could not run.
        assert result.returncode in (0, 1), f"actionlint could not run:\n{result.stderr}"
        return json.loads(result.stdout or "[]")

    return lint


@pytest.mark.host
def test_every_workflow_passes_actionlint(actionlint: Lint) -> None:
    files = _workflow_files()
    assert {f.name for f in files} >= {"preview.yml", "deploy.yml"}
    findings = actionlint(files)
    assert findings == [], "\n".join(f"{f['filepath']}:{f['line']}:{f['column']}: {f['message']}" for f in findings)


# Each broken job section, with the line (of the whole file) and the message actionlint reports.
_BROKEN_WORKFLOWS = {
    "undefined matrix property": (
        "jobs:\n  a:\n    runs-on: ubuntu-latest\n    strategy:\n      matrix:\n        stack: [dev, prod]\n"
        "    steps:\n      - run: echo \"$S\"\n        env:\n          S: ${{ matrix.nope }}\n",
        12, 'property "nope" is not defined',
    ),
    "YAML syntax error": (
        "jobs:\n  a:\n    runs-on: ubuntu-latest\n    steps:\n      - run: echo\n     - run: echo\n",
        4, "could not parse as YAML: did not find expected key",
    ),
    "needs an unknown job": (
        "jobs:\n  a:\n    runs-on: ubuntu-latest\n    needs: build\n    steps:\n      - run: echo\n",
        4, 'needs job "build" which does not exist',
    ),
    "unknown context next to vars": (
        "jobs:\n  a:\n    runs-on: ubuntu-latest\n    steps:\n      - run: echo \"$S\"\n        env:\n"
        "          S: ${{ varz.PULUMI_ORG }}\n",
        9, 'undefined variable "varz"',
    ),
}  # fmt: skip


@pytest.mark.host
@pytest.mark.parametrize("case", sorted(_BROKEN_WORKFLOWS))
def test_actionlint_reports_a_broken_workflow(actionlint: Lint, tmp_path: Path, case: str) -> None:
    body, line, message = _BROKEN_WORKFLOWS[case]
    workflow = tmp_path / "broken.yml"
    workflow.write_text("name: broken\non: push\n" + body)
    findings = actionlint([workflow])
    assert any(f["line"] == line and message in f["message"] for f in findings), findings


@pytest.mark.host
def test_actionlint_knows_the_vars_context(actionlint: Lint, tmp_path: Path) -> None:
    """The organization name comes from `vars` (repository variables), which old builds did not know."""
    workflow = tmp_path / "vars.yml"
    workflow.write_text(
        "name: vars\non: push\njobs:\n  a:\n    runs-on: ubuntu-latest\n    steps:\n"
        '      - run: echo "$ORG"\n        env:\n          ORG: ${{ vars.PULUMI_ORG }}\n'
        '      - run: echo "$X"\n        env:\n          X: ${{ vars.PULUMI_ORG && matrix.nope }}\n'
    )
    assert [(f["line"], f["kind"]) for f in actionlint([workflow])] == [(12, "expression")]


def _workflow_files() -> list[Path]:
    return sorted(WORKFLOWS.glob("*.yml")) + sorted(WORKFLOWS.glob("*.yaml"))


def _load(name: str) -> dict[str, Any]:
    workflow = yaml.safe_load((WORKFLOWS / name).read_text())
    if True in workflow:  # YAML 1.1 reads the bare key `on` as the boolean true
        workflow["on"] = workflow.pop(True)
    return workflow


def _pulumi_steps(job: dict[str, Any]) -> list[tuple[int, dict[str, Any]]]:
    return [(i, s) for i, s in enumerate(job["steps"]) if s.get("uses", "").startswith(PULUMI_ACTION)]


def _all_jobs() -> Iterator[tuple[str, str, dict[str, Any], dict[str, Any]]]:
    """(workflow file, job id, job, workflow) for every job of every workflow."""
    for path in _workflow_files():
        workflow = _load(path.name)
        for job_id, job in workflow["jobs"].items():
            yield path.name, job_id, job, workflow


def _pinned_version(requirement: str) -> str:
    for line in (PROJECT_ROOT / "requirements.txt").read_text().splitlines():
        if match := re.fullmatch(rf"{re.escape(requirement)}==(\S+)", line.strip()):
            return match.group(1)
    raise AssertionError(f"requirements.txt pins no {requirement}")


def _virtualenv() -> str:
    return yaml.safe_load((PROJECT_ROOT / "Pulumi.yaml").read_text())["runtime"]["options"]["virtualenv"]


def _python_version() -> str:
    """The Python version of the project (ruff's target-version, e.g. py311 -> 3.11)."""
    target = tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text())["tool"]["ruff"]["target-version"]
    return f"{target[2]}.{target[3:]}"


def _stack_files() -> set[str]:
    return {p.name.removeprefix("Pulumi.").removesuffix(".yaml") for p in PROJECT_ROOT.glob("Pulumi.*.yaml")}


def test_every_action_is_pinned_to_a_release() -> None:
    for name, job_id, job, _ in _all_jobs():
        for step in job["steps"]:
            if "uses" in step:
                assert re.search(r"@(v\d+(\.\d+){0,2}|[0-9a-f]{40})$", step["uses"]), (name, job_id, step["uses"])
                if step["uses"].startswith(PULUMI_ACTION):
                    assert step["uses"] == f"{PULUMI_ACTION}v6", (name, job_id)


def test_pulumi_cli_is_the_version_of_the_sdk() -> None:
    sdk = _pinned_version("pulumi")
    steps = [(name, step) for name, _, job, _ in _all_jobs() for _, step in _pulumi_steps(job)]
    assert len(steps) >= 4
    for name, step in steps:
        assert step["with"]["pulumi-version"] == sdk, name
        assert set(step["with"]) <= PULUMI_ACTION_INPUTS, (name, set(step["with"]) - PULUMI_ACTION_INPUTS)


def test_token_permissions_are_minimal() -> None:
    for name, job_id, job, workflow in _all_jobs():
        assert workflow["permissions"] == {"contents": "read"}, name
        permissions = job.get("permissions", workflow["permissions"])
        assert isinstance(permissions, dict), (name, job_id, permissions)  # never read-all / write-all
        comments = any(str(s["with"].get("comment-on-pr")).lower() == "true" for _, s in _pulumi_steps(job))
        allowed = {"contents": "read", "pull-requests": "write" if comments else "read"}
        assert set(permissions) <= set(allowed), (name, job_id, permissions)
        for scope, level in permissions.items():
            assert level in ("none", "read", allowed[scope]), (name, job_id, scope, level)


def test_checkouts_leave_no_git_credentials_behind() -> None:
    checkouts = [
        (name, step) for name, _, job, _ in _all_jobs() for step in job["steps"]
        if step.get("uses", "").startswith("actions/checkout@")
    ]  # fmt: skip
    assert len(checkouts) == len(list(_all_jobs()))
    for name, step in checkouts:
        assert step["with"]["persist-credentials"] is False, name


def test_the_virtualenv_is_built_before_pulumi_runs() -> None:
    venv = _virtualenv()
    install = re.compile(
        rf"^python -m venv {re.escape(venv)}\n{re.escape(venv)}/bin/pip install .*-r requirements\.txt$"
    )
    jobs = [(name, job_id, job) for name, job_id, job, _ in _all_jobs() if _pulumi_steps(job)]
    assert len(jobs) >= 4
    for name, job_id, job in jobs:
        steps = job["steps"]
        setup = [i for i, s in enumerate(steps) if s.get("uses", "").startswith("actions/setup-python@")]
        builds = [i for i, s in enumerate(steps) if install.match(s.get("run", "").strip())]
        assert len(setup) == 1 and len(builds) == 1, (name, job_id)
        assert steps[setup[0]]["with"]["python-version"] == _python_version(), (name, job_id)
        assert setup[0] < builds[0] < _pulumi_steps(job)[0][0], (name, job_id)


@pytest.mark.host
def test_scripts_take_values_from_env_only_and_are_valid_bash() -> None:
    """No `${{ }}` inside a script (no injection, no secret in a command line); each script parses."""
    scripts = [(name, step["run"]) for name, _, job, _ in _all_jobs() for step in job["steps"] if "run" in step]
    assert len(scripts) >= 8
    for name, script in scripts:
        assert "${{" not in script, (name, script)
        parsed = subprocess.run(["bash", "-n"], input=script, capture_output=True, text=True, check=False)
        assert parsed.returncode == 0, (name, parsed.stderr)


def _assert_pulumi_environment(step: dict[str, Any], *, kubeconfig: bool) -> None:
    env = step["env"]
    assert env["PULUMI_ACCESS_TOKEN"] == "${{ secrets.PULUMI_ACCESS_TOKEN }}"
    assert env["NEON_API_KEY"] == "${{ secrets.NEON_API_KEY }}"
    assert ("KUBECONFIG" in env) == kubeconfig
    if kubeconfig:
        assert env["KUBECONFIG"] == "${{ runner.temp }}/kubeconfig"


def _assert_kubeconfig_written_privately(job: dict[str, Any], secret: str) -> None:
    writers = [s for s in job["steps"] if '"$RUNNER_TEMP/kubeconfig"' in s.get("run", "")]
    assert len(writers) == 1
    assert writers[0]["env"]["KUBECONFIG_CONTENT"] == "${{ " + secret + " }}"
    assert writers[0]["run"].index("umask 077") < writers[0]["run"].index('> "$RUNNER_TEMP/kubeconfig"')


def test_preview_comments_every_long_lived_stack_on_pull_requests() -> None:
    workflow = _load("preview.yml")
    assert workflow["on"] == {"pull_request": {"branches": ["main"]}}
    (job,) = workflow["jobs"].values()
    strategy = job["strategy"]
    assert strategy["fail-fast"] is False
    stacks = {entry["stack"] for entry in strategy["matrix"]["include"]}
    assert stacks == LONG_LIVED_STACKS
    assert {s for s in _stack_files() if not s.startswith("pr-")} - LOCAL_ONLY_STACKS <= stacks
    assert {entry["kubeconfig_secret"] for entry in strategy["matrix"]["include"]} == {
        f"KUBECONFIG_{s.upper()}" for s in stacks
    }
    assert job["concurrency"] == {
        "group": "preview-${{ github.event.pull_request.number }}-${{ matrix.stack }}",
        "cancel-in-progress": True,
    }
    (_, step), = _pulumi_steps(job)  # fmt: skip
    assert {key: value for key, value in step["with"].items() if key != "pulumi-version"} == {
        "command": "preview",
        "stack-name": f"{ORG}/{PROJECT}/${{{{ matrix.stack }}}}",
        "diff": True,
        "comment-on-pr": True,
        "github-token": "${{ secrets.GITHUB_TOKEN }}",
    }
    _assert_pulumi_environment(step, kubeconfig=True)
    _assert_kubeconfig_written_privately(job, "secrets[matrix.kubeconfig_secret]")


def test_deploy_updates_dev_then_prod_behind_the_production_environment() -> None:
    workflow = _load("deploy.yml")
    assert workflow["on"] == {"push": {"branches": ["main"]}}
    jobs = workflow["jobs"]
    assert set(jobs) == LONG_LIVED_STACKS
    assert "environment" not in jobs["dev"] and "needs" not in jobs["dev"]
    assert jobs["prod"]["environment"] == "production"
    assert jobs["prod"]["needs"] == "dev"
    for stack, job in jobs.items():
        assert job["concurrency"] == {"group": f"deploy-{stack}", "cancel-in-progress": False}
        (_, step), = _pulumi_steps(job)  # fmt: skip
        assert step["with"]["command"] == "up"
        assert step["with"]["stack-name"] == f"{ORG}/{PROJECT}/{stack}"
        _assert_pulumi_environment(step, kubeconfig=True)
        _assert_kubeconfig_written_privately(job, f"secrets.KUBECONFIG_{stack.upper()}")


def test_pr_stack_branches_from_dev_and_is_destroyed_on_close() -> None:
    workflow = _load("pr-stack.yml")
    assert workflow["on"] == {
        "pull_request": {"branches": ["main"], "types": ["opened", "reopened", "synchronize", "closed"]}
    }
    assert workflow["concurrency"]["cancel-in-progress"] is False
    stack = f"{ORG}/{PROJECT}/pr-${{{{ github.event.pull_request.number }}}}"

    up = workflow["jobs"]["up"]
    assert up["if"].startswith("github.event.action != 'closed'")
    (_, step), = _pulumi_steps(up)  # fmt: skip
    assert (step["with"]["command"], step["with"]["stack-name"], step["with"]["upsert"]) == ("up", stack, True)
    config = {key: entry["value"] for key, entry in yaml.safe_load(step["with"]["config-map"]).items()}
    assert config == {f"{PROJECT}:parentStack": f"{ORG}/{PROJECT}/dev", f"{PROJECT}:kubernetesMode": "render",
                      f"{PROJECT}:branchTtl": "7d"}
    # The configuration the workflow gives the PR stack is valid for the program.
    settings = parse_settings({k: v.replace(ORG, "acme") for k, v in config.items()}, "pr-7")
    assert settings.branch_mode is not None and settings.branch_mode.parent_stack == f"acme/{PROJECT}/dev"
    assert settings.branch_mode.ttl_seconds == 7 * 86400
    assert settings.kubernetes.mode == "render"
    _assert_pulumi_environment(step, kubeconfig=False)

    destroy = workflow["jobs"]["destroy"]
    assert destroy["if"].startswith("github.event.action == 'closed'")
    assert "permissions" not in destroy
    (index, install), = _pulumi_steps(destroy)  # fmt: skip
    assert "command" not in install["with"]
    script_step = destroy["steps"][index + 1]
    assert script_step["env"]["STACK"] == stack
    _assert_pulumi_environment(script_step, kubeconfig=False)
    commands = [line.strip() for line in script_step["run"].splitlines()]
    destroy_line = commands.index('pulumi destroy --yes --non-interactive --stack "$STACK"')
    assert commands[destroy_line + 1] == 'pulumi stack rm --yes --non-interactive --stack "$STACK"'


def test_test_workflow_runs_the_ci_command() -> None:
    workflow = _load("test.yml")
    assert set(workflow["on"]) == {"pull_request", "push"}
    ci_command = (PROJECT_ROOT / ".ci" / "run").read_text().strip().splitlines()[-1]
    (job,) = workflow["jobs"].values()
    runs = [step["run"] for step in job["steps"] if "run" in step]
    assert runs[-1] == ci_command
    assert "sudo apt-get install -y -qq pgbouncer postgresql" in runs[0]


def test_pr_stack_comments_the_schema_diff_in_one_comment_per_pr() -> None:
    up = _load("pr-stack.yml")["jobs"]["up"]
    steps = up["steps"]
    (pulumi_index, _), = _pulumi_steps(up)  # fmt: skip
    write, post = steps[pulumi_index + 1], steps[pulumi_index + 2]
    assert write["env"]["PARENT_STACK"] == f"{ORG}/{PROJECT}/dev"
    assert write["env"]["BRANCH_STACK"] == f"{ORG}/{PROJECT}/pr-${{{{ github.event.pull_request.number }}}}"
    assert write["env"]["PULUMI_ACCESS_TOKEN"] == "${{ secrets.PULUMI_ACCESS_TOKEN }}"
    assert "venv/bin/python -m scripts.pr_schema_comment" in write["run"]
    assert '--out "$RUNNER_TEMP/schema-diff.md"' in write["run"]
    assert post["uses"] == "actions/github-script@v7"
    assert post["env"]["BODY_FILE"] == "${{ runner.temp }}/schema-diff.md"
    script = post["with"]["script"]
    # The comment is found by the body's first line (the marker the comment builder writes) and updated.
    assert "body.split('\\n', 1)[0]" in script and "c.body.startsWith(marker)" in script
    assert script.index("updateComment") < script.index("createComment")
    assert up["permissions"] == {"contents": "read", "pull-requests": "write"}
