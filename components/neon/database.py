"""Dynamic resource `pulumi-python:dynamic/neon:Database`: a database on a branch, owned by a role.

A new owner is applied in place; project, branch or name changes replace the database. With
`adopt=True` an existing database of that name (e.g. one Neon copied to a new branch) is
adopted, and its owner aligned, instead of creating one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pulumi
from pulumi.dynamic import CheckResult, CreateResult, DiffResult, ReadResult, Resource, UpdateResult

from components.neon.client import ClientPolicy
from components.neon.provider import InputChecker, NeonProvider, diff_from_state, plain_inputs

REPLACE_KEYS = ("project_id", "branch_id", "name")
UPDATE_KEYS = ("owner_name",)


class DatabaseProvider(NeonProvider):
    def check(self, olds: dict[str, Any], news: dict[str, Any]) -> CheckResult:
        c = InputChecker(news)
        c.default("adopt", False)
        c.string("project_id")
        c.string("branch_id")
        c.string("name", max_length=63)
        c.string("owner_name", max_length=63)
        c.boolean("adopt")
        return CheckResult(c.inputs, c.failures)

    def diff(self, id_: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        return diff_from_state(olds, news, REPLACE_KEYS, UPDATE_KEYS)

    def create(self, props: dict[str, Any]) -> CreateResult:
        inputs = plain_inputs(props)
        project_id, branch_id, name = inputs["project_id"], inputs["branch_id"], inputs["name"]
        with self.client() as client:
            existing = client.find_database(project_id, branch_id, name) if inputs.get("adopt") else None
            if existing is None:
                existing = client.create_database(project_id, branch_id, name, inputs["owner_name"])
            if existing.get("owner_name") != inputs["owner_name"]:
                client.update_database(project_id, branch_id, name, {"owner_name": inputs["owner_name"]})
        return CreateResult(f"{project_id}/{branch_id}/{name}", dict(inputs))

    def update(self, id_: str, olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        news = plain_inputs(news)
        if olds.get("owner_name") != news["owner_name"]:
            with self.client() as client:
                client.update_database(news["project_id"], news["branch_id"], news["name"],
                                       {"owner_name": news["owner_name"]})
        return UpdateResult({**olds, **news})

    def delete(self, id_: str, props: dict[str, Any]) -> None:
        with self.client() as client:
            client.delete_database(props["project_id"], props["branch_id"], props["name"])

    def read(self, id_: str, props: dict[str, Any]) -> ReadResult:
        with self.client() as client:
            found = client.find_database(props["project_id"], props["branch_id"], props["name"])
        if found is None:
            return ReadResult("", {})
        return ReadResult(id_, {**plain_inputs(props), "owner_name": found.get("owner_name", props.get("owner_name"))})


@dataclass
class DatabaseArgs:
    project_id: pulumi.Input[str]
    branch_id: pulumi.Input[str]
    name: pulumi.Input[str]
    owner_name: pulumi.Input[str]
    adopt: pulumi.Input[bool] = False


class Database(Resource, module="neon", name="Database"):
    def __init__(self, name: str, args: DatabaseArgs, opts: pulumi.ResourceOptions | None = None,
                 policy: ClientPolicy | None = None):
        super().__init__(DatabaseProvider(policy), name, dict(vars(args)), opts)
