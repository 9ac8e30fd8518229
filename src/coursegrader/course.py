"""The instructor's workflow around nbgrader: the course folder, release, collect, feedback and export.

Autograding, the step that runs the students' code, has a module of its own (`coursegrader.autograding`).
"""


from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterable
from datetime import datetime, timezone
from pathlib import Path

from bertlab.hub import OFFLINE_ENV

from . import integrity

CONFIG = "nbgrader_config.py"
SITE_CONFIG = "_config.yml"  # the website's configuration: html.baseurl, where the chapters are published
STUDENT_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@+-]{0,63}$")
# The environment of every nbgrader process: offline, one thread per process (several run side by side).
ENV = {**OFFLINE_ENV, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1",
       "PYDEVD_DISABLE_FILE_VALIDATION": "1"}


# ---- the course folder ------------------------------------------------------------------------------------


def find_course(start: Path | None = None) -> Path:
    """The folder holding nbgrader_config.py: `start` (default: the working directory) or one above it."""
    here = Path(start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / CONFIG).is_file():
            return folder
    raise ValueError(f"no {CONFIG} in {here} or above: run this from the course repository (or pass --course).")


def assignments(course: Path) -> list[str]:
    """The assignments of the course: the folders of solutions/ that hold a notebook."""
    source = course / "solutions"
    return sorted(p.name for p in source.iterdir() if p.is_dir() and any(p.glob("*.ipynb"))) if source.is_dir() else []


def environment() -> dict[str, str]:
    env = dict(os.environ)
    env.update(ENV)
    # nbgrader runs the `alembic` command of its environment when it creates a gradebook
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    return env


def nbgrader(course: Path, *args: str, timeout: float | None = None) -> subprocess.CompletedProcess:
    """Run one nbgrader command in `course` (its own process group, killed whole after `timeout` seconds)."""
    process = subprocess.Popen([sys.executable, "-m", "nbgrader", *args], cwd=course, env=environment(),
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        out, _ = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        kill_group(process)
        out, _ = process.communicate()
        return subprocess.CompletedProcess(process.args, returncode=-signal.SIGKILL, stdout=(out or "") + "\nTIMEOUT")
    finally:
        kill_group(process)  # whatever the notebook started in the background goes too
    return subprocess.CompletedProcess(process.args, process.returncode, stdout=out)


def gradebook_api():
    """nbgrader.api, with `alembic` found on PATH and its version asked once per process, not per Gradebook."""
    import functools

    import nbgrader.api

    bin_dir = str(Path(sys.executable).parent)
    if bin_dir not in os.environ.get("PATH", "").split(os.pathsep):
        os.environ["PATH"] = os.pathsep.join([bin_dir, os.environ.get("PATH", "")])
    if not hasattr(nbgrader.api.get_alembic_version, "cache_info"):
        nbgrader.api.get_alembic_version = functools.lru_cache(maxsize=1)(nbgrader.api.get_alembic_version)
    return nbgrader.api


def kill_group(process: subprocess.Popen) -> None:
    """Kill the process, everything it started (kernels run in sessions of their own), and its group."""
    import psutil  # a dependency of ipykernel

    with contextlib.suppress(psutil.Error):
        for child in psutil.Process(process.pid).children(recursive=True):
            with contextlib.suppress(psutil.Error):
                child.kill()
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)


def _db_args(db_url: str | None) -> list[str]:
    return [f"--CourseDirectory.db_url={db_url}"] if db_url else []


def copy_course(course: Path, dest: Path) -> Path:
    """A private course folder: the configuration (nbgrader's, and the site's, which holds the published address
    that the assignments link to) and the sources (no student data, no gradebook)."""
    dest.mkdir(parents=True, exist_ok=True)
    for name in (CONFIG, SITE_CONFIG):
        shutil.copy2(course / name, dest / name)
    shutil.copytree(course / "solutions", dest / "solutions", ignore=shutil.ignore_patterns(".ipynb_checkpoints"))
    return dest


# ---- release --------------------------------------------------------------------------------------------


def release(course: Path, names: Iterable[str] | None = None, db_url: str | None = None) -> None:
    """Generate the student versions (exercises/) from solutions/ and record the assignments in the gradebook.

    All assignments in one process, through nbgrader's API (one nbgrader start, one gradebook set-up).
    """
    names = list(names or assignments(course))
    script = (
        "import sys\n"
        "from traitlets.config.loader import PyFileConfigLoader\n"
        "from nbgrader.apps import NbGraderAPI\n"
        "config = PyFileConfigLoader('nbgrader_config.py', path='.').load_config()\n"
        "if sys.argv[1]: config.CourseDirectory.db_url = sys.argv[1]\n"
        "api = NbGraderAPI(config=config)\n"
        "for name in sys.argv[2:]:\n"
        "    result = api.generate_assignment(name, force=True)\n"
        "    if not result['success']:\n"
        "        sys.exit(f'generate_assignment {name} failed: ' + result['error'] + result['log'][-2000:])\n"
    )
    process = subprocess.run([sys.executable, "-c", script, db_url or "", *names], cwd=course, env=environment(),
                             capture_output=True, text=True)
    if process.returncode != 0:
        raise RuntimeError(f"nbgrader generate_assignment failed:\n{(process.stdout + process.stderr)[-3000:]}")


# ---- collect --------------------------------------------------------------------------------------------


def notebook_index(course: Path) -> dict[str, str]:
    """Notebook file name -> assignment, from solutions/."""
    index = {}
    for name in assignments(course):
        for nb in (course / "solutions" / name).glob("*.ipynb"):
            index[nb.name] = name
    return index


def collect(course: Path, inbox: Path, log=print) -> list[tuple[str, str]]:
    """Copy submissions from `inbox` into submitted/<student>/<assignment>/ (with a timestamp.txt).

    `inbox` holds one folder per student (named by the student id) with the notebooks, directly or in a folder
    per assignment: inbox/alice/masking.ipynb or inbox/alice/masking/masking.ipynb. The notebook's file name
    tells the assignment; a misnamed copy (``masking (1).ipynb``, ``Masking.ipynb``) is collected under the
    release's name with a warning, unless the student also handed in the exact name; any other notebook is
    reported. A notebook's modification time is its submission time. Returns (student, assignment).
    """
    inbox = Path(inbox)
    if not inbox.is_dir():
        raise ValueError(f"{inbox} is not a folder: give the folder that holds one folder per student.")
    index = notebook_index(course)
    done = []
    for folder in sorted(p for p in inbox.iterdir() if p.is_dir()):
        student = folder.name
        if not STUDENT_ID.match(student):
            log(f"warning: {folder}: {student!r} is not a usable student id (letters, digits, _.@+- only); "
                "not collected.")
            continue
        found = sorted(nb for nb in folder.rglob("*.ipynb") if ".ipynb_checkpoints" not in nb.parts)
        exact = {nb.name for nb in found if nb.name in index}
        for nb in found:
            release_name = integrity.notebook_for(nb.name, set(index))
            if release_name is None:
                log(f"warning: {nb}: not a notebook of the course ({', '.join(sorted(index))}); not collected.")
                continue
            if release_name != nb.name:
                if release_name in exact:
                    log(f"warning: {nb}: ignored, {student} also handed in {release_name}.")
                    continue
                log(f"warning: {nb}: collected as {release_name}.")
                exact.add(release_name)
            name = index[release_name]
            dest = course / "submitted" / student / name
            dest.mkdir(parents=True, exist_ok=True)
            shutil.copy2(nb, dest / release_name)
            stamp = datetime.fromtimestamp(nb.stat().st_mtime, timezone.utc)
            (dest / "timestamp.txt").write_text(stamp.strftime("%Y-%m-%d %H:%M:%S.%f UTC"))
            done.append((student, name))
    return done


def submissions(course: Path, names: Iterable[str] | None = None,
                students: Iterable[str] | None = None) -> list[tuple[str, str]]:
    """(student, assignment) for every folder submitted/<student>/<assignment>/."""
    wanted, who = set(names or assignments(course)), set(students or [])
    found = []
    root = course / "submitted"
    for student in sorted(p.name for p in root.iterdir() if p.is_dir()) if root.is_dir() else []:
        if who and student not in who:
            continue
        for name in sorted(wanted):
            if (root / student / name).is_dir():
                found.append((student, name))
    return found


def course_db_url(course: Path, db_url: str | None) -> str:
    if db_url:
        return db_url
    if os.environ.get("BERTLAB_GRADEBOOK_URL"):
        return os.environ["BERTLAB_GRADEBOOK_URL"]
    return f"sqlite:///{course / 'gradebook.db'}"


# ---- feedback and grades --------------------------------------------------------------------------------


def feedback(course: Path, names: Iterable[str] | None = None, db_url: str | None = None) -> None:
    """HTML feedback for every autograded submission: feedback/<student>/<assignment>/<notebook>.html."""
    for name in names or assignments(course):
        if not any((course / "autograded").glob(f"*/{name}")):
            continue
        result = nbgrader(course, "generate_feedback", name, "--force", *_db_args(db_url))
        if result.returncode != 0:
            raise RuntimeError(f"nbgrader generate_feedback {name} failed:\n{result.stdout[-3000:]}")


def export(course: Path, to: Path, db_url: str | None = None) -> Path:
    """All grades of the gradebook as CSV (nbgrader's export: one row per student and assignment)."""
    to = Path(to).resolve()
    result = nbgrader(course, "export", f"--to={to}", *_db_args(db_url))
    if result.returncode != 0:
        raise RuntimeError(f"nbgrader export failed:\n{result.stdout[-3000:]}")
    return to
