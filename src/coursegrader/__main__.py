"""The instructor's command line: ``python -m coursegrader {release,collect,autograde,feedback,export}``.

    python -m coursegrader release                      # exercises/ from solutions/ (+ the gradebook)
    python -m coursegrader collect INBOX                # INBOX/<student>/*.ipynb -> submitted/<student>/<assignment>
    python -m coursegrader autograde --jobs 2           # every submission, in parallel, into the gradebook
    python -m coursegrader feedback                     # feedback/<student>/<assignment>/*.html (no hidden tests)
    python -m coursegrader export --to grades.csv       # one row per student and assignment
    python -m coursegrader check                        # every stored score within [0, its maximum]
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from . import autograding
from . import course as c


def main(argv: list[str] | None = None) -> int:
    """Parse the command line and run one step of the workflow."""
    parser = argparse.ArgumentParser(prog="python -m coursegrader", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--course", type=Path, default=None, help="the folder with nbgrader_config.py (default: here)")
    parser.add_argument("--db-url", default=None,
                        help="the gradebook, an SQLAlchemy URL (default: $BERTLAB_GRADEBOOK_URL or gradebook.db)")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("release", help="generate exercises/ from solutions/")
    p.add_argument("assignments", nargs="*")
    p = sub.add_parser("collect", help="copy submissions into submitted/<student>/<assignment>/")
    p.add_argument("inbox", type=Path)
    p = sub.add_parser("autograde", help="autograde submissions in parallel")
    p.add_argument("assignments", nargs="*")
    p.add_argument("--student", action="append", default=None, help="only this student (repeatable)")
    p.add_argument("--jobs", "-j", type=int, default=os.cpu_count() or 1, help="submissions graded at once")
    p.add_argument("--timeout", type=float, default=600, help="seconds for one submission, all cells together")
    p.add_argument("--cell-timeout", type=int, default=60, help="seconds for one cell")
    p.add_argument("--report", type=Path, default=None, help="also write the results here (.csv or .json)")
    p.add_argument("--memory-mb", type=int, default=6144, help="address space of one sandboxed kernel (MiB)")
    p.add_argument("--cpus", type=float, default=None, help="CPUs of one sandbox (default: the machine's / --jobs)")
    p.add_argument("--trusted-submissions-no-sandbox", action="store_true",
                   help="run the submissions' code as yourself, with no sandbox: ONLY for trusted submissions")
    p = sub.add_parser("feedback", help="HTML feedback for the autograded submissions")
    p.add_argument("assignments", nargs="*")
    sub.add_parser("check", help="check that every stored score lies within [0, its maximum]")
    p = sub.add_parser("export", help="export the grades as CSV")
    p.add_argument("--to", type=Path, default=Path("grades.csv"))
    args = parser.parse_args(argv)

    try:
        root = c.find_course(args.course)
        if args.command == "release":
            c.release(root, args.assignments or None, db_url=args.db_url)
            print(f"released {args.assignments or c.assignments(root)} into {root / 'exercises'}")
        elif args.command == "collect":
            done = c.collect(root, args.inbox)
            print(f"collected {len(done)} submissions into {root / 'submitted'}")
        elif args.command == "autograde":
            results = autograding.autograde(root, args.assignments or None, args.student, jobs=args.jobs,
                                            timeout=args.timeout, cell_timeout=args.cell_timeout, db_url=args.db_url,
                                            memory_mb=args.memory_mb, cpus=args.cpus,
                                            sandbox=not args.trusted_submissions_no_sandbox)
            if args.report:
                autograding.write_report(results, args.report)
            failed = sum(r.status != "graded" for r in results)
            print(f"autograded {len(results)} submissions ({failed} could not be run)")
        elif args.command == "feedback":
            c.feedback(root, args.assignments or None, db_url=args.db_url)
            print(f"feedback written to {root / 'feedback'}")
        elif args.command == "check":
            from .integrity import check_scores

            with c.gradebook(c.course_db_url(root, args.db_url)) as gb:
                problems = check_scores(gb, fix=False)
            for problem in problems:
                print(f"score out of range: {problem}", file=sys.stderr)
            print(f"gradebook checked: {len(problems)} scores out of range")
            return 1 if problems else 0
        elif args.command == "export":
            print(f"grades written to {c.export(root, args.to, db_url=args.db_url)}")
    except (ValueError, RuntimeError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
