"""Autograding a batch of submissions in parallel, each in its own process, kernel and sandbox.

nbgrader grades one submission after another, in one process that also writes the gradebook. Here each
submission is graded by its own ``nbgrader autograde`` process, in a private copy of the course (its own
SQLite gradebook, copied from a template that holds the assignments), under a time limit; several run at
once. The parent then writes every result into the course's gradebook (SQLite or any SQLAlchemy URL), one
after another, with nbgrader's own SaveAutoGrades, so the gradebook sees exactly what serial nbgrader would
have written. A submission that cannot be graded (not a notebook, time limit, crash of nbgrader) gets zero
for its autograded cells and a notebook that says why, so every submission has a score and a feedback page.
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import json
import queue
import secrets
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import warnings
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

import nbformat
from nbformat.notebooknode import NotebookNode

from . import integrity
from .course import (
    CONFIG,
    ENV,
    assignments,
    copy_course,
    course_db_url,
    environment,
    gradebook_api,
    kill_group,
    release,
    submissions,
)
from .worker import REPLY


@dataclass
class Result:
    """The outcome of autograding one submission (one student, one assignment)."""

    student: str
    assignment: str
    score: float = 0.0
    max_score: float = 0.0
    seconds: float = 0.0
    status: str = "graded"  # graded | failed
    reasons: list[str] = field(default_factory=list)


# ---- autograde ------------------------------------------------------------------------------------------


_TEMPLATES: dict[str, dict[str, bytes]] = {}  # kept in this process: student code cannot change them


def _template(course: Path, work: Path) -> dict[str, bytes]:
    """The files of a course copy with every assignment released into its own SQLite gradebook, in memory.

    Every worker's course is written from these bytes, so a notebook that rewrites files on disk (the
    gradebook, the sources) cannot change how the next submission is graded. Cached per process by the
    content of the configuration and of the sources.
    """
    digest = hashlib.sha256()
    for path in [course / CONFIG, *sorted((course / "solutions").rglob("*"))]:
        if path.is_file() and ".ipynb_checkpoints" not in path.parts:
            digest.update(str(path.relative_to(course)).encode() + b"\0" + path.read_bytes())
    key = digest.hexdigest()
    if key not in _TEMPLATES:
        folder = copy_course(course, work / "template")
        release(folder, assignments(course), db_url=f"sqlite:///{folder / 'gradebook.db'}")
        _TEMPLATES[key] = {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}
        shutil.rmtree(folder)
    return _TEMPLATES[key]


def _materialize(files: dict[str, bytes], folder: Path) -> None:
    for rel, data in files.items():
        if rel == "gradebook.db":
            continue
        (folder / rel).parent.mkdir(parents=True, exist_ok=True)
        (folder / rel).write_bytes(data)


def _sqlite_path(db_url: str) -> Path | None:
    return Path(db_url[len("sqlite:///"):]) if db_url.startswith("sqlite:///") else None


class _Worker:
    """A `coursegrader.worker` process, started on first use and again after it was killed."""

    def __init__(self) -> None:
        self.process: subprocess.Popen | None = None
        self.replies: queue.Queue = queue.Queue()

    def _start(self) -> None:
        self.process = subprocess.Popen([sys.executable, "-m", "coursegrader.worker"], stdin=subprocess.PIPE,
                                        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                                        env=environment(), start_new_session=True)
        self.replies = queue.Queue()
        threading.Thread(target=self._read, args=(self.process, self.replies), daemon=True).start()

    @staticmethod
    def _read(process: subprocess.Popen, replies: queue.Queue) -> None:
        for line in process.stdout:
            if line.startswith(REPLY):
                replies.put(json.loads(line[len(REPLY):]))
        replies.put(None)  # the process ended

    def grade(self, request: dict, timeout: float) -> dict:
        if self.process is None or self.process.poll() is not None:
            self._start()
        try:
            self.process.stdin.write(json.dumps(request) + "\n")
            self.process.stdin.flush()
            reply = self.replies.get(timeout=timeout)
        except queue.Empty:
            self.close()
            return {"success": False, "timeout": True, "error": "", "log": ""}
        except OSError as e:
            reply = {"success": False, "error": f"the grading process is gone ({e})", "log": ""}
        if reply is None:
            self.close()
            return {"success": False, "error": "the grading process died", "log": ""}
        return reply

    def close(self) -> None:
        if self.process is not None:
            kill_group(self.process)
            with contextlib.suppress(Exception):
                self.process.wait(timeout=10)
        self.process = None


def _grade_one(workers: queue.Queue, template: dict[str, bytes], course: Path, student: str, name: str, work: Path,
               timeout: float, cell_timeout: int, sandbox: dict | None = None) -> tuple[Path, list[str], float]:
    """Autograde one submission in a private course copy. Returns (its autograded folder, problems, seconds).

    Never raises: whatever goes wrong costs this submission (a reason, zero points), not the batch.
    """
    start = time.perf_counter()
    try:
        return _grade_one_unsafe(workers, template, course, student, name, work, timeout, cell_timeout, sandbox,
                                 start)
    except Exception as e:
        return (work / "not-graded", [f"the autograder failed on this submission ({type(e).__name__}: "
                                      f"{str(e)[:300]})."], time.perf_counter() - start)


def _rename_misnamed(submitted: Path, release_names: set[str]) -> list[str]:
    """Notebooks handed in under another name (``Masking.ipynb``, ``masking (1).ipynb``: nbgrader's exchange
    keeps what the student uploaded) are graded as the release notebook they stand for, with a note; one per
    release notebook, and never over a notebook with the exact name."""
    notes = []
    for nb in sorted(submitted.glob("*.ipynb")):
        target = integrity.notebook_for(nb.name, release_names)
        if nb.name in release_names or target is None or (submitted / target).exists():
            continue
        nb.rename(submitted / target)
        notes.append(f"{nb.name} was graded as {target} (the release's name).")
    return notes


def _grade_one_unsafe(workers, template, course, student, name, work, timeout, cell_timeout, sandbox, start):
    folder = work / f"{secrets.token_hex(6)}-{student}__{name}"  # a new name: nothing can be there already
    _materialize(template, folder)
    submitted = folder / "submitted" / student / name
    # regular files and folders only: a link, a FIFO or a device in a submission is left behind
    shutil.copytree(course / "submitted" / student / name, submitted, dirs_exist_ok=True,
                    ignore=lambda d, names: [n for n in names if (Path(d) / n).is_symlink()
                                             or not ((Path(d) / n).is_file() or (Path(d) / n).is_dir())])
    problems = _rename_misnamed(submitted, {Path(k).name for k in template
                                            if k.startswith(f"exercises/{name}/") and k.endswith(".ipynb")})
    for nb in sorted(submitted.glob("*.ipynb")):
        try:
            node = nbformat.read(nb, as_version=4)
        except Exception as e:  # not JSON, not a notebook: nbgrader would stop on it
            problems.append(f"{nb.name} is not a readable notebook ({type(e).__name__}: {str(e)[:200]}); "
                            "it could not be graded.")
            nb.unlink()
            continue
        release_nb = template.get(f"exercises/{name}/{nb.name}")
        if release_nb is not None:  # grade against the release's cells, whatever the submission's metadata says
            notes = integrity.restore_metadata(node, nbformat.reads(release_nb.decode(), as_version=4))
            if notes:
                problems.append(f"{nb.name}: " + "; ".join(notes[:5]) + ".")
                nbformat.write(node, nb)
    hidden = work / secrets.token_hex(8)  # the worker's gradebook, outside the course copy, under a random name
    hidden.mkdir()
    (hidden / "gradebook.db").write_bytes(template["gradebook.db"])
    worker = workers.get()
    try:
        reply = worker.grade({"course": str(folder), "assignment": name, "student": student,
                              "db_url": f"sqlite:///{hidden / 'gradebook.db'}", "cell_timeout": cell_timeout,
                              "sandbox": sandbox}, timeout)
    finally:
        workers.put(worker)
    if reply.get("timeout"):
        problems.append(f"grading stopped after {timeout:.0f} s (the time limit of one submission).")
    elif not reply.get("success"):
        lines = [ln for ln in (reply.get("log", "") + "\n" + reply.get("error", "")).splitlines()
                 if "ERROR" in ln or "Error" in ln][-3:]
        problems.append("nbgrader could not grade this submission: " + (" | ".join(lines) or "no log")[:600])
    # Only a run that nbgrader finished counts: after a time limit or a crash, autograded/ may hold the notebook
    # as it was before it ran (no outputs, hence no errors), which nbgrader's rules would give full marks.
    graded = folder / "autograded" / student / name if reply.get("success") else folder / "not-graded"
    return graded, problems, time.perf_counter() - start


def _failed_notebook(release_nb: bytes, reasons: list[str]) -> NotebookNode:
    """The student version with every test failed and a first cell that says why: zero autograded points."""
    nb = nbformat.reads(release_nb.decode(), as_version=4)
    text = "**This notebook could not be autograded.** " + " ".join(reasons)
    nb.cells.insert(0, nbformat.v4.new_markdown_cell(text))
    for cell in nb.cells:
        meta = cell.metadata.get("nbgrader", {})
        if cell.cell_type == "code" and meta.get("grade") and not meta.get("solution"):
            cell.outputs = [nbformat.v4.new_output("error", ename="NotGraded", evalue=" ".join(reasons),
                                                   traceback=["NotGraded: " + " ".join(reasons)])]
    return nb


def _grade_ids(nb: NotebookNode) -> set[str]:
    return {c.metadata["nbgrader"]["grade_id"] for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade")}


def _save_grades(nb: NotebookNode, db_url: str, student: str, name: str, notebook_id: str) -> None:
    """nbgrader's own SaveAutoGrades and AssignLatePenalties, on the course gradebook."""
    gradebook_api()
    from nbgrader.preprocessors import AssignLatePenalties, SaveAutoGrades

    resources = {"nbgrader": {"notebook": notebook_id, "assignment": name, "student": student, "db_url": db_url}}
    SaveAutoGrades().preprocess(nb, resources)
    AssignLatePenalties().preprocess(nb, resources)


def _merge(course: Path, template: dict[str, bytes], db_url: str, student: str, name: str, graded: Path,
           problems: list[str], seconds: float) -> Result:
    """Write one graded submission into the course: autograded/<student>/<name>/ and the gradebook."""
    Gradebook = gradebook_api().Gradebook
    warnings.filterwarnings("ignore", message=".*not in session.*")  # nbgrader's own SQLAlchemy usage
    submitted = course / "submitted" / student / name
    stamp_file = submitted / "timestamp.txt"
    stamp = stamp_file.read_text().strip() if stamp_file.is_file() else None
    dest = course / "autograded" / student / name
    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    with Gradebook(db_url) as gb:
        gb.update_or_create_student(student)
        if stamp:
            from nbgrader.utils import parse_utc

            gb.update_or_create_submission(name, student, timestamp=parse_utc(stamp))
        else:
            gb.update_or_create_submission(name, student)
        notebooks = [nb.name for nb in gb.find_assignment(name).notebooks]
    result = Result(student, name, seconds=round(seconds, 2), reasons=list(problems))
    for notebook_id in notebooks:
        path = graded / f"{notebook_id}.ipynb"
        nb = None
        if path.is_file():
            try:
                nb = nbformat.read(path, as_version=4)
            except Exception as e:
                result.reasons.append(f"the autograded {path.name} is unreadable ({type(e).__name__}).")
        if nb is None:
            if not (submitted / f"{notebook_id}.ipynb").is_file():
                result.reasons.append(f"the submission has no {notebook_id}.ipynb.")
            result.status = "failed"
            nb = _failed_notebook(template[f"exercises/{name}/{notebook_id}.ipynb"],
                                  result.reasons or ["the autograder produced no result."])
        else:
            release = nbformat.reads(template[f"exercises/{name}/{notebook_id}.ipynb"].decode(), as_version=4)
            integrity.restore_metadata(nb, release)  # points and grade ids from the release, never the submission
            missing = sorted(_grade_ids(release) - _grade_ids(nb))
            if missing:
                note = (f"{notebook_id}.ipynb lacks the graded cells {', '.join(missing)} (deleted?); they earn no "
                        "points.")
                result.reasons.append(note)
                nb.cells.insert(0, nbformat.v4.new_markdown_cell(f"**Autograder:** {note}"))
        _save_grades(nb, db_url, student, name, notebook_id)
        nbformat.write(nb, dest / f"{notebook_id}.ipynb")
    if graded.is_dir():  # the other files of the submission, as nbgrader keeps them
        for extra in graded.iterdir():
            if extra.is_file() and extra.suffix != ".ipynb":
                shutil.copy2(extra, dest / extra.name)
    with Gradebook(db_url) as gb:
        bad = integrity.check_scores(gb, name, student, fix=True)
        if bad:
            result.reasons.append("scores above their maximum were capped: " + "; ".join(bad[:3]))
        submission = gb.find_submission(name, student)
        result.score, result.max_score = float(submission.score), float(submission.max_score)
    return result


def _merge_safely(course: Path, template: dict[str, bytes], db_url: str, student: str, name: str, graded: Path,
                  problems: list[str], seconds: float) -> Result:
    """`_merge`; if that fails, the submission is recorded as failed (zero points) with the reason."""
    try:
        return _merge(course, template, db_url, student, name, graded, problems, seconds)
    except Exception as e:
        reason = f"the autograder could not record this submission ({type(e).__name__}: {str(e)[:300]})."
        try:
            return _merge(course, template, db_url, student, name, course / "not-graded", [*problems, reason],
                          seconds)
        except Exception as again:
            return Result(student, name, seconds=round(seconds, 2), status="failed",
                          reasons=[*problems, reason, f"recording zero failed too ({type(again).__name__})."])


def autograde(course: Path, names: Iterable[str] | None = None, students: Iterable[str] | None = None, *,
              jobs: int = 2, timeout: float = 600, cell_timeout: int = 60, db_url: str | None = None,
              log=print, sandbox: bool = True, memory_mb: int = 6144) -> list[Result]:
    """Autograde the submissions in submitted/, `jobs` at a time, and record them in the course's gradebook.

    Each notebook's kernel runs in the sandbox of `coursegrader.sandbox`; where it cannot run, this
    refuses, unless `sandbox` is False (the submissions are trusted: their code runs as the grader).
    """
    from . import sandbox as sandboxing

    if not sandbox:
        log("WARNING: --trusted-submissions-no-sandbox: the submissions' code runs as you, with your files, your "
            "network and your gradebook. Use this only for code you trust.")
    course = Path(course).resolve()
    names = list(names or assignments(course))
    unknown = sorted(set(names) - set(assignments(course)))
    if unknown:
        raise ValueError(f"unknown assignments {unknown}; the course has {assignments(course)}.")
    todo = submissions(course, names, students)
    if not todo:
        log("nothing to grade: no folder submitted/<student>/<assignment>/ (see `python -m coursegrader collect`).")
        return []
    if sandbox and sandboxing.unavailable():
        raise RuntimeError(f"no sandbox for the submissions' code: {sandboxing.unavailable()} Install it, or, "
                           "only if every submission is trusted, pass --trusted-submissions-no-sandbox.")
    db_url = course_db_url(course, db_url)
    with tempfile.TemporaryDirectory(prefix="coursegrader-") as tmp:
        work = Path(tmp)
        template = _template(course, work)
        settings = {n: sandboxing.prepare(work, n, memory_mb=memory_mb, env=ENV).as_dict() if sandbox else None
                    for n in {n for _, n in todo}}
        path = _sqlite_path(db_url)
        if path is not None and not path.exists():  # a new gradebook: the template's, which knows the assignments
            path.write_bytes(template["gradebook.db"])
        _ensure_assignments(course, db_url, sorted({n for _, n in todo}))
        workers: queue.Queue = queue.Queue()
        for _ in range(max(1, jobs)):
            workers.put(_Worker())
        try:
            with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
                futures = [(s, n, pool.submit(_grade_one, workers, template, course, s, n, work, timeout,
                                              cell_timeout, settings[n])) for s, n in todo]
                outcomes = [(s, n, f.result()) for s, n, f in futures]
        finally:
            while not workers.empty():
                workers.get().close()
        results = []
        for student, name, (graded, problems, seconds) in outcomes:  # one writer, one submission at a time
            result = _merge_safely(course, template, db_url, student, name, graded, problems, seconds)
            results.append(result)
            log(f"{student:>20s}  {name:<12s} {result.score:5.1f} / {result.max_score:4.1f}  {seconds:6.1f} s"
                + (f"  ({result.status}: {' '.join(result.reasons)})" if result.reasons else ""))
    return results


def _ensure_assignments(course: Path, db_url: str, names: list[str]) -> None:
    """The course gradebook must know the assignments (nbgrader generate_assignment records them)."""
    api = gradebook_api()
    Gradebook, MissingEntry = api.Gradebook, api.MissingEntry
    missing = []
    with Gradebook(db_url) as gb:
        for name in names:
            try:
                gb.find_assignment(name)
            except MissingEntry:
                missing.append(name)
    if missing:
        release(course, missing, db_url=db_url)


def write_report(results: list[Result], path: Path) -> None:
    """The results as CSV (.csv) or JSON (any other suffix)."""
    rows = [asdict(r) | {"reasons": " ".join(r.reasons)} for r in results]
    if Path(path).suffix == ".csv":
        with open(path, "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=list(rows[0]) if rows else ["student"])
            writer.writeheader()
            writer.writerows(rows)
    else:
        Path(path).write_text(json.dumps(rows, indent=1, ensure_ascii=False))


