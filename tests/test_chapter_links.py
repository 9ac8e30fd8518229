"""Library code links back to the chapter that teaches it, as d2l's library does: each function or class that a
chapter shows (``literalinclude`` with ``:pyobject:``, or the ``interface`` directive) names that chapter's file in
its docstring, and every chapter a docstring names exists."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

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
