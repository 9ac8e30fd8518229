"""Sphinx extension of the course website: live demos of the course model, run in the reader's browser.

A page asks for a demo with a directive; the static outputs of the chapter's code stay beside it, for print
and for readers without JavaScript::

    ```{course-demo} fill-mask
    :text: 台湾大[MASK]
    ```

Demos: ``fill-mask`` (top 5 tokens for each [MASK]), ``masking`` (BERT's 15% / 80-10-10 rule, or whole
words, with a seed) and ``attention`` (the maps of every layer and head). ``static/course_demos.js`` builds
them, with the course tokenizer of ``static/course_tokenizer.js``. Everything they load comes from the site
itself, from ``_static/course-demos/``:

* ``course-model.onnx``: the course model, exported at build time with ``bertlab.onnx_export`` (about 4 MB,
  fp16 weights). It is derived from the checkpoint, so it is not kept in git: the build exports it again
  whenever the checkpoint or the exporter changes (cached by their hash in ``_build/.onnx_cache/``), and the
  site can never show an older model than the chapters' printed outputs;
* ``vocab.txt``: the course vocabulary, for the page's tokenizer (the same ids as ``bertlab.tokenizer``);
* onnxruntime-web's WebAssembly build (about 14 MB), which ``python3 tasks.py setup`` fetches from the npm
  registry (pinned in tasks.py) into ``.venv/``;
* ``course-vocab.woff``: the course font cut down to the vocabulary, so that every token a demo can show is
  drawn in the course font, on machines without a Chinese font too (``course_fonts`` covers the pages' text).

The other editions of the site (``course_editions``) load these files from the English edition's
``_static/course-demos/``, named by a ``<meta name="course-demo-assets">`` of the page, so the site holds one
copy; each page with a demo carries the demos' words in its edition's language (``course.po``).
"""

from __future__ import annotations

import hashlib
import html
import importlib.util
import shutil
import sys
from pathlib import Path
from typing import Any

from docutils import nodes
from docutils.parsers.rst import directives
from sphinx.util.docutils import SphinxDirective

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:  # loaded by file path (tests, bench): its sibling course_editions all the same
    sys.path.append(str(HERE))
from course_editions import N_, course_strings_script, edition, edition_root, translate  # noqa: E402

DEMOS = {"fill-mask": "台湾大[MASK]", "masking": "今天 天气 很 好 ， 我们 一起 去 公园 散步 。",
         "attention": "台湾大学"}  # default sentences: "National Taiwan University" (the lecture's example), "The
# weather is fine today; let's go for a walk in the park together." (words separated by spaces, for whole words)
STATIC = "course-demos"  # the folder in _static/ with the model, the vocabulary and the runtime
MODEL_FILE = "course-model.onnx"
SCRIPTS = ("course_tokenizer.js", "course_demos.js")  # in the order the pages load them
VOCAB_FONT = "course-vocab.woff"
# The demos' budgets (issue: what they add to the site, and how soon the first fill-mask answers), measured by
# bench/site.py; tests/test_demos.py checks the size of a built site.
SIZE_BUDGET_MB = 25
LATENCY_BUDGET_MS = 3000
# Said where the demo cannot run. Not "the outputs above come from the same model": chapter 2's attention maps
# above the demo are all-MiniLM-L6-v2's, the demo runs the course model.
FALLBACK = N_("Live demo of the course model: it needs JavaScript. The executed outputs of this page show the "
              "same computation.")
VOCAB_FONT_CSS = f"""/* The course font cut down to the vocabulary, for the tokens the live demos show. */
@font-face {{ font-family: "Course CJK vocabulary"; src: url("{STATIC}/{VOCAB_FONT}") format("woff");
  font-display: swap; }}
.course-demo {{ font-family: var(--pst-font-family-base, sans-serif), "Course CJK vocabulary"; }}
@media print {{ .course-demo {{ display: none; }} }}
"""


def demo_markup(name: str, text: str, fallback: str = FALLBACK) -> str:
    """The HTML of one demo: a box that course_demos.js fills in, with a note for readers without JavaScript."""
    return (f'<div class="course-demo" data-demo="{name}" data-text="{html.escape(text)}">'
            f'<p class="course-demo-fallback">{html.escape(fallback)}</p></div>')


class CourseDemo(SphinxDirective):
    """``{course-demo} NAME`` with an optional ``:text:``, the sentence the demo starts with."""

    required_arguments = 1
    option_spec = {"text": directives.unchanged}

    def run(self) -> list[nodes.Node]:
        name = self.arguments[0]
        if name not in DEMOS:
            raise self.error(f"unknown demo {name!r}: one of {', '.join(DEMOS)}")
        text = self.options.get("text", DEMOS[name])
        return [nodes.raw("", demo_markup(name, text, translate(self.env.app, FALLBACK)), format="html")]


def course_tasks() -> Any:
    """tasks.py of the repository (where the pinned onnxruntime-web files are fetched), as a module."""
    spec = importlib.util.spec_from_file_location("course_tasks", ROOT / "tasks.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def runtime_files() -> list[Path]:
    """onnxruntime-web's WebAssembly build, fetched from npm by the set-up (once; fetched now if missing)."""
    tasks = course_tasks()
    if not tasks.fetch_web_runtime():
        raise RuntimeError(f"the live demos need onnxruntime-web {tasks.ORT_WEB_VERSION} from npm, which is missing: "
                           "install Node.js/npm, then run python3 tasks.py setup")
    return [tasks.WEB_RUNTIME / name for name in tasks.ORT_WEB_FILES]


def exported_model(cache: Path) -> Path:
    """The course model as ONNX, exported once per checkpoint (and exporter) version into ``cache``."""
    from bertlab.onnx_export import checkpoint_hash, export_onnx

    path = cache / f"course-model-{checkpoint_hash()}.onnx"
    if not path.is_file():
        export_onnx(path.with_suffix(".tmp"))
        path.with_suffix(".tmp").replace(path)
    return path


def vocab_font(cache: Path) -> Path:
    """The course font cut down to the characters of the course vocabulary (cached by that set)."""
    from bertlab.shipped import course_model_dir
    from bertlab.tokenizer import read_vocab

    spec = importlib.util.spec_from_file_location("course_fonts", HERE / "course_fonts.py")
    fonts = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(fonts)
    vocab = read_vocab(course_model_dir())
    chars = {c for token in vocab if not token.startswith("[") for c in token.removeprefix("##")}
    path = cache / f"vocab-{hashlib.sha256(''.join(sorted(chars)).encode()).hexdigest()[:16]}.woff"
    if not path.is_file():
        fonts.subset_font(chars, path)
    return path


def write_demo_assets(static: Path, cache: Path, with_model: bool = True) -> Path:
    """The demos' script and styles into ``static`` (a site's _static/), and unless ``with_model`` is False
    everything they load (model, vocabulary, runtime, font) into ``static / STATIC``, which is returned."""
    from bertlab.shipped import course_model_dir

    static.mkdir(parents=True, exist_ok=True)
    for name in (*SCRIPTS, "course_demos.css"):
        shutil.copy2(HERE / "static" / name, static / name)
    (static / "course_demos_font.css").write_text(VOCAB_FONT_CSS, encoding="utf-8")
    target = static / STATIC
    if not with_model:
        return target
    target.mkdir(exist_ok=True)
    cache.mkdir(parents=True, exist_ok=True)
    for path in runtime_files():
        shutil.copy2(path, target / path.name)
    shutil.copy2(exported_model(cache), target / MODEL_FILE)
    shutil.copy2(course_model_dir() / "vocab.txt", target / "vocab.txt")
    shutil.copy2(vocab_font(cache), target / VOCAB_FONT)
    return target


def added_files(static: Path) -> list[Path]:
    """What the live demos and the course font add to a built site's _static/: the files the size budget
    (SIZE_BUDGET_MB) counts, for bench/site.py and tests/test_demos.py alike."""
    spec = importlib.util.spec_from_file_location("course_fonts", HERE / "course_fonts.py")
    fonts = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(fonts)
    files = [p for p in (static / STATIC).rglob("*") if p.is_file()]
    return files + [static / name for name in (fonts.FONT_FILE, *SCRIPTS, "course_demos.css", "course_demos_font.css")]


def site_has_demos(site: Path) -> bool:
    """Whether a page of the built site holds a demo (a site without one gets no model and no runtime)."""
    return any('class="course-demo"' in p.read_text(encoding="utf-8", errors="ignore") for p in site.rglob("*.html"))


def copy_demo_assets(app: Any, exception: Exception | None) -> None:
    """After a successful HTML build: the model, the vocabulary and the runtime in _static/course-demos/ (of the
    English edition only: the others load them from there)."""
    if exception is not None or app.builder.format != "html":
        return
    site = Path(app.outdir)
    own = not edition(app.config.language).folder
    write_demo_assets(site / "_static", site.parent / ".onnx_cache", with_model=own and site_has_demos(site))


def demo_page_head(app: Any, pagename: str, templatename: str, context: dict, doctree: Any) -> None:
    """On a page with a demo: where the model and runtime are (the English edition's _static/course-demos/), and
    the demos' words in the page's language."""
    if app.builder.format != "html" or 'class="course-demo"' not in context.get("body", ""):
        return
    up = edition_root(pagename) + ("../" if edition(app.config.language).folder else "")
    context["metatags"] = context.get("metatags", "") + (
        f'\n<meta name="course-demo-assets" content="{up}_static/{STATIC}/">\n{course_strings_script(app)}')


def setup(app: Any) -> dict[str, Any]:
    app.add_directive("course-demo", CourseDemo)
    app.add_css_file("course_demos.css")
    app.add_css_file("course_demos_font.css")
    for name in SCRIPTS:
        app.add_js_file(name)
    app.connect("build-finished", copy_demo_assets)
    app.connect("html-page-context", demo_page_head)
    return {"version": "1.0", "parallel_read_safe": True, "parallel_write_safe": True}
