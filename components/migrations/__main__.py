"""Command line: `python -m components.migrations {status,plan,apply} --dir schema/<app> --database-url URL`.

The URL may come from the environment variable DATABASE_URL instead; use the DIRECT (not pooled)
endpoint and the owner role. Exit status 0 on success, 1 on a refusal or a failed migration.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from components.defaults import LOCK_TIMEOUT, STATEMENT_TIMEOUT
from components.migrations import engine
from components.migrations.files import MigrationFileError, load_directory
from components.redaction import scrub


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m components.migrations", description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    for name, summary in (
        ("status", "list applied and pending migrations"),
        ("plan", "print the pending migrations and the SQL they will run"),
        ("apply", "apply the pending migrations"),
    ):
        command = commands.add_parser(name, help=summary, description=summary)
        command.add_argument("--dir", required=True, type=Path, help="schema directory, e.g. schema/chatkit")
        command.add_argument("--database-url", default=os.environ.get("DATABASE_URL"),
                             help="direct owner connection URI (default: $DATABASE_URL)")
        command.add_argument("--disallow-destructive", action="store_true",
                             help="refuse pending destructive statements (DROP, TRUNCATE, ...) as production does")
        command.add_argument("--allow-out-of-order", action="store_true",
                             help="apply new files whose version is below the highest applied one")
        command.add_argument("--baseline-version", help="mark files up to this version as applied without running")
        command.add_argument("--lock-timeout", default=LOCK_TIMEOUT,
                             help=f"SET LOCAL lock_timeout (default {LOCK_TIMEOUT})")
        command.add_argument("--statement-timeout", default=STATEMENT_TIMEOUT,
                             help=f"SET LOCAL statement_timeout (default {STATEMENT_TIMEOUT})")
    commands.add_parser("diff", help="print the schema difference between two databases (see diff --help)")
    return parser


def _options(args: argparse.Namespace) -> engine.Options:
    return engine.Options(
        allow_destructive=not args.disallow_destructive,
        allow_out_of_order=args.allow_out_of_order,
        lock_timeout=args.lock_timeout,
        statement_timeout=args.statement_timeout,
        baseline_version=args.baseline_version,
    )


def _show_plan(args: argparse.Namespace, files, options: engine.Options) -> None:
    the_plan, _ = engine.plan(args.database_url, files, options)
    for warning in the_plan.warnings:
        print(f"warning: {warning}")
    if args.command == "status":
        for file in files:
            done = the_plan.applied.get(file.key)
            state = "pending" if file in the_plan.pending else "baseline" if file in the_plan.baseline else \
                f"applied ({done.kind})"
            print(f"{file.filename:50} {state}")
        return
    for file in the_plan.baseline:
        print(f"-- {file.filename}: would be baselined (recorded as applied, not run)")
    if not the_plan.pending:
        print("-- nothing to apply")
    for file in the_plan.pending:
        print(f"-- {file.filename} ({'no transaction' if file.no_transaction else 'one transaction'})")
        print(file.sql.rstrip() + "\n")


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["diff"]:  # its own options; imported only when asked for
        from components.migrations.schema_diff import main as diff

        return diff(argv[1:])
    args = _parser().parse_args(argv)
    if not args.database_url:
        print("error: no database URL: pass --database-url or set DATABASE_URL", file=sys.stderr)
        return 2
    options = _options(args)
    try:
        files = load_directory(args.dir)
        if args.command == "apply":
            result = engine.apply(args.database_url, files, options, report=print)
            for warning in result.warnings:
                print(f"warning: {warning}")
            print(f"up to date: latest version {result.state.latest_version or '(none)'}, "
                  f"{len(result.applied)} applied now, {len(result.baselined)} baselined")
        else:
            _show_plan(args, files, options)
    except (MigrationFileError, engine.MigrationError) as error:
        print(f"error: {scrub(str(error), args.database_url)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
