"""Library code links back to the chapter that teaches it, as d2l's library does: each function or class that a
chapter shows (``literalinclude`` with ``:pyobject:``, or the ``interface`` directive) names that chapter's file in
its docstring; each one that a chapter imports names one of the chapters that use it; and every chapter a
docstring names exists."""

from __future__ import annotations

import ast
import importlib
import inspect
import re
from pathlib import Path

import pytest
from chapter_code import code_cells

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src"
LINK = re.compile(r"Chapter: (book/[\w/]+\.md)")
SHOWN = re.compile(r"```\{literalinclude\} \.\./src/(?P<file>[\w/]+\.py)\n:pyobject: (?P<name>[\w.]+)"
                   r"|```\{interface\} (?P<dotted>[\w.]+)")


def module_file(dotted: str) -> tuple[Path, str]:
    """`bertlab.masking.mask_tokens` -> (src/bertlab/masking.py, "mask_tokens"): the longest module prefix wins."""
    parts = dotted.split(".")
    for cut in range(len(parts) - 1, 0, -1):
        path = SRC.joinpath(*parts[:cut]).with_suffix(".py")
        if path.is_file():
            return path, ".".join(parts[cut:])
    raise ValueError(f"no module under src/ for {dotted!r}")


def shown_objects(chapter_text: str) -> list[tuple[Path, str]]:
    """(module file, qualified name) of every piece of library code that a chapter's source shows."""
    shown = []
    for m in SHOWN.finditer(chapter_text):
        shown.append((SRC / m["file"], m["name"]) if m["file"] else module_file(m["dotted"]))
    return shown


def docstring(path: Path, qualname: str) -> str:
    scope: ast.AST = ast.parse(path.read_text())
    for part in qualname.split("."):
        scope = next(n for n in scope.body if isinstance(n, ast.FunctionDef | ast.ClassDef) and n.name == part)
    return ast.get_docstring(scope) or ""


CHAPTERS = sorted((ROOT / "book").glob("*.md"))
SHOWN_PIECES = [(chapter, path, name) for chapter in CHAPTERS for path, name in shown_objects(chapter.read_text())]


def test_the_chapters_show_library_code():
    assert len(SHOWN_PIECES) >= 20  # the scan below would pass vacuously if the patterns stopped matching


@pytest.mark.parametrize(("chapter", "path", "name"), SHOWN_PIECES,
                         ids=[f"{c.stem}:{n}" for c, _, n in SHOWN_PIECES])
def test_shown_code_names_its_chapter(chapter, path, name):
    link = f"book/{chapter.name}"
    assert link in LINK.findall(docstring(path, name)), \
        f"{path.relative_to(ROOT)}:{name} is shown in {link}; add the line 'Chapter: {link}' to its docstring"


# The book's plumbing, not what it teaches: where the assets, corpora, stored results and figures come from.
PLUMBING = ("bertlab.shipped", "bertlab.checkpoint", "bertlab.corpora", "bertlab.experiments",
            "bertlab.finetuned_models", "bertlab.learning_curves", "bertlab.plotting", "bertlab.diagrams")


def imported_pieces(chapter_text: str) -> list[tuple[str, str]]:
    """(module, name) of every ``from bertlab... import name`` in a chapter's code cells."""
    return [(node.module, alias.name) for cell in code_cells(chapter_text) for node in ast.walk(ast.parse(cell))
            if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "bertlab"
            for alias in node.names]


def taught_imports() -> dict[object, set[str]]:
    """Each function or class of the library that a chapter imports (outside PLUMBING) -> those chapters."""
    users: dict[object, set[str]] = {}
    for chapter in CHAPTERS:
        for module, name in imported_pieces(chapter.read_text()):
            obj = getattr(importlib.import_module(module), name, None)
            if (inspect.isfunction(obj) or inspect.isclass(obj)) and not obj.__module__.startswith(PLUMBING):
                users.setdefault(obj, set()).add(f"book/{chapter.name}")
    return users


TAUGHT = taught_imports()


def test_the_chapters_import_library_code():
    assert len(TAUGHT) >= 15  # as above: the scan must find what the chapters use


@pytest.mark.parametrize("obj", TAUGHT, ids=[f"{o.__module__}.{o.__qualname__}" for o in TAUGHT])
def test_imported_code_names_a_chapter_that_uses_it(obj):
    links = set(LINK.findall(inspect.getdoc(obj) or ""))
    assert links & TAUGHT[obj], (f"{obj.__module__}.{obj.__qualname__} is used in {sorted(TAUGHT[obj])}; add the "
                                 f"line 'Chapter: <one of them>' to its docstring")


def test_a_chapter_import_is_found_in_its_code_cells():
    text = ("```{code-cell} ipython3\n:tags: [hide-input]\nfrom bertlab.glue import f1, accuracy\n```\n"
            "```python\nfrom bertlab.model import BertModel\n```\n")  # a plain code block is not run
    assert imported_pieces(text) == [("bertlab.glue", "f1"), ("bertlab.glue", "accuracy")]


def test_every_chapter_link_in_the_library_exists():
    links = {(path, link) for path in SRC.rglob("*.py") for link in LINK.findall(path.read_text())}
    assert links, "no chapter links found"
    missing = sorted(f"{path.relative_to(ROOT)} -> {link}" for path, link in links if not (ROOT / link).is_file())
    assert not missing, f"docstrings that link to a chapter that does not exist: {missing}"


def test_a_shown_object_is_found_by_both_directives():
    text = ("```{literalinclude} ../src/bertlab/model.py\n:pyobject: BertEmbeddings\n```\n"
            "```{interface} bertlab.heads.BertForSequenceClassification.forward\n```\n")
    assert shown_objects(text) == [(SRC / "bertlab/model.py", "BertEmbeddings"),
                                   (SRC / "bertlab/heads.py", "BertForSequenceClassification.forward")]
