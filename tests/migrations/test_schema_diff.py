"""The schema diff: what a pull request's migrations change, read from the catalogs, in a fixed order."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import httpx
import psycopg
import pytest

from components.migrations import engine
from components.migrations.__main__ import main
from components.migrations.files import load_directory
from components.migrations.schema_diff import diff, snapshot
from components.uri import postgres_uri
from scripts.pr_schema_comment import MARKER, app_report, comment_body
from tests.emulator.helpers import create_branch, create_project
from tests.support.neon_fixtures import NeonApi

PROJECT_ROOT = Path(__file__).resolve().parents[2]
PR_FILE = """ALTER TABLE users ADD COLUMN locale text NOT NULL DEFAULT 'en';
CREATE INDEX users_locale_idx ON users (locale);
ALTER TABLE chat_sessions DROP COLUMN title;
"""
EXPECTED = [
    "- column public.chat_sessions.title: character varying(500)",
    "+ column public.users.locale: text DEFAULT 'en'::text NOT NULL",
    "+ index public.users_locale_idx: CREATE INDEX users_locale_idx ON public.users USING btree (locale)",
]
DESTRUCTIVE = "0099_locale.sql line 3: ALTER TABLE ... DROP COLUMN"


@pytest.fixture
def parent_and_branch(neon_api: NeonApi, tmp_path: Path) -> tuple[str, str, Path]:
    """The chatkit schema on a project's default branch, then a branch of it where a PR's file ran."""
    with httpx.Client(base_url=neon_api.url, headers=neon_api.headers, timeout=30) as client:
        project = create_project(client)
        role = project["roles"][0]
        body = {"branch": {"name": "pr-1"}, "endpoints": [{"type": "read_write"}]}
        parent_url = postgres_uri(role["name"], role["password"], project["endpoints"][0]["host"], "neondb")
        engine.apply(parent_url, load_directory(PROJECT_ROOT / "schema" / "chatkit"), engine.Options())
        branch = create_branch(client, project["project"]["id"], body)
    branch_url = postgres_uri(role["name"], role["password"], branch["endpoints"][0]["host"], "neondb")
    pr_dir = tmp_path / "chatkit"
    shutil.copytree(PROJECT_ROOT / "schema" / "chatkit", pr_dir)
    (pr_dir / "0099_locale.sql").write_text(PR_FILE)
    engine.apply(branch_url, load_directory(pr_dir), engine.Options())
    return parent_url, branch_url, pr_dir


def test_a_pull_requests_column_index_and_drop_are_exactly_the_diff(parent_and_branch, capsys) -> None:
    parent_url, branch_url, pr_dir = parent_and_branch
    assert main(["diff", "--from", parent_url, "--to", branch_url, "--migrations", str(pr_dir)]) == 1
    out = capsys.readouterr().out
    assert out.splitlines() == [*EXPECTED, f"! destructive: {DESTRUCTIVE}"]
    assert main(["diff", "--from", parent_url, "--to", parent_url]) == 0
    assert capsys.readouterr().out == ""
    assert [c.line() for c in diff(snapshot(branch_url), snapshot(parent_url))] == [
        "+ column public.chat_sessions.title: character varying(500)",
        "- column public.users.locale: text DEFAULT 'en'::text NOT NULL",
        "- index public.users_locale_idx: CREATE INDEX users_locale_idx ON public.users USING btree (locale)",
    ]

    report = app_report("chatkit", parent_url, branch_url, pr_dir)
    body = comment_body("acme/neon-stack/dev", "acme/neon-stack/pr-1", [report])
    assert body.startswith(MARKER + "\n")
    assert "#### chatkit\n\n```diff\n" + "\n".join(EXPECTED) + "\n```\n" in body
    assert body.endswith(f"**Destructive statements in this pull request's migrations:**\n\n- {DESTRUCTIVE}\n")


def test_every_kind_is_compared_and_history_and_dapr_are_left_out(database_url: str, fresh_database, postgres) -> None:
    other_url = postgres.url(fresh_database + "_other")
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{fresh_database}_other"')
    base = """
        CREATE TYPE mood AS ENUM ('ok', 'sad');
        CREATE TABLE notes (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, body text CHECK (body <> ''));
        CREATE TABLE gone (id int);
        CREATE FUNCTION touch() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NEW; END $$;
        CREATE ROLE diff_reader NOLOGIN;
        CREATE SCHEMA neon_stack; CREATE TABLE neon_stack.schema_migrations (version text);
        CREATE SCHEMA dapr; CREATE TABLE dapr.state (key text);
    """
    later = """
        ALTER TYPE mood ADD VALUE 'glad';
        ALTER TABLE notes ALTER COLUMN body SET DEFAULT 'x';
        CREATE TRIGGER notes_touch BEFORE UPDATE ON notes FOR EACH ROW EXECUTE FUNCTION touch();
        CREATE VIEW recent AS SELECT id FROM notes;
        GRANT SELECT, INSERT ON notes TO diff_reader;
        DROP TABLE gone;
        CREATE TABLE neon_stack.more (x int); CREATE TABLE dapr.more (x int);
    """
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("DROP ROLE IF EXISTS diff_reader")
        conn.execute(base)
    with psycopg.connect(other_url, autocommit=True) as conn:
        conn.execute(base.replace("CREATE ROLE diff_reader NOLOGIN;", ""))
        conn.execute(later)
    lines = [c.line() for c in diff(snapshot(database_url), snapshot(other_url))]
    assert lines == [
        "~ type public.mood: enum ('ok', 'sad') -> enum ('ok', 'sad', 'glad')",
        "- table public.gone: owner postgres",
        "~ column public.notes.body: text -> text DEFAULT 'x'::text",
        "+ view public.recent: SELECT notes.id FROM notes; owner postgres",
        "+ trigger public.notes.notes_touch: CREATE TRIGGER notes_touch BEFORE UPDATE ON public.notes FOR EACH ROW "
        "EXECUTE FUNCTION touch()",
        "+ grant public.notes to diff_reader: INSERT, SELECT",
    ]
    assert [c.line() for c in diff(snapshot(other_url), snapshot(other_url))] == []


def test_a_url_is_never_shown_with_its_password(postgres) -> None:
    secret = "s3cret-Pass"
    url = postgres_uri("nobody", secret, f"127.0.0.1:{postgres.port}", "postgres")
    done = subprocess.run([sys.executable, "-m", "components.migrations", "diff", "--from", url, "--to", url],
                          capture_output=True, text=True, cwd=PROJECT_ROOT)
    assert done.returncode == 2
    assert "error: cannot connect to" in done.stderr and secret not in done.stderr + done.stdout
