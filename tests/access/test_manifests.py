"""The Secret and Dapr Component as the program declares them: captured under mocks, rendered, validated."""

from __future__ import annotations

import base64
import copy
from pathlib import Path
from urllib.parse import urlsplit

import kubernetes_validate
import pulumi
import pytest

from components.access.kubernetes import AppKubernetes, kubernetes_provider
from components.uri import Credentials, pooled_host, postgres_uri
from tests.access.conftest import app_kubernetes_args
from tests.support.manifests import (
    check_component,
    check_manifests,
    check_rendered,
    check_secret,
    check_secret_references,
    declared_manifests,
    write_manifests,
)
from tests.support.pulumi_mocks import ProgramRun, run_program

PASSWORD = "app-password/with:odd@chars"
POOLED_HOST = pooled_host("ep-cool-1.c-2.us-east-2.aws.neon.tech")
SCOPES = {"chatkit": ("chat-api", "chat-worker"), "learnflow": ()}
"""The apps declared, with their Dapr scopes."""


def declare(
    *, render_directory: str | None = "rendered", context: str | None = None, channel_binding: bool = False,
    **overrides: object,
) -> ProgramRun:
    """Run a program that declares AppKubernetes for both apps (stack defaults, then `overrides`)."""

    def program() -> None:
        provider = kubernetes_provider("k8s", render_directory=render_directory, context=context)
        for app, scopes in SCOPES.items():
            credentials = pulumi.Output.secret(PASSWORD).apply(
                lambda p, app=app: Credentials(f"{app}_app", p, POOLED_HOST, app, channel_binding=channel_binding)
            )
            AppKubernetes(app, app_kubernetes_args(app, credentials, provider, dapr_scopes=scopes, **overrides))

    return run_program(program, config={})


@pytest.fixture(scope="module")
def declared() -> ProgramRun:
    return declare()


def by_kind(objects: list[dict], kind: str, namespace: str) -> dict:
    (found,) = [o for o in objects if o["kind"] == kind and o["metadata"]["namespace"] == namespace]
    return found


def test_rendered_manifests_pass_every_check(declared: ProgramRun, tmp_path: Path) -> None:
    objects = declared_manifests(declared)
    assert sorted(o["kind"] for o in objects) == ["Component", "Component", "Secret", "Secret"]
    directory = write_manifests(objects, tmp_path)
    assert check_rendered(directory) == []
    for secret in (o for o in objects if o["kind"] == "Secret"):
        kubernetes_validate.validate(secret, "1.33.0", strict=True)


def test_secret_carries_the_pooled_uri_and_libpq_variables(declared: ProgramRun) -> None:
    secret = by_kind(declared_manifests(declared), "Secret", "chatkit")
    assert secret["type"] == "Opaque"
    assert secret["metadata"]["name"] == "postgres-credentials"
    assert secret["metadata"]["labels"] == {
        "app.kubernetes.io/name": "chatkit",
        "app.kubernetes.io/part-of": "neon-stack",
        "app.kubernetes.io/managed-by": "pulumi",
        "app.kubernetes.io/component": "database-credentials",
    }
    data = {k: base64.b64decode(v).decode() for k, v in secret["data"].items()}
    pooled = "ep-cool-1-pooler.c-2.us-east-2.aws.neon.tech"
    assert pooled == POOLED_HOST
    assert data == {
        "DATABASE_URL": postgres_uri("chatkit_app", PASSWORD, pooled, "chatkit"),
        "PGHOST": pooled,
        "PGPORT": "5432",
        "PGDATABASE": "chatkit",
        "PGUSER": "chatkit_app",
        "PGPASSWORD": PASSWORD,
        "PGSSLMODE": "require",
    }
    assert urlsplit(data["DATABASE_URL"]).password is not None
    assert "channel_binding" not in data["DATABASE_URL"]


def test_secret_data_is_secret_in_state(declared: ProgramRun) -> None:
    for secret in declared.of_type("kubernetes:core/v1:Secret"):
        assert "data" in secret.secret_inputs and "data" in secret.secret_outputs
        assert {"data", "stringData"} <= set(secret.options["additional_secret_outputs"])
    for resource in declared.resources:
        if resource.type != "kubernetes:core/v1:Secret":
            assert PASSWORD not in repr(resource.inputs) and PASSWORD not in repr(resource.outputs)


def test_component_is_dapr_postgres_v2_through_the_secret(declared: ProgramRun) -> None:
    objects = declared_manifests(declared)
    component = by_kind(objects, "Component", "chatkit")
    assert component["apiVersion"] == "dapr.io/v1alpha1"
    assert component["metadata"]["name"] == "statestore"
    assert component["scopes"] == ["chat-api", "chat-worker"]
    assert "auth" not in component  # the built-in kubernetes secret store is Dapr's default
    spec = component["spec"]
    assert (spec["type"], spec["version"], spec["initTimeout"]) == ("state.postgresql", "v2", "30s")
    assert {item["name"]: item.get("value", item.get("secretKeyRef")) for item in spec["metadata"]} == {
        "connectionString": {"name": "postgres-credentials", "key": "DATABASE_URL"},
        "tablePrefix": "dapr.",
        "metadataTableName": "dapr.dapr_metadata",
        "queryExecMode": "exec",
    }
    assert "scopes" not in by_kind(objects, "Component", "learnflow")


def test_component_waits_for_its_secret(declared: ProgramRun) -> None:
    dapr = declared.one("kubernetes:dapr.io/v1alpha1:Component", "chatkit-dapr")
    secret = declared.one("kubernetes:core/v1:Secret", "chatkit-secret")
    assert secret.urn in dapr.options["depends_on"]
    component = declared.one("neon-stack:kubernetes:AppKubernetes", "chatkit")
    assert dapr.options["parent"] == component.urn == secret.options["parent"]
    provider = declared.one("pulumi:providers:kubernetes", "k8s")
    assert provider.inputs == {"renderYamlToDirectory": "rendered"}
    assert dapr.options["provider"].startswith(provider.urn)


def test_namespace_is_made_read_or_assumed() -> None:
    made = declare()
    assert sorted(r.inputs["metadata"]["name"] for r in made.of_type("kubernetes:core/v1:Namespace")) == [
        "chatkit",
        "learnflow",
    ]
    assumed = declare(namespace_policy="assume")
    assert assumed.of_type("kubernetes:core/v1:Namespace") == []
    assert by_kind(declared_manifests(assumed), "Secret", "chatkit")["metadata"]["namespace"] == "chatkit"
    cluster = declare(namespace_policy="read", render_directory=None, context="staging")
    namespaces = cluster.of_type("kubernetes:core/v1:Namespace")
    assert sorted((n.read, n.name) for n in namespaces) == [(True, "chatkit-namespace"), (True, "learnflow-namespace")]
    assert by_kind(declared_manifests(cluster), "Secret", "chatkit")["metadata"]["namespace"] == "chatkit"
    assert cluster.one("pulumi:providers:kubernetes", "k8s").inputs == {"context": "staging"}


def test_names_and_init_timeout_are_the_inputs() -> None:
    run = declare(secret_name="db-login", dapr_component_name="orders-store", dapr_init_timeout="2m")
    objects = declared_manifests(run)
    secret, component = by_kind(objects, "Secret", "chatkit"), by_kind(objects, "Component", "chatkit")
    assert (secret["metadata"]["name"], component["metadata"]["name"]) == ("db-login", "orders-store")
    assert component["spec"]["initTimeout"] == "2m"
    assert component["spec"]["metadata"][0]["secretKeyRef"] == {"name": "db-login", "key": "DATABASE_URL"}


def test_registered_outputs_are_camel_case() -> None:
    run = declare(dapr_component_name="orders-store")
    assert run.one("neon-stack:kubernetes:AppKubernetes", "chatkit").outputs == {
        "namespace": "chatkit",
        "secretName": "postgres-credentials",
        "daprComponentName": "orders-store",
    }


def test_channel_binding_of_the_credentials_reaches_database_url() -> None:
    run = declare(channel_binding=True)
    secret = by_kind(declared_manifests(run), "Secret", "learnflow")
    url = base64.b64decode(secret["data"]["DATABASE_URL"]).decode()
    assert url.endswith("sslmode=require&channel_binding=require")
    assert base64.b64decode(secret["data"]["PGCHANNELBINDING"]) == b"require"


# Negative tests: each check fails on a manifest broken in exactly one way.


@pytest.fixture
def good(declared: ProgramRun) -> tuple[dict, dict]:
    objects = declared_manifests(declared)
    return by_kind(objects, "Secret", "chatkit"), by_kind(objects, "Component", "chatkit")


def broken_component(component: dict, change) -> dict:
    component = copy.deepcopy(component)
    change(component)
    return component


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (lambda c: c["spec"].pop("type"), "spec.type is required"),
        (lambda c: c["spec"].pop("version"), "spec.version is required"),
        (lambda c: c["spec"].pop("metadata"), "spec.metadata is required"),
        (lambda c: c["spec"].update(metdata=[]), "spec.metdata: unknown field"),
        (lambda c: c.update(extra=1), "extra: unknown field"),
        (lambda c: c["spec"].update(scopes=["x"]), "spec.scopes: unknown field"),
        (lambda c: c["spec"]["metadata"][1].pop("value"), "exactly one of value, secretKeyRef, envRef"),
        (lambda c: c["spec"]["metadata"][1].update(envRef="X"), "exactly one of value, secretKeyRef, envRef"),
        (lambda c: c["spec"]["metadata"][1].pop("name"), "name is required"),
        (lambda c: c["spec"]["metadata"][0]["secretKeyRef"].pop("name"), "secretKeyRef.name is required"),
        (lambda c: c["spec"]["metadata"][0]["secretKeyRef"].update(optional=True), "unknown field"),
        (lambda c: c["spec"]["metadata"].append({"name": "tablePrefix", "value": "x"}), "appears more than once"),
        (lambda c: c["spec"].update(initTimeout="30 seconds"), "not a Go duration"),
        (lambda c: c["spec"].update(ignoreErrors="yes"), "ignoreErrors must be true or false"),
        (lambda c: c.update(scopes="chat-api"), "scopes must be a list"),
        (lambda c: c.update(auth={"secretstore": "kubernetes"}), "auth.secretstore: unknown field"),
        (lambda c: c["metadata"].update(name="State_Store"), "not a DNS-1123 subdomain"),
        (lambda c: c.update(apiVersion="dapr.io/v1"), "apiVersion must be dapr.io/v1alpha1"),
    ],
)
def test_component_check_rejects(good, change, expected) -> None:
    _, component = good
    assert check_component(component) == []
    problems = check_component(broken_component(component, change))
    assert any(expected in p for p in problems), problems


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (lambda s: s["data"].update(PGPASSWORD="not base64!"), "data.PGPASSWORD is not valid base64"),
        (lambda s: s["data"].update({"bad key": "eA=="}), "does not match"),
        (lambda s: s["metadata"].update(name="Postgres_Credentials"), "not a DNS-1123 subdomain"),
        (lambda s: s["metadata"].update(namespace="chat.kit"), "not a DNS-1123 label"),
        (lambda s: s.update(date={}), "date: unknown field"),
    ],
)
def test_secret_check_rejects(good, change, expected) -> None:
    secret, _ = good
    assert check_secret(secret) == []
    broken = copy.deepcopy(secret)
    change(broken)
    problems = check_secret(broken)
    assert any(expected in p for p in problems), problems


def test_kubernetes_validate_strict_rejects_a_misspelled_secret_field(good) -> None:
    secret, _ = good
    broken = {**copy.deepcopy(secret), "strinData": {}}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, "1.33.0", strict=True)


@pytest.mark.parametrize(
    ("change_secret", "change_component", "expected"),
    [
        (lambda s: s["data"].pop("DATABASE_URL"), lambda c: None, "refers to key 'DATABASE_URL', absent"),
        (lambda s: s["metadata"].update(namespace="other"), lambda c: None, "absent from namespace 'chatkit'"),
        (lambda s: s["metadata"].update(name="other"), lambda c: None, "absent from namespace 'chatkit'"),
        (lambda s: None, lambda c: c["spec"]["metadata"][0]["secretKeyRef"].pop("key"), "key 'postgres-credentials'"),
    ],
)
def test_reference_check_rejects(good, change_secret, change_component, expected) -> None:
    secret, component = copy.deepcopy(good[0]), copy.deepcopy(good[1])
    assert check_secret_references([secret, component]) == []
    change_secret(secret)
    change_component(component)
    problems = check_manifests([secret, component])
    assert any(expected in p for p in problems), problems


def test_references_into_another_secret_store_are_not_checked_against_kubernetes(good) -> None:
    component = copy.deepcopy(good[1])
    assert check_manifests([component]) != []  # kubernetes store: the Secret is missing
    component["auth"] = {"secretStore": "vault"}
    assert check_manifests([component]) == []
