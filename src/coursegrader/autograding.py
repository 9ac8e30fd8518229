"""Autograding a batch of submissions in parallel, each in its own process, kernel and sandbox.

nbgrader grades one submission after another, in one process that also writes the gradebook. Here each
submission is graded by nbgrader's autograde in a worker process (`coursegrader.worker`), in a private copy of
the course (its own SQLite gradebook, copied from a template that holds the assignments), under a time limit;
several run at once. The parent then writes every result into the course's gradebook (SQLite or any SQLAlchemy
URL), one after another, with nbgrader's own SaveAutoGrades, so the gradebook sees exactly what serial nbgrader
would have written. A submission that cannot be graded (not a notebook, time limit, crash of nbgrader) gets zero
for its autograded cells and a notebook that says why, so every submission has a score and a feedback page.

Fairness: where the machine lets the grader write cgroups, each sandbox gets its share of the CPUs
(`sandbox.cpu_group`). Where it does not, `CpuWatch` records when a worker's processes used more than their share,
and a submission with a cell that ran past its time limit while another sandbox was over its share is graded
again, alone, with a note to the instructor.
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import json
import os
import queue
import secrets
import shutil
import signal
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
    gradebook,
    read_plain_file,
    release,
    submissions,
)

RELEASE = "exercises"  # the release folder of the template (CourseDirectory.release_directory)
NBGRADER_FILES = ("timestamp.txt", "submission_secret.txt")  # nbgrader's own files of a submission, plain text


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


@dataclass
class Graded:
    """What grading one submission left: its autograded folder (None: nothing usable), problems, time span."""

    folder: Path | None
    problems: list[str]
    start: float
    end: float
    worker: int = -1


_TEMPLATES: dict[str, dict[str, bytes]] = {}  # kept in this process: student code cannot change them


def kill_group(process: subprocess.Popen) -> None:
    """Kill the process, everything it started (kernels run in sessions of their own), and its group."""
    import psutil  # a dependency of ipykernel

    with contextlib.suppress(psutil.Error):
        for child in psutil.Process(process.pid).children(recursive=True):
            with contextlib.suppress(psutil.Error):
                child.kill()
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)


class Worker:
    """A `coursegrader.worker` process, started on first use and again after it was killed."""

    def __init__(self, number: int) -> None:
        self.number = number
        self.process: subprocess.Popen | None = None

    def grade(self, request: dict, timeout: float) -> dict:
        """Send one request; its reply, or what went wrong (a time limit kills the worker)."""
        if self.process is None or self.process.poll() is not None:
            self.process = subprocess.Popen([sys.executable, "-m", "coursegrader.worker"], stdin=subprocess.PIPE,
                                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                                            env=environment(), start_new_session=True)
            self.replies: queue.Queue = queue.Queue()
            threading.Thread(target=self._read, args=(self.process, self.replies), daemon=True).start()
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

    @staticmethod
    def _read(process: subprocess.Popen, replies: queue.Queue) -> None:
        for line in process.stdout:
            with contextlib.suppress(ValueError):
                replies.put(json.loads(line))
        replies.put(None)  # the process ended

    def close(self) -> None:
        if self.process is not None:
            kill_group(self.process)
            with contextlib.suppress(Exception):
                self.process.wait(timeout=10)
        self.process = None


class CpuWatch(threading.Thread):
    """Once a second, the CPU time of each worker's processes (its sandbox included): when each was over `share`."""

    def __init__(self, workers: list[Worker], share: float) -> None:
        super().__init__(daemon=True)
        self.workers, self.share, self.over = workers, share, []  # over: (worker number, time)
        self.done = threading.Event()

    def run(self) -> None:
        import psutil

        last: dict[int, float] = {}
        while not self.done.wait(1.0):
            for worker in self.workers:
                try:
                    tree = [psutil.Process(worker.process.pid)]
                    tree += tree[0].children(recursive=True)
                    used = sum(sum(p.cpu_times()[:2]) for p in tree)
                except (AttributeError, psutil.Error):
                    continue
                if used - last.get(worker.number, used) > 1.2 * self.share:
                    self.over.append((worker.number, time.monotonic()))
                last[worker.number] = used

    def crowded(self, graded: Graded) -> bool:
        """Whether another worker was over its share while this submission was graded."""
        return any(n != graded.worker and graded.start <= t <= graded.end + 1 for n, t in self.over)


@dataclass
class Batch:
    """One run of `autograde`: the course, its template, the limits, the sandbox of each assignment."""

    course: Path
    work: Path
    template: dict[str, bytes]
    db_url: str
    timeout: float
    cell_timeout: int
    sandboxes: dict[str, dict | None]
    workers: queue.Queue = field(default_factory=queue.Queue)

    def release_files(self, name: str) -> dict[str, bytes]:
        """The files of an assignment's release (exercises/<name>/): file name -> bytes."""
        prefix = f"{RELEASE}/{name}/"
        return {k[len(prefix):]: v for k, v in self.template.items() if k.startswith(prefix) and "/" not in
                k[len(prefix):]}

    def release_notebook(self, name: str, notebook: str) -> NotebookNode:
        return nbformat.reads(self.release_files(name)[notebook].decode(), as_version=4)


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


def _copy_submission(source: Path, dest: Path) -> None:
    """The regular files (one name each) and folders of a submission: links, hard links, FIFOs and devices stay."""
    for top, dirs, files in os.walk(source):
        target = dest / Path(top).relative_to(source)
        target.mkdir(parents=True, exist_ok=True)
        dirs[:] = [d for d in dirs if not (Path(top) / d).is_symlink()]
        for name in files:
            with contextlib.suppress(OSError, ValueError):
                (target / name).write_bytes(read_plain_file(Path(top) / name)[0])


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


def _grade_one(batch: Batch, student: str, name: str) -> Graded:
    """Autograde one submission in a private course copy. Never raises: whatever goes wrong costs this
    submission (a reason, zero points), not the batch."""
    start = time.monotonic()
    try:
        return _grade_in_copy(batch, student, name, start)
    except Exception as e:
        return Graded(None, [f"the autograder failed on this submission ({type(e).__name__}: {str(e)[:300]})."],
                      start, time.monotonic())


def _grade_in_copy(batch: Batch, student: str, name: str, start: float) -> Graded:
    folder = batch.work / f"{secrets.token_hex(6)}-{student}__{name}"  # a new name: nothing can be there already
    for rel, data in batch.template.items():
        if rel != "gradebook.db":
            (folder / rel).parent.mkdir(parents=True, exist_ok=True)
            (folder / rel).write_bytes(data)
    submitted = folder / "submitted" / student / name
    _copy_submission(batch.course / "submitted" / student / name, submitted)
    release_files = batch.release_files(name)
    problems = _rename_misnamed(submitted, {n for n in release_files if n.endswith(".ipynb")})
    for nb in sorted(submitted.glob("*.ipynb")):
        try:
            node = nbformat.read(nb, as_version=4)
        except Exception as e:  # not JSON, not a notebook: nbgrader would stop on it
            problems.append(f"{nb.name} is not a readable notebook ({type(e).__name__}: {str(e)[:200]}); "
                            "it could not be graded.")
            nb.unlink()
            continue
        if nb.name in release_files:  # grade against the release's cells, whatever the submission's metadata says
            notes = integrity.restore_metadata(node, batch.release_notebook(name, nb.name))
            if notes:
                problems.append(f"{nb.name}: " + "; ".join(notes[:5]) + ".")
                nbformat.write(node, nb)
    hidden = batch.work / secrets.token_hex(8)  # the worker's gradebook, outside the course copy, under a random name
    hidden.mkdir()
    (hidden / "gradebook.db").write_bytes(batch.template["gradebook.db"])
    worker = batch.workers.get()
    try:
        start = time.monotonic()
        reply = worker.grade({"course": str(folder), "assignment": name, "student": student,
                              "db_url": f"sqlite:///{hidden / 'gradebook.db'}", "cell_timeout": batch.cell_timeout,
                              "sandbox": batch.sandboxes[name]}, batch.timeout)
    finally:
        batch.workers.put(worker)
    if reply.get("timeout"):
        problems.append(f"grading stopped after {batch.timeout:.0f} s (the time limit of one submission).")
    elif not reply.get("success"):
        lines = [ln for ln in (reply.get("log", "") + "\n" + reply.get("error", "")).splitlines()
                 if "ERROR" in ln or "Error" in ln][-3:]
        problems.append("nbgrader could not grade this submission: " + (" | ".join(lines) or "no log")[:600])
    # Only a run that nbgrader finished counts: after a time limit or a crash, autograded/ may hold the notebook
    # as it was before it ran (no outputs, hence no errors), which nbgrader's rules would give full marks.
    graded = folder / "autograded" / student / name if reply.get("success") else None
    return Graded(graded, problems, start, time.monotonic(), worker.number)


def _failed_notebook(release_nb: NotebookNode, reasons: list[str]) -> NotebookNode:
    """The student version with every test failed and a first cell that says why: zero autograded points."""
    nb = release_nb
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


def _merge(batch: Batch, student: str, name: str, graded: Graded) -> Result:
    """Write one graded submission into the course: autograded/<student>/<name>/ (the release's notebooks and
    declared files only) and the gradebook, with nbgrader's SaveAutoGrades and AssignLatePenalties."""
    from nbgrader.preprocessors import AssignLatePenalties, SaveAutoGrades
    from nbgrader.utils import parse_utc

    warnings.filterwarnings("ignore", message=".*not in session.*")  # nbgrader's own SQLAlchemy usage
    submitted = batch.course / "submitted" / student / name
    stamp = (submitted / "timestamp.txt").read_text().strip() if (submitted / "timestamp.txt").is_file() else None
    dest = batch.course / "autograded" / student / name
    shutil.rmtree(dest, ignore_errors=True)
    dest.mkdir(parents=True)
    with gradebook(batch.db_url) as gb:
        gb.update_or_create_student(student)
        gb.update_or_create_submission(name, student, **({"timestamp": parse_utc(stamp)} if stamp else {}))
        notebooks = [nb.name for nb in gb.find_assignment(name).notebooks]
    result = Result(student, name, seconds=round(graded.end - graded.start, 2), reasons=list(graded.problems))
    for notebook_id in notebooks:
        path, nb = (graded.folder or Path("/nonexistent")) / f"{notebook_id}.ipynb", None
        release_nb = batch.release_notebook(name, f"{notebook_id}.ipynb")
        if path.is_file():
            try:
                nb = nbformat.read(path, as_version=4)
            except Exception as e:
                result.reasons.append(f"the autograded {path.name} is unreadable ({type(e).__name__}).")
        if nb is None:
            if not (submitted / f"{notebook_id}.ipynb").is_file():
                result.reasons.append(f"the submission has no {notebook_id}.ipynb.")
            result.status = "failed"
            nb = _failed_notebook(release_nb, result.reasons or ["the autograder produced no result."])
        else:
            integrity.restore_metadata(nb, release_nb)  # points and grade ids from the release, never the submission
            missing = sorted(_grade_ids(release_nb) - _grade_ids(nb))
            if missing:
                note = (f"{notebook_id}.ipynb lacks the graded cells {', '.join(missing)} (deleted?); they earn no "
                        "points.")
                result.reasons.append(note)
                nb.cells.insert(0, nbformat.v4.new_markdown_cell(f"**Autograder:** {note}"))
        resources = {"nbgrader": {"notebook": notebook_id, "assignment": name, "student": student,
                                  "db_url": batch.db_url}}
        SaveAutoGrades().preprocess(nb, resources)
        AssignLatePenalties().preprocess(nb, resources)
        nbformat.write(nb, dest / f"{notebook_id}.ipynb")
    for file, data in batch.release_files(name).items():  # declared extra files: the release's copy, never the
        if not file.endswith(".ipynb"):                   # student's (which feedback/ would publish as it is)
            (dest / file).write_bytes(data)
    for kept in NBGRADER_FILES:  # what nbgrader's own commands read there (release_feedback needs the secret)
        with contextlib.suppress(OSError, ValueError):
            (dest / kept).write_bytes(read_plain_file(submitted / kept)[0])
    with gradebook(batch.db_url) as gb:
        bad = integrity.check_scores(gb, name, student, fix=True)
        if bad:
            result.reasons.append("scores above their maximum were capped: " + "; ".join(bad[:3]))
        submission = gb.find_submission(name, student)
        result.score, result.max_score = float(submission.score), float(submission.max_score)
    return result


def _record(batch: Batch, student: str, name: str, graded: Graded) -> Result:
    """`_merge`; where recording the graded notebook fails, the submission is recorded as not graded (zero
    points, the failed notebook of the release) with the reason."""
    try:
        return _merge(batch, student, name, graded)
    except Exception as e:
        reason = f"the autograder could not record this submission ({type(e).__name__}: {str(e)[:300]})."
        not_graded = Graded(None, [*graded.problems, reason], graded.start, graded.end)
        try:
            return _merge(batch, student, name, not_graded)
        except Exception as again:
            return Result(student, name, seconds=round(graded.end - graded.start, 2), status="failed",
                          reasons=[*not_graded.problems, f"recording zero failed too ({type(again).__name__})."])


def _timed_out(graded: Graded) -> bool:
    """Whether a cell of the graded submission ran past its time limit."""
    return graded.folder is not None and any("CellTimeoutError" in p.read_text(errors="replace")
                                             for p in graded.folder.glob("*.ipynb"))


def _run(batch: Batch, todo: list[tuple[str, str]], jobs: int, share: float | None) -> list[Graded]:
    """Grade `todo`, `jobs` at a time; where no cgroup holds each sandbox to `share` CPUs, watch who took more."""
    workers = [Worker(n) for n in range(max(1, jobs))]
    for worker in workers:
        batch.workers.put(worker)
    watch = CpuWatch(workers, share) if share and jobs > 1 else None
    if watch is not None:
        watch.start()
    try:
        with ThreadPoolExecutor(max_workers=len(workers)) as pool:
            outcomes = list(pool.map(lambda job: _grade_one(batch, *job), todo))
        if watch is not None:
            watch.done.set()
            for i, ((student, name), graded) in enumerate(zip(todo, outcomes, strict=True)):
                if _timed_out(graded) and watch.crowded(graded):
                    again = _grade_one(batch, student, name)
                    again.problems.append("graded again, alone: a cell ran past its time limit while another "
                                          "sandbox used more than its share of the CPU (this machine gives "
                                          "sandboxes no CPU share of their own).")
                    outcomes[i] = again
    finally:
        while not batch.workers.empty():
            batch.workers.get().close()
    return outcomes


def autograde(course: Path, names: Iterable[str] | None = None, students: Iterable[str] | None = None, *,
              jobs: int = 2, timeout: float = 600, cell_timeout: int = 60, db_url: str | None = None,
              log=print, sandbox: bool = True, memory_mb: int = 6144, cpus: float | None = None) -> list[Result]:
    """Autograde the submissions in submitted/, `jobs` at a time, and record them in the course's gradebook.

    Each notebook's kernel runs in the sandbox of `coursegrader.sandbox`; where it cannot run, this
    refuses, unless `sandbox` is False (the submissions are trusted: their code runs as the grader). Each
    sandbox gets `cpus` CPUs (default: the machine's CPUs over `jobs`).
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
    share = cpus or (os.cpu_count() or 1) / max(1, jobs)
    enforced = sandbox and sandboxing.cpu_shares_work()
    if sandbox and jobs > 1 and not enforced:
        log(f"note: no cgroup for a CPU share per sandbox here; a submission with a cell that runs past its time "
            f"limit while another sandbox uses more than {share:.2f} CPUs is graded again, alone.")
    with tempfile.TemporaryDirectory(prefix="coursegrader-") as tmp:
        work = Path(tmp)
        settings = {n: sandboxing.prepare(work, n, memory_mb=memory_mb, env=ENV, cpus=share if enforced else None)
                    .as_dict() if sandbox else None for n in {n for _, n in todo}}
        batch = Batch(course, work, _template(course, work), course_db_url(course, db_url), timeout, cell_timeout,
                      settings)
        path = Path(batch.db_url[len("sqlite:///"):]) if batch.db_url.startswith("sqlite:///") else None
        if path is not None and not path.exists():  # a new gradebook: the template's, which knows the assignments
            path.write_bytes(batch.template["gradebook.db"])
        _ensure_assignments(course, batch.db_url, sorted({n for _, n in todo}))
        outcomes = _run(batch, todo, jobs, None if enforced or not sandbox else share)
        results = []
        for (student, name), graded in zip(todo, outcomes, strict=True):  # one writer, one submission at a time
            result = _record(batch, student, name, graded)
            results.append(result)
            log(f"{student:>20s}  {name:<12s} {result.score:5.1f} / {result.max_score:4.1f}  {result.seconds:6.1f} s"
                + (f"  ({result.status}: {' '.join(result.reasons)})" if result.reasons else ""))
    return results


def _ensure_assignments(course: Path, db_url: str, names: list[str]) -> None:
    """The course gradebook must know the assignments (nbgrader generate_assignment records them)."""
    from nbgrader.api import MissingEntry

    missing = []
    with gradebook(db_url) as gb:
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
