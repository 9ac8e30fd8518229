"""Sample submissions, for checking the autograder and timing it: the student version of a notebook with
its answer cells filled in from the solutions, optionally with some answers replaced (a plausible wrong
answer) or the notebook damaged. Used by tests/test_grading.py and bench/autograde.py.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Callable, Mapping
from pathlib import Path

import nbformat
from nbformat.notebooknode import NotebookNode

from .preprocessors import delimiters

SOLUTION_MARKERS = re.compile("^[^\n]*(" + "|".join(map(re.escape, delimiters(None)[2:])) + ")[^\n]*\n?", re.M)


def answers(solution_nb: Path) -> dict[str, str]:
    """grade_id -> the solution's source of every answer cell (solution markers removed)."""
    nb = nbformat.read(solution_nb, as_version=4)
    return {
        cell.metadata["nbgrader"]["grade_id"]: SOLUTION_MARKERS.sub("", cell.source)
        for cell in nb.cells
        if cell.metadata.get("nbgrader", {}).get("solution")
    }


def solved(release_nb: Path, solution_nb: Path, replace: Mapping[str, str] | None = None) -> NotebookNode:
    """The student version with every answer cell answered as in the solutions, except those in `replace`."""
    nb = nbformat.read(release_nb, as_version=4)
    filled = answers(solution_nb) | dict(replace or {})
    for cell in nb.cells:
        grade_id = cell.metadata.get("nbgrader", {}).get("grade_id")
        if cell.metadata.get("nbgrader", {}).get("solution") and grade_id in filled:
            cell.source = filled[grade_id]
    return nb


def write_submission(course: Path, student: str, assignment: str, notebooks: Mapping[str, NotebookNode | str | bytes],
                     timestamp: str = "2026-01-15 12:00:00.000000 UTC") -> Path:
    """Put notebooks (nodes, or raw text/bytes for broken files) into submitted/<student>/<assignment>/."""
    folder = Path(course) / "submitted" / student / assignment
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    for name, nb in notebooks.items():
        path = folder / f"{name}.ipynb"
        if isinstance(nb, bytes):
            path.write_bytes(nb)
        elif isinstance(nb, str):
            path.write_text(nb)
        else:
            nbformat.write(nb, path)
    (folder / "timestamp.txt").write_text(timestamp)
    return folder


def edit_cell(nb: NotebookNode, grade_id: str, change: Callable[[NotebookNode], NotebookNode | None]) -> NotebookNode:
    """Apply `change` to the cell with this grade id (it returns the new cell, or None to delete it)."""
    cells = []
    for cell in nb.cells:
        if cell.metadata.get("nbgrader", {}).get("grade_id") == grade_id:
            cell = change(cell)
        if cell is not None:
            cells.append(cell)
    nb.cells = cells
    return nb
