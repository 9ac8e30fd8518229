"""The student's kernel in an OS-level sandbox (bubblewrap), driven by nbgrader from outside it.

nbgrader, the gradebook and every file of the course stay in the trusted grading process; only the kernel
that runs the submission's code is started inside ``bwrap``, where it has:

* an unprivileged uid: for real when the grader runs as root (``setpriv``), one uid per grading worker
  (`sandbox_uid`), so that no two sandboxes of a batch share a process limit or can signal each other;
  else uid 65534 of a user namespace;
* read-only views of the Python installation, the virtual environment and a non-editable copy of the
  course library (one per assignment, its graded pieces stubbed out) and of the judge's kernel end
  (`coursegrader.remote`); the checkout's ``src/`` is not visible;
* one writable folder of its own (HOME and working directory, empty at start), a private /tmp;
* no network, its own PID, IPC and UTS namespaces: every process it starts dies with it;
* limits on address space, processes (of its uid, when grading as root), file size and core dumps
  (``prlimit``);
* a cell time limit enforced from outside: SIGINT, then SIGKILL of the whole sandbox after a grace period.

The kernel talks to nbgrader over Unix sockets (ZeroMQ ``ipc``) in its own folder: nothing else is shared.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import os
import secrets
import shutil
import subprocess
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

import nbformat
from jupyter_client.manager import AsyncKernelManager
from nbclient.util import run_sync
from nbgrader.preprocessors import Execute

UID = 65534  # nobody: the uid inside a user namespace (grading without root)
UID_BASE = 1_000_000  # grading as root: worker process p runs its sandboxes as uid UID_BASE + p, a uid no one has
HOME = "/home/student"
LIBRARY = "/opt/course-library"
GRACE_SECONDS = 5  # after a cell's time limit: SIGINT, then this long for the kernel to answer, then SIGKILL


@dataclass
class Settings:
    """Where the sandboxes of one batch live and what they may use."""

    root: str  # a folder of the grader's, traversable (not readable) by the sandbox's uid
    library: str  # the copy of the course library, bound read-only at LIBRARY
    memory_mb: int = 6144
    processes: int = 256
    env: dict | None = None

    def as_dict(self) -> dict:
        """Plain data, to send to the grading worker."""
        return asdict(self)


@functools.lru_cache(maxsize=1)
def unavailable() -> str | None:
    """Why the sandbox cannot be used here (None when it can): bwrap missing, or it cannot start."""
    if shutil.which("bwrap") is None:
        return "bubblewrap (bwrap) is not installed (Debian: apt-get install bubblewrap)."
    if os.geteuid() == 0 and shutil.which("setpriv") is None:
        return "setpriv (util-linux) is missing: the sandbox cannot drop root."
    command = [*_bwrap(Settings(root="/", library="/"), None), "true"]
    try:
        process = subprocess.run(command, capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as e:
        return f"bwrap cannot start: {e}"
    if process.returncode != 0:
        return f"bwrap cannot start a sandbox here: {process.stderr.strip()[:300]}"
    return None


def prepare(work: Path, assignment: str | None = None, memory_mb: int = 6144, processes: int = 256,
            env: dict | None = None) -> Settings:
    """A sandbox folder under `work`, with a non-editable copy of the course library for `assignment`: in it,
    that assignment's graded pieces are stubs that raise (`coursegrader.stubs`)."""
    import bertlab

    from .stubs import stub_library

    root = Path(work) / "sandbox"
    root.mkdir(parents=True, exist_ok=True)
    os.chmod(work, 0o711)  # the sandbox's uid may pass through, but list and read nothing on the way
    os.chmod(root, 0o711)
    library = root / f"library-{assignment or 'all'}"
    if not library.exists():
        shutil.copytree(Path(bertlab.__file__).parent, library / "bertlab",
                        ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        (library / "coursegrader").mkdir()  # the kernel's end of the judge, and nothing else of the grader
        for name in ("__init__.py", "remote.py"):
            shutil.copy(Path(__file__).with_name(name), library / "coursegrader" / name)
        if assignment:
            stub_library(library, assignment)
        for path in [library, *library.rglob("*")]:
            os.chmod(path, 0o755 if path.is_dir() else 0o644)
    return Settings(root=str(root), library=str(library), memory_mb=memory_mb, processes=processes, env=env)


def _system_binds() -> list[str]:
    args = []
    for top in ("/usr", "/etc", "/bin", "/sbin", "/lib", "/lib32", "/lib64"):
        path = Path(top)
        if path.is_symlink():
            args += ["--symlink", os.readlink(path), top]
        elif path.is_dir():
            args += ["--ro-bind", top, top]
    seen = {"/usr", "/etc", "/bin", "/sbin", "/lib", "/lib32", "/lib64"}
    for prefix in sorted({os.path.realpath(p) for p in (sys.base_prefix, sys.prefix, sys.exec_prefix)}):
        if not any(prefix == s or prefix.startswith(s + "/") for s in seen):
            args += ["--ro-bind", prefix, prefix]
            seen.add(prefix)
    venv = os.path.abspath(sys.prefix)  # the venv as python sees it (it may be reached through a link)
    if venv not in seen and os.path.realpath(venv) != venv:
        args += ["--ro-bind", venv, venv]
    return args


def _with_parents(mounts: list[str]) -> list[str]:
    """The mounts, each bind preceded by the folders above it, made traversable (bwrap makes them root-only)."""
    out: list[str] = []
    made: set[str] = set()
    i = 0
    while i < len(mounts):
        arg = mounts[i]
        if arg in ("--tmpfs", "--proc", "--dev"):
            made = {m for m in made if not m.startswith(mounts[i + 1] + "/")}
        if arg in ("--ro-bind", "--bind"):
            for parent in reversed(Path(mounts[i + 2]).parents):
                if str(parent) != "/" and str(parent) not in made:
                    out += ["--perms", "0755", "--dir", str(parent)]
                    made.add(str(parent))
            out += mounts[i:i + 3]
            i += 3
            continue
        out.append(arg)
        i += 1
    return out


def sandbox_uid() -> int:
    """The uid of this process's sandboxes. As root, each grading worker (a process of its own, grading one
    submission at a time) gets a uid of its own, so RLIMIT_NPROC, which counts a uid's processes, is a limit
    per sandbox, not a pool that one fork bomb could drain for the others. Without root: UID, namespaced."""
    return UID_BASE + os.getpid() if os.geteuid() == 0 else UID


def _bwrap(settings: Settings, folder: Path | None) -> list[str]:
    """The bwrap command line up to the program: namespaces, file system, environment."""
    args = ["bwrap", "--die-with-parent", "--unshare-pid", "--unshare-net", "--unshare-ipc", "--unshare-uts",
            "--unshare-cgroup-try", "--hostname", "sandbox"]
    if os.geteuid() != 0:
        args += ["--unshare-user", "--uid", str(UID), "--gid", str(UID)]
    # The empty file systems first, the binds on top: a venv or Python under /tmp or /home (a course cloned
    # into /tmp) stays visible instead of being hidden by a tmpfs mounted after it.
    mounts = ["--proc", "/proc", "--dev", "/dev", "--perms", "1777", "--tmpfs", "/tmp", "--perms", "0755",
              "--tmpfs", "/home"]
    mounts += _system_binds() + ["--ro-bind", settings.library, LIBRARY]
    if folder is not None:
        mounts += ["--bind", str(folder), str(folder), "--bind", str(folder / "home"), HOME]
    args += _with_parents(mounts)
    if folder is not None:
        args += ["--chdir", HOME]
    env = {"HOME": HOME, "USER": "student", "LANG": "C.UTF-8", "PYTHONPATH": LIBRARY,
           "PATH": os.pathsep.join([str(Path(sys.executable).parent), "/usr/local/bin", "/usr/bin", "/bin"]),
           "PYTHONDONTWRITEBYTECODE": "1", "MPLBACKEND": "Agg", "MPLCONFIGDIR": f"{HOME}/.matplotlib"}
    env.update(settings.env or {})
    args += ["--clearenv"]
    for key, value in env.items():
        args += ["--setenv", key, str(value)]
    limits = ["prlimit", f"--as={settings.memory_mb * 2**20}", "--core=0", f"--fsize={2**30}"]
    args += ["--", *limits]
    if os.geteuid() == 0:  # RLIMIT_NPROC counts the processes of the real uid: meaningful for a uid of its own
        uid = sandbox_uid()
        args += [f"--nproc={settings.processes}", "--",
                 "setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups", "--no-new-privs", "--"]
    else:
        args += ["--"]
    return args


def kernel_folder(settings: Settings) -> Path:
    """A new private folder for one kernel: its connection file, its sockets, and home/ (writable by it)."""
    folder = Path(settings.root) / f"kernel-{secrets.token_hex(6)}"
    (folder / "home").mkdir(parents=True)
    if os.geteuid() == 0:
        for path in (folder, folder / "home"):
            os.chown(path, sandbox_uid(), sandbox_uid())
    os.chmod(folder, 0o700)
    return folder


class SandboxKernelManager(AsyncKernelManager):
    """A kernel manager whose kernel runs under bwrap and talks over Unix sockets in its own folder."""

    settings: Settings | None = None  # set by the grading worker before nbgrader runs

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        if self.settings is None:
            raise RuntimeError("SandboxKernelManager.settings is not set.")
        self.folder = kernel_folder(self.settings)
        self.transport = "ipc"
        self.ip = str(self.folder / "kernel")
        self.connection_file = str(self.folder / "kernel.json")

    def format_kernel_cmd(self, extra_arguments: list[str] | None = None) -> list[str]:
        """The kernel's own command, run by the sandbox's python, inside bwrap."""
        cmd = super().format_kernel_cmd(extra_arguments)
        if cmd and Path(cmd[0]).name.startswith("python"):
            cmd[0] = str(Path(sys.prefix) / "bin" / "python")
        return [*_bwrap(self.settings, self.folder), *cmd]

    async def _async_launch_kernel(self, kernel_cmd: list[str], **kw) -> None:
        os.chmod(self.connection_file, 0o644)  # the folder is private to the sandbox's uid; the kernel reads it
        if os.geteuid() == 0:
            os.chown(self.connection_file, sandbox_uid(), sandbox_uid())
        kw.pop("cwd", None)  # bwrap --chdir sets the kernel's own; the notebook's folder is not in the sandbox
        await super()._async_launch_kernel(kernel_cmd, **kw)

    async def _async_signal_kernel(self, signum: int) -> None:
        """Signal the processes inside the sandbox: SIGINT to bwrap itself would end it, and the kernel with it."""
        import psutil  # a dependency of ipykernel

        process = getattr(self.provisioner, "process", None)
        if process is None:
            return await super()._async_signal_kernel(signum)
        try:
            inside = [p for p in psutil.Process(process.pid).children(recursive=True) if p.name() != "bwrap"]
        except psutil.Error:
            inside = []
        for p in inside:
            with contextlib.suppress(psutil.Error):
                p.send_signal(signum)

    async def _async_cleanup_resources(self, restart: bool = False) -> None:
        await super()._async_cleanup_resources(restart=restart)
        if not restart:
            shutil.rmtree(self.folder, ignore_errors=True)
        else:  # a fresh kernel gets a fresh, empty HOME
            shutil.rmtree(self.folder / "home", ignore_errors=True)
            (self.folder / "home").mkdir()
            if os.geteuid() == 0:
                os.chown(self.folder / "home", sandbox_uid(), sandbox_uid())


class SandboxedExecute(Execute):
    """nbgrader's Execute with the kernel in the sandbox, test cells run by the judge, and a cell time limit
    that SIGINT cannot dodge.

    A graded test cell never reaches the kernel: `coursegrader.judge` runs its source (the release's, as
    nbgrader's OverwriteCells restored it) in this process, with the names that the release's solution cells
    define reaching the kernel through data only; the judge's verdict becomes the cell's outputs, which
    nbgrader's SaveAutoGrades scores.

    After a cell's time limit the kernel is interrupted (SIGINT); a kernel that does not answer within
    GRACE_SECONDS is killed (SIGKILL, its sandbox with it) and a fresh one started: the cell fails, the cells
    after it run in the new kernel (without the notebook's earlier definitions), the cells before keep theirs.
    """

    def __init__(self, **kwargs) -> None:
        if SandboxKernelManager.settings is not None:
            kwargs["kernel_manager_class"] = SandboxKernelManager
        super().__init__(**kwargs)
        self._killed: asyncio.Event | None = None
        self._names: list[str] = []

    def preprocess(self, nb, resources=None, km=None):
        self._names = self._solution_names(resources or {})
        return super().preprocess(nb, resources, km)

    def _solution_names(self, resources: dict) -> list[str]:
        """The names that the release's solution cells define (from the source notebook, never the submission)."""
        info = resources.get("nbgrader", {})
        course = self.config.CourseDirectory
        source = (Path(course.get("root", os.getcwd())) / course.get("source_directory", "source")
                  / str(info.get("assignment", "")) / f"{info.get('notebook', '')}.ipynb")
        if not source.is_file():
            return []
        from . import judge

        cells = nbformat.read(source, as_version=4).cells
        return judge.defined_names([c.source for c in cells if c.cell_type == "code"
                                    and c.get("metadata", {}).get("nbgrader", {}).get("solution")])

    async def async_execute_cell(self, cell, cell_index, execution_count=None, store_history=True):
        meta = cell.get("metadata", {}).get("nbgrader", {})
        if cell.cell_type != "code" or not meta.get("grade") or meta.get("solution"):
            return await super().async_execute_cell(cell, cell_index, execution_count, store_history)
        from . import judge

        loop = asyncio.get_running_loop()

        def send(expression: str, timeout: float) -> dict:
            return asyncio.run_coroutine_threadsafe(self._request(expression, timeout), loop).result()

        outputs = await asyncio.to_thread(judge.run_test, cell.source, self._names, send, float(self.timeout or 60))
        cell.outputs = [nbformat.from_dict(o) for o in outputs]
        return cell

    execute_cell = run_sync(async_execute_cell)  # nbclient binds its own coroutine at class creation

    async def _request(self, expression: str, timeout: float) -> dict:
        """Evaluate one request expression in the kernel (a user expression: the reply is data on the shell)."""
        from . import remote

        msg_id = self.kc.execute("", silent=True, store_history=False, user_expressions={"r": expression},
                                 allow_stdin=False)
        loop = asyncio.get_running_loop()
        end = loop.time() + timeout
        while True:
            try:
                msg = await self.kc.get_shell_msg(timeout=max(end - loop.time(), 0.01))
            except Exception:
                reply = await self._async_handle_timeout(int(timeout))  # interrupt; kill if it does not answer
                said = ((reply or {}).get("content") or {}).get("evalue")
                raise TimeoutError(said or f"the test cell ran past its time limit ({self.timeout} s) in the "
                                   "notebook's code, and was interrupted") from None
            if msg.get("parent_header", {}).get("msg_id") == msg_id:
                break
        content = msg.get("content", {})
        result = content.get("user_expressions", {}).get("r", {}) if content.get("status") == "ok" else content
        if result.get("status") != "ok":
            return {"ok": False, "ename": str(result.get("ename", "KernelError")), "rng": "",
                    "evalue": str(result.get("evalue", "the kernel could not run the request"))}
        data = result.get("data", {}).get("application/json", {})
        text = data.get("reply") if isinstance(data, dict) else None
        if not isinstance(text, str) or len(text) > 4 * remote.MAX_BYTES:
            raise remote.ProtocolError("the kernel's reply is not the judge's data")
        return json.loads(text)

    async def _async_poll_output_msg(self, parent_msg_id, cell, cell_index):
        self._killed = killed = asyncio.Event()
        poll = asyncio.ensure_future(super()._async_poll_output_msg(parent_msg_id, cell, cell_index))
        stop = asyncio.ensure_future(killed.wait())
        await asyncio.wait({poll, stop}, return_when=asyncio.FIRST_COMPLETED)
        stop.cancel()
        if killed.is_set():  # the kernel was killed: its outputs will never end
            poll.cancel()
            return None
        return poll.result()

    async def _async_handle_timeout(self, timeout, cell=None):
        reply = await super()._async_handle_timeout(timeout, cell)  # interrupts (SIGINT)
        if await self._answers(GRACE_SECONDS):
            return reply
        self.log.error("The kernel ignored the interrupt: killed, and a fresh one started.")
        if self._killed is not None:
            self._killed.set()  # the cell's outputs are complete: its kernel is gone
        await self.km.restart_kernel(now=True)  # SIGKILL; the sandbox's PID namespace goes with it
        self.kc.stop_channels()
        self.kc = self.km.client()  # the new kernel's sockets
        self.kc.start_channels()
        await self.kc.wait_for_ready(timeout=120)
        message = (f"the cell ran past its time limit ({timeout} s) and ignored the interrupt: its kernel was "
                   "killed and a fresh one started, so the cells after it run without this notebook's earlier "
                   "definitions.")
        return {"content": {"status": "error", "ename": "CellTimeoutError", "evalue": message,
                            "traceback": [f"CellTimeoutError: {message}"]}}

    async def _answers(self, seconds: float) -> bool:
        """Whether the kernel answers a kernel_info request within `seconds` (it does once the cell stopped)."""
        msg_id = self.kc.kernel_info()
        loop = asyncio.get_running_loop()
        end = loop.time() + seconds
        while (left := end - loop.time()) > 0:
            try:
                msg = await self.kc.get_shell_msg(timeout=left)
            except Exception:
                return False
            if msg.get("parent_header", {}).get("msg_id") == msg_id:
                return True
        return False
