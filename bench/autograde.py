"""Time the autograder: seconds per submission and assignment, serially and in parallel.

    python bench/autograde.py                     # 2 solved submissions per assignment, serial then --jobs 2
    python bench/autograde.py --students 4 --jobs 2 --native

Every submission is the student version answered with the solutions (`coursegrader.samples`), so each
notebook runs all of its tests. The course copy, its gradebook and the submissions live in a temporary
folder. Printed: the set-up (nbgrader generating the assignments once), the mean seconds per submission of
each assignment when graded one at a time (`--jobs 1`), the wall time of the whole batch serially and with
`--jobs N`, and the wall time per notebook, the figure to compare with the goal of 15 s per notebook on two
cores. With --native, nbgrader's own `nbgrader autograde` (one process, serial) grades the same batch too.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path

from coursegrader import autograding, samples
from coursegrader import course as grading

ROOT = Path(__file__).resolve().parents[1]


def make_course(folder: Path, students: int) -> Path:
    course = grading.copy_course(ROOT, folder / "course")
    for name in grading.assignments(ROOT):
        release, solution = ROOT / f"exercises/{name}/{name}.ipynb", ROOT / f"solutions/{name}/{name}.ipynb"
        for k in range(students):
            samples.write_submission(course, f"student{k:02d}", name, {name: samples.solved(release, solution)})
    return course


def timed(course: Path, jobs: int, sandbox: bool = True) -> tuple[float, list[autograding.Result]]:
    for folder in ("autograded",):
        shutil.rmtree(course / folder, ignore_errors=True)
    (course / "gradebook.db").unlink(missing_ok=True)
    start = time.perf_counter()
    results = autograding.autograde(course, jobs=jobs, log=lambda *_: None, sandbox=sandbox)
    return time.perf_counter() - start, results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--students", type=int, default=2, help="solved submissions per assignment")
    parser.add_argument("--jobs", type=int, default=2, help="parallel submissions in the parallel run")
    parser.add_argument("--native", action="store_true", help="also time nbgrader's own serial autograde")
    parser.add_argument("--sandbox-overhead", action="store_true",
                        help="also grade the parallel batch without the sandbox (trusted), to measure its cost")
    args = parser.parse_args()
    for key, value in grading.ENV.items():
        os.environ.setdefault(key, value)

    with tempfile.TemporaryDirectory(prefix="bench-autograde-") as tmp:
        course = make_course(Path(tmp), args.students)
        start = time.perf_counter()
        autograding._template(course, Path(tmp))
        setup = time.perf_counter() - start
        serial, results = timed(course, 1)
        parallel, results_parallel = timed(course, args.jobs)
        trusted = None
        if args.sandbox_overhead:
            trusted, results_trusted = timed(course, args.jobs, sandbox=False)
        assert all(r.status == "graded" and r.score == r.max_score - 2 for r in results + results_parallel), (
            "a solved submission lost autograded points: the timings would not be of full runs")
        native = None
        if args.native:
            shutil.rmtree(course / "autograded", ignore_errors=True)
            (course / "gradebook.db").unlink(missing_ok=True)
            grading.release(course)
            start = time.perf_counter()
            grader = grading.api(course)
            for name in grading.assignments(course):
                for student in sorted(p.name for p in (course / "submitted").iterdir()):
                    out = grader.autograde(name, student, force=True)
                    assert out["success"], str(out.get("log"))[-2000:]
            native = time.perf_counter() - start

    n = len(results)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"{n} notebooks ({args.students} per assignment), {os.cpu_count()} CPUs, load average {load:.1f}")
    print(f"set-up (generate the assignments once, cached per process): {setup:.1f} s")
    print("seconds per submission, graded one at a time (--jobs 1):")
    for name in grading.assignments(ROOT):
        times = [r.seconds for r in results if r.assignment == name]
        print(f"  {name:<12s} mean {statistics.mean(times):5.1f} s   (min {min(times):.1f}, max {max(times):.1f})")
    print(f"batch, serial (--jobs 1):      {serial:6.1f} s   = {serial / n:5.1f} s per notebook")
    print(f"batch, parallel (--jobs {args.jobs}):    {parallel:6.1f} s   = {parallel / n:5.1f} s per notebook"
          f"   (speed-up {serial / parallel:.2f}x)")
    if trusted is not None:
        mean = statistics.mean
        each = mean(r.seconds for r in results_parallel) - mean(r.seconds for r in results_trusted)
        print(f"batch, parallel, no sandbox:   {trusted:6.1f} s   = {trusted / n:5.1f} s per notebook"
              f"   (the sandbox's cost: {(parallel - trusted) / n:+.1f} s per notebook, {each:+.1f} s per submission)")
    if native is not None:
        print(f"nbgrader autograde (serial):   {native:6.1f} s   = {native / n:5.1f} s per notebook")


if __name__ == "__main__":
    main()
