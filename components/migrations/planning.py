"""What applying migration files would do, from the files and a database's history alone.

`make_plan` compares the files with the latest successful history entry of each version and lists
the files to run and to baseline; it refuses, before anything runs, an applied file that was
edited, a new file below the highest applied version (unless out-of-order files are allowed), a
statement a file cannot run and, where destructive migrations are not allowed, a destructive one.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from components.defaults import ALLOW_DESTRUCTIVE, ALLOW_OUT_OF_ORDER, LOCK_TIMEOUT, STATEMENT_TIMEOUT
from components.migrations.files import MigrationFile, MigrationFileError, is_version


@dataclass(frozen=True)
class Options:
    """How to apply: safety switches and the SET LOCAL timeouts of every migration transaction."""

    allow_destructive: bool = ALLOW_DESTRUCTIVE
    allow_out_of_order: bool = ALLOW_OUT_OF_ORDER
    lock_timeout: str = LOCK_TIMEOUT
    statement_timeout: str = STATEMENT_TIMEOUT
    baseline_version: str | None = None


@dataclass(frozen=True)
class Applied:
    """The latest successful history entry of one version."""

    version: str
    description: str
    checksum: str
    kind: str


@dataclass
class Plan:
    """What applying would do, computed from the files and the history without touching the database."""

    pending: list[MigrationFile]
    baseline: list[MigrationFile]
    applied: dict[str, Applied]
    missing_files: list[Applied]
    warnings: list[str] = field(default_factory=list)


def make_plan(files: Sequence[MigrationFile], applied: dict[str, Applied], options: Options) -> Plan:
    """Check the files against the history (keyed by `MigrationFile.key`) and list what to run;
    refusals raise MigrationFileError."""
    by_key = {f.key: f for f in files}
    for file in files:
        done = applied.get(file.key)
        if done and not file.repeatable and done.checksum != file.checksum:
            raise MigrationFileError(
                f"{file.filename}: changed after it was applied (applied checksum {done.checksum[:12]}, "
                f"file checksum {file.checksum[:12]}); add a new migration instead of editing an applied one"
            )
    versioned_applied = [int(v) for v, a in applied.items() if a.kind != "repeatable"]
    highest = max(versioned_applied, default=None)
    if options.baseline_version and not is_version(options.baseline_version):
        raise MigrationFileError(f"baseline version {options.baseline_version!r} is not a version number (NNNN)")
    baseline_number = int(options.baseline_version) if options.baseline_version else None
    baseline, pending = [], []
    for file in files:
        if file.repeatable:
            if file.key not in applied or applied[file.key].checksum != file.checksum:
                pending.append(file)
        elif file.key not in applied:
            if baseline_number is not None and file.number <= baseline_number:
                baseline.append(file)
                continue
            if highest is not None and file.number < highest and not options.allow_out_of_order:
                raise MigrationFileError(
                    f"{file.filename}: version {file.key} is below the highest applied version "
                    f"{highest:04d} (out of order; allow out-of-order migrations to apply it)"
                )
            pending.append(file)
    refusals = [refusal for file in pending for refusal in file.refusals]
    if refusals:
        raise MigrationFileError("; ".join(refusals))
    warnings = []
    for file in pending:
        if file.destructive_statements:
            if not options.allow_destructive:
                raise MigrationFileError(
                    f"destructive changes are not allowed on this stack: {file.describe_destructive()}"
                )
            warnings.append(f"destructive change pending: {file.describe_destructive()}")
    missing = [a for v, a in sorted(applied.items()) if v not in by_key and a.kind != "repeatable"]
    warnings += [f"{a.version} ({a.description}) is applied but its file is missing" for a in missing]
    return Plan(pending, baseline, applied, missing, warnings)
