#!/usr/bin/env python3
"""Set up the course and run its jobs, with nothing but Python 3.11 and the package registries.

    python3 tasks.py book    # install everything into .venv, then build the website into _build/html
    python3 tasks.py test    # install everything into .venv, lint, build the website, run the test suite
    python3 tasks.py setup   # only install (idempotent: a second run takes a second)
    python3 tasks.py catalogs  # translators: update book/locales/zh_CN/LC_MESSAGES/*.po to the English text

What is installed is bertlab with its extra "dev" (pyproject.toml: the website, the grader, the tests), at the
exact versions of constraints.txt. It is recorded in .venv/.installed (a hash of those two files and the Python
version), so nothing is reinstalled unless one of them changes.
"""

from __future__ import annotations

import base64
import hashlib
import importlib.util
import os
import shutil
import subprocess
import sys
import tarfile
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
PY = BIN / ("python.exe" if os.name == "nt" else "python")
STAMP = VENV / ".installed"
INPUTS = ("constraints.txt", "pyproject.toml")
# Offline by default: no model or data set is fetched from a hub during tests or the book build.


def _offline_env() -> dict[str, str]:
    """bertlab.hub.OFFLINE_ENV, read from its file (standard library only): nothing is installed yet."""
    spec = importlib.util.spec_from_file_location("_bertlab_hub", ROOT / "src" / "bertlab" / "hub.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return dict(module.OFFLINE_ENV)


OFFLINE = _offline_env()
# The live demos of the website run the course model in the reader's browser with onnxruntime-web, from the npm
# registry (pinned, checked against the registry's sha512). Only the WebAssembly build goes into the site
# (book/_ext/course_demos.py): ort.wasm.min.js, its loader module and the SIMD .wasm, about 14 MB.
ORT_WEB_VERSION = "1.30.0"
ORT_WEB_INTEGRITY = "sha512-q0y+JrrtukXSzsBWEMccVfqX25LRmosXHF+CaRJmg8pZClzcV7svNc4rKY3jL02Vb7QmRMDs1SigqR4CXAfKYQ=="
ORT_WEB_FILES = ("ort.wasm.min.js", "ort-wasm-simd-threaded.mjs", "ort-wasm-simd-threaded.wasm")
WEB_RUNTIME = VENV / f"onnxruntime-web-{ORT_WEB_VERSION}"  # the files above, once fetched
# axe-core, the accessibility checker that tests/test_accessibility.py runs in Chromium on every page of every
# edition of the website (WCAG 2.1 A and AA rules), from the npm registry like onnxruntime-web.
AXE_VERSION = "4.14.1"
AXE_INTEGRITY = "sha512-FHfa+lmNjQZfJz1q8wKqIDwC6DExcHt/pkjNQb09a3NPjCKg2rhu5qb2S4r76ASyFNNtuFooJpZe37OgudVGtQ=="
AXE = VENV / f"axe-core-{AXE_VERSION}" / "axe.min.js"


def run(*cmd: str | Path, env: dict[str, str] | None = None) -> None:
    print("+", " ".join(str(c) for c in cmd), flush=True)
    subprocess.run([str(c) for c in cmd], cwd=ROOT, check=True, env={**os.environ, **(env or {})})


def fingerprint() -> str:
    h = hashlib.sha256(sys.version.encode())
    for name in INPUTS:
        h.update((ROOT / name).read_bytes())
    return h.hexdigest()


def setup() -> None:
    """Create .venv and install bertlab (editable) with everything its extra "dev" needs, pinned by constraints.txt."""
    if sys.version_info[:2] != (3, 11):
        print(f"note: the course is pinned and tested on Python 3.11; this is {sys.version.split()[0]}.")
    if not PY.exists():
        print(f"creating {VENV}")
        venv.create(VENV, with_pip=True)
    fetch_web_runtime()
    fetch_axe()
    if STAMP.exists() and STAMP.read_text() == fingerprint():
        print("set-up: .venv is up to date")
        return
    pip = (PY, "-m", "pip", "install", "--disable-pip-version-check", "-q")
    run(*pip, "-e", ".[dev]", "-c", "constraints.txt")
    STAMP.write_text(fingerprint())


def install_npm() -> bool:
    """Debian's nodejs and npm, where npm is missing (only the set-up needs it, to fetch onnxruntime-web)."""
    if shutil.which("npm"):
        return True
    if shutil.which("apt-get") and hasattr(os, "geteuid") and os.geteuid() == 0:
        env = {"DEBIAN_FRONTEND": "noninteractive"}
        run("apt-get", "update", "-qq", env=env)
        run("apt-get", "install", "-y", "-qq", "--no-install-recommends", "nodejs", "npm", env=env)
        return True
    print("note: npm is missing and cannot be installed here (Node.js: https://nodejs.org, or on Debian/Ubuntu "
          "sudo apt-get install nodejs npm); the website's live demos need it to build, nothing else does.")
    return False


def fetch_npm(package: str, version: str, integrity: str, members: list[str], target: Path) -> bool:
    """Files of an npm package (pinned, checked against the registry's sha512) into ``target``, once."""
    if all((target / Path(member).name).is_file() for member in members):
        return True
    if not install_npm():
        return False
    download = VENV / "npm-pack"
    download.mkdir(parents=True, exist_ok=True)
    run("npm", "pack", f"{package}@{version}", "--pack-destination", download, "--silent")
    archive = download / f"{package}-{version}.tgz"
    digest = "sha512-" + base64.b64encode(hashlib.sha512(archive.read_bytes()).digest()).decode()
    if digest != integrity:
        sys.exit(f"{archive} does not match the pinned {package} {version} ({digest}).")
    target.mkdir(parents=True, exist_ok=True)
    with tarfile.open(archive) as tgz:
        for member in members:
            (target / Path(member).name).write_bytes(tgz.extractfile(member).read())
    shutil.rmtree(download)
    return True


def fetch_web_runtime() -> bool:
    """onnxruntime-web (pinned) from the npm registry into .venv/, once: the WebAssembly files the site needs."""
    members = [f"package/dist/{name}" for name in ORT_WEB_FILES] + ["package/package.json"]
    return fetch_npm("onnxruntime-web", ORT_WEB_VERSION, ORT_WEB_INTEGRITY, members, WEB_RUNTIME)


def fetch_axe() -> bool:
    """axe-core (pinned) from the npm registry into .venv/, once, for the accessibility test of the website."""
    return fetch_npm("axe-core", AXE_VERSION, AXE_INTEGRITY, ["package/axe.min.js", "package/LICENSE"], AXE.parent)


def install_browser() -> None:
    """Debian's chromium, for the browser test of the website (skipped where apt-get or root is missing)."""
    if shutil.which("chromium") or shutil.which("chromium-browser"):
        return
    if shutil.which("apt-get") and hasattr(os, "geteuid") and os.geteuid() == 0:
        env = {"DEBIAN_FRONTEND": "noninteractive"}
        run("apt-get", "update", "-qq", env=env)
        run("apt-get", "install", "-y", "-qq", "--no-install-recommends", "chromium", "chromium-driver", env=env)
    else:
        print("note: chromium not found and cannot be installed here; the browser test of the site will be skipped "
              "(under CI it fails).")


def install_sandbox() -> None:
    """Debian's bubblewrap, the autograder's sandbox (coursegrader.sandbox); without it the sandbox tests skip
    (under CI they fail) and `python -m coursegrader autograde` refuses to run submissions."""
    if shutil.which("bwrap"):
        return
    if shutil.which("apt-get") and hasattr(os, "geteuid") and os.geteuid() == 0:
        env = {"DEBIAN_FRONTEND": "noninteractive"}
        run("apt-get", "update", "-qq", env=env)
        run("apt-get", "install", "-y", "-qq", "--no-install-recommends", "bubblewrap", env=env)
    else:
        print("note: bwrap not found and cannot be installed here; the autograder's sandbox tests will be skipped "
              "(under CI they fail).")


def lint() -> None:
    run(BIN / "ruff", "check", ".")


def book_command(source: str | Path = ".") -> list[str]:
    """The build command of the website whose _config.yml and _toc.yml are in ``source``: every edition (English
    at the root of _build/html, 简体中文 in zh-cn/, 繁體中文 in zh-tw/; book/_ext/course_build.py), each as
    ``jupyter-book build --warningiserror --nitpick --keep-going`` would build it.

    A Sphinx warning fails the build (--keep-going reports all of them first) and so does a cell that raises
    (execute: raise_on_error in _config.yml): tests/test_site.py checks both.
    """
    return [str(PY), str(Path(source) / "book" / "_ext" / "course_build.py"), "html", "--source", str(source)]


def build_book() -> None:
    """Execute every chapter (cached in _build/.jupyter_cache) and build every edition into _build/html."""
    run(*book_command(ROOT), env=OFFLINE)


def update_catalogs() -> None:
    """The translators' step: the English text's messages, and book/locales/zh_CN's catalogs updated to them."""
    run(PY, ROOT / "book" / "_ext" / "course_build.py", "catalogs", "--source", ROOT, env=OFFLINE)


def test(extra: list[str]) -> None:
    """Lint, build the website (tests/test_site.py checks it in a browser), then run pytest."""
    lint()
    install_browser()
    install_sandbox()
    build_book()
    run(PY, "-m", "pytest", *extra, env=OFFLINE)


def main(argv: list[str]) -> None:
    if not argv or argv[0] not in {"setup", "book", "test", "lint", "bench", "catalogs"}:
        print(__doc__)
        sys.exit(2)
    setup()
    job, extra = argv[0], argv[1:]
    if job == "book":
        install_browser()  # for tests/test_site.py, which checks the site this builds
        build_book()
    elif job == "test":
        test(extra)
    elif job == "lint":
        lint()
    elif job == "catalogs":
        update_catalogs()
    elif job == "bench":
        run(PY, "bench/train_step.py", *extra, env=OFFLINE)


if __name__ == "__main__":
    main(sys.argv[1:])
