"""The Kubernetes objects a program declared, as the Kubernetes provider would receive them, and
strict checks of its Dapr Components and Secrets.

The checks are our own reading of the Dapr Component resource (dapr.io/v1alpha1) and of core/v1
Secret rules, and they run on plain manifests: those the program declares (captured under mocks)
or YAML files rendered by the Kubernetes provider (`check_rendered(directory)`). Each check
returns a list of problems, each naming the object and the field; an empty list means the
manifests are sound.
"""

from __future__ import annotations

import base64
import binascii
import copy
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import yaml

from components.access.dapr import API_VERSION, KIND
from components.settings import DNS_LABEL, DNS_SUBDOMAIN, GO_DURATION
from tests.support.pulumi_mocks import ProgramRun

_SECRET_KEY = re.compile(r"^[-._a-zA-Z0-9]+$")
_COMPONENT_TYPE = re.compile(r"^[a-z0-9]+(\.[a-z0-9_-]+)+$")
_COMPONENT_VERSION = re.compile(r"^v[0-9]+(alpha[0-9]*|beta[0-9]*)?$")

_COMPONENT_FIELDS = frozenset({"apiVersion", "kind", "metadata", "spec", "auth", "scopes"})
_OBJECT_META_FIELDS = frozenset({"name", "namespace", "labels", "annotations"})
_SPEC_FIELDS = frozenset({"type", "version", "metadata", "initTimeout", "ignoreErrors"})
_METADATA_ITEM_SOURCES = ("value", "secretKeyRef", "envRef")
_SECRET_KEY_REF_FIELDS = frozenset({"name", "key"})
_AUTH_FIELDS = frozenset({"secretStore"})
_SECRET_FIELDS = frozenset({"apiVersion", "kind", "metadata", "type", "data", "stringData", "immutable"})


def declared_manifests(run: ProgramRun) -> list[dict]:
    """The inputs of every Secret and Dapr Component."""
    return [
        copy.deepcopy(r.inputs)
        for kind in ("kubernetes:core/v1:Secret", "kubernetes:dapr.io/v1alpha1:Component")
        for r in run.of_type(kind)
    ]


def write_manifests(objects: list[dict], directory: Path) -> Path:
    """One YAML file per object, as render mode writes them."""
    for index, obj in enumerate(objects):
        (directory / f"{index}-{obj['kind'].lower()}.yaml").write_text(yaml.safe_dump(obj))
    return directory


def _describe(obj: Any) -> str:
    meta = obj.get("metadata") if isinstance(obj, dict) else None
    name = meta.get("name") if isinstance(meta, dict) else None
    kind = obj.get("kind") if isinstance(obj, dict) else None
    return f"{kind or 'object'} {name or '<unnamed>'}"


def _unknown_fields(value: Mapping[str, Any], allowed: frozenset[str], where: str) -> list[str]:
    return [f"{where}.{key}: unknown field" for key in sorted(set(value) - allowed)]


def _string_map(value: Any, where: str) -> list[str]:
    if not isinstance(value, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
        return [f"{where}: must map strings to strings"]
    return []


def _object_meta(obj: Mapping[str, Any], label: str) -> list[str]:
    meta = obj.get("metadata")
    if not isinstance(meta, dict):
        return [f"{label}: metadata is required and must be an object"]
    problems = _unknown_fields(meta, _OBJECT_META_FIELDS, f"{label}: metadata")
    name = meta.get("name")
    if not isinstance(name, str) or not DNS_SUBDOMAIN.match(name) or len(name) > 253:
        problems.append(f"{label}: metadata.name {name!r} is not a DNS-1123 subdomain")
    namespace = meta.get("namespace")
    if namespace is not None and (not isinstance(namespace, str) or not DNS_LABEL.match(namespace)
                                  or len(namespace) > 63):
        problems.append(f"{label}: metadata.namespace {namespace!r} is not a DNS-1123 label")
    for field in ("labels", "annotations"):
        if field in meta:
            problems += _string_map(meta[field], f"{label}: metadata.{field}")
    return problems


def check_component(obj: Any) -> list[str]:
    """Strict check of a Dapr Component: required fields, field types, no unknown fields."""
    label = _describe(obj)
    if not isinstance(obj, dict):
        return [f"{label}: must be an object"]
    problems = _unknown_fields(obj, _COMPONENT_FIELDS, label)
    if obj.get("apiVersion") != API_VERSION:
        problems.append(f"{label}: apiVersion must be {API_VERSION}")
    if obj.get("kind") != KIND:
        problems.append(f"{label}: kind must be {KIND}")
    problems += _object_meta(obj, label)
    problems += _component_spec(obj.get("spec"), label)
    if "auth" in obj:
        auth = obj["auth"]
        if not isinstance(auth, dict):
            problems.append(f"{label}: auth must be an object")
        else:
            problems += _unknown_fields(auth, _AUTH_FIELDS, f"{label}: auth")
            if not isinstance(auth.get("secretStore"), str) or not auth.get("secretStore"):
                problems.append(f"{label}: auth.secretStore is required and must be a non-empty string")
    if "scopes" in obj:
        scopes = obj["scopes"]
        if not isinstance(scopes, list) or not all(isinstance(s, str) and s for s in scopes):
            problems.append(f"{label}: scopes must be a list of non-empty app ids")
    return problems


def _component_spec(spec: Any, label: str) -> list[str]:
    if not isinstance(spec, dict):
        return [f"{label}: spec is required and must be an object"]
    problems = _unknown_fields(spec, _SPEC_FIELDS, f"{label}: spec")
    if not isinstance(spec.get("type"), str) or not _COMPONENT_TYPE.match(spec["type"]):
        problems.append(f"{label}: spec.type is required, such as state.postgresql")
    if not isinstance(spec.get("version"), str) or not _COMPONENT_VERSION.match(spec["version"]):
        problems.append(f"{label}: spec.version is required, such as v2")
    if "initTimeout" in spec and not (isinstance(spec["initTimeout"], str) and GO_DURATION.match(spec["initTimeout"])):
        problems.append(f"{label}: spec.initTimeout {spec['initTimeout']!r} is not a Go duration such as 30s")
    if "ignoreErrors" in spec and not isinstance(spec["ignoreErrors"], bool):
        problems.append(f"{label}: spec.ignoreErrors must be true or false")
    items = spec.get("metadata")
    if not isinstance(items, list):
        return [*problems, f"{label}: spec.metadata is required and must be a list"]
    seen: set[str] = set()
    for index, item in enumerate(items):
        problems += _metadata_item(item, f"{label}: spec.metadata[{index}]", seen)
    return problems


def _metadata_item(item: Any, where: str, seen: set[str]) -> list[str]:
    if not isinstance(item, dict):
        return [f"{where}: must be an object"]
    problems = _unknown_fields(item, frozenset({"name", *_METADATA_ITEM_SOURCES}), where)
    name = item.get("name")
    if not isinstance(name, str) or not name:
        problems.append(f"{where}: name is required")
    elif name in seen:
        problems.append(f"{where}: name {name!r} appears more than once")
    else:
        seen.add(name)
    sources = [s for s in _METADATA_ITEM_SOURCES if s in item]
    if len(sources) != 1:
        problems.append(f"{where}: needs exactly one of value, secretKeyRef, envRef (has {sources or 'none'})")
    if "value" in item and not isinstance(item["value"], str | int | float | bool):
        problems.append(f"{where}: value must be a string, number or boolean")
    if "envRef" in item and not (isinstance(item["envRef"], str) and item["envRef"]):
        problems.append(f"{where}: envRef must name an environment variable")
    if "secretKeyRef" in item:
        ref = item["secretKeyRef"]
        if not isinstance(ref, dict):
            problems.append(f"{where}: secretKeyRef must be an object")
        else:
            problems += _unknown_fields(ref, _SECRET_KEY_REF_FIELDS, f"{where}.secretKeyRef")
            if not isinstance(ref.get("name"), str) or not ref.get("name"):
                problems.append(f"{where}: secretKeyRef.name is required")
            if "key" in ref and not isinstance(ref["key"], str):
                problems.append(f"{where}: secretKeyRef.key must be a string")
    return problems


def check_secret(obj: Any) -> list[str]:
    """What schema validation of a core/v1 Secret misses: base64 data, key syntax, DNS-1123 names."""
    label = _describe(obj)
    if not isinstance(obj, dict):
        return [f"{label}: must be an object"]
    problems = _unknown_fields(obj, _SECRET_FIELDS, label)
    if obj.get("apiVersion") != "v1" or obj.get("kind") != "Secret":
        problems.append(f"{label}: must be apiVersion v1, kind Secret")
    problems += _object_meta(obj, label)
    if "type" in obj and not (isinstance(obj["type"], str) and obj["type"]):
        problems.append(f"{label}: type must be a non-empty string")
    for field in ("data", "stringData"):
        entries = obj.get(field, {})
        if not isinstance(entries, dict):
            problems.append(f"{label}: {field} must be an object")
            continue
        for key, value in entries.items():
            if not isinstance(key, str) or not _SECRET_KEY.match(key) or len(key) > 253:
                problems.append(f"{label}: {field} key {key!r} does not match [-._a-zA-Z0-9]+")
            if not isinstance(value, str):
                problems.append(f"{label}: {field}.{key} must be a string")
            elif field == "data" and not _is_base64(value):
                problems.append(f"{label}: data.{key} is not valid base64")
    return problems


def _is_base64(text: str) -> bool:
    try:
        base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return False
    return True


def _secret_keys(secret: Mapping[str, Any]) -> set[str]:
    return set(secret.get("data") or {}) | set(secret.get("stringData") or {})


def check_secret_references(objects: Iterable[Mapping[str, Any]]) -> list[str]:
    """Every secretKeyRef of a Component (using the built-in kubernetes store) names a Secret
    in the Component's namespace that holds that key (an empty key means the Secret's name)."""
    objects = list(objects)
    secrets = {
        (o["metadata"].get("namespace"), o["metadata"].get("name")): _secret_keys(o)
        for o in objects
        if o.get("kind") == "Secret" and isinstance(o.get("metadata"), dict)
    }
    problems = []
    for component in (o for o in objects if o.get("kind") == KIND):
        store = (component.get("auth") or {}).get("secretStore", "kubernetes")
        if store != "kubernetes":
            continue  # references resolve in another secret store, not in Kubernetes Secrets
        namespace = (component.get("metadata") or {}).get("namespace")
        for item in (component.get("spec") or {}).get("metadata") or []:
            ref = item.get("secretKeyRef") if isinstance(item, dict) else None
            if not isinstance(ref, dict):
                continue
            key = ref.get("key") or ref.get("name")
            keys = secrets.get((namespace, ref.get("name")))
            where = f"{_describe(component)}: metadata {item.get('name')!r}"
            if keys is None:
                problems.append(f"{where} refers to Secret {ref.get('name')!r}, absent from namespace {namespace!r}")
            elif key not in keys:
                problems.append(f"{where} refers to key {key!r}, absent from Secret {ref.get('name')!r}")
    return problems


def check_manifests(objects: Iterable[Mapping[str, Any]]) -> list[str]:
    """Every Component and Secret checked alone, then the references between them."""
    objects = list(objects)
    problems = []
    for obj in objects:
        if obj.get("kind") == KIND:
            problems += check_component(obj)
        elif obj.get("kind") == "Secret":
            problems += check_secret(obj)
    return problems + check_secret_references(objects)


def load_manifests(directory: Path) -> list[dict[str, Any]]:
    """Every object of every YAML file under `directory` (as the Kubernetes provider renders them)."""
    objects = []
    for path in sorted(Path(directory).rglob("*.y*ml")):
        objects += [doc for doc in yaml.safe_load_all(path.read_text()) if doc]
    return objects


def check_rendered(directory: Path) -> list[str]:
    return check_manifests(load_manifests(directory))
