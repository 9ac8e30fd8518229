"""The student's kernel in an OS-level sandbox (bubblewrap), started by a jupyter_client kernel provisioner.

nbgrader, the gradebook and every file of the course stay in the trusted grading process; only the kernel
that runs the submission's code is started inside ``bwrap`` (by `SandboxProvisioner`, registered under the
``jupyter_client.kernel_provisioners`` entry point as ``coursegrader-sandbox``), where it has:

* an unprivileged uid: for real when the grader runs as root (``setpriv``), one uid per grading worker
  (`sandbox_uid`), so that no two sandboxes of a batch share a process limit or can signal each other;
  else uid 65534 of a user namespace;
* read-only views of the Python installation, the virtual environment and a non-editable copy of the
  course library (one per assignment, its graded pieces stubbed out) and of the judge's kernel end
  (`coursegrader.remote`); the checkout's ``src/`` is not visible;
* one writable folder of its own (HOME and working directory, empty at start), a private /tmp;
* no network, its own PID, IPC and UTS namespaces: every process it starts dies with it;
* limits on address space, processes (of its uid, when grading as root), file size and core dumps
  (``prlimit``), and, where the machine lets the grader write cgroups, a CPU share of its own (`cpu_group`);
* no file descriptor of the grader: stdin, stdout and stderr are /dev/null, nothing else is inherited.

The kernel talks to nbgrader over Unix sockets (ZeroMQ ``ipc``) in its own folder: nothing else is shared.
"""

from __future__ import annotations

import contextlib
import functools
import os
import secrets
import shutil
import signal
import subprocess
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from jupyter_client.provisioning import LocalProvisioner

UID = 65534  # nobody: the uid inside a user namespace (grading without root)
UID_BASE = 1_000_000  # grading as root: worker process p runs its sandboxes as uid UID_BASE + p, a uid no one has
HOME = "/home/student"
LIBRARY = "/opt/course-library"
GRACE_SECONDS = 5  # after a cell's time limit: SIGINT, then this long for the kernel to answer, then SIGKILL
PROVISIONER = "coursegrader-sandbox"  # its name under the jupyter_client.kernel_provisioners entry point
CGROUP_ROOTS = (Path("/sys/fs/cgroup"), Path("/sys/fs/cgroup/cpu"), Path("/sys/fs/cgroup/cpu,cpuacct"))
GROUP_PREFIX = "coursegrader-sandbox-"  # the name of each sandbox's cgroup, under one of CGROUP_ROOTS


@dataclass
class Settings:
    """Where the sandboxes of one batch live and what they may use."""

    root: str  # a folder of the grader's, traversable (not readable) by the sandbox's uid
    library: str  # the copy of the course library, bound read-only at LIBRARY
    memory_mb: int = 6144
    processes: int = 256
    env: dict | None = None
    cpus: float | None = None  # the CPU share of each sandbox (a cgroup of its own), None: not enforced

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
            env: dict | None = None, cpus: float | None = None) -> Settings:
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
    return Settings(root=str(root), library=str(library), memory_mb=memory_mb, processes=processes, env=env,
                    cpus=cpus)


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
    if folder is not None:  # /home read-only around the student's HOME: without root the tmpfs is the student's own
        args += ["--remount-ro", "/home", "--chdir", HOME]
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


# ---- a CPU share per sandbox ------------------------------------------------------------------------------


def cpu_group(cpus: float) -> Path | None:
    """A new cgroup whose processes together get at most `cpus` CPUs (cgroup v2 ``cpu.max``, or v1
    ``cpu.cfs_quota_us``); None where this process cannot create one (no root, no delegation, no controller).

    Each is a child of the hierarchy's root, a sibling of the machine's other groups: under a parent of their own
    the sandboxes together would weigh as much as one process of the machine, and starve on a busy one."""
    period = 100_000
    for root in CGROUP_ROOTS:
        v2 = (root / "cgroup.controllers").is_file()
        if not (root / ("cgroup.subtree_control" if v2 else "cpu.cfs_quota_us")).is_file():
            continue
        group = root / f"{GROUP_PREFIX}{os.getpid()}-{secrets.token_hex(4)}"
        try:
            if v2:
                with contextlib.suppress(OSError):
                    (root / "cgroup.subtree_control").write_text("+cpu")
            group.mkdir()
            if v2:
                (group / "cpu.max").write_text(f"{int(cpus * period)} {period}")
            else:
                (group / "cpu.cfs_period_us").write_text(str(period))
                (group / "cpu.cfs_quota_us").write_text(str(int(cpus * period)))
            return group
        except OSError:
            with contextlib.suppress(OSError):
                group.rmdir()
    return None


@functools.lru_cache(maxsize=1)
def cpu_shares_work() -> bool:
    """Whether this machine gives each sandbox a CPU share of its own (see `cpu_group`)."""
    group = cpu_group(1.0)
    if group is not None:
        group.rmdir()
    return group is not None


# ---- the kernel provisioner ---------------------------------------------------------------------------------


class SandboxProvisioner(LocalProvisioner):
    """jupyter_client's local provisioner with the kernel inside bwrap, talking over Unix sockets in a folder of
    its own, with no file descriptor of the grader, and signals sent to the processes inside the sandbox."""

    settings: Settings | None = None  # set by the grading worker before nbgrader runs

    async def pre_launch(self, **kwargs: Any) -> dict[str, Any]:
        """A new private folder (its connection file, sockets and HOME), then the kernel command inside bwrap."""
        settings = self.settings
        if settings is None:
            raise RuntimeError("SandboxProvisioner.settings is not set.")
        self.folder = Path(settings.root) / f"kernel-{secrets.token_hex(6)}"
        (self.folder / "home").mkdir(parents=True)
        owner = sandbox_uid() if os.geteuid() == 0 else None
        km = self.parent
        km.transport, km.ip, km.connection_file = "ipc", str(self.folder / "kernel"), str(self.folder / "kernel.json")
        kwargs = await super().pre_launch(**kwargs)
        os.chmod(km.connection_file, 0o644)  # the folder is private to the sandbox's uid; the kernel reads it
        for path in (self.folder, self.folder / "home", Path(km.connection_file)):
            if owner is not None:
                os.chown(path, owner, owner)
        os.chmod(self.folder, 0o700)
        cmd = list(kwargs["cmd"])
        if cmd and Path(cmd[0]).name.startswith("python"):
            cmd[0] = str(Path(sys.prefix) / "bin" / "python")
        cmd = [*_bwrap(settings, self.folder), *cmd]
        self.group = cpu_group(settings.cpus) if settings.cpus else None
        if self.group is not None:  # the shell joins the cgroup, then becomes bwrap: every process starts in it
            cmd = ["/bin/sh", "-c", 'echo $$ > "$1/cgroup.procs" && shift && exec "$@"', "sh", str(self.group), *cmd]
        kwargs.pop("cwd", None)  # bwrap --chdir sets the kernel's own; the notebook's folder is not in the sandbox
        return {**kwargs, "cmd": cmd}

    async def launch_kernel(self, cmd: list[str], **kwargs: Any):
        """The kernel gets /dev/null for stdin, stdout and stderr (and Popen closes every other descriptor)."""
        for stream in ("stdin", "stdout", "stderr"):
            kwargs[stream] = subprocess.DEVNULL
        return await super().launch_kernel(cmd, **kwargs)

    async def send_signal(self, signum: int) -> None:
        """SIGINT and the like go to the processes inside the sandbox (to bwrap itself it would end the sandbox);
        SIGKILL goes to bwrap's group, which ends the sandbox's PID namespace and everything in it."""
        import psutil  # a dependency of ipykernel

        if self.process is None or signum == signal.SIGKILL:
            return await super().send_signal(signum)
        try:
            inside = [p for p in psutil.Process(self.process.pid).children(recursive=True) if p.name() != "bwrap"]
        except psutil.Error:
            inside = []
        for p in inside:
            with contextlib.suppress(psutil.Error):
                p.send_signal(signum)

    async def cleanup(self, restart: bool = False) -> None:
        """The kernel's folder goes (a restarted kernel gets a new one, with an empty HOME), and its cgroup."""
        await super().cleanup(restart=restart)
        shutil.rmtree(getattr(self, "folder", "/nonexistent"), ignore_errors=True)
        if getattr(self, "group", None) is not None:
            with contextlib.suppress(OSError):
                self.group.rmdir()
