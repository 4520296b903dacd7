"""The program maps each setting once to the components' inputs: every setting below reaches the resource
that uses it, and the stack outputs and the components' registered outputs keep their camelCase names."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

from tests.program.conftest import Deployer
from tests.support.manifests import declared_manifests

STACK_OUTPUTS = {"projectId", "primaryBranchId", "branchIds", "apps", "appDatabaseUrls", "ownerDatabaseUrls"}
APP_OUTPUTS = {"database", "branchId", "namespace", "secretName", "daprComponentName", "latestMigration", "tables",
               "loginRole"}  # fmt: skip
SETTINGS = {
    "neon-stack:computeMaxCu": "2",
    "neon-stack:allowOutOfOrderMigrations": "true",
    "neon-stack:migrationLockTimeout": "7s",
    "neon-stack:passwordVersion": "3",
    "neon-stack:namespaces": '["learnflow=learning"]',
    "neon-stack:secretName": "db-login",
    "neon-stack:daprComponentName": "orders-store",
    "neon-stack:daprScopes": '["chatkit=chat-api"]',
    "neon-stack:daprInitTimeout": "45s",
    "neon-stack:channelBinding": "true",
}
NAMESPACES = {"chatkit": "chatkit", "learnflow": "learning"}


def test_every_setting_reaches_its_resource_under_its_output_name(neon_api, tmp_path: Path) -> None:
    run = Deployer(neon_api, tmp_path / "rendered", "dev", SETTINGS).up()
    assert set(run.outputs) == STACK_OUTPUTS
    assert run.secret_outputs == {"appDatabaseUrls", "ownerDatabaseUrls"}  # appReadOnlyDatabaseUrls: no replica
    environment = run.one("neon-stack:neon:NeonDatabase", "neon")
    assert environment.outputs == {key: run.outputs[key] for key in ("projectId", "primaryBranchId", "branchIds")}
    assert run.one("neon:Project", "neon-project").inputs["max_cu"] == 2
    objects = declared_manifests(run)

    for app, namespace in NAMESPACES.items():
        application = run.one("neon-stack:app:Application", app)
        exported = run.outputs["apps"][app]
        assert set(exported) == APP_OUTPUTS and set(application.outputs) == APP_OUTPUTS | {
            "appDatabaseUrl", "ownerDatabaseUrl"}  # fmt: skip
        assert exported == {key: application.outputs[key] for key in APP_OUTPUTS}
        assert (exported["namespace"], exported["secretName"], exported["daprComponentName"]) == (
            namespace, "db-login", "orders-store")  # fmt: skip

        schema = run.one("schema:Migrations", f"{app}-schema").inputs
        assert (schema["allow_out_of_order"], schema["lock_timeout"]) == (True, "7s")
        role = run.one("postgres:AppRole", f"{app}-role").inputs
        assert (role["role_name"], role["password_version"], role["owner_role"]) == (f"{app}_app", 3, f"{app}_owner")

        secret, component = (
            next(o for o in objects if o["kind"] == kind and o["metadata"]["namespace"] == namespace)
            for kind in ("Secret", "Component")
        )
        url = base64.b64decode(secret["data"]["DATABASE_URL"]).decode()
        assert url == run.outputs["appDatabaseUrls"][app]
        assert url.endswith("&channel_binding=require&connect_timeout=15")
        assert run.outputs["ownerDatabaseUrls"][app].endswith("&channel_binding=require")
        assert (secret["metadata"]["name"], component["metadata"]["name"]) == ("db-login", "orders-store")
        assert component["spec"]["initTimeout"] == "45s"
        assert component["spec"]["metadata"][0]["secretKeyRef"]["name"] == "db-login"
        assert component.get("scopes") == (["chat-api"] if app == "chatkit" else None)


def test_branch_mode_reads_the_parent_stack_outputs(neon_api, tmp_path: Path) -> None:
    parent = {"outputs": {"projectId": "proud-parent-123", "primaryBranchId": "br-parent-456"}}
    deployer = Deployer(neon_api, tmp_path / "rendered", "dev", {
        "neon-stack:parentStack": "org/neon-stack/dev", "neon-stack:branchName": "pr-7",
        "neon-stack:branchInitSource": "schema-only"})  # fmt: skip
    planned = deployer.up(preview=True, stack_references={"org/neon-stack/dev": parent})
    assert planned.of_type("neon:Project") == []
    branch = planned.one("neon:Branch", "neon-branch").inputs
    assert (branch["project_id"], branch["parent_id"]) == ("proud-parent-123", "br-parent-456")
    assert (branch["name"], branch["init_source"]) == ("pr-7", "schema-only")
    assert neon_api.calls == []


@pytest.mark.parametrize(
    ("mode", "create", "expected"),
    [("render", "true", "made"), ("cluster", "true", "made"), ("cluster", "false", "read"), ("render", "false", None)],
)
def test_namespaces_are_made_read_or_assumed(neon_api, tmp_path: Path, mode: str, create: str, expected) -> None:
    settings = {"neon-stack:kubernetesMode": mode, "neon-stack:createNamespaces": create}
    planned = Deployer(neon_api, tmp_path / "rendered", "dev", settings).up(preview=True)
    namespaces = planned.of_type("kubernetes:core/v1:Namespace")
    assert sorted(n.name for n in namespaces) == ([] if expected is None else [
        "chatkit-kubernetes-namespace", "learnflow-kubernetes-namespace"])  # fmt: skip
    assert all(n.read == (expected == "read") for n in namespaces)
    provider = planned.one("pulumi:providers:kubernetes", "kubernetes")
    assert ("renderYamlToDirectory" in provider.inputs) == (mode == "render")
