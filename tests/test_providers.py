"""The providers' shared toolkit, the limits they share with the settings, and the credentials value."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from psycopg.conninfo import conninfo_to_dict
from pulumi.output import Unknown

from components.access.app_role import AppRoleProvider
from components.neon.branch import BranchProvider
from components.neon.project import ProjectProvider
from components.neon.role import RoleProvider
from components.providers import InputChecker, diff_from_state, errors_without_secrets
from components.settings import SettingsError, parse_settings
from components.uri import Credentials

TEXT = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\0"), min_size=1, max_size=12)


def reasons(provider, news) -> dict[str, str]:
    return {f.property: f.reason for f in provider.check({}, news).failures}


def test_unknown_values_are_not_judged_even_inside_a_list() -> None:
    c = InputChecker({"name": [1, Unknown()], "size": Unknown(), "flag": Unknown()})
    c.string("name")
    c.integer("size", 0, 1)
    c.boolean("flag")
    c.rule("name", lambda _: "always wrong")
    assert c.result().failures == []


def test_each_bad_key_fails_once_and_secrets_are_not_quoted() -> None:
    c = InputChecker({"size": True, "count": 3.0, "token": 12345678, "__provider": "pickled"})
    c.integer("size", 0, 10)
    c.integer("count", 0, 10)
    c.string("token", secret=True)
    result = c.result()
    assert [f.property for f in result.failures] == ["size", "token"]
    assert "12345678" not in result.failures[1].reason
    assert result.inputs == {"size": True, "count": 3, "token": 12345678}
    assert isinstance(result.inputs["count"], int)


def test_diff_from_state_names_replacements_and_treats_unknowns_as_changes() -> None:
    olds = {"region": "a", "size": 1, "name": "x"}
    same = diff_from_state(olds, {"region": "a", "size": 1.0, "name": "x"}, ["region"], ["size", "name"])
    assert (same.changes, same.replaces) == (False, [])
    moved = diff_from_state(olds, {**olds, "region": Unknown()}, ["region"], ["size"], delete_before_replace=True)
    assert (moved.changes, moved.replaces, moved.delete_before_replace) == (True, ["region"], True)
    renamed = diff_from_state(olds, {**olds, "name": "y"}, ["region"], ["size"])
    assert renamed.changes is False  # a key in neither list never causes a change


def test_errors_without_secrets_hide_the_password_in_every_spelling() -> None:
    url = "postgresql://owner:p%40ss@db.invalid/app"
    with pytest.raises(RuntimeError) as raised, errors_without_secrets(RuntimeError, "chatkit", url):
        raise ValueError("login p@ss failed for p%40ss")
    assert str(raised.value) == "chatkit: login *** failed for ***"
    assert raised.value.__cause__ is None and raised.value.__suppress_context__


@settings(max_examples=60)
@given(
    min_cu=st.sampled_from([0.1, 0.25, 0.3, 1.0, 56.0, 56.25, 60.0]),
    suspend=st.sampled_from([-2, -1, 0, 1, 59, 60, 300, 604800, 604801]),
)
def test_neon_checks_refuse_exactly_what_the_settings_refuse(tmp_path_factory, min_cu, suspend) -> None:
    schema_root = tmp_path_factory.mktemp("schema")
    for app in ("chatkit", "learnflow"):
        (schema_root / app).mkdir()
        (schema_root / app / "0001_init.sql").write_text("CREATE TABLE t (id int);\n")
    raw = {"neon-stack:computeMinCu": str(min_cu), "neon-stack:computeMaxCu": str(max(min_cu, 56.0)),
           "neon-stack:suspendTimeoutSeconds": str(suspend)}
    try:
        parse_settings(raw, "dev", schema_root)
        settings_refuse = set()
    except SettingsError as error:
        settings_refuse = {p.split(": ")[0] for p in error.problems}
    inputs = {"min_cu": min_cu, "max_cu": max(min_cu, 56.0), "suspend_timeout_seconds": suspend}
    project = {"name": "p", "region_id": "aws-us-east-2", "role_name": "o", "database_name": "d", **inputs}
    branch = {"project_id": "p", "name": "b", **inputs}
    for bad in (reasons(ProjectProvider(), project), reasons(BranchProvider(), branch)):
        assert ("min_cu" in bad) == ("neon-stack:computeMinCu" in settings_refuse)
        assert ("suspend_timeout_seconds" in bad) == ("neon-stack:suspendTimeoutSeconds" in settings_refuse)


def test_role_known_password_is_never_quoted() -> None:
    bad = reasons(RoleProvider(), {"project_id": "p", "branch_id": "b", "name": "r", "known_password": 987654321})
    assert set(bad) == {"known_password"} and "987654321" not in bad["known_password"]


def test_app_role_identifiers_are_whole_matches() -> None:
    news = {"admin_url": "postgresql://o:p@h/db", "role_name": "app\n", "database": "db", "owner_role": "o",
            "app_schema": "public", "dapr_schema": "dapr", "password_version": 1}
    assert set(reasons(AppRoleProvider(), news)) == {"role_name"}
    # 61 bytes at most: the alternate (`_b`) and group (`_g`) roles named after it fit PostgreSQL's 63.
    assert reasons(AppRoleProvider(), {**news, "role_name": "a" * 61}) == {}
    assert set(reasons(AppRoleProvider(), {**news, "role_name": "a" * 62})) == {"role_name"}
    assert set(reasons(AppRoleProvider(), {**news, "role_name": "a" * 64})) == {"role_name"}


@settings(max_examples=80)
@given(
    user=TEXT,
    password=TEXT,
    database=TEXT,
    host=st.sampled_from(["ep-a-1.aws.neon.tech", "ep-a-1-pooler.aws.neon.tech", "127.0.0.1:54321", "h.x:5432"]),
    channel_binding=st.booleans(),
)
def test_the_uri_and_the_libpq_variables_say_the_same(user, password, database, host, channel_binding) -> None:
    credentials = Credentials(user, password, host, database, channel_binding)
    parsed = conninfo_to_dict(credentials.uri())
    environment = credentials.environment()
    assert parsed["user"] == environment["PGUSER"] == user
    assert parsed["password"] == environment["PGPASSWORD"] == password
    assert parsed["dbname"] == environment["PGDATABASE"] == database
    assert parsed["host"] == environment["PGHOST"]
    assert parsed.get("port", "5432") == environment["PGPORT"]
    assert parsed["sslmode"] == environment["PGSSLMODE"] == "require"
    assert parsed.get("channel_binding") == environment.get("PGCHANNELBINDING") == (
        "require" if channel_binding else None)


def test_the_password_is_not_in_the_repr() -> None:
    shown = repr(Credentials("app", "s3cret-Value", "ep-a-1.aws.neon.tech", "db"))
    assert "s3cret-Value" not in shown and "password" not in shown
