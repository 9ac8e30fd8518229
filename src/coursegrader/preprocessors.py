"""nbgrader preprocessors of the course (named in nbgrader_config.py).

* `HideHiddenTests` (feedback): the hidden tests are cut from the test cells, a failed test's traceback
  (which quotes the failing lines) is replaced by its message, and the outputs of the student's cells that ran
  after a hidden test are withheld (the student's code saw the hidden tests' inputs and could print them).
* `PublishedLinks` (generate, first): links from a notebook to a chapter (``../../book/masking.md``) become
  links to the published page (``<html.baseurl of _config.yml>book/masking.html``), so that they still work
  once the notebook has left the repository (nbgrader exchange, a learning platform's copy).
* `RedactSecrets` (feedback, before HideHiddenTests): no output line may quote a line of a hidden test or of
  the solutions (a notebook can capture the cells it runs and print them).
* `safe_markdown2html` (feedback, the HTML exporter's ``markdown2html`` filter): markdown rendered, then
  sanitised by nh3 with an allowlist of tags and of URL schemes, so no link, however spelled, runs code.

The delimiters of hidden tests and solutions and the path of a source notebook come from nbgrader's own
configuration (`delimiters`, `source_notebook`).
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import nbformat
from nbformat.notebooknode import NotebookNode
from nbgrader import utils
from nbgrader.coursedir import CourseDirectory
from nbgrader.preprocessors import ClearHiddenTests, ClearSolutions, NbGraderPreprocessor

from .course import SITE_CONFIG

ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
URL_SCHEMES = {"http", "https", "mailto"}  # the links a feedback page may hold


def delimiters(config) -> tuple[str, str, str, str]:
    """The begin and end delimiters of hidden tests and of solutions, as nbgrader's configuration sets them."""
    tests, solutions = ClearHiddenTests(config=config), ClearSolutions(config=config)
    return (tests.begin_test_delimeter, tests.end_test_delimeter, solutions.begin_solution_delimeter,
            solutions.end_solution_delimeter)


def region(begin: str, end: str) -> re.Pattern:
    """The lines from one holding `begin` to the next holding `end`, both included."""
    return re.compile(rf"^[^\n]*{re.escape(begin)}.*?^[^\n]*{re.escape(end)}[^\n]*\n?", re.S | re.M)


SOLUTION = region(*delimiters(None)[2:])  # a solution region, with the delimiters the course uses (nbgrader's)


def source_notebook(config, assignment: str, notebook: str) -> Path:
    """The release's source notebook (solutions and hidden tests), where nbgrader's configuration puts it."""
    course = CourseDirectory(config=config)
    return Path(course.format_path(course.source_directory, ".", assignment)) / f"{notebook}.ipynb"


def safe_markdown2html(source: str) -> str:
    """Markdown as HTML, sanitised: nh3's allowlist of tags and attributes, links to URL_SCHEMES only."""
    import nh3
    from nbconvert.filters.markdown_mistune import markdown2html_mistune

    return nh3.clean(markdown2html_mistune(source), url_schemes=URL_SCHEMES)


CHAPTER_LINK = re.compile(r"\]\((?:\.\./)+book/([\w-]+)\.md(#[\w-]*)?\)")


def published_base(course: Path) -> str:
    """The website's published address, from ``html.baseurl`` of the course's SITE_CONFIG (its one source)."""
    import yaml

    config = course / SITE_CONFIG
    base = (yaml.safe_load(config.read_text()) or {}).get("html", {}).get("baseurl") if config.is_file() else None
    if not base:
        raise ValueError(f"no html.baseurl in {config}: set the published website's address there, so that the "
                         "assignments can link to its chapters.")
    return base if base.endswith("/") else base + "/"


def published_links(text: str, base: str) -> str:
    """Markdown links to chapter sources (``../../book/<page>.md#part``) -> links to the published pages."""
    return CHAPTER_LINK.sub(lambda m: f"]({base}book/{m[1]}.html{m[2] or ''})", text)


def _graded_code(cell: NotebookNode) -> bool:
    return cell.cell_type == "code" and utils.is_grade(cell) and not utils.is_solution(cell)


class PublishedLinks(NbGraderPreprocessor):
    """Chapter links in markdown cells point to the published website (see `published_links`)."""

    def preprocess(self, nb, resources):
        self.base = published_base(Path(self.config.CourseDirectory.get("root", os.getcwd())))
        return super().preprocess(nb, resources)

    def preprocess_cell(self, cell, resources, index):
        if cell.cell_type == "markdown":
            cell.source = published_links(cell.source, self.base)
        return cell, resources


WITHHELD = ("[output not shown in the feedback: this cell ran after a hidden test, whose inputs your code could "
            "have recorded]\n")


class HideHiddenTests(NbGraderPreprocessor):
    """For feedback: remove hidden tests from test cells, quote only the message of a failed test, and withhold
    the outputs of non-test code cells that come after a test cell with hidden tests (cells run in order)."""

    def preprocess(self, nb, resources):
        self.after_hidden = False
        self.hidden = region(*delimiters(self.config)[:2])
        return super().preprocess(nb, resources)

    def preprocess_cell(self, cell, resources, index):
        if not _graded_code(cell):
            if cell.cell_type == "code" and self.after_hidden and cell.get("outputs"):
                cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text=WITHHELD)]
            return cell, resources
        self.after_hidden = self.after_hidden or bool(self.hidden.search(cell.source))
        cell.source = self.hidden.sub("# (hidden tests)\n", cell.source)
        for output in cell.get("outputs", []):
            if output.get("output_type") == "error":
                message = ANSI.sub("", str(output.get("evalue", ""))) or "a hidden test failed"
                output.traceback = [f"{output.get('ename', 'Error')}: {message}"]
        return cell, resources


REDACTED = "[line removed by the autograder: it quotes a hidden test or the solutions]"


def secret_lines(texts: list[str], marks: tuple[str, str, str, str], minimum: int = 20) -> set[str]:
    """The lines (stripped, at least `minimum` characters) of the hidden-test and solution regions of `texts`,
    delimited by `marks` (see `delimiters`)."""
    lines = set()
    for text in texts:
        for found in region(*marks[:2]).findall(text) + region(*marks[2:]).findall(text):
            lines.update(ln.strip() for ln in found.splitlines() if len(ln.strip()) >= minimum)
    return {ln for ln in lines if not any(mark in ln for mark in marks)}


def redact(text: str, secret: set[str]) -> str:
    """`text` with every line that contains a secret line replaced by a note."""
    if not secret or not isinstance(text, str):
        return text
    return "".join(REDACTED + ("\n" if line.endswith("\n") else "") if any(s in line for s in secret) else line
                   for line in text.splitlines(keepends=True))


class RedactSecrets(NbGraderPreprocessor):
    """For feedback: remove every output line that quotes a hidden test or a solution line (HTML and scripts are
    nbconvert's SanitizeHTML's, and markdown `safe_markdown2html`'s)."""

    def preprocess(self, nb, resources):
        texts = [c.source for c in nb.cells if _graded_code(c)]
        info = resources.get("nbgrader", {})
        solution = source_notebook(self.config, str(info.get("assignment", "")), str(info.get("notebook", "")))
        if info.get("assignment") and solution.is_file():
            texts += [c.get("source", "") for c in json.loads(solution.read_text()).get("cells", [])]
            texts = ["".join(t) if isinstance(t, list) else t for t in texts]
        self.secret = secret_lines(texts, delimiters(self.config))
        return super().preprocess(nb, resources)

    def preprocess_cell(self, cell, resources, index):
        for output in cell.get("outputs", []):
            if "text" in output:
                output.text = redact(output.text, self.secret)
            if "evalue" in output:
                output.evalue = redact(output.evalue, self.secret)
            if "traceback" in output:
                output.traceback = [redact(line, self.secret) for line in output.traceback]
            for key, value in output.get("data", {}).items():
                if isinstance(value, str):
                    output.data[key] = redact(value, self.secret)
        return cell, resources
