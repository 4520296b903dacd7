"""An application's Kubernetes objects: its namespace, the database Secret and the Dapr state store.

The Secret carries the app role's POOLED URI (TLS) as DATABASE_URL plus the libpq variables, both
rendered from one `Credentials` value; its data is secret in Pulumi state and outputs. The Dapr
Component reads DATABASE_URL through `secretKeyRef` from the same namespace.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s

from components.dapr import API_VERSION, CONNECTION_STRING_KEY, KIND, state_store_component
from components.settings import PROJECT, AppSettings, KubernetesSettings
from components.uri import Credentials


def kubernetes_provider(
    name: str, settings: KubernetesSettings, opts: pulumi.ResourceOptions | None = None
) -> k8s.Provider:
    """An explicit provider: the configured kubeconfig/context, or YAML rendered to a directory."""
    if settings.mode == "render":
        args = {"render_yaml_to_directory": settings.render_directory}
    else:
        args = {"kubeconfig": settings.kubeconfig, "context": settings.context}
    return k8s.Provider(name, **args, opts=opts)


def _labels(app: AppSettings, component: str) -> dict[str, str]:
    return {
        "app.kubernetes.io/name": app.name,
        "app.kubernetes.io/part-of": PROJECT,
        "app.kubernetes.io/managed-by": "pulumi",
        "app.kubernetes.io/component": component,
    }


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def secret_data(app: AppSettings, credentials: Credentials) -> dict:
    """The Secret's `data` (base64): the URI and libpq's variables of the same credentials.

    Raises ValueError if their channel binding disagrees with neon-stack:channelBinding.
    """
    if credentials.channel_binding != app.channel_binding:
        raise ValueError(
            f"the credentials of {app.name} {'lack' if app.channel_binding else 'have'} channel_binding=require, "
            f"but neon-stack:channelBinding is {str(app.channel_binding).lower()}"
        )
    values = {CONNECTION_STRING_KEY: credentials.uri(), **credentials.environment()}
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
class AppKubernetesArgs:
    app: AppSettings
    credentials: pulumi.Input[Credentials]
    """Secret: the app role's login on the POOLED host, with app.channel_binding."""
    provider: k8s.Provider
    kubernetes: KubernetesSettings
    """createNamespaces false: the namespace must exist (read in cluster mode, referenced when rendering)."""
    protect: bool = False


class AppKubernetes(pulumi.ComponentResource):
    """Namespace (made or required), database Secret and Dapr state store Component of one app."""

    namespace: pulumi.Output[str]
    secret_name: pulumi.Output[str]
    component_name: pulumi.Output[str]

    def __init__(self, name: str, args: AppKubernetesArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("neon-stack:kubernetes:AppKubernetes", name, None, opts)
        app = args.app
        child = pulumi.ResourceOptions(
            parent=self, provider=args.provider, protect=args.protect, retain_on_delete=args.protect
        )

        self.namespace = self._namespace(name, args, child)
        secret = k8s.core.v1.Secret(
            f"{name}-secret",
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name=app.secret_name, namespace=self.namespace, labels=_labels(app, "database-credentials")
            ),
            type="Opaque",
            data=pulumi.Output.secret(
                pulumi.Output.from_input(args.credentials).apply(lambda credentials: secret_data(app, credentials))
            ),
            opts=pulumi.ResourceOptions.merge(
                child, pulumi.ResourceOptions(additional_secret_outputs=["data", "stringData"])
            ),
        )
        component = state_store_component(
            name=app.dapr_component_name,
            namespace=self.namespace,
            secret_name=app.secret_name,
            init_timeout=app.dapr_init_timeout,
            scopes=app.dapr_scopes,
            labels=_labels(app, "state-store"),
        )
        dapr = DaprComponent(
            f"{name}-dapr",
            component,
            opts=pulumi.ResourceOptions.merge(child, pulumi.ResourceOptions(depends_on=[secret])),
        )
        self.secret_name = secret.metadata.apply(lambda m: m.name)
        self.component_name = dapr.urn.apply(lambda _: app.dapr_component_name)
        self.register_outputs(
            {"namespace": self.namespace, "secret_name": self.secret_name, "component_name": self.component_name}
        )

    def _namespace(self, name: str, args: AppKubernetesArgs, child: pulumi.ResourceOptions) -> pulumi.Output[str]:
        app = args.app
        if args.kubernetes.create_namespaces:
            namespace = k8s.core.v1.Namespace(
                f"{name}-namespace",
                metadata=k8s.meta.v1.ObjectMetaArgs(name=app.namespace, labels=_labels(app, "namespace")),
                opts=child,
            )
            return namespace.metadata.apply(lambda m: m.name)
        if args.kubernetes.mode == "render":
            return pulumi.Output.from_input(app.namespace)
        existing = k8s.core.v1.Namespace.get(
            f"{name}-namespace", app.namespace, opts=pulumi.ResourceOptions(parent=self, provider=args.provider)
        )
        return existing.id.apply(lambda _: app.namespace)  # fails here, before any write, if it is missing
