#!/usr/bin/env python3
"""Set up the course and run its jobs, with nothing but Python 3.11 and the package registries.

    python3 tasks.py book    # set up for an author, then build the website into _build/html
    python3 tasks.py test    # set up for a developer, lint, build the website, run the tests (CI runs this)
    python3 tasks.py test -m "not slow"   # the same, less the tests marked slow (a quick run; CI runs them all)
    python3 tasks.py setup [ROLE] [--cuda TAG]   # only the set-up, for one role (default: developer)
    python3 tasks.py lock [PIP-COMPILE OPTIONS]  # write the lock files anew (e.g. with --upgrade)
    python3 tasks.py catalogs  # translators: update book/locales/zh_CN/LC_MESSAGES/*.po to the English text

Each role gets what it needs and no more (ROLES below): its packages from its lock file, requirements/ROLE.txt
(every version pinned, with hashes; torch is the CPU build), then bertlab itself, editable from src/.

    student      the course extra and JupyterLab                         python3 tasks.py setup student
    instructor   the grader, and Debian's bubblewrap (its sandbox)       make release, autograde, ... (Makefile)
    author       the website, Node.js/npm (onnxruntime-web), Chromium    python3 tasks.py book
    developer    everything: the website, the grader, the tests, lint    python3 tasks.py test

.venv/.installed records each installed role with a hash of its lock file, pyproject.toml and the Python version,
so a second set-up takes a second, and a set-up whose packages an installed role already has installs nothing.
"""

from __future__ import annotations

import argparse
import base64
import functools
import hashlib
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tarfile
import urllib.request
import venv
from pathlib import Path
from typing import NamedTuple

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
PY = BIN / ("python.exe" if os.name == "nt" else "python")
STAMP = VENV / ".installed"
LOCKS = ROOT / "requirements"  # one lock file per role, ROLE.txt, written by `python3 tasks.py lock`
CONSTRAINTS = LOCKS / "constraints.txt"  # pins the lock respects beyond pyproject.toml (why: in the file)
CPU_INDEX = "https://download.pytorch.org/whl/cpu"  # torch's CPU builds (PyPI's Linux torch is the CUDA build)
CUDA_INDEX = "https://download.pytorch.org/whl/{tag}"  # --cuda TAG: cu126, cu128, ... (pytorch.org lists them)
LOCKED_PYTHON = (3, 11)  # the lock files hold the wheels of CPython 3.11 on Linux x86_64


class Role(NamedTuple):
    extras: tuple[str, ...]  # of bertlab, in pyproject.toml
    system: tuple[str, ...] = ()  # Debian packages, by their name in SYSTEM
    website: bool = False  # fetches what the website's build adds from the npm registry


ROLES = {
    "student": Role(("student",)),
    "instructor": Role(("course", "grading"), ("bubblewrap",)),
    "author": Role(("docs",), ("npm", "chromium"), website=True),
    "developer": Role(("dev",), ("bubblewrap", "npm", "chromium"), website=True),
}
# What each Debian package is for: the commands that show it is there, the packages that bring them, and why.
SYSTEM = {
    "bubblewrap": (("bwrap",), ("bubblewrap",), "the autograder's sandbox (coursegrader.sandbox): without it "
                   "`python -m coursegrader autograde` refuses to run submissions and its tests skip (under CI "
                   "they fail)"),
    "npm": (("npm",), ("nodejs", "npm"), "fetching onnxruntime-web, which the website's live demos run; a reader "
            "of the site needs none of it"),
    "chromium": (("chromium", "chromium-browser"), ("chromium", "chromium-driver"),
                 "the browser tests of the website: without it they skip (under CI they fail)"),
}


@functools.cache
def offline_env() -> dict[str, str]:
    """bertlab.hub.OFFLINE_ENV, from the installed library: the book build, the tests and the benches run offline
    (no model or data set is fetched from a hub) and with the same str hashes in every process."""
    code = "import json; from bertlab.hub import OFFLINE_ENV; print(json.dumps(OFFLINE_ENV))"
    return json.loads(subprocess.run([str(PY), "-c", code], check=True, capture_output=True, text=True).stdout)
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


def lock_file(role: str) -> Path:
    return LOCKS / f"{role}.txt"


def pins(role: str) -> dict[str, str]:
    """name -> version of every package in the role's lock file (names normalised as pip does)."""
    found = re.findall(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==(\S+)", lock_file(role).read_text(), flags=re.MULTILINE)
    return {re.sub(r"[-_.]+", "-", name).lower(): version for name, version in found}


def fingerprint(role: str) -> str:
    h = hashlib.sha256(sys.version.encode())
    for path in (ROOT / "pyproject.toml", lock_file(role)):
        h.update(path.read_bytes())
    return h.hexdigest()


def setup(role: str = "developer", cuda: str | None = None) -> None:
    """Set up .venv for ``role`` (ROLES): its Debian packages, what the website fetches from npm, and its Python
    packages (`install`); with ``cuda``, torch's CUDA build of that tag in place of the CPU build."""
    if sys.version_info[:2] != LOCKED_PYTHON:
        print(f"note: the course is pinned and tested on Python 3.11; this is {sys.version.split()[0]}.")
    if not PY.exists():
        print(f"creating {VENV}")
        venv.create(VENV, with_pip=True)
    for name in ROLES[role].system:
        install_system(name)
    if ROLES[role].website:
        fetch_web_runtime()
        fetch_axe()
    install(role, cuda)


def install(role: str, cuda: str | None = None) -> None:
    """The role's lock file into .venv (pip checks every hash), then bertlab, editable. Skipped when .venv/.installed
    shows a role installed from unchanged files whose lock holds every pin of this one."""
    try:
        installed = json.loads(STAMP.read_text())
    except (FileNotFoundError, ValueError):
        installed = {}
    needed = pins(role).items()
    if not cuda and any(installed.get(r) == fingerprint(r) and needed <= pins(r).items() for r in ROLES):
        print(f"set-up ({role}): .venv is up to date")
        return
    pip = (PY, "-m", "pip", "install", "--disable-pip-version-check", "-q")
    if not reachable(CPU_INDEX + "/"):  # pip would try it again and again for every package
        print(f"note: {CPU_INDEX} cannot be reached from here, so torch's CPU build must come from this machine's "
              "own pip configuration (a local copy of that index); pip tries the index only once per package.")
        pip += ("--retries", "1")
    if sys.platform == "linux" and platform.machine() == "x86_64" and sys.version_info[:2] == LOCKED_PYTHON:
        run(*pip, "--require-hashes", "-r", lock_file(role))
        run(*pip, "--no-deps", "-e", ".")
    else:  # the same versions, without hashes: the lock files hold only the wheels of the course's platform
        print(f"note: the lock files are for CPython 3.11 on Linux x86_64; {role}'s versions go in without hashes.")
        versions = VENV / f"{role}-versions.txt"
        versions.write_text("".join(f"{name}=={version.split('+')[0]}\n" for name, version in needed))
        run(*pip, "-e", f".[{','.join(ROLES[role].extras)}]", "-c", versions)
    if cuda:
        install_cuda_torch(role, cuda)
    installed[role] = fingerprint(role)
    STAMP.write_text(json.dumps(installed, indent=1) + "\n")


def reachable(url: str) -> bool:
    """Whether ``url`` answers within a few seconds."""
    try:
        urllib.request.urlopen(url, timeout=5).close()
        return True
    except OSError:
        return False


def install_cuda_torch(role: str, tag: str) -> None:
    """torch's CUDA build ``tag`` (cu126, ...) of the locked version, from PyTorch's index, in place of the CPU build.
    Its nvidia-* packages come at the versions that build names; the lock files do not hold them (gigabytes, and
    the tag depends on the machine's driver). Run it again after the lock files change."""
    if not re.fullmatch(r"cu\d{3,}", tag):
        sys.exit(f"--cuda takes the CUDA tag of one of PyTorch's indexes, such as cu126 (pytorch.org lists them), "
                 f"not {tag!r}.")
    version = pins(role)["torch"].split("+")[0]
    run(PY, "-m", "pip", "install", "--disable-pip-version-check", "-q", f"torch=={version}+{tag}",
        "--index-url", CUDA_INDEX.format(tag=tag))


def lock(options: list[str]) -> None:
    """Write requirements/ROLE.txt for every role with pip-tools' pip-compile: the developer's first (``options``,
    such as --upgrade or --upgrade-package NAME, apply to it), then each other role starting from a copy of it, as
    pip-compile keeps the pins (and reuses the hashes) of the file it rewrites: every role gets the developer's
    versions. pip and setuptools are pinned like the rest; bertlab itself (the extras name it) is left out.
    Index URLs of this machine's own pip configuration (a local mirror) do not go into the files."""
    command = [BIN / "pip-compile", "pyproject.toml", "--quiet", "--generate-hashes", "--unsafe-package", "bertlab",
               "--strip-extras", "--no-emit-find-links", "--extra-index-url", CPU_INDEX,
               "--constraint", CONSTRAINTS.relative_to(ROOT),
               "--pip-args", "--retries 1"]  # a machine that cannot reach an index hears so at once
    LOCKS.mkdir(exist_ok=True)
    for role in sorted(ROLES, key=lambda r: r != "developer"):
        if role != "developer":
            shutil.copyfile(lock_file("developer"), lock_file(role))
        extras = [f"--extra={extra}" for extra in ROLES[role].extras]
        run(*command, *extras, "--output-file", lock_file(role), *(options if role == "developer" else []),
            env={"CUSTOM_COMPILE_COMMAND": "python3 tasks.py lock"})
        text = lock_file(role).read_text()
        lock_file(role).write_text(re.sub(r"(?m)^--(extra-)?index-url (?!https?://).*\n", "", text))


@functools.cache
def apt_update() -> None:
    run("apt-get", "update", "-qq", env={"DEBIAN_FRONTEND": "noninteractive"})


def install_system(name: str) -> bool:
    """Debian's packages for ``name`` (SYSTEM) where its command is missing: apt-get as root, else a note."""
    commands, packages, why = SYSTEM[name]
    if any(shutil.which(command) for command in commands):
        return True
    if shutil.which("apt-get") and hasattr(os, "geteuid") and os.geteuid() == 0:
        apt_update()
        run("apt-get", "install", "-y", "-qq", "--no-install-recommends", *packages,
            env={"DEBIAN_FRONTEND": "noninteractive"})
        return True
    print(f"note: {commands[0]} is missing and cannot be installed here (on Debian or Ubuntu: sudo apt-get install "
          f"{' '.join(packages)}). It is for {why}.")
    return False


def fetch_npm(package: str, version: str, integrity: str, members: list[str], target: Path) -> bool:
    """Files of an npm package (pinned, checked against the registry's sha512) into ``target``, once."""
    if all((target / Path(member).name).is_file() for member in members):
        return True
    if not install_system("npm"):
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
    run(*book_command(ROOT), env=offline_env())


def update_catalogs() -> None:
    """The translators' step: the English text's messages, and book/locales/zh_CN's catalogs updated to them."""
    run(PY, ROOT / "book" / "_ext" / "course_build.py", "catalogs", "--source", ROOT, env=offline_env())


def test(extra: list[str]) -> None:
    """Lint, build the website (the site tests check that build in a browser), then run pytest on every core."""
    lint()
    build_book()
    # --dist loadgroup: the modules that conftest.py puts in an xdist group go whole to one worker.
    run(PY, "-m", "pytest", "--numprocesses", "auto", "--dist", "loadgroup", "--durations", "25", *extra,
        env=offline_env())  # --durations: the slowest tests, named in every run's log


def setup_arguments(argv: list[str]) -> tuple[str, str | None]:
    parser = argparse.ArgumentParser(prog="python3 tasks.py setup", description="Set up .venv for one role.")
    parser.add_argument("role", nargs="?", default="developer", choices=ROLES, help="default: developer")
    parser.add_argument("--cuda", metavar="TAG", help="then torch's CUDA build TAG (cu126, ...) for the CPU build")
    args = parser.parse_args(argv)
    return args.role, args.cuda


def main(argv: list[str]) -> None:
    if not argv or argv[0] not in {"setup", "book", "test", "lint", "bench", "lock", "catalogs"}:
        print(__doc__)
        sys.exit(2)
    job, extra = argv[0], argv[1:]
    if job == "setup":
        setup(*setup_arguments(extra))
        return
    setup("author" if job == "book" else "developer")
    if job == "book":
        build_book()
    elif job == "test":
        test(extra)
    elif job == "lint":
        lint()
    elif job == "lock":
        lock(extra)
    elif job == "catalogs":
        update_catalogs()
    elif job == "bench":
        run(PY, "bench/train_step.py", *extra, env=offline_env())


if __name__ == "__main__":
    main(sys.argv[1:])
