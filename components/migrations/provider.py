"""Pulumi dynamic resource `pulumi-python:dynamic/schema:Migrations`: an app's schema files applied to its database.

The program reads the schema directory and passes every file as an input entry
`{version, description, checksum, sql}`, so `pulumi preview --diff` shows which files are new and
the SQL they will run (the SQL of schema files is not secret and is kept in state). The connection
URI is a secret input and stays secret in state. The provider never drops anything: deleting the
resource leaves the database as it is.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pulumi
from pulumi.dynamic import CheckResult, CreateResult, DiffResult, ReadResult, Resource, ResourceProvider, UpdateResult

from components.defaults import ALLOW_DESTRUCTIVE, ALLOW_OUT_OF_ORDER, LOCK_TIMEOUT, STATEMENT_TIMEOUT
from components.migrations import engine
from components.migrations.files import (
    MigrationFile,
    MigrationFileError,
    filename_of,
    load_directory,
    order,
    parse_file,
    version_key,
)
from components.providers import InputChecker, diff_from_state, errors_without_secrets, is_unknown

INPUT_KEYS = (
    "database_url",
    "app",
    "schema_dir",
    "allow_destructive",
    "allow_out_of_order",
    "lock_timeout",
    "statement_timeout",
    "baseline_version",
    "migrations",
)
# Keys whose change is an update; schema_dir is informative only (it differs between checkouts).
DIFF_KEYS = tuple(k for k in INPUT_KEYS if k != "schema_dir")
OUTPUT_KEYS = ("applied_versions", "latest_version", "checksums", "tables")


def migration_entry(file: MigrationFile) -> dict[str, str]:
    """The input entry of one file, as a preview diff shows it."""
    return {"version": file.version, "description": file.description, "checksum": file.checksum, "sql": file.sql}


def files_from_entries(entries: list[dict[str, Any]]) -> list[MigrationFile]:
    """Parse input entries back into files; an entry whose SQL does not match its checksum is refused."""
    files = []
    for entry in entries:
        file = parse_file(filename_of(entry["version"], entry["description"]), entry["sql"])
        if file.checksum != entry["checksum"]:
            raise MigrationFileError(f"{file.filename}: checksum input does not match its SQL")
        files.append(file)
    return order(files)


def _options(props: dict[str, Any]) -> engine.Options:
    return engine.Options(
        allow_destructive=bool(props.get("allow_destructive", ALLOW_DESTRUCTIVE)),
        allow_out_of_order=bool(props.get("allow_out_of_order", ALLOW_OUT_OF_ORDER)),
        lock_timeout=props.get("lock_timeout") or LOCK_TIMEOUT,
        statement_timeout=props.get("statement_timeout") or STATEMENT_TIMEOUT,
        baseline_version=props.get("baseline_version") or None,
    )


def _previously_applied(olds: dict[str, Any]) -> dict[str, engine.Applied]:
    """What the last successful update applied, from old outputs (checksums) or old inputs (migrations),
    keyed by version_key like the engine's history."""
    applied = {}
    for entry in olds.get("migrations") or []:
        if not is_unknown(entry):
            key = version_key(entry["version"])
            applied[key] = engine.Applied(key, entry["description"], entry["checksum"], _kind(key))
    for version, checksum in (olds.get("checksums") or {}).items():
        key = version_key(version)
        applied[key] = engine.Applied(key, "", checksum, _kind(key))
    return applied


def _kind(key: str) -> str:
    return "repeatable" if key.startswith("R__") else "versioned"


class MigrationsProvider(ResourceProvider):
    """Applies pending migration files. Holds no state: the URI arrives as an input on every call."""

    def check(self, olds: dict[str, Any], news: dict[str, Any]) -> CheckResult:
        """File checks that need no database; a pending destructive file fails where disallowed."""
        c = InputChecker(news)
        c.string("app")
        if c.known("migrations"):
            try:
                files = files_from_entries(c.inputs.get("migrations") or [])
                options = _options({k: v for k, v in c.inputs.items() if not is_unknown(v)})
                engine.make_plan(files, _previously_applied(olds), options)
            except MigrationFileError as error:
                c.fail("migrations", str(error))
            except (KeyError, TypeError, AttributeError):
                c.fail("migrations", "each entry must hold version, description, checksum, sql")
        return c.result()

    def diff(self, id_: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        """From state and inputs only: changed when any input differs (or is unknown). Never replaces."""
        return diff_from_state(olds, news, (), DIFF_KEYS)

    def _apply(self, props: dict[str, Any]) -> dict[str, Any]:
        url = props["database_url"]
        with errors_without_secrets(engine.MigrationError, str(props.get("app")), url,
                                    catch=(engine.MigrationError, MigrationFileError)):
            result = engine.apply(url, files_from_entries(props.get("migrations") or []), _options(props))
        return {**{k: props.get(k) for k in INPUT_KEYS if k in props}, **_outputs(result.state)}

    def create(self, props: dict[str, Any]) -> CreateResult:
        return CreateResult(f"{props['app']}-schema", self._apply(props))

    def update(self, id_: str, olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        return UpdateResult(self._apply(news))

    def delete(self, id_: str, props: dict[str, Any]) -> None:
        """Removing the resource from the stack leaves the schema and its history in place."""

    def read(self, id_: str, props: dict[str, Any]) -> ReadResult:
        """Outputs and inputs rebuilt from the history table, so a refresh shows files applied or
        removed behind the stack's back (an entry applied elsewhere carries the SQL `-- unknown`)."""
        url = props["database_url"]
        with errors_without_secrets(engine.MigrationError, str(props.get("app")), url), engine.connect(url) as conn:
            state = engine.read_state(conn)
        known = {version_key(e["version"]): e for e in props.get("migrations") or []}
        migrations = []
        for version, done in sorted(state.applied.items(), key=lambda item: _order_key(item[0])):
            entry = known.get(version)
            if entry is None or entry["checksum"] != done.checksum:
                entry = {"version": version, "description": done.description, "checksum": done.checksum,
                         "sql": "-- applied outside this stack: SQL unknown"}
            migrations.append(entry)
        inputs = {**{k: props[k] for k in INPUT_KEYS if k in props}, "migrations": migrations}
        return ReadResult(id_, {**inputs, **_outputs(state)}, inputs)


def _order_key(version: str) -> tuple[int, int | str]:
    return (1, version) if version.startswith("R__") else (0, int(version))


def _outputs(state: engine.DatabaseState) -> dict[str, Any]:
    return {
        "applied_versions": state.applied_versions,
        "latest_version": state.latest_version,
        "checksums": state.checksums,
        "tables": state.tables,
    }


@dataclass
class MigrationsArgs:
    """Inputs of Migrations."""

    database_url: pulumi.Input[str]
    """DIRECT (not pooled) connection URI of the app database's owner role; must be a secret."""
    app: str
    """Application name, used in messages and the resource id."""
    schema_dir: Path
    """Directory of the app's migration files, e.g. schema/chatkit."""
    allow_destructive: bool = ALLOW_DESTRUCTIVE
    """Whether pending DROP/TRUNCATE/ALTER COLUMN TYPE/... may run (False on production)."""
    allow_out_of_order: bool = ALLOW_OUT_OF_ORDER
    """Whether a new file below the highest applied version may be applied."""
    lock_timeout: str = LOCK_TIMEOUT
    """SET LOCAL lock_timeout of every migration transaction."""
    statement_timeout: str = STATEMENT_TIMEOUT
    """SET LOCAL statement_timeout of every migration transaction."""
    baseline_version: str | None = None
    """Files up to this version are recorded as applied without running (their tables must exist)."""


class Migrations(Resource, module="schema", name="Migrations"):
    """The app's schema files applied to its database, each once, in order."""

    applied_versions: pulumi.Output[list[str]]
    """Versioned files applied (or baselined), in order."""
    latest_version: pulumi.Output[str]
    """Highest applied version ("" before the first one)."""
    checksums: pulumi.Output[dict[str, str]]
    """SHA-256 of every applied file by version (repeatable files keyed `R__description`)."""
    tables: pulumi.Output[list[str]]
    """Tables of the database as `schema.table`, sorted, the history schema excluded."""

    def __init__(self, name: str, args: MigrationsArgs, opts: pulumi.ResourceOptions | None = None):
        files = load_directory(args.schema_dir)
        props = {
            "database_url": pulumi.Output.secret(args.database_url),
            "app": args.app,
            "schema_dir": str(args.schema_dir),
            "allow_destructive": args.allow_destructive,
            "allow_out_of_order": args.allow_out_of_order,
            "lock_timeout": args.lock_timeout,
            "statement_timeout": args.statement_timeout,
            "baseline_version": args.baseline_version,
            "migrations": [migration_entry(f) for f in files],
            **dict.fromkeys(OUTPUT_KEYS),
        }
        opts = pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(additional_secret_outputs=["database_url"]))
        super().__init__(MigrationsProvider(), name, props, opts)
        if args.allow_destructive:
            for file in files:
                if file.destructive_statements:
                    pulumi.log.warn(
                        f"destructive statements, applied if pending: {file.describe_destructive()}", resource=self
                    )
