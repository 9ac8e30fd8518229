"""nbgrader preprocessors of the course (named in nbgrader_config.py).

* `ArmTests` (autograde, before Execute): a fresh random key in the environment of the kernel to come.
* `VerifyTestsRan` (autograde, right after Execute): a test cell keeps its points only if its last line,
  ``checks.passed(grade_id)``, printed the line signed with that key. A cell that the notebook emptied,
  rewrote, or whose errors it swallowed (IPython hooks, a fake ``checks`` module) never prints it, and
  gets an error output that says why; nbgrader's SaveAutoGrades then gives it zero.
* `HideHiddenTests` (feedback): the hidden tests are cut from the test cells, and a failed test's
  traceback (which quotes the failing lines) is replaced by its message.
"""

from __future__ import annotations

import os
import re
import secrets

from nbformat.notebooknode import NotebookNode
from nbgrader import utils
from nbgrader.preprocessors import NbGraderPreprocessor
from traitlets import Unicode

from .signing import KEY_VARIABLE, MARK, signature

HIDDEN = re.compile(r"^[ \t]*#+[ \t]*BEGIN HIDDEN TESTS.*?^[ \t]*#+[ \t]*END HIDDEN TESTS[^\n]*\n?", re.S | re.M)
ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


def _graded_code(cell: NotebookNode) -> bool:
    return cell.cell_type == "code" and utils.is_grade(cell) and not utils.is_solution(cell)


def _error(name: str, message: str) -> NotebookNode:
    return NotebookNode(output_type="error", ename=name, evalue=message, traceback=[f"{name}: {message}"])


class ArmTests(NbGraderPreprocessor):
    """Put a new signing key into the environment that the kernel started by Execute inherits."""

    def preprocess(self, nb, resources):
        os.environ[KEY_VARIABLE] = secrets.token_hex(16)
        return nb, resources


class VerifyTestsRan(NbGraderPreprocessor):
    """Fail every test cell that did not print its signed completion line; drop those lines from the output."""

    reason = Unicode(
        "this test cell did not run to its end under the course's test helpers (its last line, checks.passed, "
        "printed nothing), so it earns no points. Typical causes: the cell was stopped by an error or a timeout "
        "in an earlier line, or the notebook changes how cells run (IPython hooks, rebinding import machinery)."
    ).tag(config=True)

    def preprocess(self, nb, resources):
        self.key = os.environ.get(KEY_VARIABLE, "")
        return super().preprocess(nb, resources)

    def preprocess_cell(self, cell, resources, index):
        if not _graded_code(cell):
            return cell, resources
        grade_id = cell.metadata["nbgrader"]["grade_id"]
        expected = f"{MARK} {grade_id} {signature(grade_id, self.key)}" if self.key else None
        found, outputs = False, []
        for output in cell.get("outputs", []):
            if output.get("output_type") == "stream":
                lines = output.get("text", "").splitlines(keepends=True)
                kept = []
                for line in lines:
                    if line.startswith(MARK):
                        found = found or (expected is not None and line.strip() == expected)
                    else:
                        kept.append(line)
                if not kept:
                    continue
                output.text = "".join(kept)
            outputs.append(output)
        if self.key and not found and not any(o.get("output_type") == "error" for o in outputs):
            outputs.append(_error("TestIncomplete", self.reason))
        cell.outputs = outputs
        return cell, resources


class HideHiddenTests(NbGraderPreprocessor):
    """For feedback: remove hidden tests from test cells, and quote only the message of a failed test."""

    def preprocess_cell(self, cell, resources, index):
        if not _graded_code(cell):
            return cell, resources
        cell.source = HIDDEN.sub("# (hidden tests)\n", cell.source)
        for output in cell.get("outputs", []):
            if output.get("output_type") == "error":
                message = ANSI.sub("", str(output.get("evalue", ""))) or "a hidden test failed"
                output.traceback = [f"{output.get('ename', 'Error')}: {message}"]
        return cell, resources
