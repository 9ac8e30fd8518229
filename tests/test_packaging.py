"""bertlab declares what it imports: a fresh `pip install bertlab[...]` must not depend on what else happens to be
installed."""

from __future__ import annotations

import ast
import sys
from importlib.metadata import packages_distributions
from pathlib import Path

import pytest
import tomllib
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("bertlab", "coursegrader")  # what src/ holds: the course library and the instructor's autograder


def imported_modules(package: Path) -> set[str]:
    """Top-level names of the absolute imports in every module of `package`."""
    names = set()
    for path in package.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, ast.Import):
                names |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names.add(node.module.split(".")[0])
    return names


def declared_distributions() -> set[str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    requirements = project["dependencies"] + [r for extra in project["optional-dependencies"].values() for r in extra]
    return {canonicalize_name(Requirement(r).name) for r in requirements}


def undeclared(modules: set[str], declared: set[str]) -> list[str]:
    """The third-party modules among `modules` that no declared distribution provides."""
    providers = packages_distributions()
    missing = []
    builtin = set(sys.stdlib_module_names) | {"__main__"}  # the running program's own module, never a distribution
    for module in sorted(modules - builtin - set(PACKAGES)):
        distributions = {canonicalize_name(d) for d in providers.get(module, [module])}
        if not distributions & declared:
            missing.append(f"{module} (from {', '.join(sorted(distributions))})")
    return missing


def test_src_holds_exactly_the_declared_packages():
    assert sorted(p.parent.name for p in (ROOT / "src").glob("*/__init__.py")) == sorted(PACKAGES)


@pytest.mark.parametrize("package", PACKAGES)
def test_every_import_of_a_package_is_declared_in_pyproject(package):
    missing = undeclared(imported_modules(ROOT / "src" / package), declared_distributions())
    assert not missing, f"imported by src/{package} but declared nowhere in pyproject.toml: {missing}"


def test_the_course_library_does_not_import_the_grader():
    """Students install and import bertlab; the grader is the instructor's (bertlab.checks only looks it up)."""
    assert "coursegrader" not in imported_modules(ROOT / "src" / "bertlab")


def test_an_undeclared_import_is_caught(tmp_path):
    source = ["import os", "import __main__", "import numpy", "from yaml import safe_load", "from . import sibling"]
    (tmp_path / "m.py").write_text("\n".join(source) + "\n")
    assert undeclared(imported_modules(tmp_path), {"numpy"}) == ["yaml (from pyyaml)"]


def test_every_package_data_pattern_matches_a_file():
    data = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]["bertlab"]
    empty = [pattern for pattern in data if not any((ROOT / "src" / "bertlab").glob(pattern))]
    assert not empty, f"package data in pyproject.toml that matches no file: {empty}"
