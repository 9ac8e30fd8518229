"""What the grader takes from the release, never from a submission: the cells' grading metadata (points,
grade ids, locks), the notebooks' names, and the bound of every stored score.

* `restore_metadata`: every cell of a submitted notebook gets the nbgrader metadata of the release cell with
  the same grade id; grading metadata that the release does not have (a forged test cell, a duplicated id,
  changed points) is removed, so a forged flag costs nothing but its own claim.
* `notebook_for`: which release notebook a submitted file is (``masking (1).ipynb``, ``Masking.ipynb``).
* `check_scores`: no stored score above its maximum (or below zero), checked after each write and over the
  whole gradebook (`python -m coursegrader check`).
"""

from __future__ import annotations

import copy
import re

from nbformat.notebooknode import NotebookNode

COPY_SUFFIX = re.compile(r"(\s*\(\d+\)|\s*-\s*copy(\s*\d+)?|\s*copy(\s*\d+)?|_\d+)$", re.I)


def _grade_id(cell: NotebookNode) -> str | None:
    meta = cell.get("metadata", {}).get("nbgrader")
    return meta.get("grade_id") if isinstance(meta, dict) else None


def restore_metadata(nb: NotebookNode, release: NotebookNode) -> list[str]:
    """Put the release's nbgrader metadata on the submission's cells; return what had to be changed."""
    wanted = {_grade_id(c): c for c in release.cells if _grade_id(c)}
    seen: set[str] = set()
    notes: list[str] = []
    for cell in nb.cells:
        grade_id = _grade_id(cell)
        meta = cell.get("metadata", {})
        if "nbgrader" not in meta:
            continue
        source = wanted.get(grade_id) if grade_id not in seen else None
        if source is None or source.cell_type != cell.cell_type:
            notes.append(f"cell {str(grade_id)[:40]!r}: grading metadata not in the release, removed")
            del meta["nbgrader"]
            continue
        seen.add(grade_id)
        if meta["nbgrader"] != source.metadata["nbgrader"]:
            notes.append(f"cell {grade_id!r}: grading metadata restored from the release")
            meta["nbgrader"] = copy.deepcopy(source.metadata["nbgrader"])
    return notes


def notebook_for(filename: str, known: set[str]) -> str | None:
    """The release notebook (file name) that a submitted file name stands for, or None.

    Exact names first; then the same name up to case, or with a copy suffix: ``masking (1).ipynb``,
    ``Masking.ipynb``, ``masking-copy.ipynb``, ``masking_2.ipynb`` all stand for ``masking.ipynb``.
    """
    if filename in known:
        return filename
    if not filename.lower().endswith(".ipynb"):
        return None
    stem = COPY_SUFFIX.sub("", filename[: -len(".ipynb")].strip()).strip().lower()
    matches = [k for k in known if k[: -len(".ipynb")].lower() == stem]
    return matches[0] if len(matches) == 1 else None


def check_scores(gradebook, assignment: str | None = None, student: str | None = None, fix: bool = True) -> list[str]:
    """Scores outside [0, max] in an open nbgrader Gradebook: listed, and clipped when `fix`."""
    problems = []
    for a in gradebook.assignments:
        if assignment and a.name != assignment:
            continue
        for submission in a.submissions:
            if student and submission.student_id != student:
                continue
            for notebook in submission.notebooks:
                for grade in notebook.grades:
                    for field in ("auto_score", "manual_score"):
                        value = getattr(grade, field)
                        if value is None or 0 <= value <= grade.max_score:
                            continue
                        problems.append(f"{submission.student_id}/{a.name}/{grade.name}: {field} {value} "
                                        f"outside [0, {grade.max_score}]")
                        if fix:
                            setattr(grade, field, min(max(value, 0.0), grade.max_score))
    if problems and fix:
        gradebook.db.commit()
    return problems
