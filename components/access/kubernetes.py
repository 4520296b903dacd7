"""An application's Kubernetes objects: its namespace, the database Secret and the Dapr state store.

The Secret carries the app role's POOLED URI (TLS) as DATABASE_URL plus the libpq variables, both
rendered from one `Credentials` value, and, when the branch has read replicas, the app role's pooled
URI of a read-only endpoint as DATABASE_URL_READONLY; its data is secret in Pulumi state and outputs. The Dapr
Component reads DATABASE_URL through `secretKeyRef` from the same namespace.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import pulumi
import pulumi_kubernetes as k8s

from components.access.dapr import API_VERSION, CONNECTION_STRING_KEY, KIND, state_store_component
from components.settings import PROJECT
from components.uri import Credentials

NamespacePolicy = Literal["create", "read", "assume"]
"""How an app's namespace is had: `create` it; `read` it from the cluster, so that a missing one fails
before any write; or `assume` it exists and only name it (render mode has no cluster to read)."""


def kubernetes_provider(
    name: str,
    *,
    render_directory: str | None = None,
    kubeconfig: str | None = None,
    context: str | None = None,
    opts: pulumi.ResourceOptions | None = None,
) -> k8s.Provider:
    """An explicit provider: YAML rendered to `render_directory` when it is given, else the cluster of
    `kubeconfig` and `context` (None: the provider's own defaults)."""
    if render_directory is not None:
        args = {"render_yaml_to_directory": render_directory}
    else:
        args = {"kubeconfig": kubeconfig, "context": context}
    return k8s.Provider(name, **args, opts=opts)


def _labels(app_name: str, component: str) -> dict[str, str]:
    return {
        "app.kubernetes.io/name": app_name,
        "app.kubernetes.io/part-of": PROJECT,
        "app.kubernetes.io/managed-by": "pulumi",
        "app.kubernetes.io/component": component,
    }


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


READ_ONLY_URL_KEY = "DATABASE_URL_READONLY"


def secret_data(credentials: Credentials, read_only: Credentials | None = None) -> dict:
    """The Secret's `data` (base64): the URI and libpq's variables of the same credentials, and the
    read-only URI when there is one."""
    values = {CONNECTION_STRING_KEY: credentials.uri(), **credentials.environment()}
    if read_only is not None:
        values[READ_ONLY_URL_KEY] = read_only.uri()
    return {key: _b64(value) for key, value in values.items()}


class DaprComponent(pulumi.CustomResource):
    """A Dapr Component, handed to the Kubernetes provider whole under its own type token.

    `pulumi_kubernetes.apiextensions.CustomResource` takes only metadata and spec, and a Component
    also has top-level `scopes`. A `yaml/v2` ConfigGroup keeps them, but with no cluster to ask
    (render mode) providers before 4.32 cannot tell whether the kind is namespaced and refuse it.
    """

    def __init__(self, name: str, manifest: dict, opts: pulumi.ResourceOptions | None = None):
        super().__init__(f"kubernetes:{API_VERSION}:{KIND}", name, dict(manifest), opts)


@dataclass
class KubernetesObjectsArgs:
    """Where one application's Kubernetes objects live and what they are called (Kubernetes names,
    checked by the caller)."""

    namespace: str
    """The namespace of the Secret and the Component."""
    namespace_policy: NamespacePolicy
    """Whether the namespace is created, read from the cluster, or assumed to exist."""
    secret_name: str
    """Name of the Secret, which the Component reads DATABASE_URL from."""
    dapr_component_name: str
    """Name of the Dapr state store Component."""
    dapr_scopes: Sequence[str]
    """Dapr app ids that may load the Component; empty: every app of the namespace."""
    dapr_init_timeout: str
    """The Component's `initTimeout`, a Go duration such as 30s."""


@dataclass
class AppKubernetesArgs:
    """Inputs of one application's Kubernetes objects."""

    app_name: str
    """The application: the value of the label `app.kubernetes.io/name` on every object."""
    credentials: pulumi.Input[Credentials]
    """The app role's login on the POOLED host: the Secret's DATABASE_URL and PG* variables (secret)."""
    objects: KubernetesObjectsArgs
    """The namespace and the names of the Secret and the Component."""
    provider: k8s.Provider
    """The explicit Kubernetes provider of every object."""
    protect: bool
    """Protect (and retain on delete) every object."""
    read_only_credentials: pulumi.Input[Credentials] | None = None
    """The app role's login on a read replica's POOLED host: DATABASE_URL_READONLY (secret); None: no replica."""


class AppKubernetes(pulumi.ComponentResource):
    """Namespace (made or required), database Secret and Dapr state store Component of one app."""

    namespace: pulumi.Output[str]
    secret_name: pulumi.Output[str]
    dapr_component_name: pulumi.Output[str]

    def __init__(self, name: str, args: AppKubernetesArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("neon-stack:kubernetes:AppKubernetes", name, None, opts)
        child = pulumi.ResourceOptions(
            parent=self, provider=args.provider, protect=args.protect, retain_on_delete=args.protect
        )

        objects = args.objects
        self.namespace = self._namespace(name, args, child)
        secret = k8s.core.v1.Secret(
            f"{name}-secret",
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name=objects.secret_name,
                namespace=self.namespace,
                labels=_labels(args.app_name, "database-credentials"),
            ),
            type="Opaque",
            data=pulumi.Output.secret(
                pulumi.Output.all(args.credentials, args.read_only_credentials).apply(lambda c: secret_data(*c))
            ),
            opts=pulumi.ResourceOptions.merge(
                child, pulumi.ResourceOptions(additional_secret_outputs=["data", "stringData"])
            ),
        )
        component = state_store_component(
            name=objects.dapr_component_name,
            namespace=self.namespace,
            secret_name=objects.secret_name,
            init_timeout=objects.dapr_init_timeout,
            scopes=objects.dapr_scopes,
            labels=_labels(args.app_name, "state-store"),
        )
        dapr = DaprComponent(
            f"{name}-dapr",
            component,
            opts=pulumi.ResourceOptions.merge(child, pulumi.ResourceOptions(depends_on=[secret])),
        )
        self.secret_name = secret.metadata.apply(lambda m: m.name)
        self.dapr_component_name = dapr.urn.apply(lambda _: objects.dapr_component_name)
        self.register_outputs(
            {
                "namespace": self.namespace,
                "secretName": self.secret_name,
                "daprComponentName": self.dapr_component_name,
            }
        )

    def _namespace(self, name: str, args: AppKubernetesArgs, child: pulumi.ResourceOptions) -> pulumi.Output[str]:
        objects = args.objects
        if objects.namespace_policy == "create":
            namespace = k8s.core.v1.Namespace(
                f"{name}-namespace",
                metadata=k8s.meta.v1.ObjectMetaArgs(name=objects.namespace, labels=_labels(args.app_name, "namespace")),
                opts=child,
            )
            return namespace.metadata.apply(lambda m: m.name)
        if objects.namespace_policy == "assume":
            return pulumi.Output.from_input(objects.namespace)
        existing = k8s.core.v1.Namespace.get(
            f"{name}-namespace", objects.namespace, opts=pulumi.ResourceOptions(parent=self, provider=args.provider)
        )
        return existing.id.apply(lambda _: objects.namespace)  # fails here, before any write, if it is missing
