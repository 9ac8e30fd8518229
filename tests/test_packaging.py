"""bertlab declares what it imports: a fresh `pip install bertlab[...]` must not depend on what else happens to be
installed."""

from __future__ import annotations

import ast
import re
import sys
from importlib.metadata import packages_distributions
from pathlib import Path

import pytest
import tomllib
from chapter_code import code_cells
from course_files import course_tasks
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("bertlab", "coursegrader")  # what src/ holds: the course library and the instructor's autograder


COLAB_ONLY = {"google"}  # google.colab: the chapters' install cell imports it only on Colab


def top_level_imports(source: str, filename: str) -> set[str]:
    """Top-level names of the absolute imports in one piece of Python source."""
    names = set()
    for node in ast.walk(ast.parse(source, filename=filename)):
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


def imported_modules(package: Path) -> set[str]:
    """Top-level names of the absolute imports in every module of `package`."""
    return set().union(*(top_level_imports(p.read_text(), str(p)) for p in package.rglob("*.py")))


def chapter_imports(book: Path) -> set[str]:
    """Top-level names imported by the code cells of the chapters (MyST ``{code-cell}`` blocks; their option
    lines and IPython magics skipped)."""
    names = set()
    for chapter in book.glob("*.md"):
        for cell in code_cells(chapter.read_text()):
            names |= top_level_imports(cell, str(chapter))
    return names - COLAB_ONLY


def declared_requirements() -> list[Requirement]:
    """Every requirement of pyproject.toml, its extras' included, less an extra's references to bertlab itself."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    requirements = project["dependencies"] + [r for extra in project["optional-dependencies"].values() for r in extra]
    return [r for r in map(Requirement, requirements) if canonicalize_name(r.name) != project["name"]]


def declared_distributions() -> set[str]:
    return {canonicalize_name(r.name) for r in declared_requirements()}


def lock_entries(lines: list[str]) -> dict[str, tuple[str, list[str]]]:
    """name -> (version, hashes) of the `name==version` lines of a requirements file, each with the `--hash=`
    options that follow it (pip-compile's continuation lines); comments, blank lines and options skipped."""
    entries: dict[str, tuple[str, list[str]]] = {}
    name = None
    for line in lines:
        line = line.split("#")[0].strip().removesuffix("\\").strip()
        if match := re.fullmatch(r"([A-Za-z0-9][A-Za-z0-9._-]*)==(\S+)", line):
            name = canonicalize_name(match[1])
            entries[name] = (match[2], [])
        elif line.startswith("--hash=") and name is not None:
            entries[name][1].append(line.removeprefix("--hash="))
        elif line:
            name = None
    return entries


def pinned_versions(lines: list[str]) -> dict[str, str]:
    """name -> version of the `name==version` lines of a requirements or constraints file."""
    return {name: version for name, (version, _) in lock_entries(lines).items()}


def unpinned(requirements: list[Requirement], pins: dict[str, str]) -> list[str]:
    """The requirements that the pins leave open, or pin to a version the requirement does not accept."""
    problems = []
    for r in requirements:
        version = pins.get(canonicalize_name(r.name))
        if version is None:
            problems.append(f"{r.name}: no pin")
        elif not r.specifier.contains(version, prereleases=True):
            problems.append(f"{r.name}: pinned to {version}, outside {r.specifier}")
    return problems


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


def installed_with(extra: str) -> set[str]:
    """The distributions that ``pip install bertlab[extra]`` asks for: the dependencies, the extra's, and those of
    the extras it names (``bertlab[course,onnx]``)."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    names = {canonicalize_name(Requirement(r).name) for r in project["dependencies"]}
    todo, seen = [extra], set()
    while todo:
        if (name := todo.pop()) in seen:
            continue
        seen.add(name)
        for requirement in map(Requirement, project["optional-dependencies"][name]):
            if canonicalize_name(requirement.name) == project["name"]:
                todo += sorted(requirement.extras)
            else:
                names.add(canonicalize_name(requirement.name))
    return names


def test_an_extra_brings_the_extras_it_names():
    assert {"matplotlib", "onnx", "jupyter-book"} <= installed_with("docs")
    assert "nbgrader" not in installed_with("docs") and "nbgrader" in installed_with("dev")


def test_every_import_of_the_chapters_is_declared_in_pyproject():
    """The chapters run on a student's machine or Colab with ``pip install bertlab[course]``."""
    missing = undeclared(chapter_imports(ROOT / "book"), installed_with("course"))
    assert not missing, f"imported by a chapter but not in bertlab[course]: {missing}"


def test_an_undeclared_import_of_a_chapter_is_caught(tmp_path):
    chapter = "# A chapter\n\n```{code-cell} ipython3\n:tags: [hide-input]\n%matplotlib inline\nimport yaml\n```\n"
    (tmp_path / "chapter.md").write_text(chapter)
    assert chapter_imports(tmp_path) == {"yaml"}
    assert undeclared(chapter_imports(tmp_path), {"numpy"}) == ["yaml (from pyyaml)"]


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


TASKS = course_tasks()
ROLES = TASKS.ROLES


def role_requirements(role: str) -> list[Requirement]:
    """What the role's extras ask for (pyproject.toml), less bertlab itself."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    names = set().union(*(installed_with(extra) for extra in ROLES[role].extras))
    every = [Requirement(r) for r in project["dependencies"]]
    every += [Requirement(r) for extra in project["optional-dependencies"].values() for r in extra]
    return [r for r in every if canonicalize_name(r.name) in names]


def lock(role: str) -> dict[str, tuple[str, list[str]]]:
    return lock_entries((ROOT / "requirements" / f"{role}.txt").read_text().splitlines())


@pytest.mark.parametrize("role", sorted(ROLES))
def test_every_requirement_of_a_role_is_pinned_with_hashes_by_its_lock_file(role):
    """pyproject.toml lists the dependencies, requirements/ROLE.txt pins what the role installs, with hashes."""
    entries = lock(role)
    problems = unpinned(role_requirements(role), {name: version for name, (version, _) in entries.items()})
    assert not problems, f"requirements of pyproject.toml that requirements/{role}.txt does not pin: {problems}"
    unhashed = [name for name, (_, hashes) in entries.items() if not hashes]
    assert not unhashed, f"pins of requirements/{role}.txt without a hash: {unhashed}"
    assert entries["torch"][0].endswith("+cpu"), f"torch must be the CPU build, not {entries['torch'][0]}"


def test_every_role_gets_the_developers_versions_and_only_what_it_needs():
    developer = lock("developer")
    for role in set(ROLES) - {"developer"}:
        entries = lock(role)
        differ = [f"{n} {v} (developer: {developer.get(n, ('none',))[0]})" for n, (v, _) in entries.items()
                  if developer.get(n, (None,))[0] != v]
        assert not differ, f"requirements/{role}.txt differs from the developer's lock: {differ}"
    assert "nbgrader" not in lock("student") and "jupyterlab" in lock("student")
    assert "jupyter-book" not in lock("instructor") and "nbgrader" in lock("instructor")
    assert "pytest" not in lock("author") and "jupyter-book" in lock("author")


def test_the_lock_files_install_torch_from_the_cpu_index():
    for role in ROLES:
        text = (ROOT / "requirements" / f"{role}.txt").read_text()
        assert f"--extra-index-url {TASKS.CPU_INDEX}" in text.splitlines(), role


def too_new_for(python: str, installed: dict[str, tuple[str, str | None]], pins: dict[str, str]) -> list[str]:
    """The pinned packages whose installed release (name -> (version, Requires-Python)) does not accept ``python``."""
    from packaging.specifiers import SpecifierSet

    return [f"{name}=={version} needs Python {needs}" for name, (version, needs) in sorted(installed.items())
            if pins.get(name) == version and needs and not SpecifierSet(needs).contains(python)]


def test_every_pinned_package_runs_on_the_oldest_python_the_project_accepts():
    """requires-python is a promise for every 3.11 (Debian 12's python3 is 3.11.2): a pin whose Requires-Python
    wants a later 3.11 breaks the README's commands there (soupsieve 3.0 and later want 3.11.5). Checked on the
    releases installed here where they are the pinned ones (CI installs the developer's lock)."""
    from importlib.metadata import distributions

    floor = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["requires-python"]
    oldest = re.fullmatch(r">=\s*(\d+\.\d+)(\.\d+)?", floor.split("#")[0].strip())
    assert oldest, f"requires-python {floor!r} is not a plain floor"
    python = oldest[1] + (oldest[2] or ".0")
    installed = {canonicalize_name(d.metadata["Name"]): (d.version, d.metadata.get("Requires-Python"))
                 for d in distributions()}
    assert too_new_for(python, installed, TASKS.pins("developer")) == []
    caught = too_new_for("3.11.2", {"soupsieve": ("4.1.3", ">=3.11.5")}, {"soupsieve": "4.1.3"})
    assert caught == ["soupsieve==4.1.3 needs Python >=3.11.5"]


def test_a_lock_entry_without_a_hash_is_seen():
    lines = ["--extra-index-url https://example.org/simple", "numpy==2.4.6 \\", "    --hash=sha256:aa \\",
             "    --hash=sha256:bb", "    # via bertlab", "six==1.16.0", "    # via bertlab"]
    assert lock_entries(lines) == {"numpy": ("2.4.6", ["sha256:aa", "sha256:bb"]), "six": ("1.16.0", [])}


def test_an_unpinned_or_contradicted_requirement_is_caught():
    pins = pinned_versions(["# a comment", "", "numpy==2.4.6", "torch==2.13.0  # the CPU build"])
    requirements = [Requirement("numpy>=3"), Requirement("torch>=2.4"), Requirement("pyyaml>=6")]
    assert unpinned(requirements, pins) == ["numpy: pinned to 2.4.6, outside >=3", "pyyaml: no pin"]


@pytest.mark.parametrize(("folder", "extra"), [("tests", "dev"), ("bench", "dev"), ("book/_ext", "docs")])
def test_every_import_of_the_tests_benches_and_site_is_declared_in_their_extra(folder, extra):
    """A maintainer's ``pip install bertlab[dev]`` runs the tests and benches; ``bertlab[docs]`` builds the site."""
    local = {p.stem for p in (ROOT / folder).glob("*.py")}  # their own helper modules (conftest, ...)
    missing = undeclared(imported_modules(ROOT / folder) - local, installed_with(extra))
    assert not missing, f"imported by {folder}/ but not in bertlab[{extra}]: {missing}"
