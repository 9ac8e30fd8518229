"""Hostile submissions against the sandboxed autograder, end to end with real nbgrader and real bubblewrap.

One batch (2 jobs) holds an honest solution, graded after the attackers, and one submission per attack
class: damage to other students (the library, HOME, other submissions, solutions/, nbgrader_config.py, the
checkout), gradebook tampering (direct writes, a planted hot journal, triggers), background processes that
outlive their kernel, a batch-voiding submission folder, feedback leaks (solutions, hidden tests, another
student's text, live HTML and script, hidden-test inputs), a cell that ignores SIGINT and SIGTERM, forged cell
metadata (points, flags, an extra graded cell), and one that probes the limits (the network, its uid, memory, a
fork bomb). Skipped where bwrap cannot run, except on CI, where the set-up
installs it: there a missing sandbox fails; every other grading test runs with --trusted-submissions-no-sandbox.
"""

from __future__ import annotations

import hashlib
import html as html_lib
import os
import re
import shutil
import socket
import sqlite3
from pathlib import Path

import nbformat
import psutil
import pytest

from coursegrader import autograding, samples, sandbox
from coursegrader import course as grading

ROOT = Path(__file__).resolve().parents[1]
CELL_TIMEOUT = 20
MARKER = "bertlab-attack-7f3a"  # in the command line of every background process an attack starts
HONEST = "z_honest"  # sorted after the attackers: graded after them
HONEST_WORDS = "z_honest wrote these words 90210"
HIDDEN_CALL = "CALL 20-19-12"  # build_pair_input(A of 20, B of 19, max_length=12): a hidden test's input
NSP_TESTS = {"test_pair_input_format": 1, "test_pair_input_truncation": 2, "test_nsp_pairs": 3, "test_sop_pairs": 3,
             "test_pair_head_shapes": 1, "test_pair_head_cls": 2}

MEMORY_MB = 6144  # the batch's address-space limit (autograde's default); the limits probe asks for more
ON_CI = bool(os.environ.get("CI"))
pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(sandbox.unavailable() is not None and not ON_CI,
                                 reason=f"no sandbox: {sandbox.unavailable()}")]


def test_ci_has_the_sandbox():
    """CI installs bubblewrap (tasks.py): there the tests below must run, not skip."""
    assert sandbox.unavailable() is None, f"no sandbox on CI: {sandbox.unavailable()}"


def _attempts(paths: list[str], payload: str) -> str:
    """Code that tries to append `payload` to each path and prints what happened (never raises)."""
    return (
        "import os as _os\n"
        f"for _p in {paths!r}:\n"
        "    _p = _os.path.expanduser(_p)\n"
        "    try:\n"
        "        _os.makedirs(_os.path.dirname(_p), exist_ok=True)\n"
        "        with open(_p, 'a') as _f:\n"
        f"            _f.write({payload!r})\n"
        "        print('WROTE', _p)\n"
        "    except Exception as _e:\n"
        "        print('BLOCKED', _p, type(_e).__name__)\n"
    )


def _limits_probe(port: int) -> str:
    """Code that prints what the sandbox let it do: reach a port of the grader's host, its uid, a big
    allocation, and a fork bomb (its children are killed at once)."""
    return (
        "import os as _os, socket as _so, time as _t\n"
        "try:\n"
        f"    _so.create_connection(('127.0.0.1', {port}), timeout=3).close()\n"
        "    print('NET CONNECTED')\n"
        "except OSError as _e:\n"
        "    print('NET BLOCKED', type(_e).__name__)\n"
        "print('UID', _os.getuid())\n"
        "try:\n"
        f"    _big = bytearray({(MEMORY_MB + 1024) * 2**20}); del _big\n"
        "    print('MEMORY GRANTED')\n"
        "except MemoryError:\n"
        "    print('MEMORY BLOCKED')\n"
        "_kids = []\n"
        "try:\n"
        "    for _ in range(400):\n"
        "        _pid = _os.fork()\n"
        "        if _pid == 0:\n"
        "            _t.sleep(60)\n"
        "            _os._exit(0)\n"
        "        _kids.append(_pid)\n"
        "    print('FORKS GRANTED', len(_kids))\n"
        "except OSError as _e:\n"
        "    print('FORKS BLOCKED AFTER', len(_kids), type(_e).__name__)\n"
        "for _k in _kids:\n"
        "    _os.kill(_k, 9)\n"
        "    _os.waitpid(_k, 0)\n"
    )


OTHER_HOME = "/home/another-student/.ipython/profile_default/startup/00-sabotage.py"  # beside the sandbox's HOME


def _attacks(course: Path, port: int) -> dict[str, tuple[str, str]]:
    """student -> (the answer cell to prefix, code put in front of the genuine answer)."""
    sabotage = "\nraise SystemExit('sabotaged by another student')\n"
    damage = _attempts([
        str(course / "submitted" / HONEST / "nsp_sop" / "nsp_sop.ipynb"),
        str(course / "solutions" / "nsp_sop" / "nsp_sop.ipynb"),
        str(course / "nbgrader_config.py"),
        str(course / "exercises" / "nsp_sop" / "nsp_sop.ipynb"),
    ], sabotage) + (
        "import bertlab, bertlab.checks as _c\n"
        + _attempts(["__LIB__", "__CHECKS__"], sabotage).replace("'__LIB__'", "bertlab.__file__")
        .replace("'__CHECKS__'", "_c.__file__")
        + _attempts(["~/.ipython/profile_default/startup/00-sabotage.py", OTHER_HOME,
                     os.path.expanduser("~/.ipython/profile_default/startup/00-sabotage.py")], sabotage)
        + f"print('CHECKOUT VISIBLE', _os.path.exists({str(ROOT / 'src')!r}))\n"
    )
    gradebook = (
        "import sqlite3 as _sq\n"
        + _attempts([str(course / "gradebook.db"), str(course / "gradebook.db-journal"),
                     str(course / "gradebook.db-wal")], "not a database")
        + "try:\n"
        f"    _db = _sq.connect({str(course / 'gradebook.db')!r})\n"
        "    _db.execute('CREATE TRIGGER evil AFTER UPDATE ON grade BEGIN UPDATE grade SET auto_score = 600; END')\n"
        "    _db.commit()\n"
        "    print('TRIGGER PLANTED')\n"
        "except Exception as _e:\n"
        "    print('BLOCKED trigger', type(_e).__name__)\n"
    )
    background = (
        "import subprocess as _sp, sys as _sys, os as _os\n"
        "_loop = 'import signal, time\\nsignal.signal(signal.SIGTERM, signal.SIG_IGN)\\nwhile True: time.sleep(0.2)'\n"
        f"_sp.Popen([_sys.executable, '-c', _loop, {MARKER!r}], start_new_session=True,\n"
        "          stdout=_sp.DEVNULL, stderr=_sp.DEVNULL)\n"
        "if _os.fork() == 0:  # a double-forked daemon\n"
        "    _os.setsid()\n"
        "    if _os.fork() == 0:\n"
        f"        _os.execv(_sys.executable, [_sys.executable, '-c', _loop, {MARKER!r}])\n"
        "    _os._exit(0)\n"
        "print('STARTED')\n"
    )
    leak = (
        "import glob as _g\n"
        f"for _p in [{str(course / 'solutions/nsp_sop/nsp_sop.ipynb')!r},\n"
        f"           {str(course / 'submitted' / HONEST / 'nsp_sop/nsp_sop.ipynb')!r}, '/etc/shadow']:\n"
        "    try:\n"
        "        print(open(_p).read())\n"
        "    except Exception as _e:\n"
        "        print('BLOCKED', _p, type(_e).__name__)\n"
        "get_ipython().events.register('pre_run_cell', lambda info: print(info.raw_cell))\n"
        "from IPython.display import HTML, Javascript, display\n"
        "display(HTML('<script>window.leak_html_9431()</script><img src=x onerror=\"leak_img_9431()\">'))\n"
        "display(Javascript('leak_js_9431()'))\n"
        # record the inputs the tests give build_pair_input (hidden ones included), print them in later cells
        "_calls = []\n"
        "def _record(result=None):\n"
        "    f = globals().get('build_pair_input')\n"
        "    if f is not None and not hasattr(f, '_recorded'):\n"
        "        def g(a, b, **kw):\n"
        "            _calls.append(f'CALL {len(a)}-{len(b)}-{kw.get(\"max_length\")}')\n"
        "            return f(a, b, **kw)\n"
        "        g._recorded = True\n"
        "        globals()['build_pair_input'] = g\n"
        "get_ipython().events.register('post_run_cell', _record)\n"
        "get_ipython().events.register('pre_run_cell', lambda info: print('RECORDED', *_calls))\n"
    )
    signals = ("import signal as _sig\n"
               "def sop_pairs(documents, rng):  # the kernel resets SIGINT per cell: ignore it where it loops\n"
               "    _sig.signal(_sig.SIGINT, _sig.SIG_IGN)\n    _sig.signal(_sig.SIGTERM, _sig.SIG_IGN)\n"
               "    while True:\n        pass\n")
    return {"a_damage": ("build_pair_input", damage), "a_gradebook": ("build_pair_input", gradebook),
            "a_background": ("build_pair_input", background), "a_leak": ("build_pair_input", leak),
            "a_signals": ("sop_pairs", signals), "a_limits": ("build_pair_input", _limits_probe(port))}


def _digest(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file() and not p.is_symlink()}


@pytest.fixture(scope="module")
def batch(tmp_path_factory):
    """The course, its files' digests before grading, and the results of one batch."""
    course = grading.copy_course(ROOT, tmp_path_factory.mktemp("sandbox") / "course")
    shutil.copytree(ROOT / "exercises", course / "exercises")
    release, solution = ROOT / "exercises/nsp_sop/nsp_sop.ipynb", ROOT / "solutions/nsp_sop/nsp_sop.ipynb"
    answers = samples.answers(solution)
    honest = samples.solved(release, solution, {"nsp_pairs": f"# {HONEST_WORDS}\n" + answers["nsp_pairs"]})
    samples.write_submission(course, HONEST, "nsp_sop", {"nsp_sop": honest})
    listener = socket.create_server(("127.0.0.1", 0))  # a port on the grader's host that the probe tries
    listener.listen()
    for student, (cell, code) in _attacks(course, listener.getsockname()[1]).items():
        answer = code if student == "a_signals" else code + "\n" + answers[cell]
        nb = samples.solved(release, solution, {cell: answer, "why_sop": "My own words."})
        if student == "a_leak":
            nb.cells.insert(1, nbformat.v4.new_markdown_cell(
                "<script>leak_md_9431()</script> [x](javascript:leak_link_9431())"))
            nb.cells.insert(1, nbformat.v4.new_raw_cell("<script>leak_raw_9431()</script>",
                                                        metadata={"format": "text/html"}))
        samples.write_submission(course, student, "nsp_sop", {"nsp_sop": nb})
    # forged cell metadata: a test cell worth 600 points, an extra graded cell, a locked cell unlocked
    forged = samples.solved(release, solution, {"why_sop": "My own words."})
    tests = [c for c in forged.cells if c.metadata.get("nbgrader", {}).get("grade") and c.cell_type == "code"]
    tests[0].metadata.nbgrader["points"] = 600
    tests[1].metadata.nbgrader["locked"] = False
    forged.cells.append(nbformat.v4.new_code_cell("pass", metadata={"nbgrader": dict(
        tests[1].metadata.nbgrader, grade_id="test_bonus", points=99)}))
    samples.write_submission(course, "a_forged", "nsp_sop", {"nsp_sop": forged})
    # a submission folder built to break the copy: a folder in the notebook's place, a FIFO, dangling links
    void = course / "submitted" / "a_void" / "nsp_sop"
    (void / "nsp_sop.ipynb").mkdir(parents=True)
    os.mkfifo(void / "pipe")
    (void / "dangling").symlink_to("/nonexistent/file")
    (void / "shadow").symlink_to("/etc/shadow")
    before = {name: _digest(course / name) for name in ("submitted", "solutions", "exercises")}
    before["config"] = _digest(course)[grading.CONFIG]
    with listener:
        results = autograding.autograde(course, ["nsp_sop"], jobs=2, timeout=240, cell_timeout=CELL_TIMEOUT,
                                        memory_mb=MEMORY_MB, log=print)
    return course, before, {r.student: r for r in results}


def scores(course: Path, student: str) -> dict[str, float]:
    with grading.gradebook(f"sqlite:///{course / 'gradebook.db'}") as gb:
        nb = gb.find_submission_notebook("nsp_sop", "nsp_sop", student)
        found = {g.name: float(g.auto_score or 0) for g in nb.grades}
    return {k: found.get(k, 0.0) for k in NSP_TESTS}


def autograded(course: Path, student: str) -> str:
    """The outputs of the autograded notebook (not its sources), as text."""
    nb = nbformat.read(course / "autograded" / student / "nsp_sop" / "nsp_sop.ipynb", as_version=4)
    return "\n".join(str(o.get("text", "")) + str(o.get("evalue", "")) + str(o.get("data", ""))
                     for c in nb.cells if c.cell_type == "code" for o in c.outputs)


def test_no_student_damages_another_or_the_course(batch):
    course, before, results = batch
    assert scores(course, HONEST) == NSP_TESTS  # graded after every attacker
    assert scores(course, "a_damage") == NSP_TESTS  # its own honest answers, nothing more
    for name in ("submitted", "solutions", "exercises"):
        now = _digest(course / name)
        assert {k: v for k, v in now.items() if k in before[name]} == before[name], name
    assert _digest(course)[grading.CONFIG] == before["config"]
    text = autograded(course, "a_damage")
    # writable: its own HOME, and its private /tmp (where a path under the host's /tmp is a phantom copy)
    wrote = re.findall(r"WROTE (\S+)", text)
    assert all(p.startswith(("/home/student/", "/tmp/")) for p in wrote), wrote
    grader_home = os.path.expanduser("~/.ipython/profile_default/startup/00-sabotage.py")
    for target in ("/opt/course-library/bertlab/__init__.py", "/opt/course-library/bertlab/checks.py", OTHER_HOME,
                   *([] if grader_home.startswith("/tmp/") else [grader_home])):  # under /tmp: a private copy
        assert f"BLOCKED {target}" in text
    assert "CHECKOUT VISIBLE False" in text
    assert not (Path.home() / ".ipython/profile_default/startup/00-sabotage.py").exists()
    assert "sabotaged" not in (ROOT / "src/bertlab/checks.py").read_text()


def test_the_gradebook_is_out_of_reach(batch):
    course, _, results = batch
    assert "TRIGGER PLANTED" not in autograded(course, "a_gradebook")
    assert scores(course, "a_gradebook") == NSP_TESTS
    assert not any((course / f"gradebook.db{suffix}").exists() for suffix in ("-journal", "-wal"))
    with sqlite3.connect(course / "gradebook.db") as db:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert db.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'").fetchall() == []
    with grading.gradebook(f"sqlite:///{course / 'gradebook.db'}") as gb:
        from coursegrader.integrity import check_scores

        assert check_scores(gb, fix=False) == []
    assert all(r.score <= r.max_score for r in results.values())


def test_no_process_outlives_its_kernel(batch):
    course, _, _ = batch
    assert "STARTED" in autograded(course, "a_background")
    left = [p.pid for p in psutil.process_iter(["cmdline"]) if MARKER in " ".join(p.info["cmdline"] or [])]
    assert left == []


def test_a_broken_submission_folder_voids_nothing(batch):
    course, _, results = batch
    assert set(results) == {HONEST, "a_damage", "a_gradebook", "a_background", "a_leak", "a_signals", "a_limits",
                            "a_forged", "a_void"}
    void = results["a_void"]
    assert void.status == "failed" and void.score == 0 and void.reasons
    assert scores(course, HONEST) == NSP_TESTS


def test_forged_cell_metadata_earns_the_release_points_and_no_more(batch):
    """Points come from the release: the forged 600-point test and the extra graded cell count as the release's
    cells (or not at all), and the honest answers keep their points."""
    course, _, results = batch
    assert scores(course, "a_forged") == NSP_TESTS
    with grading.gradebook(f"sqlite:///{course / 'gradebook.db'}") as gb:
        nb = gb.find_submission_notebook("nsp_sop", "nsp_sop", "a_forged")
        assert {g.name for g in nb.grades} >= set(NSP_TESTS) and "test_bonus" not in {g.name for g in nb.grades}
        assert all((g.auto_score or 0) <= g.max_score for g in nb.grades)
    assert results["a_forged"].status == "graded"


def test_a_cell_that_ignores_sigint_and_sigterm_is_killed_at_its_time_limit(batch):
    course, _, results = batch
    result = results["a_signals"]
    assert result.seconds < CELL_TIMEOUT + sandbox.GRACE_SECONDS + 60, result
    got = scores(course, "a_signals")
    assert got["test_sop_pairs"] == 0 and got["test_pair_input_format"] == 1  # the cells before keep their points
    assert "ignored the interrupt" in autograded(course, "a_signals")


def test_feedback_holds_no_solution_hidden_test_other_student_or_live_script(batch):
    course, _, _ = batch
    grading.feedback(course, ["nsp_sop"])
    page = (course / "feedback/a_leak/nsp_sop/nsp_sop.html").read_text()
    text = html_lib.unescape(page)
    solution = nbformat.read(ROOT / "solutions/nsp_sop/nsp_sop.ipynb", as_version=4)
    model_answer = [ln.strip() for c in solution.cells if c.cell_type == "markdown" and "Model answer" in c.source
                    for ln in c.source.splitlines() if len(ln.strip()) > 25]
    assert model_answer
    hidden = [ln for c in solution.cells if "BEGIN HIDDEN TESTS" in c.source
              for ln in c.source.split("### BEGIN HIDDEN TESTS")[1].split("### END HIDDEN TESTS")[0].splitlines()
              if len(ln.strip()) > 25]
    assert hidden
    assert "BLOCKED /etc/shadow" in autograded(course, "a_leak")
    assert autograded(course, "a_leak").count("FileNotFoundError") >= 2  # solutions/, the other student's work
    assert not [ln for ln in hidden if ln.strip() in text], "hidden test lines in the feedback"
    assert HIDDEN_CALL in autograded(course, "a_leak")  # the student's code saw a hidden test's input ...
    assert HIDDEN_CALL not in text, "a hidden test's input in the feedback"  # ... and could not show it there
    assert not [ln for ln in model_answer if ln in text], "the model answer in the feedback"
    assert HONEST_WORDS not in text
    for planted in ("leak_html_9431", "leak_md_9431", "leak_raw_9431", "leak_js_9431"):
        assert not re.search(r"<script[^>]*>[^<]*" + planted, page), planted
    assert not re.search(r"<img[^>]*onerror", page) and 'href="javascript:' not in page


def test_no_network_a_uid_of_its_own_and_limits_on_memory_and_processes(batch):
    course, _, _ = batch
    text = autograded(course, "a_limits")
    assert "NET BLOCKED" in text, text  # the grader's host listens on that port: only a network namespace hides it
    uid = int(re.search(r"UID (\d+)", text).group(1))
    assert uid != os.getuid()
    assert "MEMORY BLOCKED" in text, text
    if os.geteuid() == 0:  # RLIMIT_NPROC needs a uid of the sandbox's own, which only root can switch to
        assert uid >= sandbox.UID_BASE
        forks = int(re.search(r"FORKS BLOCKED AFTER (\d+)", text).group(1))
        assert forks < 256, text  # Settings.processes, the kernel's own processes included
    assert scores(course, "a_limits") == NSP_TESTS  # the probe broke nothing of its own grading
    assert scores(course, HONEST) == NSP_TESTS
