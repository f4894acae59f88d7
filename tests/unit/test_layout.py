"""The one-way rule between taskforce's packages, read from the imports themselves: the main
agent's side and the workers meet only in `shared`, which stands on neither, and the demo is
written as a user's registry would be, on `shared` alone."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from shared.registry import OWN_PACKAGES

ROOT = Path(__file__).resolve().parents[2]

FORBIDDEN = {
    "orchestrator": {"workers"},
    "workers": {"orchestrator", "taskforce_demo"},
    "shared": {"orchestrator", "workers", "taskforce_demo"},
    "taskforce_demo": {"orchestrator", "workers"},
}


def _imported_packages(path: Path) -> set[str]:
    """The top-level packages a module imports, at its top or inside a function."""
    packages = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            packages |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            packages.add(node.module.split(".")[0])
    return packages


def test_every_package_of_taskforce_has_its_rule() -> None:
    assert set(FORBIDDEN) == OWN_PACKAGES


@pytest.mark.parametrize("package", FORBIDDEN)
def test_a_package_imports_none_it_must_not(package: str) -> None:
    modules = sorted((ROOT / package).rglob("*.py"))
    assert modules, package
    crossings = {
        f"{module.relative_to(ROOT)} imports {imported}"
        for module in modules
        for imported in _imported_packages(module) & FORBIDDEN[package]
    }
    assert not crossings


def test_the_rule_sees_a_crossing(tmp_path: Path) -> None:
    """The reader finds an import hidden in a function, as the rule needs it to."""
    module = tmp_path / "m.py"
    module.write_text("def late():\n    from workers.app import app\n    import orchestrator.cli\n")
    assert _imported_packages(module) == {"workers", "orchestrator"}


def test_only_the_command_line_imports_the_command_line() -> None:
    outside = sorted(
        set((ROOT / "orchestrator").rglob("*.py")) - set((ROOT / "orchestrator" / "cli").rglob("*.py"))
    )
    importers = {
        str(module.relative_to(ROOT))
        for module in outside
        if any((node.module or "").startswith("orchestrator.cli") for node in _imports_from(module))
    }
    assert importers == {"orchestrator/__main__.py"}


def _imports_from(path: Path) -> list[ast.ImportFrom]:
    tree = ast.parse(path.read_text(), str(path))
    return [node for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module]
