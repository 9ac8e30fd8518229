"""Autograding the course's nbgrader assignments: the instructor's command line (``python -m bertlab.grading``)
and the helpers that the notebooks' test cells use (`bertlab.grading.checks`).

This package imports nothing heavy at import time: a notebook kernel imports `bertlab.grading.checks` alone.
"""
