"""The instructor's workflow around nbgrader: the course folder, release, collect, feedback and export.

Autograding, the step that runs the students' code, has a module of its own (`coursegrader.autograding`).
"""


from __future__ import annotations

import os
import re
import shutil
import stat
import sys
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime, timezone
from pathlib import Path

from bertlab.hub import OFFLINE_ENV

from . import integrity

CONFIG = "nbgrader_config.py"
SITE_CONFIG = "_config.yml"  # the website's configuration: html.baseurl, where the chapters are published
STUDENT_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.@+-]{0,63}")  # matched whole (fullmatch): no trailing newline
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
    """This process's environment with ENV, and the environment's own commands first on PATH (nbgrader runs
    ``alembic`` when it creates a gradebook)."""
    env = dict(os.environ)
    env.update(ENV)
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    return env


def api(course: Path, db_url: str | None = None):
    """nbgrader's Python API (NbGraderAPI) on the course, with its nbgrader_config.py and this gradebook."""
    from nbgrader.apps import NbGraderAPI
    from traitlets.config.loader import PyFileConfigLoader

    os.environ["PATH"] = environment()["PATH"]
    config = PyFileConfigLoader(CONFIG, path=str(course)).load_config()
    config.CourseDirectory.root = str(course)
    if db_url:
        config.CourseDirectory.db_url = db_url
    return NbGraderAPI(config=config)


def gradebook(db_url: str):
    """nbgrader's Gradebook on `db_url` (a context manager)."""
    from nbgrader.api import Gradebook

    os.environ["PATH"] = environment()["PATH"]
    return Gradebook(db_url)


def _checked(result: dict, what: str) -> None:
    if not result.get("success"):
        raise RuntimeError(f"nbgrader {what} failed: {result.get('error', '')}\n{str(result.get('log', ''))[-3000:]}")


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
    """Generate the student versions (exercises/) from solutions/ and record the assignments in the gradebook,
    with nbgrader's API (one nbgrader start, one gradebook set-up)."""
    grader = api(course, db_url)
    for name in names or assignments(course):
        _checked(grader.generate_assignment(name, force=True), f"generate_assignment {name}")


# ---- collect --------------------------------------------------------------------------------------------


def notebook_index(course: Path) -> dict[str, str]:
    """Notebook file name -> assignment, from solutions/."""
    index = {}
    for name in assignments(course):
        for nb in (course / "solutions" / name).glob("*.ipynb"):
            index[nb.name] = name
    return index


def _files(folder: Path, log: Callable[[str], object]) -> Iterator[Path]:
    """The notebooks under `folder`, not following links; every link met is reported and left alone."""
    for top, dirs, files in os.walk(folder):
        for name in sorted(dirs + files):
            if (Path(top) / name).is_symlink():
                log(f"warning: {Path(top) / name}: a link, not a file; not collected (hand in the notebook itself).")
        dirs[:] = sorted(d for d in dirs if d != ".ipynb_checkpoints" and not (Path(top) / d).is_symlink())
        yield from (Path(top) / f for f in sorted(files) if f.endswith(".ipynb"))


def read_plain_file(path: Path) -> tuple[bytes, float]:
    """The bytes and modification time of a regular file with one name: a link, a hard link (a second name of
    a file that may be anyone's) or a special file raises ValueError."""
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise ValueError(f"{path}: not a regular file")
        if info.st_nlink != 1:
            raise ValueError(f"{path}: a hard link (the file has {info.st_nlink} names)")
        with os.fdopen(os.dup(fd), "rb") as f:
            return f.read(), info.st_mtime
    finally:
        os.close(fd)


def collect(course: Path, inbox: Path, log=print) -> list[tuple[str, str]]:
    """Copy submissions from `inbox` into submitted/<student>/<assignment>/ (with a timestamp.txt).

    `inbox` holds one folder per student (named by the student id) with the notebooks, directly or in a folder
    per assignment: inbox/alice/masking.ipynb or inbox/alice/masking/masking.ipynb. The notebook's file name
    tells the assignment; a misnamed copy (``masking (1).ipynb``, ``Masking.ipynb``) is collected under the
    release's name with a warning, unless the student also handed in the exact name; any other notebook is
    reported. Only the data of regular files is copied: links, hard links and special files are reported and
    left behind. A notebook's modification time is its submission time. Returns (student, assignment).

    (Not nbgrader's ZipCollectApp with a collector plugin: that collects one assignment from one folder of files
    named by student, where this inbox holds one folder per student with any of the assignments.)
    """
    inbox = Path(inbox)
    if not inbox.is_dir():
        raise ValueError(f"{inbox} is not a folder: give the folder that holds one folder per student.")
    index = notebook_index(course)
    done = []
    for folder in sorted(inbox.iterdir()):
        student = folder.name
        if folder.is_symlink() or not folder.is_dir():
            if folder.is_symlink():
                log(f"warning: {folder}: a link, not a student's folder; not collected.")
            continue
        if not STUDENT_ID.fullmatch(student):
            log(f"warning: {folder}: {student!r} is not a usable student id (letters, digits, _.@+- only); "
                "not collected.")
            continue
        found = list(_files(folder, log))
        exact = {nb.name for nb in found if nb.name in index}
        for nb in found:
            release_name = integrity.notebook_for(nb.name, set(index))
            if release_name is None:
                log(f"warning: {nb}: not a notebook of the course ({', '.join(sorted(index))}); not collected.")
                continue
            if release_name != nb.name and release_name in exact:
                log(f"warning: {nb}: ignored, {student} also handed in {release_name}.")
                continue
            try:
                data, mtime = read_plain_file(nb)
            except (OSError, ValueError) as e:
                log(f"warning: {e}; not collected (hand in the notebook itself).")
                continue
            if release_name != nb.name:
                log(f"warning: {nb}: collected as {release_name}.")
                exact.add(release_name)
            dest = course / "submitted" / student / index[release_name]
            dest.mkdir(parents=True, exist_ok=True)
            (dest / release_name).write_bytes(data)
            stamp = datetime.fromtimestamp(mtime, timezone.utc)
            (dest / "timestamp.txt").write_text(stamp.strftime("%Y-%m-%d %H:%M:%S.%f UTC"))
            done.append((student, index[release_name]))
    return done


def submissions(course: Path, names: Iterable[str] | None = None,
                students: Iterable[str] | None = None) -> list[tuple[str, str]]:
    """(student, assignment) for every folder submitted/<student>/<assignment>/."""
    wanted, who = set(names or assignments(course)), set(students or [])
    found = []
    root = course / "submitted"
    for student in sorted(p.name for p in root.iterdir() if p.is_dir()) if root.is_dir() else []:
        if (who and student not in who) or not STUDENT_ID.fullmatch(student):
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
    grader = api(course, db_url)
    for name in names or assignments(course):
        if any((course / "autograded").glob(f"*/{name}")):
            _checked(grader.generate_feedback(name, force=True), f"generate_feedback {name}")


def export(course: Path, to: Path, db_url: str | None = None) -> Path:
    """All grades of the gradebook as CSV (nbgrader's CsvExportPlugin: one row per student and assignment)."""
    from nbgrader.plugins import CsvExportPlugin

    to = Path(to).resolve()
    with gradebook(course_db_url(course, db_url)) as gb:
        CsvExportPlugin(to=str(to)).export(gb)
    return to
