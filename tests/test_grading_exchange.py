"""The nbgrader exchange round trip, as a course on a shared server runs it, with nbgrader's own commands.

The instructor (this process) releases an assignment into an exchange folder; two students, each a user of their
own on this machine, fetch it and submit their work; the instructor collects it, grades it with the course's
sandboxed autograde, generates and releases the feedback; each student fetches theirs. Each student gets their
own feedback and nobody else's. Needs root (to create the two users) and bubblewrap; skipped elsewhere, except
on CI, where the set-up provides both when it runs as root.
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import nbformat
import pytest

from coursegrader import course as grading
from coursegrader import samples, sandbox

ROOT = Path(__file__).resolve().parents[1]
STUDENTS = {"cg-student-ann": "solved", "cg-student-bob": "blank"}
ASSIGNMENT = "nsp_sop"
AS_ROOT = hasattr(os, "geteuid") and os.geteuid() == 0
pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(not AS_ROOT or (sandbox.unavailable() is not None and not os.environ.get("CI")),
                                 reason="needs root (two student users) and bubblewrap")]


def nbgrader(*args: str, cwd: Path, user: str | None = None, home: Path | None = None) -> str:
    """One nbgrader command, as the instructor or as a student user; its output (it must succeed)."""
    env = {**grading.environment(), "HOME": str(home or Path.home())}
    command = [sys.executable, "-m", "nbgrader", *args]
    if user is not None:  # runuser sets HOME from the account (these have none): env sets it back
        command = ["runuser", "-u", user, "--", "env", f"HOME={home}", f"USER={user}", f"LOGNAME={user}", *command]
    done = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, f"nbgrader {' '.join(args)} as {user or 'the instructor'}:\n{done.stderr[-3000:]}"
    return done.stdout + done.stderr


@pytest.fixture(scope="module")
def exchange(tmp_path_factory):
    course = grading.copy_course(ROOT, tmp_path_factory.mktemp("exchange") / "course")
    shutil.copytree(ROOT / "exercises", course / "exercises")
    shared = Path(tempfile.mkdtemp(prefix="coursegrader-exchange-"))  # outside pytest's private folder
    os.chmod(shared, 0o755)
    root = shared / "exchange"
    root.mkdir(mode=0o777)
    os.chmod(root, 0o777)
    flags = [f"--Exchange.root={root}", "--course=ssl-bert"]
    homes = {}
    for user in STUDENTS:
        try:
            pwd.getpwnam(user)
        except KeyError:
            subprocess.run(["useradd", "--no-create-home", "--shell", "/usr/sbin/nologin", user], check=True)
        homes[user] = shared / user
        homes[user].mkdir(mode=0o700)
        shutil.chown(homes[user], user)
    nbgrader("release_assignment", ASSIGNMENT, *flags, cwd=course)
    solution = ROOT / f"solutions/{ASSIGNMENT}/{ASSIGNMENT}.ipynb"
    for user, kind in STUDENTS.items():
        home = homes[user]
        nbgrader("fetch_assignment", ASSIGNMENT, *flags, cwd=home, user=user, home=home)
        fetched = home / ASSIGNMENT / f"{ASSIGNMENT}.ipynb"
        assert fetched.is_file()
        if kind == "solved":
            nb = samples.solved(fetched, solution, {"why_sop": f"{user} wrote this answer."})
            nbformat.write(nb, fetched)
            shutil.chown(fetched, user)
        nbgrader("submit", ASSIGNMENT, *flags, cwd=home, user=user, home=home)
    nbgrader("collect", ASSIGNMENT, *flags, cwd=course)
    assert sorted(p.name for p in (course / "submitted").iterdir()) == sorted(STUDENTS)
    done = subprocess.run([sys.executable, "-m", "coursegrader", "--course", str(course), "autograde", ASSIGNMENT,
                           "--jobs", "2"], env=grading.environment(), capture_output=True, text=True, timeout=1200)
    assert done.returncode == 0, done.stderr[-3000:]
    nbgrader("generate_feedback", ASSIGNMENT, cwd=course)
    nbgrader("release_feedback", ASSIGNMENT, *flags, cwd=course)
    for user in STUDENTS:
        nbgrader("fetch_feedback", ASSIGNMENT, *flags, cwd=homes[user], user=user, home=homes[user])
    yield course, homes
    shutil.rmtree(shared, ignore_errors=True)


def feedback_pages(home: Path) -> list[Path]:
    return sorted((home / ASSIGNMENT / "feedback").rglob("*.html"))


def test_each_student_fetches_their_own_feedback_and_nobody_elses(exchange):
    course, homes = exchange
    with grading.gradebook(grading.course_db_url(course, None)) as gb:
        score = {user: gb.find_submission(ASSIGNMENT, user).score for user in STUDENTS}
    assert score["cg-student-bob"] == 0 and score["cg-student-ann"] == 12  # the autograded points, all or none
    for user, home in homes.items():
        pages = feedback_pages(home)
        assert len(pages) == 1, (user, pages)
        text = pages[0].read_text()
        assert f"Score: {score[user]:.1f}" in text or f"Score: {score[user]}" in text
        others = [other for other in STUDENTS if other != user]
        assert not any(other in text for other in others), f"{user}'s feedback names another student"
        if STUDENTS[user] == "solved":
            assert f"{user} wrote this answer." in text
    assert "cg-student-ann wrote this answer." not in feedback_pages(homes["cg-student-bob"])[0].read_text()

