"""Sphinx extension of the course website: HTML that axe-core's WCAG 2.1 A/AA rules accept, in every edition.

docutils writes each citation of the bibliography as ``<div role="doc-biblioentry">`` inside ``<div role="list">``.
DPUB-ARIA 1.1 deprecates ``doc-biblioentry`` (axe: aria-deprecated-role), and a list whose children are not list
items breaks aria-required-children: one finding per entry and one per list. Here each citation is a
``listitem`` of its list. The writer is extended where it is chosen (``builder-inited``, after the theme has put
its own translator in place), so the theme's changes stay.

myst-nb folds a ``hide-input`` cell into ``<details>`` whose ``<summary aria-label="Toggle hidden content">``
shows "Show code cell content": a name that does not contain the visible text (axe:
label-content-name-mismatch). The summary is written here without the label, so its name is the text it shows.

The theme's search field and colour-mode button are fixed in ``templates/`` (their templates say why).
"""

from __future__ import annotations

import types
from html import escape
from typing import Any

from docutils import nodes


class CitationsAsListItems:
    """A mixin for an HTML translator: citations are list items of their citation list."""

    def visit_citation(self, node: nodes.citation) -> None:
        if not isinstance(node.previous_sibling(), type(node)):
            self.body.append('<div role="list" class="citation-list">\n')
        self.body.append(self.starttag(node, "div", classes=[node.tagname], role="listitem"))


def visit_folded_cell(self: Any, node: nodes.Element) -> None:
    """myst-nb's folded cell, with a summary whose accessible name is its visible text."""
    self.body.append(f'<details class="admonition hide {" ".join(node["classes"])}">\n<summary>\n')
    self.body.append(f'<p class="collapsed admonition-title">{escape(node["prompt_show"])}</p>\n')
    self.body.append(f'<p class="expanded admonition-title">{escape(node["prompt_hide"])}</p>\n</summary>\n')


def depart_folded_cell(self: Any, node: nodes.Element) -> None:
    self.body.append("</details>\n")


def extend_translator(app: Any) -> None:
    if app.builder.format != "html":
        return
    current = app.registry.translators.get(app.builder.name) or getattr(app.builder, "default_translator_class", None)
    if current is None or issubclass(current, CitationsAsListItems):
        return
    translator = types.new_class(f"Accessible{current.__name__}", (CitationsAsListItems, current), {})
    app.set_translator(app.builder.name, translator, override=True)


def setup(app: Any) -> dict[str, Any]:
    from myst_nb.sphinx_ import HideCodeCellNode

    app.setup_extension("myst_nb")  # so that this visitor replaces myst-nb's, not the other way round
    app.add_node(HideCodeCellNode, override=True, html=(visit_folded_cell, depart_folded_cell))
    app.connect("builder-inited", extend_translator, priority=900)  # after pydata-sphinx-theme's (500)
    return {"version": "1.0", "parallel_read_safe": True, "parallel_write_safe": True}
