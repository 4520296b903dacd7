"""Stack settings: defaults, the stack files, and every invalid value reported with its key."""

from pathlib import Path

import pytest
import yaml

from components.settings import DEFAULTS, PROJECT_ROOT, SettingsError, parse_settings
from tests.support.stack_config import stack_file_config

SIMPLE_TYPES = {"string": str, "integer": int, "boolean": bool, "array": list}


@pytest.fixture
def schema_root(tmp_path: Path) -> Path:
    """A schema tree with the two default applications, independent of the project's own files."""
    for app in ("chatkit", "learnflow"):
        (tmp_path / app).mkdir()
        (tmp_path / app / "0001_init.sql").write_text("CREATE TABLE t (id int);\n")
    return tmp_path


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
