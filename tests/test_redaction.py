"""No password printed, for every connection-string form libpq accepts.

Generated passwords, rich in reserved characters, quotes, backslashes, spaces, `%` and non-ASCII,
are written into every form (URI userinfo or query, encoded or raw, several hosts, a malformed
host, key=value quoted, escaped, wrongly quoted or raw, PGPASSWORD; the URL as an argument or in
DATABASE_URL) and driven through the real code paths: the migration CLI, the Migrations provider
and the AppRole provider, against a closed loopback port or the test PostgreSQL with that (wrong)
password. None of what they print or raise holds the password in any spelling, and it still says
where it tried to connect or that the string does not parse.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import socket
import subprocess
import sys
from collections.abc import Iterator
from unittest import mock
from urllib.parse import quote, unquote

import psycopg
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from psycopg.conninfo import conninfo_to_dict

from components import redaction
from components.access.app_role import AppRoleError, AppRoleProvider
from components.migrations import engine
from components.migrations.__main__ import main
from components.migrations.files import load_directory
from components.migrations.provider import MigrationsProvider, migration_entry
from components.redaction import WITHHELD, ConninfoError, hide, parse_conninfo, scrub
from components.settings import PROJECT_ROOT
from neon_emulator.servers import PostgresServer

CHATKIT = PROJECT_ROOT / "schema" / "chatkit"
DOES_NOT_PARSE = "connection string does not parse"
SPILLS = "raw '@' after its credentials"
# No digits or dots: a password can never hide the host 127.0.0.1 that a useful message names.
PASSWORD_CHARACTERS = "#?/@%:[]&=+,;!$*()'\"\\ \txyzXYZ_-~éß€日\u00a0"
passwords = st.text(st.sampled_from(PASSWORD_CHARACTERS), min_size=6, max_size=20)

FORMS = (
    "uri", "uri raw", "postgres uri, query", "query raw", "several hosts", "malformed host",
    "key=value quoted", "key=value escaped", "key=value doubled quotes", "key=value raw", "PGPASSWORD",
)


def _kv_quoted(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def connection_string(form: str, password: str, port: int, other_port: int, database: str) -> tuple[str, str, dict]:
    """(conninfo, the password as written in it, environment) of one form."""
    encoded, db = quote(password, safe=""), quote(database, safe="")
    escaped, doubled = re.sub(r"([\s'\\])", r"\\\1", password), password.replace("'", "''")
    host = f"127.0.0.1:{port}"
    kv = f"host=127.0.0.1 port={port} user=postgres dbname={_kv_quoted(database)} password="
    conninfo, written = {
        "uri": (f"postgresql://postgres:{encoded}@{host}/{db}", encoded),
        "uri raw": (f"postgresql://postgres:{password}@{host}/{db}", password),
        "postgres uri, query": (f"postgres://postgres@{host}/{db}?password={encoded}", encoded),
        "query raw": (f"postgresql://postgres@{host}/{db}?sslmode=prefer&password={password}", password),
        "several hosts": (f"postgresql://postgres:{encoded}@{host},127.0.0.1:{other_port}/{db}", encoded),
        "malformed host": (f"postgresql://postgres:{encoded}@[::1/{db}", encoded),
        "key=value quoted": (kv + _kv_quoted(password), _kv_quoted(password)[1:-1]),
        "key=value escaped": (kv + escaped, escaped),
        "key=value doubled quotes": (f"{kv}'{doubled}'", doubled),
        "key=value raw": (kv + password, password),
        "PGPASSWORD": (f"postgresql://postgres@{host}/{db}", password),
    }[form]
    return conninfo, written, {"PGPASSWORD": password} if form == "PGPASSWORD" else {}


@st.composite
def cases(draw, postgres: PostgresServer, closed_port: int) -> tuple[str, str, str, dict]:
    """(conninfo, password, password as written, environment), aimed at a closed port or a wrong password."""
    password = draw(passwords)
    port = draw(st.sampled_from([closed_port, postgres.port]))
    database = draw(st.sampled_from(["app", password]))  # the password may occur elsewhere too
    conninfo, written, env = connection_string(draw(st.sampled_from(FORMS)), password, port, closed_port, database)
    return conninfo, password, written, env


def assert_no_password(text: str, password: str, written: str) -> None:
    for spelling in {password, quote(password, safe=""), unquote(password), written}:
        assert spelling not in text, f"{spelling!r} in {text!r}"


def assert_useful(text: str, conninfo: str, password: str) -> None:
    """Names the host it tried, or says why it did not try (a raw '@' or '/', a libpq parse error)."""
    if SPILLS in text:
        assert {"@", "/"} & set(password), text
        return
    try:
        conninfo_to_dict(conninfo)
    except psycopg.ProgrammingError:
        assert DOES_NOT_PARSE in text, text
        return
    assert "127.0.0.1" in text and "postgres" in text, text


@contextlib.contextmanager
def environment(env: dict[str, str]) -> Iterator[None]:
    """Exactly these libpq/CLI variables set (none of the caller's)."""
    with mock.patch.dict(os.environ, env):
        for name in {"PGPASSWORD", "DATABASE_URL", "PGSERVICE", "PGPASSFILE"} - set(env):
            os.environ.pop(name, None)
        yield


@pytest.fixture(scope="module")
def closed_port() -> int:
    """A loopback port nothing listens on."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_the_cli_never_prints_the_password(postgres: PostgresServer, closed_port: int) -> None:
    @settings(max_examples=80)
    @given(case=cases(postgres, closed_port), command=st.sampled_from(["status", "plan", "apply"]),
           from_environment=st.booleans())
    def run(case, command, from_environment):
        conninfo, password, written, env = case
        argv = [command, "--dir", str(CHATKIT)]
        if from_environment:
            env = {**env, "DATABASE_URL": conninfo}
        else:
            argv += ["--database-url", conninfo]
        out, err = io.StringIO(), io.StringIO()
        with environment(env), contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            assert main(argv) == 1
        assert out.getvalue() == "" and err.getvalue().startswith("error: cannot connect")
        assert_no_password(err.getvalue(), password, written)
        assert_useful(err.getvalue(), conninfo, password)

    run()


def test_the_migrations_provider_never_raises_the_password(postgres: PostgresServer, closed_port: int) -> None:
    migrations = [migration_entry(f) for f in load_directory(CHATKIT)]

    @settings(max_examples=60)
    @given(case=cases(postgres, closed_port))
    def run(case):
        conninfo, password, written, env = case
        props = {"database_url": conninfo, "app": "chatkit", "schema_dir": str(CHATKIT), "migrations": migrations}
        provider = MigrationsProvider()
        with environment(env):
            assert provider.check({}, props).failures == []
            assert provider.diff("chatkit-schema", props, props).changes is False
            for call in (lambda: provider.create(props), lambda: provider.read("chatkit-schema", props)):
                with pytest.raises(engine.MigrationError) as raised:
                    call()
                assert str(raised.value).startswith("chatkit: cannot connect")
                assert_no_password(str(raised.value), password, written)
                assert_useful(str(raised.value), conninfo, password)

    run()


def test_the_app_role_provider_never_raises_the_password(postgres: PostgresServer, closed_port: int) -> None:
    @settings(max_examples=60)
    @given(case=cases(postgres, closed_port))
    def run(case):
        conninfo, password, written, env = case
        props = {"admin_url": conninfo, "role_name": "app", "database": "app", "owner_role": "owner",
                 "app_schema": "public", "dapr_schema": "dapr", "password_version": 1,
                 "alternate_role": "app_b", "group_role": "app_g"}  # the names check() adds
        provider = AppRoleProvider()
        with environment(env):
            failures = provider.check({}, props).failures
            texts = [failure.reason for failure in failures]
            assert provider.diff("app", props, props).changes is False
            # (delete forgets a role whose server is gone: tests/access/test_app_role_server_gone.py)
            for call in (lambda: provider.create(props), lambda: provider.read("app", props)):
                with pytest.raises(AppRoleError) as raised:
                    call()
                texts.append(str(raised.value))
        for text in texts:
            assert_no_password(text, password, written)
        for text in texts[len(failures):]:
            assert_useful(text, conninfo, password)
        if conninfo.startswith(redaction.URI_PREFIXES):
            refused = DOES_NOT_PARSE in texts[-1] or SPILLS in texts[-1]
            assert [f.reason for f in failures] == ([texts[-1].split("admin_url: ", 1)[1]] if refused else [])
        else:
            assert [f.reason for f in failures] == ["must be a postgresql:// URI of the database owner"]

    run()


@pytest.mark.host
def test_the_cli_as_a_program_with_the_url_in_the_environment(postgres: PostgresServer, closed_port: int) -> None:
    """The real entry point: no traceback, no password, whether libpq parses the URL or not."""
    password = "p@ss/w%rd'#?\\ é"
    for conninfo, env in (
        (postgres.url(password=password), {}),
        (f"postgresql://postgres:{password}@127.0.0.1:{closed_port}/app", {}),
        ("postgresql://postgres:secret-pw@[::1/db", {}),
        (f"host=127.0.0.1 port={postgres.port} user=postgres", {"PGPASSWORD": password}),
    ):
        result = subprocess.run(
            [sys.executable, "-m", "components.migrations", "status", "--dir", str(CHATKIT)],
            cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=60,
            env={**os.environ, **env, "DATABASE_URL": conninfo},
        )
        assert result.returncode == 1 and result.stdout == ""
        assert result.stderr.startswith("error: cannot connect") and "Traceback" not in result.stderr
        for secret in (password, "secret-pw"):
            assert_no_password(result.stderr, secret, secret)
        assert_useful(result.stderr, conninfo, password)


@pytest.mark.parametrize(
    ("conninfo", "shown"),
    [
        ("postgresql://u%40x:p%40ss@h.example/my%20db?sslmode=require",
         "postgresql://u%40x:***@h.example/my%20db?sslmode=require"),
        ("postgres://u@h1:5,h2:6/db?password=a%20b&sslpassword=k3y", "postgres://u:***@h1:5,h2:6/db?sslpassword=***"),
        ("postgresql://u:x@h1,h2/d?port=5", "postgresql://u:***@/d?host=h1%2Ch2&port=5"),  # one port for both
        ("postgresql://u:x@[::1]:5/d", "postgresql://u:***@[::1]:5/d"),
        ("postgresql:///d?host=/tmp", "postgresql://%2Ftmp/d"),
        ("postgresql://u:p#w?x@h/d", "postgresql://u:***@h/d"),
        ("host=h password='it\\'s secret' dbname='my db'", "dbname='my db' host=h password=***"),
        ("password=x", "password=***"),
        ("postgresql://admin:admin@h/admin", "postgresql://***:***@h/***"),
    ],
)
def test_shown_is_rebuilt_from_what_libpq_parsed(conninfo: str, shown: str) -> None:
    with environment({}):
        assert parse_conninfo(conninfo).shown == shown


@pytest.mark.parametrize(
    ("conninfo", "reason"),
    [
        ("postgresql://u:secret@[::1/db", DOES_NOT_PARSE),
        ("postgresql://u:a%zz@h/db", DOES_NOT_PARSE),
        ("postgresql://u:%ff@h/db", DOES_NOT_PARSE),  # not UTF-8 once decoded
        ("postgresql://u:a b@h/db", DOES_NOT_PARSE),
        ("postgresql://u:p@h/d?secret=x", DOES_NOT_PARSE),
        ("host=h password='it''s secret'", DOES_NOT_PARSE),
        ("host=h password=it's secret", DOES_NOT_PARSE),
        ("postgresql://u:se\0cret@h/d", DOES_NOT_PARSE),  # libpq would stop reading at the NUL
        ("postgresql://u:p@ss@h/d", SPILLS),  # libpq: password "p", host "ss@h"
        ("postgresql://u:p/ss@h/d", SPILLS),  # libpq: host "u", port "p", database "ss@h/d"
    ],
)
def test_refused_strings_are_described_without_a_piece_of_them(conninfo: str, reason: str) -> None:
    """The same words whatever the string: nothing of it is quoted."""
    reference = "x" if reason == DOES_NOT_PARSE else "postgresql://a@b@c"
    assert reason in refusal(conninfo) and refusal(conninfo) == refusal(reference)
    assert scrub("cannot connect", conninfo) == "cannot connect"


def refusal(conninfo: str) -> str:
    with pytest.raises(ConninfoError) as raised:
        parse_conninfo(conninfo)
    return str(raised.value)


def test_the_environment_password_is_a_secret_too() -> None:
    with environment({"PGPASSWORD": "from-the-env"}):
        assert parse_conninfo("host=h").secrets == ("from-the-env",)
        assert scrub("failed: from-the-env, other", "postgresql://u:other@h/d") == "failed: ***, ***"
        assert scrub("from-the-env or a%20b", "postgresql://u:%zz@h", "a b") == "*** or ***"  # does not parse


@pytest.mark.fuzz
@given(secret=passwords, chunks=st.lists(st.text(max_size=6), max_size=6), picks=st.lists(st.integers(0, 4)))
def test_hide_leaves_no_spelling(secret: str, chunks: list[str], picks: list[int]) -> None:
    """Text made of random pieces and spellings of the secret, even around masks and overlapping."""
    forms = sorted(redaction.spellings(secret))
    pieces = [piece for chunk, pick in zip(chunks, picks, strict=False)
              for piece in (chunk, forms[pick % len(forms)], "*" * pick)]
    hidden = hide("".join(pieces), [secret])
    assert all(form not in hidden for form in forms)
    assert hidden != WITHHELD or "*" in secret


@pytest.mark.fuzz
@given(password=passwords, form=st.sampled_from([f for f in FORMS if not f.startswith("key=value")]))
def test_an_accepted_uri_keeps_the_password_out_of_what_is_shown(password: str, form: str) -> None:
    """No piece of a raw `@` or `/` password reaches the user, host, port or database, which are shown."""
    conninfo, _, _ = connection_string(form, password, 5432, 5433, "app")
    try:
        options = parse_conninfo(conninfo).options
    except ConninfoError:
        return
    ports = "5432,5433" if form == "several hosts" else "5432"
    assert (options["user"], options["host"], options["port"], options["dbname"]) == (
        "postgres", ",".join(["127.0.0.1"] * len(ports.split(","))), ports, "app")


SECRET_KEYS = ("password", "sslpassword")
# Secrets of these characters only, with the other values free of them, cannot occur anywhere else in
# what is shown (nor in the percent-encoding of anything else): hiding them then touches nothing else.
SECRET_ONLY = "日€"
_others = st.text(st.sampled_from(PASSWORD_CHARACTERS.translate({ord(c): None for c in SECRET_ONLY}) + "abc0123"),
                  max_size=8)
_secrets = st.one_of(st.text(st.sampled_from(PASSWORD_CHARACTERS), max_size=8), st.text(st.sampled_from(SECRET_ONLY)))


@st.composite
def parsed_strings(draw) -> str:
    """URIs and key=value strings of generated options, which libpq mostly parses."""
    options = draw(st.dictionaries(st.sampled_from(["user", "host", "port", "dbname", "application_name"]), _others))
    options.update(draw(st.dictionaries(st.sampled_from(SECRET_KEYS), _secrets)))
    if draw(st.booleans()):
        return psycopg.conninfo.make_conninfo("", **options)
    user, password = (quote(options.pop(key, ""), safe="") for key in ("user", "password"))
    query = "&".join(f"{key}={quote(value, safe='')}" for key, value in options.items())
    return f"postgresql://{user}:{password}@/?{query}"


@pytest.mark.fuzz
@given(conninfo=st.one_of(parsed_strings(), st.text(st.sampled_from(PASSWORD_CHARACTERS + "=pgsqlotr"))))
def test_parse_refuses_or_shows_what_libpq_reads_without_secrets(conninfo: str) -> None:
    """Nothing but ConninfoError escapes; what libpq parses is shown without its secrets and, where
    hiding them touches nothing else, reads back (libpq again) as the same options."""
    with environment({}):
        try:
            target = parse_conninfo(conninfo)
        except ConninfoError:
            return
    libpq = conninfo_to_dict(conninfo)
    secrets = [value for key, value in libpq.items() if key in SECRET_KEYS and value]
    others = [value for key, value in libpq.items() if key not in SECRET_KEYS]
    assert sorted(target.secrets) == sorted(secrets)
    assert not any(form in target.shown for secret in secrets for form in redaction.spellings(secret))
    if all(set(secret) <= set(SECRET_ONLY) for secret in secrets) and not set("".join(others)) & set(SECRET_ONLY):
        masked = {key: "***" for key in libpq if key in SECRET_KEYS}
        assert conninfo_to_dict(target.shown) == {**target.options, **masked}
