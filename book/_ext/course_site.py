"""Sphinx extension of the course website: offline math, launch links that work, and fresh outputs.

1. Offline MathJax. Sphinx loads MathJax from a CDN by default, which fails offline (and on a
   course machine without internet). This extension serves MathJax 3 from the site itself: the
   PyPI package ``django-static-mathjax`` (the extra docs of pyproject.toml) ships MathJax's es5 build,
   which is copied once into ``<venv>/share/`` without the builds the site never loads, and from
   there into ``_static/mathjax/`` of every build of the English edition; the other editions
   (``course_editions``), one folder below it, load that copy.
2. Launch buttons. Chapters are MyST Markdown notebooks, which Colab cannot open and Binder opens
   as text. The Pages workflow publishes the executed ``.ipynb`` files on the branch
   ``course_notebooks_branch``; the Binder and Colab buttons are pointed there.
3. Fresh outputs. Jupyter-cache re-executes a notebook only when its code changes, not when
   ``bertlab`` (which every chapter imports) changes. A hash of bertlab's files is kept beside the execution
   cache and with each build's doctrees: when the first differs, the cache is cleared; when the second does,
   every page is read again. (Every edition of the site reads the one cache, each with doctrees of its own.)
4. One copy of each script. sphinx-thebe's inline configuration is registered twice under
   Jupyter Book 1.0, which is a JavaScript error ("THEBE_JS_URL has already been declared").
5. Downloads with outputs. When a page's outputs come from the execution cache, myst-nb 1.x writes the
   page's ``.ipynb`` (the one the download button offers) without them; they are merged back in.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

MATHJAX_VERSION = "3.2.2"
MATHJAX_ENTRY = "tex-mml-chtml.js"  # TeX and MathML input, HTML-CSS output with web fonts
# Other combined builds of the package that the site never loads (about 14 MB together).
MATHJAX_UNUSED = (
    "tex-chtml.js", "tex-chtml-full.js", "tex-chtml-full-speech.js", "tex-svg.js", "tex-svg-full.js",
    "tex-mml-svg.js", "mml-chtml.js", "mml-svg.js", "node-main.js", "output/svg",
)
HASH_FILE = "bertlab_sources.sha256"


# ---- 1. offline MathJax -----------------------------------------------------------------------
def mathjax_static_root() -> Path:
    """The folder whose ``mathjax/`` subfolder holds MathJax's es5 build (``BERTLAB_MATHJAX_DIR`` overrides)."""
    override = os.environ.get("BERTLAB_MATHJAX_DIR")
    return Path(override) if override else Path(sys.prefix) / "share" / f"bertlab-mathjax-{MATHJAX_VERSION}"


def packaged_mathjax_es5() -> Path:
    """MathJax's es5 folder inside the installed ``django-static-mathjax`` package (import name ``mathjax``)."""
    try:
        import mathjax
    except ImportError:
        raise RuntimeError(
            "The website serves MathJax itself, so that math renders offline, from the PyPI package "
            f"django-static-mathjax, which is not installed: pip install django-static-mathjax=={MATHJAX_VERSION}.1 "
            "(python3 tasks.py setup installs everything the site needs)."
        ) from None
    es5 = Path(mathjax.__file__).parent / "static" / "mathjax" / "es5"
    if not (es5 / MATHJAX_ENTRY).is_file():
        raise RuntimeError(f"{es5 / MATHJAX_ENTRY} is missing: reinstall django-static-mathjax.")
    return es5


def copy_mathjax(root: Path) -> Path:
    """Copy MathJax's es5 build, less the unused combined builds, into ``root/mathjax`` (once); returns it."""
    target = root / "mathjax"
    if (target / MATHJAX_ENTRY).is_file():
        return target
    root.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=root) as tmp:
        es5 = Path(tmp) / "es5"
        shutil.copytree(packaged_mathjax_es5(), es5)
        for name in MATHJAX_UNUSED:
            path = es5 / name
            shutil.rmtree(path) if path.is_dir() else path.unlink(missing_ok=True)
        if target.exists():  # a half-finished earlier attempt
            shutil.rmtree(target)
        es5.rename(target)
    return target


def use_local_mathjax(app: Any, config: Any) -> None:
    from course_editions import edition  # book/_ext is on sys.path in a Sphinx build

    if edition(config.language).folder:
        # Relative paths are taken from _static/: out of it and out of the edition's folder, into the English one's.
        config.mathjax_path = f"../../_static/mathjax/{MATHJAX_ENTRY}"
    else:
        root = mathjax_static_root()
        copy_mathjax(root)
        config.html_static_path = [*config.html_static_path, str(root)]
        config.mathjax_path = f"mathjax/{MATHJAX_ENTRY}"  # relative paths are taken from _static/
    # Loaded as the page is read (no defer): a quiz (jupyterquiz) reads MathJax.version from a timer set while the
    # page loads, and a deferred MathJax that comes late, on a busy machine, has not set it yet ("Cannot read
    # properties of undefined"). Sphinx leaves out an option whose value is None.
    config.mathjax_options = {**(config.mathjax_options or {}), "defer": None}


# ---- 2. launch buttons ------------------------------------------------------------------------
def point_launch_buttons_at_notebooks(app: Any, pagename: str, templatename: str, context: dict, doctree: Any) -> None:
    """Rewrite the Binder and Colab links of a notebook page to its .ipynb on the notebooks branch."""
    theme = app.config.html_theme_options
    repo_url = theme.get("repository_url", "").rstrip("/")
    if "github.com/" not in repo_url:
        return
    org, repo = repo_url.split("github.com/")[1].split("/")[:2]
    branch = app.config.course_notebooks_branch
    notebook = f"{pagename}.ipynb"
    launch = theme.get("launch_buttons", {})
    for group in context.get("header_buttons", []):
        if group.get("label") != "launch-buttons":
            continue
        for button in group["buttons"]:
            if button.get("text") == "Binder":
                binder = launch.get("binderhub_url", "https://mybinder.org").rstrip("/")
                button["url"] = f"{binder}/v2/gh/{org}/{repo}/{branch}?urlpath=lab/tree/{notebook}"
            elif button.get("text") == "Colab":
                colab = launch.get("colab_url", "https://colab.research.google.com").rstrip("/")
                button["url"] = f"{colab}/github/{org}/{repo}/blob/{branch}/{notebook}"


def drop_repeated_scripts(app: Any, pagename: str, templatename: str, context: dict, doctree: Any) -> None:
    """Include each script once. sphinx-thebe registers its inline configuration twice under Jupyter Book,
    and the second ``const THEBE_JS_URL`` is a JavaScript error on every page."""
    seen, unique = set(), []
    for script in context.get("script_files", []):
        # a script registered as filename None and again as "" (inline body only) is the same script
        key = (getattr(script, "filename", script) or "", tuple(sorted(getattr(script, "attributes", {}).items())))
        if key not in seen:
            seen.add(key)
            unique.append(script)
    context["script_files"] = unique


# ---- 3. outputs that follow bertlab ------------------------------------------------------------
def bertlab_sources_hash() -> str:
    """A hash of every file of the installed bertlab package (code and assets)."""
    import bertlab

    package = Path(bertlab.__file__).parent
    h = hashlib.sha256()
    for path in sorted(p for p in package.rglob("*") if p.is_file() and "__pycache__" not in p.parts):
        h.update(path.relative_to(package).as_posix().encode())
        h.update(path.read_bytes())
    return h.hexdigest()


def _hash_path(app: Any) -> Path:
    return Path(app.doctreedir) / HASH_FILE


def _stored_hash(path: Path) -> str | None:
    return path.read_text().strip() if path.is_file() else None


def reset_cache_if_bertlab_changed(app: Any, config: Any) -> None:
    current = bertlab_sources_hash()
    app.course_bertlab_hash = current
    app.course_bertlab_changed = _stored_hash(_hash_path(app)) != current
    cache = Path(config.nb_execution_cache_path or Path(app.outdir).parent / ".jupyter_cache")
    cache_hash = cache.with_name(cache.name + "." + HASH_FILE)  # beside the cache: every edition reads it
    if _stored_hash(cache_hash) != current:
        if cache.exists():
            shutil.rmtree(cache)
        cache_hash.parent.mkdir(parents=True, exist_ok=True)
        cache_hash.write_text(current + "\n")  # what the cache holds from now on is this bertlab's


def reread_all_if_bertlab_changed(app: Any, env: Any, added: set, changed: set, removed: set) -> list[str]:
    if getattr(app, "course_bertlab_changed", False):
        return sorted(env.found_docs - added - changed - removed)
    return []


def remember_bertlab_hash(app: Any, env: Any) -> None:
    """Every page has now been read (and executed where needed) with this bertlab: record its hash.

    Called once reading is over and before the environment is saved, so the hash always describes the
    saved environment and cache. (An execution error aborts the build before this point:
    ``nb_execution_raise_on_error`` in _config.yml.)
    """
    if hasattr(app, "course_bertlab_hash"):
        _hash_path(app).parent.mkdir(parents=True, exist_ok=True)
        _hash_path(app).write_text(app.course_bertlab_hash + "\n")


# ---- 5. downloaded notebooks with their outputs -------------------------------------------------
def has_outputs(notebook: Any) -> bool:
    return any(cell.get("outputs") for cell in notebook.cells if cell.cell_type == "code")


def restore_cached_outputs(app: Any, doctree: Any) -> None:
    """Put the cached outputs into the page's notebook in jupyter_execute/, which the theme offers for download."""
    if app.config.nb_execution_mode != "cache":
        return
    path = Path(app.outdir).parent / "jupyter_execute" / f"{app.env.docname}.ipynb"
    cache_path = Path(app.config.nb_execution_cache_path or Path(app.outdir).parent / ".jupyter_cache")
    if not path.is_file() or not cache_path.exists():
        return
    import nbformat
    from jupyter_cache import get_cache

    notebook = nbformat.read(path, as_version=4)
    if has_outputs(notebook) or not any(cell.cell_type == "code" for cell in notebook.cells):
        return
    try:
        _, merged = get_cache(cache_path).merge_match_into_notebook(notebook)
    except KeyError:  # not in the cache: the page was not executed (execution off or excluded)
        return
    nbformat.write(merged, path)


def setup(app: Any) -> dict[str, Any]:
    app.add_config_value("course_notebooks_branch", "notebooks", "html")
    app.connect("config-inited", use_local_mathjax)
    app.connect("config-inited", reset_cache_if_bertlab_changed)  # before myst-nb opens the cache
    app.connect("env-get-outdated", reread_all_if_bertlab_changed)
    app.connect("html-page-context", point_launch_buttons_at_notebooks, priority=502)
    app.connect("html-page-context", drop_repeated_scripts, priority=900)
    app.connect("env-updated", remember_bertlab_hash)
    app.connect("doctree-read", restore_cached_outputs)
    return {"version": "1.0", "parallel_read_safe": True, "parallel_write_safe": True}
