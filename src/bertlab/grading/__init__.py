"""Autograding the course's nbgrader assignments: the instructor's command line (``python -m bertlab.grading``),
the judge that runs the test cells in the grading process (`bertlab.grading.judge`), and the helpers that the
test cells use (`bertlab.grading.checks`).

This package imports nothing heavy at import time: a notebook kernel imports `bertlab.grading.remote` (the
kernel's end of the judge) or `bertlab.grading.checks` alone.
"""
