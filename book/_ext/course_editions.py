"""Sphinx extension of the course website: its editions (English, 简体中文, 繁體中文) and the way between them.

The site is built once per edition from the same chapters (``book/_ext/course_build.py``): English, the source,
is published at the root; each other edition in a folder below it, its prose from the gettext catalogs of
``book/locales/`` (Sphinx's own internationalisation, with ``language`` and ``locale_dirs`` given per build).
The notebooks are executed once, by the English build, and every edition reads their outputs from the same
execution cache.

This extension gives every page of every edition

* a language switcher that leads to the same page in the other editions (``templates/course-language.html``,
  in the article header), and ``<link rel="alternate" hreflang>`` for each edition;
* the course's own interface strings in the edition's language: ``translate`` reads them from the catalog
  ``course.po`` of the edition (the demos' strings, the quizzes' buttons, the switcher's label). Strings are
  marked for extraction with ``N_`` in Python and ``t`` in the demos' script (``course_build.py catalogs``);
* the phrases that chapters glue into their prose from their results ("above zero", "narrows"), in the
  edition's language: a glued text that is a message of ``course.po`` is replaced by its translation
  (``course_build.py`` extracts the glued phrases of the executed chapters into that catalog's template).
"""

from __future__ import annotations

import functools
import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
COURSE_DOMAIN = "course"  # the catalog of the site extensions' own strings (course.po)


@dataclass(frozen=True)
class Edition:
    """One edition of the website."""

    language: str  # Sphinx's ``language``
    name: str  # the edition's name in its own language, as the switcher shows it
    folder: str  # where it is published, below the English site ("" for English itself)
    hreflang: str  # its BCP 47 tag, for <link rel="alternate">
    font: str  # the face of the course font (Noto Sans CJK) that draws its Chinese


EDITIONS = (
    Edition("en", "English", "", "en", "Noto Sans CJK SC"),
    Edition("zh_CN", "简体中文", "zh-cn", "zh-Hans", "Noto Sans CJK SC"),
    Edition("zh_TW", "繁體中文", "zh-tw", "zh-Hant-TW", "Noto Sans CJK TC"),
)
SOURCE = EDITIONS[0]  # English: the chapters' own text
TRANSLATED = "zh_CN"  # the edition whose catalogs are written by hand
CONVERTED = "zh_TW"  # the edition whose catalogs OpenCC makes from TRANSLATED's at build time


def edition(language: str) -> Edition:
    """The edition of a Sphinx ``language`` (English for ``None``, Sphinx's default)."""
    return next((e for e in EDITIONS if e.language == (language or "en")), SOURCE)


def N_(message: str) -> str:  # noqa: N802  (the gettext convention for "mark for extraction, translate later")
    """Mark ``message`` as one of the course's strings, to be translated with ``translate`` where it is shown."""
    return message


@functools.cache
def _course_catalog(path: Path, mtime: float) -> dict[str, str]:
    """The translated, non-fuzzy messages of a .po file (cached while the file is unchanged)."""
    from babel.messages.pofile import read_po

    with path.open("rb") as f:
        catalog = read_po(f)
    return {m.id: m.string for m in catalog if m.id and m.string and not m.fuzzy and isinstance(m.id, str)}


def course_messages(app: Any) -> dict[str, str]:
    """The course's own strings of the build's edition: English -> translation ({} for English)."""
    language = app.config.language or "en"
    if language == SOURCE.language:
        return {}
    for folder in app.config.locale_dirs:
        path = Path(app.srcdir, folder, language, "LC_MESSAGES", f"{COURSE_DOMAIN}.po")
        if path.is_file():
            return _course_catalog(path, path.stat().st_mtime)
    return {}


def translate(app: Any, message: str) -> str:
    """``message`` in the build's language, or as it is where the catalog has no translation of it."""
    return course_messages(app).get(message, message)


def edition_root(pagename: str) -> str:
    """The relative URL from page ``pagename`` to the root of its edition ("" or "../", ...)."""
    return "../" * pagename.count("/")


def edition_links(language: str, pagename: str) -> list[dict[str, Any]]:
    """For each edition: its name, language, and the relative URL of page ``pagename`` in it."""
    here = edition(language)
    site_root = edition_root(pagename) + ("../" if here.folder else "")
    return [{"name": e.name, "hreflang": e.hreflang, "current": e == here,
             "url": f"{site_root}{e.folder + '/' if e.folder else ''}{pagename}.html"} for e in EDITIONS]


def add_switcher(app: Any, pagename: str, templatename: str, context: dict, doctree: Any) -> None:
    """The switcher's links (for templates/course-language.html) and the alternate links of the page's head."""
    if app.builder.name != "html":
        return
    links = edition_links(app.config.language, pagename)
    context["course_editions"] = links
    context["course_editions_label"] = translate(app, N_("Language of this course"))
    alternates = "\n".join(f'<link rel="alternate" hreflang="{e["hreflang"]}" href="{e["url"]}">' for e in links)
    context["metatags"] = context.get("metatags", "") + "\n" + alternates


def course_strings_script(app: Any) -> str:
    """A JSON script element with the course's translated strings, for the page's scripts (the demos' ``tr``)."""
    text = json.dumps(course_messages(app), ensure_ascii=False, sort_keys=True).replace("</", "<\\/")
    return f'<script type="application/json" id="course-strings">{text}</script>'


def configure_edition(app: Any, config: Any) -> None:
    """The edition's title and address (the canonical links of its pages), and the switcher, first in the
    article header."""
    here = edition(config.language)
    config.html_title = translate(app, config.html_title)
    if here.folder and config.html_baseurl and not config.html_baseurl.rstrip("/").endswith(here.folder):
        config.html_baseurl = config.html_baseurl.rstrip("/") + f"/{here.folder}/"
    config.templates_path = [*config.templates_path, str(HERE / "templates")]
    options = dict(config.html_theme_options or {})
    end = options.get("article_header_end", ["article-header-buttons.html"])
    end = [end] if isinstance(end, str) else list(end)
    options["article_header_end"] = ["course-language.html", *[e for e in end if e != "course-language.html"]]
    config.html_theme_options = options


def translate_glued_phrases(app: Any, doctree: Any, docname: str) -> None:
    """Each glued text of the page (myst-nb's ``pasted-text``, filled in by then) that the edition's course.po
    translates, in the edition's language: a translated sentence keeps its glue role, and the phrase the role
    pastes is the English one that the notebook computed."""
    from docutils import nodes

    messages = course_messages(app)
    if not messages:
        return
    for node in list(doctree.findall(nodes.inline)):
        text = node.astext()
        if "pasted-text" in node["classes"] and text in messages:
            node.clear()
            node += nodes.Text(messages[text])


def copy_stylesheet(app: Any, exception: Exception | None) -> None:
    if exception is None and app.builder.format == "html":
        (Path(app.outdir) / "_static").mkdir(exist_ok=True)
        shutil.copy2(HERE / "static" / "course_editions.css", Path(app.outdir) / "_static" / "course_editions.css")


def setup(app: Any) -> dict[str, Any]:
    app.connect("config-inited", configure_edition)
    app.connect("build-finished", copy_stylesheet)
    app.connect("html-page-context", add_switcher)
    app.connect("doctree-resolved", translate_glued_phrases)  # after the post-transforms that paste glue
    app.add_css_file("course_editions.css")
    return {"version": "1.0", "parallel_read_safe": True, "parallel_write_safe": True}
