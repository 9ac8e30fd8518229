"""A computed value, handed from a chapter's code to its prose: myst-nb's ``glue``, without myst-nb.

The course's pages are notebooks that the website's build executes (myst-nb). A number that the prose states is
computed by a cell and *glued* there under a name; the prose shows it with a role, ``{glue:text}`name:.1%```,
so the sentence says what the cell computed, however the code, the data or the shipped models change.

:func:`glue` stores exactly what ``myst_nb.glue(name, value, display=False)`` stores: an output whose MIME type
carries myst-nb's prefix, with the value's ``repr`` as its text and the name in its metadata. It does not import
myst-nb, which a student's notebook does not have (``bertlab[course]``, Colab): there the output is stored all the
same and simply not read. Outside IPython it does nothing.

Chapter: book/masking.md
"""

from __future__ import annotations

import builtins
import numbers

GLUE_PREFIX = "application/papermill.record/"  # myst_nb.ext.glue.GLUE_PREFIX


def glue(name: str, value: int | float | str) -> None:
    """Store ``value`` (a number or a string) under ``name`` for the page's prose.

    It returns nothing, so that a cell ending with it shows no output of its own (myst-nb's shows none either).

    A NumPy scalar is stored as the Python number it holds: the role formats the stored text, and
    ``repr(np.float64(0.5))`` is ``np.float64(0.5)``, which it cannot read as a number. (A PyTorch tensor is not a
    number: glue ``float(t)`` or ``int(t)``.)

    Chapter: book/masking.md
    """
    if isinstance(value, bool) or not isinstance(value, (numbers.Number, str)):
        raise TypeError(f"glue takes a number or a string, not {type(value).__name__} ({name!r})")
    if type(value) not in (int, float, str):  # np.float64 is a float, but its repr is np.float64(...)
        value = str(value) if isinstance(value, str) else value.item() if hasattr(value, "item") else float(value)
    show = getattr(builtins, "display", None)  # IPython puts display() among the builtins of its kernels
    if show is not None:
        show({GLUE_PREFIX + "text/plain": repr(value)}, raw=True,
             metadata={"scrapbook": {"name": name, "mime_prefix": GLUE_PREFIX}})
