"""Dynamic resource `pulumi-python:dynamic/neon:Role`: an API-managed (owner/migrator) role on a branch.

The password is a secret output learnt ONCE: from the creation answer, or, when an existing
role is adopted (`adopt=True`, e.g. a role Neon copied to a new branch), from `known_password`
if the stack already knows it, else from a single reset_password. Refresh and diff never
reveal it. Any change of project, branch or name replaces the role.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pulumi
from pulumi.dynamic import CheckResult, CreateResult, DiffResult, ReadResult, Resource, UpdateResult

from components.neon.provider import BRANCH_OBJECT_KEYS, NeonProvider, branch_object_id, check_branch_object
from components.neon.session import ClientPolicy
from components.providers import InputChecker, diff_from_state, plain_inputs

REPLACE_KEYS = BRANCH_OBJECT_KEYS
SECRET_OUTPUTS = ["password", "known_password"]


class RoleProvider(NeonProvider):
    def check(self, olds: dict[str, Any], news: dict[str, Any]) -> CheckResult:
        c = InputChecker(news)
        check_branch_object(c)
        c.string("known_password", required=False, secret=True)
        return c.result()

    def diff(self, id_: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        return diff_from_state(olds, news, REPLACE_KEYS, ())

    def create(self, props: dict[str, Any]) -> CreateResult:
        inputs = plain_inputs(props)
        project_id, branch_id, name = inputs["project_id"], inputs["branch_id"], inputs["name"]
        with self.client() as client:
            existing = client.find_role(project_id, branch_id, name) if inputs.get("adopt") else None
            if existing is not None:
                password = inputs.get("known_password") or client.reset_role_password(project_id, branch_id, name)
            else:
                role = client.create_role(project_id, branch_id, name).get("role") or {}
                password = role.get("password") or client.reset_role_password(project_id, branch_id, name)
        return CreateResult(branch_object_id(inputs), {**inputs, "password": password})

    def update(self, id_: str, olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        return UpdateResult({**olds, **plain_inputs(news), "password": olds.get("password")})

    def delete(self, id_: str, props: dict[str, Any]) -> None:
        with self.client() as client:
            client.delete_role(props["project_id"], props["branch_id"], props["name"])

    def read(self, id_: str, props: dict[str, Any]) -> ReadResult:
        with self.client() as client:
            found = client.find_role(props["project_id"], props["branch_id"], props["name"])
        return ReadResult(id_, plain_inputs(props)) if found else ReadResult("", {})


@dataclass
class RoleArgs:
    project_id: pulumi.Input[str]
    branch_id: pulumi.Input[str]
    name: pulumi.Input[str]
    adopt: pulumi.Input[bool] = False
    known_password: pulumi.Input[str] | None = None


class Role(Resource, module="neon", name="Role"):
    password: pulumi.Output[str]

    def __init__(self, name: str, args: RoleArgs, opts: pulumi.ResourceOptions | None = None,
                 policy: ClientPolicy | None = None):
        props = {**vars(args), "password": None}
        opts = pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(additional_secret_outputs=SECRET_OUTPUTS))
        super().__init__(RoleProvider(policy), name, props, opts)
