"""The README is the operator guide: it must document every setting and output and the real commands."""

import re

from components.settings import DEFAULTS, PROJECT_ROOT

README = (PROJECT_ROOT / "README.md").read_text()


def test_every_setting_is_documented():
    missing = [key for key in DEFAULTS if f"`neon-stack:{key}`" not in README]
    assert missing == []


def test_every_stack_output_is_documented():
    exported = re.findall(r'pulumi\.export\(\s*"([A-Za-z]+)"', (PROJECT_ROOT / "__main__.py").read_text())
    assert len(exported) >= 6
    assert [name for name in exported if f"| `{name}` |" not in README] == []


def test_the_two_commands_are_the_ones_that_run():
    assert "\nmake up\n" in README
    assert "pulumi up --stack dev" in README
    assert "\nmake test\n" in README
    assert README.index("\nmake up\n") < README.index("\npulumi up --stack dev\n") < README.index("\nmake test\n")
    ci_steps = [line for line in (PROJECT_ROOT / ".ci" / "run").read_text().splitlines() if line.strip()]
    assert ci_steps[-1] == "make test"
