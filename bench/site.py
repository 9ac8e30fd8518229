"""The website's budgets, each measured and printed as measured / budget:

* the clean build of a copy of the book (every chapter executed, no cache), at most 10 minutes, and the build
  of all its editions (English, 简体中文, 繁體中文; book/_ext/course_build.py) at most twice the English one;
* the first fill-mask result of the live demo on the real chapter page (book/masking.html) of each edition, in
  headless Chromium, counted from navigation start, at most 3 s;
* what the live demos add to the site (model, runtime, scripts, fonts), at most 25 MB, and what the Chinese
  editions add to it (pages, search indexes, their fonts), at most 10 MB.

    python bench/site.py            # latency and size, on the site that python3 tasks.py book built
    python bench/site.py --build    # first a clean build of a copy (about 2 minutes on 2 idle cores)

Run it on an otherwise idle machine: a training run beside it slows the build and the page alike.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import importlib.util
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from bertlab.hub import OFFLINE_ENV

ROOT = Path(__file__).resolve().parents[1]
BUILD_BUDGET_S = 600
EDITIONS_BUDGET = 2.0  # all editions' build time / the English build's
EDITIONS_SIZE_BUDGET_MB = 10
CHAPTER = "book/masking.html"  # the fill-mask demo's chapter
EDITION_FOLDERS = ("", "zh-cn/", "zh-tw/")  # course_editions.EDITIONS, where they are published


def course_demos():
    """book/_ext/course_demos.py (the site's demo extension, which holds the demos' budgets), as a module."""
    spec = importlib.util.spec_from_file_location("course_demos", ROOT / "book" / "_ext" / "course_demos.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def clean_build_seconds(output: Path) -> tuple[float, float]:
    """Build every edition of a copy of the book in ``output``; (seconds of the English build, of all editions).
    A copy, because Jupyter Book keeps its execution cache in the project's own _build/: building the checkout,
    even into another folder, would reuse it."""
    import json

    project = output / "project"
    shutil.copytree(ROOT, project, ignore=shutil.ignore_patterns(".git", ".venv", "_build", "runs", "exercises",
                                                               "__pycache__", "*.egg-info"))
    start = time.perf_counter()
    subprocess.run([sys.executable, str(project / "book" / "_ext" / "course_build.py"), "html", "--source",
                    str(project)], check=True, cwd=project, env={**os.environ, **OFFLINE_ENV})
    total = time.perf_counter() - start
    steps = json.loads((project / "_build" / "editions" / "timings.json").read_text(encoding="utf-8"))
    return steps["en html"], total


class _Quiet(SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:
        pass


@contextlib.contextmanager
def serve(directory: Path):
    """``directory`` over HTTP on 127.0.0.1, in a thread; yields its URL."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Quiet, directory=str(directory)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()


def first_fill_mask_ms(site: Path, chapter: str = CHAPTER) -> float:
    """Milliseconds from navigation start to the first fill-mask result on the chapter page."""
    from playwright.sync_api import sync_playwright

    executable = shutil.which("chromium") or shutil.which("chromium-browser")
    if executable is None:
        raise SystemExit("Chromium is not installed (Debian: apt-get install chromium); python3 tasks.py test does.")
    with serve(site) as url, sync_playwright() as p, tempfile.TemporaryDirectory() as profile:
        browser = p.chromium.launch_persistent_context(profile, executable_path=executable, headless=True,
                                                       args=["--no-sandbox", "--disable-gpu"])
        page = browser.new_page()
        page.goto(url + chapter)
        page.wait_for_function("() => window.courseDemos && window.courseDemos.results.firstFillMaskMs !== undefined",
                               timeout=60000)
        ms = page.evaluate("() => window.courseDemos.results.firstFillMaskMs")
        browser.close()
    return ms


def added_megabytes(site: Path) -> float:
    """What the demos add to the site: their static folder, scripts and styles, and the course fonts."""
    return sum(p.stat().st_size for p in course_demos().added_files(site / "_static")) / 1e6


def editions_megabytes(site: Path) -> float:
    """What the editions other than English add to the site: everything in their folders."""
    return sum(p.stat().st_size for folder in EDITION_FOLDERS if folder
               for p in (site / folder).rglob("*") if p.is_file()) / 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--build", action="store_true", help="time a clean build first, and measure that site")
    args = parser.parse_args()
    demos = course_demos()
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-site-") as tmp:
        site = ROOT / "_build" / "html"
        if args.build:
            english, total = clean_build_seconds(Path(tmp))
            rows.append(("clean build of the book, English", f"{english:.0f} s", f"{BUILD_BUDGET_S} s",
                         english / BUILD_BUDGET_S))
            rows.append(("clean build, every edition / English", f"{total / english:.2f}", f"{EDITIONS_BUDGET:.2f}",
                         total / english / EDITIONS_BUDGET))
            site = Path(tmp) / "project" / "_build" / "html"
        if not (site / CHAPTER).exists():
            raise SystemExit(f"{site / CHAPTER} is missing: build the site first (python3 tasks.py book), "
                             "or pass --build.")
        for folder in EDITION_FOLDERS:
            if not (site / folder / CHAPTER).exists():
                raise SystemExit(f"{site / folder / CHAPTER} is missing: python3 tasks.py book builds every edition")
            ms = first_fill_mask_ms(site, folder + CHAPTER)
            rows.append(("first fill-mask result, " + folder + CHAPTER, f"{ms:.0f} ms",
                         f"{demos.LATENCY_BUDGET_MS} ms", ms / demos.LATENCY_BUDGET_MS))
        mb = added_megabytes(site)
        rows.append(("added by the live demos and fonts", f"{mb:.1f} MB", f"{demos.SIZE_BUDGET_MB} MB",
                     mb / demos.SIZE_BUDGET_MB))
        mb = editions_megabytes(site)
        rows.append(("added by the Chinese editions", f"{mb:.1f} MB", f"{EDITIONS_SIZE_BUDGET_MB} MB",
                     mb / EDITIONS_SIZE_BUDGET_MB))
    width = max(len(r[0]) for r in rows)
    print(f"{'measure':<{width}}  {'measured':>9}  {'budget':>8}  measured/budget")
    for name, value, budget, ratio in rows:
        print(f"{name:<{width}}  {value:>9}  {budget:>8}  {ratio:.2f}{'' if ratio <= 1 else '  OVER BUDGET'}")


if __name__ == "__main__":
    main()
