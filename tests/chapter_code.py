"""The Python code of the chapters, as the book build runs it: helpers for the tests that read the chapters."""

from __future__ import annotations

import re

CODE_CELL = re.compile(r"```\{code-cell\}[^\n]*\n(.*?)```", re.S)


def code_cells(chapter_text: str) -> list[str]:
    """The Python of a MyST chapter's ``{code-cell}`` blocks, less their option lines and IPython magics."""
    return ["\n".join(ln for ln in cell.splitlines() if not ln.lstrip().startswith((":", "%", "!")))
            for cell in CODE_CELL.findall(chapter_text)]
