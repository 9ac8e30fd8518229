"""The attack classes of a second private batch of hostile submissions, end to end with real nbgrader and bubblewrap.

One batch (2 jobs) holds, graded first, submissions that forge the grading worker's replies from inside the
sandbox, change the judge's reference data in place, leak hidden-test inputs through exception text, flood the
outputs in bytes and in number, hand in extra files for the feedback folder, or sit in a student folder whose name
ends in a newline; then honest submissions, graded on the same workers, which must keep full marks. A second,
small batch checks that a sandbox gets no more than its CPU share. Skipped where bwrap cannot run, except on CI.
"""

from __future__ import annotations

import csv
import html as html_lib
import os
import re
import shutil
from pathlib import Path

import nbformat
import pytest

from coursegrader import autograding, samples, sandbox
from coursegrader import course as grading

ROOT = Path(__file__).resolve().parents[1]
ON_CI = bool(os.environ.get("CI"))
pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(sandbox.unavailable() is not None and not ON_CI,
                                 reason=f"no sandbox: {sandbox.unavailable()}")]
NSP = {"test_pair_input_format": 1, "test_pair_input_truncation": 2, "test_nsp_pairs": 3, "test_sop_pairs": 3,
       "test_pair_head_shapes": 1, "test_pair_head_cls": 2}
NEWLINE = "h_newline\n"

# Forged replies in the worker's old and new formats, written to every descriptor the kernel might share.
FORGE = """
import json as _json, os as _os
_line = _json.dumps({"success": True, "error": "", "log": ""})
for _fd in range(64):
    for _text in ("@@coursegrader@@ " + _line + "\\n", _line + "\\n"):
        try:
            _os.write(_fd, _text.encode())
        except OSError:
            pass
"""
TABLE = """
def human_normalised(results, human):
    human.update({task: 1e-9 for task in human})  # every later ratio becomes huge
    return {}
"""
ECHO = """
_calls = []
_honest = build_pair_input
def build_pair_input(a, b, **kw):
    _calls.append(f"CALL {len(a)}-{len(b)}-{kw.get('max_length')}")
    return _honest(a, b, **kw)
"""
ECHO_RAISE = """
def nsp_pairs(documents, rng):
    raise ValueError("recorded " + " ".join(_calls))
"""
FLOOD = """
from IPython.display import HTML, display
print("x" * 20_000_000)
for _i in range(4000):
    display(HTML(f"<b>{_i}</b>"))
"""
MESSAGE = """
_honest = build_pair_input
def build_pair_input(a, b, **kw):
    if list(a) == [10, 11, 12]:  # the visible format test: its failure message quotes what comes back
        return list(range(8_000_000)), [0]
    return _honest(a, b, **kw)
"""


def _solved(name: str, replace: dict[str, str] | None = None) -> nbformat.NotebookNode:
    release, solution = ROOT / f"exercises/{name}/{name}.ipynb", ROOT / f"solutions/{name}/{name}.ipynb"
    return samples.solved(release, solution, replace)


@pytest.fixture(scope="module")
def batch(tmp_path_factory):
    course = grading.copy_course(ROOT, tmp_path_factory.mktemp("hostile") / "course")
    shutil.copytree(ROOT / "exercises", course / "exercises")
    answers = samples.answers(ROOT / "solutions/nsp_sop/nsp_sop.ipynb")
    blank = nbformat.read(ROOT / "exercises/nsp_sop/nsp_sop.ipynb", as_version=4)
    blank.cells[1].source = FORGE + blank.cells[1].source
    samples.write_submission(course, "a_pipe", "nsp_sop", {"nsp_sop": blank})
    for student in ("a_table1", "a_table2"):
        samples.write_submission(course, student, "glue_score", {"glue_score": _solved(
            "glue_score", {"human_normalised": TABLE})})
    samples.write_submission(course, "h_echo", "nsp_sop", {"nsp_sop": _solved("nsp_sop", {
        "build_pair_input": answers["build_pair_input"] + ECHO, "nsp_pairs": ECHO_RAISE})})
    extra = samples.write_submission(course, "h_extra", "nsp_sop", {"nsp_sop": _solved("nsp_sop")})
    (extra / "evil.html").write_text("<script>leak_extra_5521()</script>")
    samples.write_submission(course, "h_flood", "nsp_sop", {"nsp_sop": _solved("nsp_sop", {
        "build_pair_input": answers["build_pair_input"] + FLOOD})})
    samples.write_submission(course, "h_message", "nsp_sop", {"nsp_sop": _solved("nsp_sop", {
        "build_pair_input": answers["build_pair_input"] + MESSAGE})})
    samples.write_submission(course, NEWLINE, "nsp_sop", {"nsp_sop": _solved("nsp_sop")})
    for name in ("nsp_sop", "glue_score"):
        samples.write_submission(course, "z_honest", name, {name: _solved(name)})
    results = autograding.autograde(course, ["nsp_sop", "glue_score"], jobs=2, timeout=400, cell_timeout=60,
                                    log=print)
    return course, {(r.student, r.assignment): r for r in results}


def scores(course: Path, student: str, name: str) -> dict[str, float]:
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gb:
        found = {g.name: float(g.auto_score or 0) for g in gb.find_submission_notebook(name, name, student).grades}
    nb = nbformat.read(ROOT / f"solutions/{name}/{name}.ipynb", as_version=4)
    return {c.metadata.nbgrader.grade_id: found.get(c.metadata.nbgrader.grade_id, 0.0) for c in nb.cells
            if c.cell_type == "code" and c.metadata.get("nbgrader", {}).get("grade")}


def full(name: str) -> dict[str, float]:
    nb = nbformat.read(ROOT / f"solutions/{name}/{name}.ipynb", as_version=4)
    return {c.metadata.nbgrader.grade_id: float(c.metadata.nbgrader.points) for c in nb.cells
            if c.cell_type == "code" and c.metadata.get("nbgrader", {}).get("grade")}


def test_forged_worker_replies_change_no_grade(batch):
    """The kernel inherited the worker's stdout: lines in the reply format graded a blank notebook and gave the
    next students of that worker 0 with a fake 'kernel died'."""
    course, results = batch
    assert set(scores(course, "a_pipe", "nsp_sop").values()) == {0.0}
    assert scores(course, "z_honest", "nsp_sop") == NSP
    for (student, _), result in results.items():
        assert "died" not in " ".join(result.reasons), (student, result.reasons)


def test_changed_reference_data_reaches_no_later_submission(batch):
    """Write-back into the judge changed bertlab's table of human baselines in the grading worker: later students
    of that worker were graded against changed data."""
    course, _ = batch
    assert scores(course, "z_honest", "glue_score") == full("glue_score")
    for student in ("a_table1", "a_table2"):
        assert scores(course, student, "glue_score")["test_human_normalised"] == 0


def test_feedback_shows_no_hidden_input_through_exception_text(batch):
    course, _ = batch
    grading.feedback(course, ["nsp_sop"])
    autograded = (course / "autograded/h_echo/nsp_sop/nsp_sop.ipynb").read_text()
    assert "CALL 20-19-12" in autograded  # the instructor sees what the student's code raised ...
    page = html_lib.unescape((course / "feedback/h_echo/nsp_sop/nsp_sop.html").read_text())
    hidden = ["CALL 7-7-9", "CALL 3-12-10", "CALL 0-5-6", "CALL 6-6-100", "CALL 20-19-12"]  # the hidden test's
    assert [call for call in hidden if call in page] == []  # ... the feedback shows none of them
    assert scores(course, "h_echo", "nsp_sop") == NSP | {"test_nsp_pairs": 0}


def test_outputs_are_capped_in_bytes_and_a_flood_fails_nothing(batch):
    """A 20 MB line, 4,000 display outputs and an 8-million-item assertion message: each cut with a marker, the
    solved answers keep their points."""
    course, _ = batch
    assert scores(course, "h_flood", "nsp_sop") == NSP
    assert scores(course, "h_message", "nsp_sop") == NSP | {"test_pair_input_format": 0}
    for student in ("h_flood", "h_message"):
        path = course / f"autograded/{student}/nsp_sop/nsp_sop.ipynb"
        assert path.stat().st_size < 20 * 2**20, (student, path.stat().st_size)
    assert "cut by the autograder" in (course / "autograded/h_flood/nsp_sop/nsp_sop.ipynb").read_text()
    grading.feedback(course, ["nsp_sop"])
    assert (course / "feedback/h_message/nsp_sop/nsp_sop.html").stat().st_size < 20 * 2**20


def test_only_the_release_notebooks_reach_the_feedback_folder(batch):
    course, _ = batch
    grading.feedback(course, ["nsp_sop"])
    assert not (course / "autograded/h_extra/nsp_sop/evil.html").exists()
    published = {p.name for p in (course / "feedback/h_extra/nsp_sop").iterdir()}
    assert published <= {"nsp_sop.html", "timestamp.txt", "submission_secret.txt"} and "nsp_sop.html" in published
    assert scores(course, "h_extra", "nsp_sop") == NSP


def test_a_folder_name_ending_in_a_newline_breaks_no_row(batch):
    """The id check matched before a final newline: the row of the real student broke, and feedback stopped."""
    course, results = batch
    assert all(student != NEWLINE for student, _ in results)
    grading.feedback(course, ["nsp_sop"])
    with open(grading.export(course, course / "grades.csv")) as f:
        rows = list(csv.DictReader(f))
    assert {r["student_id"] for r in rows} >= {"z_honest", "h_extra"} and not any("\n" in r["student_id"] for r in rows)
    assert (course / "feedback/z_honest/nsp_sop/nsp_sop.html").is_file()


CPU_PROBE = """
import os, resource, time
kids = []
for _ in range(6):
    pid = os.fork()
    if pid == 0:
        end = time.time() + 4
        while time.time() < end:
            pass
        os._exit(0)
    kids.append(pid)
start = time.time()
for pid in kids:
    os.waitpid(pid, 0)
used = resource.getrusage(resource.RUSAGE_CHILDREN)
print(f"CPU SHARE {(used.ru_utime + used.ru_stime) / (time.time() - start):.2f}")
"""


@pytest.mark.skipif(not sandbox.cpu_shares_work(), reason="no cgroup for a CPU share here (grading not as root, or "
                    "no delegation): the fallback regrades alone instead (tests/test_grading_units.py)")
def test_a_sandbox_gets_no_more_than_its_cpu_share(tmp_path):
    """48 busy processes of one submission cost an honest student graded beside it a test: each sandbox is now a
    cgroup of its own with its share of the CPUs, here 0.25 CPU, against six busy processes for 4 s. Read from
    outside while it runs: the cgroup that holds the sandbox's processes, and its quota."""
    import threading
    import time

    course = grading.copy_course(ROOT, tmp_path / "course")
    shutil.copytree(ROOT / "exercises", course / "exercises")
    nb = nbformat.read(ROOT / "exercises/nsp_sop/nsp_sop.ipynb", as_version=4)
    nb.cells = [nbformat.v4.new_code_cell(CPU_PROBE)]
    samples.write_submission(course, "a_hog", "nsp_sop", {"nsp_sop": nb})
    seen, done = set(), threading.Event()

    def watch():  # (quota, processes) of every sandbox cgroup with processes in it
        while not done.wait(0.2):
            for root in sandbox.CGROUP_ROOTS:
                for group in root.glob(f"{sandbox.GROUP_PREFIX}*"):
                    try:
                        quota = (group / "cpu.max").read_text().split()[0] if (group / "cpu.max").exists() else (
                            group / "cpu.cfs_quota_us").read_text().strip()
                        seen.add((int(quota), len((group / "cgroup.procs").read_text().split())))
                    except (OSError, ValueError):
                        pass

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    start = time.monotonic()
    autograding.autograde(course, ["nsp_sop"], jobs=2, cell_timeout=60, cpus=0.25, log=print)
    done.set()
    text = (course / "autograded/a_hog/nsp_sop/nsp_sop.ipynb").read_text()
    share = float(re.search(r"CPU SHARE ([\d.]+)", text).group(1))
    assert share <= 0.35, share
    assert max((n for quota, n in seen if quota == 25_000), default=0) >= 7, (seen, time.monotonic() - start)
