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

from components.defaults import PG_MAX_IDENTIFIER_BYTES
from components.neon.provider import BRANCH_OBJECT_KEYS, NeonProvider, branch_object_id, check_branch_object
from components.neon.session import ClientPolicy
from components.providers import InputChecker, diff_from_state, plain_inputs

REPLACE_KEYS = BRANCH_OBJECT_KEYS
UPDATE_KEYS = ("owner_name",)


class DatabaseProvider(NeonProvider):
    def check(self, olds: dict[str, Any], news: dict[str, Any]) -> CheckResult:
        c = InputChecker(news)
        check_branch_object(c)
        c.string("owner_name", max_length=PG_MAX_IDENTIFIER_BYTES)
        return c.result()

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
        return CreateResult(branch_object_id(inputs), dict(inputs))

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
