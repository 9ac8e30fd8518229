"""One autograding worker: ``python -m coursegrader.worker`` imports nbgrader once and then autogrades the
submissions it is sent, one JSON line each on stdin, answering each with one JSON line on stdout.

Starting nbgrader costs seconds; a worker pays it once for many submissions. Each submission is graded in a
process forked from the worker as it was before its first submission (so every submission starts from the same
judge state, whatever the ones before it did), in its own course copy and its own kernel. The channel to the
parent is a pair of descriptors that no child inherits: the worker's stdin and stdout become /dev/null before
anything runs, so no kernel can read a request or write a reply. The parent (`coursegrader.autograding`) kills
the worker, its kernel included, when a submission runs past its time limit, and starts a new one.
"""

from __future__ import annotations

import json
import os
import sys

DEFAULT_PROVISIONER = "JUPYTER_DEFAULT_PROVISIONER_NAME"  # jupyter_client's setting of the provisioner to use


def grade(request: dict) -> dict:
    """Run nbgrader's autograde for one submission in its course copy; return success, error and the log."""
    from nbgrader.apps import NbGraderAPI
    from traitlets.config.loader import PyFileConfigLoader

    from .sandbox import PROVISIONER, SandboxProvisioner, Settings

    folder = request["course"]
    config = PyFileConfigLoader("nbgrader_config.py", path=folder).load_config()
    config.CourseDirectory.root = folder
    config.CourseDirectory.db_url = request["db_url"]
    config.Execute.timeout = int(request["cell_timeout"])
    # Grades are written by the parent into the course gradebook, from the executed notebook; this copy's
    # gradebook is read before the kernel starts and never after (whatever the notebook does to it).
    parent_only = ("SaveAutoGrades", "AssignLatePenalties")
    config.Autograde.autograde_preprocessors = [
        "coursegrader.execute.SandboxedExecute" if str(p).endswith(".Execute") else p
        for p in config.Autograde.autograde_preprocessors if not str(p).endswith(parent_only)
    ]
    # The kernel runs in the sandbox (coursegrader.sandbox) unless the instructor said the work is trusted.
    if request.get("sandbox"):
        SandboxProvisioner.settings = Settings(**request["sandbox"])
        os.environ[DEFAULT_PROVISIONER] = PROVISIONER
    result = NbGraderAPI(config=config).autograde(request["assignment"], request["student"], force=True, create=True)
    return {"success": bool(result.get("success")), "error": str(result.get("error") or "")[-2000:],
            "log": str(result.get("log") or "")[-4000:]}


def _forked(request: dict) -> dict:
    """`grade` in a child process; its reply comes back over a pipe of its own."""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(read)
        try:
            reply = grade(request)
        except BaseException as e:  # noqa: BLE001 - reported, never raised into the worker's loop
            reply = {"success": False, "error": f"{type(e).__name__}: {e}"[-2000:], "log": ""}
        with os.fdopen(write, "w") as out:
            out.write(json.dumps(reply))
        os._exit(0)
    os.close(write)
    with os.fdopen(read) as replies:
        text = replies.read()
    os.waitpid(pid, 0)
    return json.loads(text) if text else {"success": False, "error": "the grading process died", "log": ""}


def main() -> None:
    """Serve requests until the parent closes the channel."""
    import nbgrader.apps  # noqa: F401  (the expensive import, done before the first request)

    requests, replies = os.fdopen(os.dup(0)), os.fdopen(os.dup(1), "w")  # os.dup: not inherited by children
    null = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1):
        os.dup2(null, fd)
    sys.stdin, sys.stdout = open(os.devnull), open(os.devnull, "w")
    for line in requests:
        if line.strip():
            replies.write(json.dumps(_forked(json.loads(line))) + "\n")
            replies.flush()


if __name__ == "__main__":
    main()
