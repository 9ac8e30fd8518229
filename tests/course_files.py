"""The course's Python files that are not in a package: tasks.py (the set-up) and the site's extensions in
book/_ext. Tests import them by path, as importlib's documentation shows ("Importing a source file directly"):
the module is entered in sys.modules before it runs, so dataclasses and pickling inside it work, and each
file is one module per process, whichever test asks first."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parents[1]
EXT = ROOT / "book" / "_ext"


def load(name: str, path: Path) -> ModuleType:
    """The module ``name`` made from ``path``, imported once per process."""
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[name]
        raise
    return module


def course_tasks() -> ModuleType:
    """tasks.py of the repository root."""
    return load("course_tasks", ROOT / "tasks.py")


def site_extension(name: str) -> ModuleType:
    """book/_ext/<name>.py, with its siblings importable (some extensions import each other)."""
    if str(EXT) not in sys.path:
        sys.path.append(str(EXT))
    return load(name, EXT / f"{name}.py")
