"""Stack settings: defaults, the stack files, and every invalid value reported with its key; generated
configs (any input gives settings or a SettingsError naming keys; accepted settings give valid names that
never collide; migration timeouts as PostgreSQL reads them)."""

import json
import re
from pathlib import Path

import psycopg
import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st
from psycopg import sql

from components.settings import DEFAULTS, PROJECT_ROOT, SettingsError, StackSettings, parse_settings
from tests.support.stack_config import as_pulumi_passes_it, stack_file_config

SIMPLE_TYPES = {"string": str, "integer": int, "boolean": bool, "array": list}


def app_schemas(root: Path, *apps: str) -> Path:
    """`root` with a directory holding one SQL file for each app."""
    for app in apps:
        (root / app).mkdir(exist_ok=True)
        (root / app / "0001_init.sql").write_text("CREATE TABLE t (id int);\n")
    return root


@pytest.fixture
def schema_root(tmp_path: Path) -> Path:
    """A schema tree with the two default applications, independent of the project's own files."""
    return app_schemas(tmp_path, "chatkit", "learnflow")


def raw(**values):
    return {f"neon-stack:{k}": v for k, v in values.items()}


def test_defaults_parse_into_typed_settings(schema_root):
    settings = parse_settings({}, "dev", schema_root)
    assert settings.neon.project_name == "neon-stack-dev"
    assert settings.neon.region == "aws-us-east-2"
    assert settings.neon.compute.min_cu == 0.25 and settings.neon.compute.suspend_timeout_seconds == 300
    assert settings.neon.history_retention_seconds <= 21600  # fits the Free plan
    assert settings.branch_mode is None and not settings.protect
    assert [a.name for a in settings.apps] == ["chatkit", "learnflow"]
    chatkit = settings.apps[0]
    assert (chatkit.database, chatkit.owner_role, chatkit.app_role) == ("chatkit", "chatkit_owner", "chatkit_app")
    assert (chatkit.namespace, chatkit.secret_name, chatkit.dapr_component_name) == (
        "chatkit", "postgres-credentials", "statestore")
    assert chatkit.schema_dir == schema_root / "chatkit"


def test_values_arrive_as_pulumi_passes_them(schema_root):
    settings = parse_settings(
        raw(pgVersion="16", protect="true", computeMinCu="0.5", computeMaxCu=2, branches='["preview", "qa"]',
            namespaces='["chatkit=chat"]', daprScopes='["learnflow=api,worker"]', baselineVersions='["chatkit=3"]')
        | {"neon:apiUrl": "http://127.0.0.1:4010/api/v2"},
        "prod",
        schema_root,
    )
    assert settings.neon.pg_version == 16 and settings.protect is True
    assert (settings.neon.compute.min_cu, settings.neon.compute.max_cu) == (0.5, 2.0)
    assert settings.neon.extra_branches == ("preview", "qa")
    chatkit, learnflow = settings.apps
    assert chatkit.namespace == "chat" and learnflow.namespace == "learnflow"
    assert learnflow.dapr_scopes == ("api", "worker") and chatkit.dapr_scopes == ()
    assert chatkit.baseline_version == "3" and learnflow.baseline_version is None


def test_branch_mode(schema_root):
    config = raw(parentStack="acme/neon-stack/dev", branchInitSource="schema-only")
    settings = parse_settings(config, "pr-7", schema_root)
    assert settings.branch_mode is not None
    assert (settings.branch_mode.parent_stack, settings.branch_mode.branch_name) == ("acme/neon-stack/dev", "pr-7")
    assert settings.branch_mode.init_source == "schema-only"


BAD = [
    ("region", raw(region="aws-mars-1")),
    ("pgVersion", raw(pgVersion="13")),
    ("pgVersion", raw(pgVersion="seventeen")),
    ("historyRetentionSeconds", raw(historyRetentionSeconds="-5")),
    ("computeMinCu", raw(computeMinCu="0.1")),
    ("computeMinCu", raw(computeMinCu="0.3")),
    ("computeMaxCu", raw(computeMaxCu="lots")),
    ("computeMaxCu", raw(computeMinCu="2", computeMaxCu="1")),
    ("suspendTimeoutSeconds", raw(suspendTimeoutSeconds="604801")),
    ("branches", raw(branches='["qa", "qa"]')),
    ("branches", raw(branches="not json")),
    ("branches", raw(branches='[1, 2]')),
    ("parentStack", raw(parentStack="a/b")),
    ("branchInitSource", raw(branchInitSource="everything")),
    ("branchName", raw(branchName="feature")),
    ("adoptProjectId", raw(parentStack="dev", adoptProjectId="proj-1")),
    ("protect", raw(protect="yes")),
    ("apps", raw(apps="[]")),
    ("apps", raw(apps='["ChatKit"]')),
    ("apps", raw(apps='["chatkit", "chatkit"]')),
    ("apps", raw(apps='["billing"]')),
    ("allowDestructiveMigrations", raw(allowDestructiveMigrations="maybe")),
    ("migrationLockTimeout", raw(migrationLockTimeout="ten seconds")),
    ("migrationStatementTimeout", raw(migrationStatementTimeout="5 minutes")),
    ("baselineVersions", raw(baselineVersions='["chatkit=v3"]')),
    ("baselineVersions", raw(baselineVersions='["billing=3"]')),
    ("passwordVersion", raw(passwordVersion="0")),
    ("kubernetesMode", raw(kubernetesMode="helm")),
    ("renderDirectory", raw(kubernetesMode="render", renderDirectory="")),
    ("namespaces", raw(namespaces='["chatkit=Chat_Kit"]')),
    ("namespaces", raw(namespaces='["chatkit"]')),
    ("secretName", raw(secretName="Postgres_Credentials")),
    ("daprComponentName", raw(daprComponentName="state store")),
    ("daprScopes", raw(daprScopes='["chatkit=api,"]')),
    ("daprInitTimeout", raw(daprInitTimeout="30 seconds")),
    ("channelBinding", raw(channelBinding="require")),
    ("regoin", raw(regoin="aws-us-east-1")),
    # Numbers: ASCII digits only (int() and float() also take other scripts' digits, _, + and spaces).
    ("pgVersion", raw(pgVersion="١٧")),
    ("pgVersion", raw(pgVersion="1_7")),
    ("pgVersion", raw(pgVersion="+17")),
    ("historyRetentionSeconds", raw(historyRetentionSeconds="9" * 5000)),
    ("passwordVersion", raw(passwordVersion="²")),
    ("computeMinCu", raw(computeMinCu="٠.٥")),
    ("computeMaxCu", raw(computeMaxCu="1e0")),
    # Durations within what their consumer takes.
    ("suspendTimeoutSeconds", raw(suspendTimeoutSeconds="59")),
    ("migrationLockTimeout", raw(migrationLockTimeout="2147484s")),
    ("migrationStatementTimeout", raw(migrationStatementTimeout="25d")),
    ("migrationStatementTimeout", raw(migrationStatementTimeout="١٥min")),
    ("daprInitTimeout", raw(daprInitTimeout="0s")),
    ("daprInitTimeout", raw(daprInitTimeout="0.5ns")),
    ("daprInitTimeout", raw(daprInitTimeout="2562048h")),
    # Names that Neon, PostgreSQL, Kubernetes or Dapr would refuse later.
    ("apps", raw(apps='["a_"]')),
    ("apps", raw(apps='["pg_stats"]')),
    ("apps", raw(apps='["postgres"]')),
    ("apps", raw(apps=f'["{"a" * 58}"]')),
    ("apps", raw(apps=f'["{"a" * 300}"]')),
    ("namespaces", raw(namespaces='["chatkit=learnflow"]')),
    ("namespaces", raw(namespaces='["learnflow=kube-system"]')),
    ("daprScopes", raw(daprScopes='["chatkit=Api"]')),
    ("daprScopes", raw(daprScopes=f'["chatkit={"a" * 59}"]')),
    ("branches", raw(branches='["main"]')),
    ("branchName", raw(parentStack="acme/neon-stack/dev", branchName="main")),
    ("branchName", raw(parentStack="acme/neon-stack/dev", branchName="b" * 257)),
    ("projectName", raw(projectName="p" * 257)),
    ("adoptProjectId", raw(adoptProjectId="../projects")),
    ("orgId", raw(orgId="Org_1")),
]


@pytest.mark.parametrize(("key", "config"), BAD, ids=[f"{k}-{i}" for i, (k, _) in enumerate(BAD)])
def test_each_invalid_value_names_its_key(key, config, schema_root):
    with pytest.raises(SettingsError) as caught:
        parse_settings(config, "dev", schema_root)
    assert len(caught.value.problems) == 1, caught.value.problems
    assert caught.value.problems[0].startswith(f"neon-stack:{key}: ")


def test_invalid_api_url_names_its_key(schema_root):
    with pytest.raises(SettingsError, match="neon:apiUrl: 'ftp://x' is not an http"):
        parse_settings({"neon:apiUrl": "ftp://x"}, "dev", schema_root)


def test_all_problems_are_reported_at_once(schema_root):
    with pytest.raises(SettingsError) as caught:
        parse_settings(raw(region="mars", pgVersion="99", protect="perhaps", secretName="A B"), "dev", schema_root)
    keys = sorted(p.split(": ")[0] for p in caught.value.problems)
    assert keys == ["neon-stack:pgVersion", "neon-stack:protect", "neon-stack:region", "neon-stack:secretName"]


def test_an_app_without_sql_files_names_its_directory(tmp_path: Path):
    (tmp_path / "chatkit").mkdir()
    (tmp_path / "chatkit" / "0001_init.sql").write_text("SELECT 1;")
    (tmp_path / "learnflow").mkdir()
    message = r"neon-stack:apps: application 'learnflow' has no SQL files in .*learnflow"
    with pytest.raises(SettingsError, match=message):
        parse_settings({}, "dev", schema_root=tmp_path)


def test_pulumi_yaml_declares_every_setting_with_its_default():
    project = yaml.safe_load((PROJECT_ROOT / "Pulumi.yaml").read_text())
    assert project["name"] == "neon-stack"
    assert project["runtime"]["options"]["virtualenv"] == "venv"
    declared = project["config"]
    assert set(declared) == set(DEFAULTS)
    for key, declaration in declared.items():
        assert set(declaration) <= {"type", "items", "description", "default", "secret"}, key
        assert declaration["type"] in SIMPLE_TYPES, key  # Pulumi.yaml cannot type objects
        assert declaration.get("description"), key
        if declaration["type"] == "array":
            assert declaration["items"] == {"type": "string"}, key
        assert isinstance(declaration["default"], SIMPLE_TYPES[declaration["type"]]), key
        assert declaration["default"] == DEFAULTS[key], key


@pytest.mark.parametrize("stack_file", sorted(PROJECT_ROOT.glob("Pulumi.*.yaml")), ids=lambda p: p.name)
def test_stack_files_parse(stack_file: Path):
    stack = stack_file.name.split(".")[1]
    settings = parse_settings(stack_file_config(stack), stack)
    assert settings.stack == stack


def test_branch_mode_refuses_a_stack_named_like_the_default_branch(schema_root):
    with pytest.raises(SettingsError) as caught:
        parse_settings(raw(parentStack="acme/neon-stack/dev"), "main", schema_root)
    assert caught.value.problems == [
        "neon-stack:branchName: empty, so the stack name is used: 'main' is the name of the project's default branch"
    ]


def test_the_longest_app_name_fits_every_derived_name(tmp_path: Path):
    longest = "a" * (63 - len("_owner"))
    schemas = app_schemas(tmp_path, longest, "select")
    settings = parse_settings(raw(apps=json.dumps([longest, "select"])), "dev", schemas)
    app, keyword = settings.apps
    assert len(app.owner_role) == 63 and app.namespace == longest
    assert (keyword.database, keyword.app_role) == ("select", "select_app")  # every statement quotes names


def test_a_namespace_every_cluster_has_needs_create_namespaces_false(tmp_path: Path):
    config = raw(apps='["default"]')
    with pytest.raises(SettingsError, match=r"neon-stack:apps: namespace 'default' of default exists in every cluster"):
        parse_settings(config, "dev", app_schemas(tmp_path, "default"))
    settings = parse_settings(config | raw(createNamespaces="false"), "dev", tmp_path)
    assert settings.apps[0].namespace == "default"


@pytest.mark.parametrize(
    ("namespaces", "create", "message"),
    [
        ('["learnflow=chatkit"]', "true",
         "neon-stack:namespaces: learnflow (neon-stack:namespaces) and chatkit (neon-stack:apps) are both in namespace "
         "'chatkit', so they would declare the same Namespace, Secret 'postgres-credentials' (neon-stack:secretName) "
         "and Component 'statestore' (neon-stack:daprComponentName): give each its own namespace"),
        ('["chatkit=shared", "learnflow=shared"]', "false",
         "neon-stack:namespaces: learnflow (neon-stack:namespaces) and chatkit (neon-stack:namespaces) are both in "
         "namespace 'shared', so they would declare the same Secret 'postgres-credentials' (neon-stack:secretName) "
         "and Component 'statestore' (neon-stack:daprComponentName): give each its own namespace"),
    ],
)
def test_two_apps_in_one_namespace_are_refused_naming_both(namespaces, create, message, schema_root):
    with pytest.raises(SettingsError) as caught:
        parse_settings(raw(namespaces=namespaces, createNamespaces=create), "dev", schema_root)
    assert caught.value.problems == [message]


def test_durations_up_to_their_consumers_limits_are_accepted(schema_root):
    settings = parse_settings(
        raw(migrationLockTimeout="2147483647", migrationStatementTimeout="2147483s", daprInitTimeout="2562047h",
            suspendTimeoutSeconds="60"),
        "dev",
        schema_root,
    )
    assert (settings.migrations.lock_timeout, settings.migrations.statement_timeout) == ("2147483647", "2147483s")
    assert settings.apps[0].dapr_init_timeout == "2562047h" and settings.neon.compute.suspend_timeout_seconds == 60
    for never_or_default in (-1, 0):
        compute = parse_settings(raw(suspendTimeoutSeconds=str(never_or_default)), "dev", schema_root).neon.compute
        assert compute.suspend_timeout_seconds == never_or_default


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("https://neon:s3cret@console.neon.tech/api/v2", "must not hold a user or password"),
        ("http://neon:s3cret@[::1/api/v2", "is not a URL (malformed host or port)"),
        ("http://127.0.0.1:99999/api/v2", "is not a URL (malformed host or port)"),
        (4010, "expected a string, got 4010"),
    ],
)
def test_an_invalid_api_url_is_refused_without_showing_credentials(url, message, schema_root):
    with pytest.raises(SettingsError) as caught:
        parse_settings({"neon:apiUrl": url}, "dev", schema_root)
    [problem] = caught.value.problems
    assert problem.startswith(f"neon:apiUrl: {message}")
    assert "s3cret" not in str(caught.value)


# Generated cases. The oracles below restate the consumers' rules independently of components/settings/
# (Kubernetes' DNS-1123 label and subdomain, label values, PostgreSQL's 63-byte names), and PostgreSQL
# itself judges the timeouts and role names.
KEYS = [f"neon-stack:{key}" for key in DEFAULTS] + ["neon:apiUrl"]
DNS_1123_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?")
DNS_1123_SUBDOMAIN = re.compile(r"(?=.{1,253}\Z)[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
LABEL_VALUE = re.compile(r"(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?")
LOWERCASE_IDENTIFIER = re.compile(r"[a-z_][a-z0-9_]*")
BUILT_IN_NAMESPACES = {"default", "kube-system", "kube-public", "kube-node-lease"}

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)
app_names = st.sampled_from(["chatkit", "learnflow", "a_", "pg_x", "postgres", "default", "select", "a" * 57,
                             "a" * 58]) | st.from_regex(r"[a-z][a-z0-9_]{0,12}", fullmatch=True)
namespace_names = st.sampled_from(["chatkit", "learnflow", "shared", "kube-system", "a-", "n" * 64]) | st.from_regex(
    r"[a-z0-9][-a-z0-9]{0,8}", fullmatch=True
)
app_ids = st.sampled_from(["api", "worker", "a-", "Api", "a.b", "-a", "", "a" * 58, "a" * 59]) | st.from_regex(
    r"[a-z0-9][-a-z0-9]{0,8}", fullmatch=True
)
durations = st.from_regex(r"-?[0-9]{1,12}(ns|us|µs|ms|s|min|m|h|d)?", fullmatch=True) | st.sampled_from(
    ["2147483647", "2147483648", "2147483s", "2147484s", "24d", "25d", "010s", "0x10s", "2562047h", "2562048h",
     "0s", "1.5h30m", "1.5s", "10 s"]
)
numbers = st.integers().map(str) | st.sampled_from(["١٧", "1_7", "+17", " 17 ", "17.0", "0.25", "1e0", "nan", "59"])
urls = st.from_regex(r"(https?|ftp)://[a-z0-9:@.\[\]]{0,12}(/[a-z0-9]{0,4})?", fullmatch=True) | st.sampled_from(
    ["http://[::1/api/v2", "http://127.0.0.1:99999", "http://127.0.0.1:port", "https://key:secret@host", "http://"]
)
config_values = (
    json_values
    | json_values.map(json.dumps)
    | st.text(max_size=30)
    | numbers
    | durations
    | st.lists(app_names, max_size=3).map(json.dumps)
    | st.lists(st.tuples(app_names, namespace_names).map("=".join), max_size=3).map(json.dumps)
    | urls
)
config_keys = st.sampled_from(KEYS) | st.text(max_size=12).map("neon-stack:".__add__) | st.text(max_size=12)
any_configs = st.builds(
    lambda values, api: values | api,
    st.dictionaries(config_keys, config_values, max_size=8),
    st.fixed_dictionaries({}, optional={"neon:apiUrl": urls | config_values}),
)


@pytest.fixture(scope="module")
def pool_schemas(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Schema directories for any app name the generators make (created as they appear)."""
    return tmp_path_factory.mktemp("schemas")


def parse_with_schemas(config: dict, schemas: Path, stack: str = "dev"):
    names = config.get("neon-stack:apps")
    try:
        apps = json.loads(names) if isinstance(names, str) else ["chatkit", "learnflow"]
    except ValueError:
        apps = []
    for app in apps if isinstance(apps, list) else []:
        if isinstance(app, str) and LOWERCASE_IDENTIFIER.fullmatch(app.strip()) and len(app) <= 100:
            app_schemas(schemas, app.strip())
    return parse_settings(config, stack, schemas)


def names_a_key(problem: str, config: dict) -> bool:
    return any(problem.startswith(f"{key}: ") for key in {*KEYS, *config})


@pytest.mark.fuzz
def test_any_config_gives_settings_or_a_settings_error_naming_keys(pool_schemas: Path):
    @given(any_configs, st.sampled_from(["dev", "main", "pr-7"]))
    def check(config: dict, stack: str) -> None:
        try:
            parse_with_schemas(config, pool_schemas, stack)
        except SettingsError as refused:
            assert refused.problems
            assert all(names_a_key(p, config) for p in refused.problems), refused.problems

    check()


@st.composite
def app_configs(draw: st.DrawFn) -> dict[str, str]:
    """Configs that are mostly valid: apps, their namespaces and Dapr scopes, names, timeouts."""
    apps = draw(st.lists(app_names, min_size=1, max_size=4, unique=True))
    namespaces = draw(st.dictionaries(st.sampled_from(apps), namespace_names, max_size=len(apps)))
    scopes = draw(st.dictionaries(st.sampled_from(apps), st.lists(app_ids, min_size=1, max_size=2)))
    config = raw(
        apps=json.dumps(apps),
        namespaces=json.dumps([f"{app}={namespace}" for app, namespace in namespaces.items()]),
        daprScopes=json.dumps([f"{app}={','.join(ids)}" for app, ids in scopes.items()]),
        createNamespaces=draw(st.sampled_from(["true", "false"])),
        secretName=draw(st.sampled_from(["postgres-credentials", "db.credentials", "Bad_Name"])),
        daprComponentName=draw(st.sampled_from(["statestore", "state.v2", "-state"])),
        migrationLockTimeout=draw(durations),
        suspendTimeoutSeconds=draw(st.sampled_from(["-1", "0", "1", "59", "60", "604800", "604801"])),
    )
    return config


def pg_accepts_role(conn: psycopg.Connection, role: str) -> bool:
    """PostgreSQL creates a role of exactly this name (nothing reserved, nothing cut short)."""
    try:
        with conn.transaction(force_rollback=True):
            conn.execute(sql.SQL("CREATE ROLE {}").format(sql.Identifier(role)))
            # As text: compared as a name, the parameter would be cut short the same way and still match.
            found = conn.execute("SELECT count(*) FROM pg_roles WHERE rolname::text = %s::text", (role,)).fetchone()
            return found[0] == 1
    except psycopg.errors.ReservedName:
        return False


def assert_valid_and_distinct(settings: StackSettings, conn: psycopg.Connection) -> None:
    apps = settings.apps
    for app in apps:
        for name in (app.database, app.owner_role, app.app_role):
            assert LOWERCASE_IDENTIFIER.fullmatch(name) and len(name.encode()) <= 63, name
        assert app.database not in ("postgres", "template0", "template1")
        assert pg_accepts_role(conn, app.owner_role) and pg_accepts_role(conn, app.app_role)
        assert DNS_1123_LABEL.fullmatch(app.namespace), app.namespace
        assert not (settings.kubernetes.create_namespaces and app.namespace in BUILT_IN_NAMESPACES)
        assert DNS_1123_SUBDOMAIN.fullmatch(app.secret_name) and DNS_1123_SUBDOMAIN.fullmatch(app.dapr_component_name)
        assert LABEL_VALUE.fullmatch(app.name) and len(app.name) <= 63
        assert all(DNS_1123_LABEL.fullmatch(f"{i}-dapr") for i in app.dapr_scopes), app.dapr_scopes
    roles = [role for app in apps for role in (app.owner_role, app.app_role)]
    assert len(set(roles)) == len(roles)
    for derived in (
        [app.database for app in apps],
        [app.namespace for app in apps],
        [(app.namespace, app.secret_name) for app in apps],
        [(app.namespace, app.dapr_component_name) for app in apps],
    ):
        assert len(set(derived)) == len(derived), derived
    suspend = settings.neon.compute.suspend_timeout_seconds
    assert suspend in (-1, 0) or 60 <= suspend <= 604800
    assert postgresql_milliseconds(conn, "lock_timeout", settings.migrations.lock_timeout) is not None


@pytest.mark.fuzz
def test_accepted_settings_derive_valid_names_that_never_collide(pool_schemas: Path, postgres):
    accepted = []

    @given(app_configs())
    def check(config: dict[str, str]) -> None:
        try:
            settings = parse_with_schemas(config, pool_schemas)
        except SettingsError as refused:
            assert all(names_a_key(p, config) for p in refused.problems), refused.problems
            return
        assert_valid_and_distinct(settings, conn)
        accepted.append(config)

    with psycopg.connect(postgres.url(), autocommit=True) as conn:
        check()
    assert len(accepted) >= 10  # the generator reaches accepted settings: the property was exercised


PG_TIMEOUT = re.compile(r"(0|[1-9][0-9]*)(ms|s|min|h|d)?")  # the documented form
MS_PER_UNIT = {"": 1, "ms": 1, "s": 1000, "min": 60 * 1000, "h": 3600 * 1000, "d": 24 * 3600 * 1000}


@pytest.mark.fuzz
def test_migration_timeouts_are_accepted_when_postgresql_reads_them_as_written(schema_root: Path, postgres):
    """Accepted: PostgreSQL takes the value and means what it says (it reads 010 as octal). In the documented
    form (a whole number, an optional unit) the converse holds too: nothing PostgreSQL takes is refused."""

    @given(durations, st.sampled_from(["migrationLockTimeout", "migrationStatementTimeout"]))
    def check(duration: str, key: str) -> None:
        try:
            parse_settings(raw(**{key: duration}), "dev", schema_root)
            accepted = True
        except SettingsError as refused:
            assert refused.problems[0].startswith(f"neon-stack:{key}: ")
            accepted = False
        guc = "lock_timeout" if key == "migrationLockTimeout" else "statement_timeout"
        milliseconds = postgresql_milliseconds(conn, guc, duration)
        written = PG_TIMEOUT.fullmatch(duration)
        if accepted:
            assert written and milliseconds == int(written[1]) * MS_PER_UNIT[written[2] or ""], duration
        elif written:
            assert milliseconds is None, duration

    with psycopg.connect(postgres.url(), autocommit=True) as conn:
        check()


def postgresql_milliseconds(conn: psycopg.Connection, guc: str, value: str) -> int | None:
    """What PostgreSQL sets the timeout to (in ms), or None if it refuses the value. Read from set_config's
    answer (`8s`, `1d`): a statement after a 1 ms statement_timeout would be cancelled."""
    try:
        with conn.transaction(force_rollback=True):
            shown = conn.execute("SELECT set_config(%s, %s, true)", (guc, value)).fetchone()[0]
    except psycopg.errors.InvalidParameterValue:
        return None
    number, unit = re.fullmatch(r"([0-9]+)([a-z]*)", shown).groups()
    return int(number) * MS_PER_UNIT[unit]


# Production controls: network access (with the lockout guard), protection, read replicas, connect timeout.

NETWORK_BAD = [
    ("allowedIps", raw(allowedIps='["10.0.0.1/8"]', deployerIps='["10.0.0.1"]'), "host bits set"),
    ("allowedIps", raw(allowedIps='["10.0.0.9-10.0.0.1"]'), "starts above its end"),
    ("allowedIps", raw(allowedIps='["10.0.0.1-::1"]'), "joins an IPv4 and an IPv6"),
    ("allowedIps", raw(allowedIps='["office"]'), "'office' is not an IP address"),
    ("allowedIps", raw(allowedIps='["192.0.2.1"]'), "name the addresses of every machine that runs the stack"),
    ("allowedIps", raw(allowedIps='["192.0.2.0/25"]', deployerIps='["192.0.2.0/24"]'), "does not cover '192.0.2.0/24'"),
    ("deployerIps", raw(allowedIps='["192.0.2.1"]', deployerIps='["laptop"]'), "'laptop' is not an IP address"),
    ("allowedIpsProtectedBranchesOnly", raw(allowedIpsProtectedBranchesOnly="true"), "has no effect"),
    ("blockPublicConnections", raw(blockPublicConnections="true"), "deployersUsePrivateNetworking"),
    ("readReplicas", raw(readReplicas="11"), "out of range"),
    ("readReplicas", raw(readReplicas="-1"), "out of range"),
    ("connectTimeoutSeconds", raw(connectTimeoutSeconds="1"), "out of range"),
    ("protectPrimaryBranch", raw(protectPrimaryBranch="yes"), "expected true or false"),
    ("readReplicas", raw(parentStack="acme/neon-stack/dev", readReplicas="1"), "set it on the parent stack"),
    ("allowedIps", raw(parentStack="acme/neon-stack/dev", allowedIps='["192.0.2.1"]'), "set it on the parent stack"),
]


@pytest.mark.parametrize(("key", "config", "expected"), NETWORK_BAD)
def test_production_controls_are_refused_by_key(schema_root, key, config, expected):
    with pytest.raises(SettingsError) as caught:
        parse_settings(config, "prod", schema_root)
    mine = [p for p in caught.value.problems if p.startswith(f"neon-stack:{key}: ")]
    assert mine and expected in " ".join(mine), caught.value.problems


def test_allow_list_forms_and_deployers_covered_by_the_union_of_entries(schema_root):
    config = raw(
        allowedIps='["192.0.2.0/25", "192.0.2.128-192.0.2.255", "2001:db8::/32", "198.51.100.7"]',
        deployerIps='["192.0.2.0/24", "198.51.100.7", "2001:db8::1"]',
        protectPrimaryBranch="true", readReplicas="2", connectTimeoutSeconds="30",
    )
    settings = parse_settings(config, "prod", schema_root)
    assert settings.neon.network.allowed_ips[0] == "192.0.2.0/25" and settings.neon.protect_primary_branch
    assert settings.neon.read_replicas == 2 and settings.apps[0].connect_timeout_seconds == 30


def test_deployers_are_not_needed_where_the_list_does_not_reach_the_primary_branch(schema_root):
    # The list applies to protected branches only, and the primary is not protected.
    open_primary = raw(allowedIps='["192.0.2.1"]', allowedIpsProtectedBranchesOnly="true")
    assert parse_settings(open_primary, "prod", schema_root).neon.network.protected_branches_only
    with pytest.raises(SettingsError, match="neon-stack:deployerIps"):
        parse_settings({**open_primary, **raw(protectPrimaryBranch="true")}, "prod", schema_root)
    private = raw(blockPublicConnections="true", deployersUsePrivateNetworking="true", allowedIps='["10.0.0.0/8"]')
    assert parse_settings(private, "prod", schema_root).neon.network.block_public_connections


def test_the_prod_stack_protects_its_primary_branch_and_reads_through_a_replica():
    settings = parse_settings(stack_file_config("prod"), "prod")
    assert settings.neon.protect_primary_branch and settings.neon.read_replicas == 1
    assert settings.neon.network.allowed_ips == ()  # see the comment in Pulumi.prod.yaml


def test_branch_mode_accepts_the_project_controls_at_the_defaults_the_engine_passes(schema_root):
    """The engine hands the program every default of Pulumi.yaml as if it were set."""
    declared = yaml.safe_load((PROJECT_ROOT / "Pulumi.yaml").read_text())["config"]
    config = {f"neon-stack:{key}": as_pulumi_passes_it(spec["default"]) for key, spec in declared.items()}
    config["neon-stack:parentStack"] = "acme/neon-stack/dev"
    assert parse_settings(config, "pr-7", schema_root).branch_mode is not None
def test_branch_ttl_is_parsed_to_seconds_in_branch_mode(schema_root):
    for text, seconds in (("1h", 3600), ("12h", 43200), ("7d", 604800), ("30d", 2592000), ("720h", 2592000)):
        config = raw(parentStack="acme/neon-stack/dev", branchTtl=text)
        assert parse_settings(config, "pr-7", schema_root).branch_mode.ttl_seconds == seconds, text
    assert parse_settings(raw(parentStack="acme/neon-stack/dev"), "pr-7", schema_root).branch_mode.ttl_seconds is None


@pytest.mark.parametrize(
    ("config", "message"),
    [
        (raw(branchTtl="7d"), "only applies in branch mode"),
        (
            raw(parentStack="acme/neon-stack/dev", branchTtl="31d"),
            "outside Neon's limits for a branch expiry (1h to 30d)",
        ),
        (raw(parentStack="acme/neon-stack/dev", branchTtl="721h"), "outside Neon's limits"),
        (raw(parentStack="acme/neon-stack/dev", branchTtl="30m"), "not a duration such as 7d or 12h"),
        (raw(parentStack="acme/neon-stack/dev", branchTtl="0h"), "not a duration such as 7d or 12h"),
        (raw(parentStack="acme/neon-stack/dev", branchTtl="7 days"), "not a duration such as 7d or 12h"),
    ],
)
def test_a_bad_branch_ttl_is_refused_by_key(config, message, schema_root):
    with pytest.raises(SettingsError) as error:
        parse_settings(config, "pr-7", schema_root)
    (problem,) = error.value.problems
    assert problem.startswith("neon-stack:branchTtl: ") and message in problem, problem
