"""nbgrader's configuration for the course's assignments (read by every `nbgrader` command run from this folder).

The instructor's commands are in book/instructors.md: `make release`, `make collect INBOX=...`,
`make autograde`, `make feedback`, `make grades` (all of them run `python -m coursegrader ...`).
"""

import os

c = get_config()  # noqa: F821 (nbgrader provides get_config when it reads this file)

c.CourseDirectory.root = os.path.dirname(os.path.abspath(__file__))
c.CourseDirectory.course_id = "ssl-bert"
c.CourseDirectory.source_directory = "solutions"
c.CourseDirectory.release_directory = "exercises"
# The gradebook: SQLite next to this file by default; any SQLAlchemy URL (e.g. postgresql://user@host/grades)
# through the environment variable BERTLAB_GRADEBOOK_URL or --db-url of `python -m coursegrader`.
if os.environ.get("BERTLAB_GRADEBOOK_URL"):
    c.CourseDirectory.db_url = os.environ["BERTLAB_GRADEBOOK_URL"]
c.CourseDirectory.ignore = [".ipynb_checkpoints", "*.pyc", "__pycache__", "feedback", ".*"]

# What a student sees in an answer cell.
c.ClearSolutions.code_stub = {"python": "# YOUR CODE HERE\nraise NotImplementedError()"}
c.ClearSolutions.text_stub = "YOUR ANSWER HERE"

# Generating the student versions: links to the chapters become links to the published website first
# (its address is html.baseurl in _config.yml), then nbgrader's own steps.
from nbgrader.converters import GenerateAssignment  # noqa: E402

c.GenerateAssignment.preprocessors = [
    "coursegrader.preprocessors.PublishedLinks",
    *GenerateAssignment.class_traits()["preprocessors"].default(),  # nbgrader's own list
]

# Autograding: a cell that runs longer than this is stopped (an infinite loop costs its cell, not the batch);
# outputs are capped, so a notebook that prints a million lines stays readable.
c.Execute.timeout = 60
# Output may trail a cell's reply by seconds on a busy machine; nbgrader's default (4 s) then fails the whole notebook.
c.Execute.iopub_timeout = 60
c.Execute.extra_arguments = ["--HistoryManager.hist_file=:memory:"]
c.LimitOutput.max_lines = 200
c.LimitOutput.max_traceback = 60
# Autograding: `python -m coursegrader autograde` runs nbgrader's Execute as coursegrader.execute.
# SandboxedExecute, where the test cells run in the judge (the grading process), not in the student's kernel.
c.Autograde.autograde_preprocessors = [
    "nbgrader.preprocessors.Execute",
    "nbgrader.preprocessors.IgnorePattern",
    "nbconvert.preprocessors.ClearMetadataPreprocessor",
    "nbgrader.preprocessors.LimitOutput",
    "nbgrader.preprocessors.SaveAutoGrades",
    "nbgrader.preprocessors.AssignLatePenalties",
    "nbgrader.preprocessors.CheckCellMetadata",
]
# Feedback: the hidden tests stay hidden (their source, and the traceback lines that quote it); no output line
# may quote a hidden test or the solutions; the submission's HTML and JavaScript are escaped or dropped.
c.GenerateFeedback.preprocessors = [
    "nbgrader.preprocessors.GetGrades",
    "coursegrader.preprocessors.RedactSecrets",
    "coursegrader.preprocessors.HideHiddenTests",
    "nbconvert.preprocessors.sanitize.SanitizeHTML",
    "nbconvert.preprocessors.CSSHTMLHeaderPreprocessor",
]
c.SanitizeHTML.enabled = True  # nbconvert's preprocessors are off unless enabled
# Markdown (cells, text/markdown outputs) is rendered, then sanitised with an allowlist of tags and URL schemes:
# a link to javascript:, however its letters are written, does not survive.
c.HTMLExporter.filters = {"markdown2html": "coursegrader.preprocessors.safe_markdown2html"}
c.ExportApp.plugin_class = "nbgrader.plugins.CsvExportPlugin"
