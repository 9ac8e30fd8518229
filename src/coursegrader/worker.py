"""One autograding worker: ``python -m coursegrader.worker`` imports nbgrader once and then autogrades
the submissions it is sent, one JSON line each on stdin, answering each with one line on stdout.

Starting nbgrader costs seconds; a worker pays it once for many submissions. Each submission still runs in
its own course copy and its own kernel; the parent (`coursegrader.course`) kills the worker, its kernel
included, when a submission runs past its time limit, and starts a new one.
"""

from __future__ import annotations

import json
import sys

REPLY = "@@coursegrader@@ "  # the prefix of the one reply line per request (other output is ignored)


def grade(request: dict) -> dict:
    """Run nbgrader's autograde for one submission in its course copy; return success, error and the log."""
    from nbgrader.apps import NbGraderAPI
    from traitlets.config.loader import PyFileConfigLoader

    from .sandbox import SandboxKernelManager, Settings

    folder = request["course"]
    config = PyFileConfigLoader("nbgrader_config.py", path=folder).load_config()
    config.CourseDirectory.root = folder
    config.CourseDirectory.db_url = request["db_url"]
    config.Execute.timeout = int(request["cell_timeout"])
    # Grades are written by the parent into the course gradebook, from the executed notebook; this copy's
    # gradebook is read before the kernel starts and never after (whatever the notebook does to it).
    parent_only = ("SaveAutoGrades", "AssignLatePenalties")
    config.Autograde.autograde_preprocessors = [
        "coursegrader.sandbox.SandboxedExecute" if str(p).endswith(".Execute") else p
        for p in config.Autograde.autograde_preprocessors if not str(p).endswith(parent_only)
    ]
    # The kernel runs in the sandbox (coursegrader.sandbox) unless the instructor said the work is trusted.
    SandboxKernelManager.settings = Settings(**request["sandbox"]) if request.get("sandbox") else None
    api = NbGraderAPI(config=config)
    result = api.autograde(request["assignment"], request["student"], force=True, create=True)
    return {"success": bool(result.get("success")), "error": str(result.get("error") or "")[-2000:],
            "log": str(result.get("log") or "")[-4000:]}


def main() -> None:
    """Serve requests until stdin closes."""
    import nbgrader.apps  # noqa: F401  (the expensive import, done before the first request)

    for line in sys.stdin:
        if not line.strip():
            continue
        try:
            reply = grade(json.loads(line))
        except Exception as e:  # report, and stay alive for the next submission
            reply = {"success": False, "error": f"{type(e).__name__}: {e}"[-2000:], "log": ""}
        sys.stdout.write(REPLY + json.dumps(reply) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
