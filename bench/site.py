"""The website's budgets, each measured and printed as measured / budget:

* the clean build of a copy of the book (every chapter executed, no cache), at most 10 minutes;
* the first fill-mask result of the live demo on the real chapter page (book/masking.html), in headless
  Chromium, counted from navigation start, at most 3 s;
* what the live demos add to the site (model, runtime, scripts, fonts), at most 25 MB.

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
CHAPTER = "book/masking.html"  # the fill-mask demo's chapter


def course_demos():
    """book/_ext/course_demos.py (the site's demo extension, which holds the demos' budgets), as a module."""
    spec = importlib.util.spec_from_file_location("course_demos", ROOT / "book" / "_ext" / "course_demos.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def clean_build_seconds(output: Path) -> float:
    """Build a copy of the book in ``output`` and time it. A copy, because Jupyter Book keeps its execution
    cache in the project's own _build/: building the checkout, even into another folder, would reuse it."""
    project = output / "project"
    shutil.copytree(ROOT, project, ignore=shutil.ignore_patterns(".git", ".venv", "_build", "runs", "exercises",
                                                               "__pycache__", "*.egg-info"))
    jupyter_book = Path(sys.executable).parent / "jupyter-book"
    start = time.perf_counter()
    subprocess.run([str(jupyter_book), "build", str(project), "--warningiserror", "--keep-going", "--quiet"],
                   check=True, cwd=project,
                   env={**os.environ, **OFFLINE_ENV})
    return time.perf_counter() - start


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


def first_fill_mask_ms(site: Path) -> float:
    """Milliseconds from navigation start to the first fill-mask result on the chapter page."""
    from playwright.sync_api import sync_playwright

    executable = shutil.which("chromium") or shutil.which("chromium-browser")
    if executable is None:
        raise SystemExit("Chromium is not installed (Debian: apt-get install chromium); python3 tasks.py test does.")
    with serve(site) as url, sync_playwright() as p, tempfile.TemporaryDirectory() as profile:
        browser = p.chromium.launch_persistent_context(profile, executable_path=executable, headless=True,
                                                       args=["--no-sandbox", "--disable-gpu"])
        page = browser.new_page()
        page.goto(url + CHAPTER)
        page.wait_for_function("() => window.courseDemos && window.courseDemos.results.firstFillMaskMs !== undefined",
                               timeout=60000)
        ms = page.evaluate("() => window.courseDemos.results.firstFillMaskMs")
        browser.close()
    return ms


def added_megabytes(site: Path) -> float:
    """What the demos add to the site: their static folder, scripts and styles, and the course fonts."""
    return sum(p.stat().st_size for p in course_demos().added_files(site / "_static")) / 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--build", action="store_true", help="time a clean build first, and measure that site")
    args = parser.parse_args()
    demos = course_demos()
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-site-") as tmp:
        site = ROOT / "_build" / "html"
        if args.build:
            seconds = clean_build_seconds(Path(tmp))
            rows.append(("clean build of the book", f"{seconds:.0f} s", f"{BUILD_BUDGET_S} s",
                         seconds / BUILD_BUDGET_S))
            site = Path(tmp) / "project" / "_build" / "html"
        if not (site / CHAPTER).exists():
            raise SystemExit(f"{site / CHAPTER} is missing: build the site first (python3 tasks.py book), "
                             "or pass --build.")
        ms = first_fill_mask_ms(site)
        rows.append(("first fill-mask result, " + CHAPTER, f"{ms:.0f} ms", f"{demos.LATENCY_BUDGET_MS} ms",
                     ms / demos.LATENCY_BUDGET_MS))
        mb = added_megabytes(site)
        rows.append(("added by the live demos and fonts", f"{mb:.1f} MB", f"{demos.SIZE_BUDGET_MB} MB",
                     mb / demos.SIZE_BUDGET_MB))
    width = max(len(r[0]) for r in rows)
    print(f"{'measure':<{width}}  {'measured':>9}  {'budget':>8}  measured/budget")
    for name, value, budget, ratio in rows:
        print(f"{name:<{width}}  {value:>9}  {budget:>8}  {ratio:.2f}{'' if ratio <= 1 else '  OVER BUDGET'}")


if __name__ == "__main__":
    main()
