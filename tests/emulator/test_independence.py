"""The emulator depends on nothing of the program it checks: no module of neon_emulator uses `components`.

Otherwise a mistake of the program (a region list, a host rule, a URI builder) would be copied
into its test double and hidden from the tests.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

import neon_emulator

PACKAGE = Path(neon_emulator.__file__).parent


def imported_modules(source: str) -> set[str]:
    """The modules that the absolute `import` and `from ... import` statements of `source` name, wherever they are."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module)
    return names


def of_the_program(names: set[str]) -> list[str]:
    return sorted(name for name in names if name == "components" or name.startswith("components."))


def test_the_scan_finds_every_form_of_import() -> None:
    source = "import os, components.uri as u\nimport components\ndef f():\n    from components.settings import X\n"
    assert of_the_program(imported_modules(source)) == ["components", "components.settings", "components.uri"]
    assert of_the_program(imported_modules("from neon_emulator import components_like\nimport componentsx\n")) == []


def test_no_module_of_the_package_imports_components() -> None:
    modules = sorted(PACKAGE.glob("*.py"))
    assert {"fake.py", "projects.py", "spec.py", "servers.py"} <= {path.name for path in modules}
    found = {path.name: of_the_program(imported_modules(path.read_text())) for path in modules}
    assert {name: imports for name, imports in found.items() if imports} == {}


@pytest.mark.host  # a fresh interpreter
def test_importing_every_module_loads_nothing_of_components() -> None:
    code = (
        "import importlib, json, pkgutil, sys, neon_emulator\n"
        "for module in pkgutil.iter_modules(neon_emulator.__path__):\n"
        "    importlib.import_module('neon_emulator.' + module.name)\n"
        "print(json.dumps({top: sorted(n for n in sys.modules if n.split('.')[0] == top)"
        " for top in ('neon_emulator', 'components')}))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=PACKAGE.parent, capture_output=True, text=True, check=True, timeout=60
    )
    loaded = json.loads(result.stdout)
    assert {"neon_emulator.__main__", "neon_emulator.fake", "neon_emulator.spec"} <= set(loaded["neon_emulator"])
    assert loaded["components"] == []
