"""Sphinx extension of the course website: Chinese drawn in the course font on every page.

A reader's machine may have no Chinese font at all (a fresh Linux install, a school's thin client): the
browser then draws every Chinese character of the site as an empty box. The plots do not have the
problem, because matplotlib embeds the course font (Noto Sans CJK SC, from the PyPI package
``noto-cjk-sans-otc``, see ``bertlab.plotting``). The pages get the same font as a web font:

1. when the HTML is written, the CJK characters that the pages use are collected;
2. the course font is cut down to exactly those characters (fontTools' subsetter), saved as WOFF in
   ``_static/`` (a few hundred kB instead of the collection's 20 MB);
3. a stylesheet adds it at the end of the theme's font lists, so that Latin text keeps the theme's
   fonts and each Chinese character, missing from those, is drawn with the course font.

The subset is cached by its face and character set in ``_build/.font_cache/``, so an unchanged site costs
nothing. Each edition of the site (``course_editions``) gets the subset of its own pages, in its own face of
the collection: the 繁體 edition the Traditional Chinese one (Noto Sans CJK TC), whose glyphs follow Taiwan's
standard forms.
"""

from __future__ import annotations

import hashlib
import re
import shutil
from pathlib import Path
from typing import Any

FAMILY = "Course CJK"  # the name the stylesheet gives the web font
SOURCE_FAMILY = "Noto Sans CJK SC"  # the face of the collection that the plots use too (an edition may name another)
FONT_FILE = "course-cjk.woff"
CSS_FILE = "course-cjk.css"
# CJK punctuation, kana, Hangul-free ideograph blocks, full-width forms: what a Chinese page can hold.
CJK = re.compile("[\u2e80-\u2fdf\u3000-\u303f\u3040-\u30ff\u3100-\u312f\u31c0-\u31ef\u3200-\u33ff"
                 "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\ufe30-\ufe4f\uff00-\uffef]")
STYLESHEET = f"""/* The course font for Chinese (book/_ext/course_fonts.py): after the theme's own fonts. */
@font-face {{
  font-family: "{FAMILY}";
  src: url("{FONT_FILE}") format("woff");
  font-weight: 100 900;  /* one face for every weight: bold text (table headers) uses it too */
  font-display: swap;
}}
html:root {{
  --pst-font-family-base: var(--pst-font-family-base-system), "{FAMILY}";
  --pst-font-family-heading: var(--pst-font-family-base-system), "{FAMILY}";
  --pst-font-family-monospace: var(--pst-font-family-monospace-system), "{FAMILY}";
}}
"""


def characters_used(site: Path, skip: frozenset[str] = frozenset()) -> set[str]:
    """Every CJK character in the site's HTML pages and scripts (the search index holds titles too), leaving out
    the folders ``skip`` at its top (the other editions, published below the English one, with fonts of their
    own)."""
    chars: set[str] = set()
    for path in site.rglob("*"):
        top = path.relative_to(site).parts[:1]
        if path.suffix in (".html", ".js") and path.is_file() and not {"_static", *skip} & set(top):
            chars.update(CJK.findall(path.read_text(encoding="utf-8", errors="ignore")))
    return chars


def subset_font(chars: set[str], destination: Path, family: str = SOURCE_FAMILY) -> Path:
    """The course font (its face ``family``) cut down to ``chars``, as WOFF at ``destination``."""
    from fontTools import subset
    from fontTools.ttLib import TTCollection

    from bertlab.plotting import cjk_font_path

    collection = TTCollection(str(cjk_font_path()))
    font = next((f for f in collection.fonts if f["name"].getDebugName(1) == family), None)
    if font is None:
        raise RuntimeError(f"{cjk_font_path()} has no face named {family!r}; reinstall noto-cjk-sans-otc.")
    options = subset.Options()
    options.flavor = "woff"
    options.name_IDs = [0, 1, 2, 3, 4, 5, 6]  # copyright, names, version: the licence travels with the font
    subsetter = subset.Subsetter(options)
    subsetter.populate(unicodes=sorted(ord(c) for c in chars))
    subsetter.subset(font)
    font.flavor = "woff"
    destination.parent.mkdir(parents=True, exist_ok=True)
    font.save(str(destination))
    return destination


def write_web_font(app: Any, exception: Exception | None) -> None:
    """After a successful HTML build: the subset font and its stylesheet in _static/."""
    if exception is not None or app.builder.format != "html":
        return
    from course_editions import EDITIONS, edition  # book/_ext is on sys.path in a Sphinx build

    site = Path(app.outdir)
    chars = characters_used(site, frozenset(e.folder for e in EDITIONS if e.folder))
    family = edition(app.config.language).font
    key = hashlib.sha256((family + "".join(sorted(chars))).encode()).hexdigest()[:16]
    cached = Path(app.outdir).parent / ".font_cache" / f"{key}.woff"
    if not cached.is_file():
        subset_font(chars, cached, family)
    static = site / "_static"
    static.mkdir(exist_ok=True)
    shutil.copy2(cached, static / FONT_FILE)
    (static / CSS_FILE).write_text(STYLESHEET, encoding="utf-8")


def preload_font(app: Any, pagename: str, templatename: str, context: dict, doctree: Any) -> None:
    """Fetch the font with the page, before the first layout, so that no Chinese is shaped with a fallback font
    first (Chromium could keep that fallback for bold text after the web font arrived, drawing empty boxes).

    The link is written here, not with ``add_css_file``: Sphinx appends ``?v=<checksum>`` to a static file that
    exists when the page is written (any rebuild), and a preload whose URL differs from the stylesheet's
    ``url(...)`` by that query is fetched for nothing, while the page waits for the font all the same."""
    href = context["pathto"](f"_static/{FONT_FILE}", 1)
    link = f'<link rel="preload" href="{href}" as="font" type="font/woff" crossorigin="anonymous">'
    context["metatags"] = context.get("metatags", "") + "\n" + link


def setup(app: Any) -> dict[str, Any]:
    app.add_css_file(CSS_FILE)
    app.connect("html-page-context", preload_font)
    app.connect("build-finished", write_web_font)
    return {"version": "1.0", "parallel_read_safe": True, "parallel_write_safe": True}
