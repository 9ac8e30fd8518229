"""The instructor's autograder for the course's nbgrader assignments (``python -m coursegrader``).

It lives beside the course library, not in it: students' notebooks import `bertlab` (and its test helpers,
`bertlab.checks`), never this package. A sandboxed kernel gets one module of it, `coursegrader.remote` (the
kernel's end of the judge, `coursegrader.judge`), so this package imports nothing at import time.
"""
