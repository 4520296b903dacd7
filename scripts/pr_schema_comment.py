"""The pull request comment of the pr-stack workflow: per app, the schema diff from the parent
stack's database to the branch stack's, and the destructive statements of the PR's new files.

`python -m scripts.pr_schema_comment --parent-stack ORG/neon-stack/dev --branch-stack ORG/neon-stack/pr-7
--out comment.md` reads both stacks' `ownerDatabaseUrls` with the pulumi CLI and writes the body.
The body starts with MARKER, by which the workflow finds its own comment to update in place.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from components.migrations.engine import MigrationError
from components.migrations.files import MigrationFileError
from components.migrations.schema_diff import (
    Change,
    destructive_pending,
    diff,
    report_error,
    snapshot,
    stack_database_urls,
)

MARKER = "<!-- neon-stack:schema-diff -->"
SCHEMA_ROOT = Path(__file__).resolve().parents[1] / "schema"


@dataclass(frozen=True)
class AppReport:
    app: str
    changes: list[Change]
    destructive: list[str]


def app_report(app: str, parent_url: str, branch_url: str, schema_dir: Path) -> AppReport:
    """The schema diff of `app` from the parent's database to the branch's, and what its pending files destroy."""
    changes = diff(snapshot(parent_url), snapshot(branch_url))
    return AppReport(app, changes, destructive_pending(parent_url, schema_dir))


def comment_body(parent_stack: str, branch_stack: str, reports: Sequence[AppReport]) -> str:
    lines = [
        MARKER,
        "### Schema changes of this pull request",
        "",
        f"From `{parent_stack}` to `{branch_stack}`, whose branch copies the parent's data and ran this pull "
        "request's migrations.",
    ]
    for report in sorted(reports, key=lambda r: r.app):
        lines += ["", f"#### {report.app}", ""]
        if report.changes:
            lines += ["```diff", *(change.line() for change in report.changes), "```"]
        else:
            lines.append("No schema change.")
        if report.destructive:
            lines += ["", "**Destructive statements in this pull request's migrations:**", ""]
            lines += [f"- {statement}" for statement in report.destructive]
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--parent-stack", required=True)
    parser.add_argument("--branch-stack", required=True)
    parser.add_argument("--out", required=True, type=Path, help="file to write the comment body to")
    args = parser.parse_args(argv)
    urls: list[str] = []
    try:
        parent, branch = stack_database_urls(args.parent_stack), stack_database_urls(args.branch_stack)
        urls = [*parent.values(), *branch.values()]
        reports = [app_report(app, parent[app], url, SCHEMA_ROOT / app) for app, url in branch.items() if app in parent]
    except (MigrationError, MigrationFileError) as error:
        return report_error(error, urls)
    args.out.write_text(comment_body(args.parent_stack, args.branch_stack, reports))
    return 0


if __name__ == "__main__":
    sys.exit(main())
