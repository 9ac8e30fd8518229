"""Sphinx extension of the course website: HTML that axe-core's WCAG 2.1 A/AA rules accept, in every edition.

docutils writes each citation of the bibliography as ``<div role="doc-biblioentry">`` inside ``<div role="list">``.
DPUB-ARIA 1.1 deprecates ``doc-biblioentry`` (axe: aria-deprecated-role), and a list whose children are not list
items breaks aria-required-children: one finding per entry and one per list. Here each citation is a
``listitem`` of its list. The writer is extended where it is chosen (``builder-inited``, after the theme has put
its own translator in place), so the theme's changes stay.

The theme's search field and colour-mode button are fixed in ``templates/`` (their templates say why).
"""

from __future__ import annotations

import types
from typing import Any

from docutils import nodes


class CitationsAsListItems:
    """A mixin for an HTML translator: citations are list items of their citation list."""

    def visit_citation(self, node: nodes.citation) -> None:
        if not isinstance(node.previous_sibling(), type(node)):
            self.body.append('<div role="list" class="citation-list">\n')
        self.body.append(self.starttag(node, "div", classes=[node.tagname], role="listitem"))


def extend_translator(app: Any) -> None:
    if app.builder.format != "html":
        return
    current = app.registry.translators.get(app.builder.name) or getattr(app.builder, "default_translator_class", None)
    if current is None or issubclass(current, CitationsAsListItems):
        return
    translator = types.new_class(f"Accessible{current.__name__}", (CitationsAsListItems, current), {})
    app.set_translator(app.builder.name, translator, override=True)


def setup(app: Any) -> dict[str, Any]:
    app.connect("builder-inited", extend_translator, priority=900)  # after pydata-sphinx-theme's (500)
    return {"version": "1.0", "parallel_read_safe": True, "parallel_write_safe": True}
