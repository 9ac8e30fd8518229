"""nbgrader's Execute step for the course: test cells run by the judge, a cell time limit that SIGINT cannot dodge,
and outputs capped in bytes. Built on nbclient's public surface (`async_execute_cell`, `output`) and the
kernel manager's public methods; the kernel itself is started by `coursegrader.sandbox.SandboxProvisioner`.
"""

from __future__ import annotations

import asyncio
import json

import nbformat
from nbclient.exceptions import DeadKernelError
from nbclient.util import run_sync
from nbgrader.preprocessors import Execute

from . import judge, remote
from .preprocessors import delimiters, source_notebook
from .sandbox import GRACE_SECONDS

OUTPUT_BYTES = 2**20  # the most one output keeps (the rest: a marker)
CELL_BYTES = 4 * 2**20  # the most the outputs of one cell keep
NOTEBOOK_BYTES = 16 * 2**20  # the most the outputs of one notebook keep


def _marker(what: str) -> dict:
    return nbformat.v4.new_output("stream", name="stdout", text=f"\n[{what} cut by the autograder: too large]\n")


class SandboxedExecute(Execute):
    """nbgrader's Execute with the test cells run by the judge, a hard cell time limit and byte limits on outputs.

    A graded test cell never reaches the kernel: `coursegrader.judge` runs its source (the release's, as
    nbgrader's OverwriteCells restored it) in this process, with the names that the release's solution cells
    define reaching the kernel through data only; the judge's verdict becomes the cell's outputs.

    After a cell's time limit the kernel is interrupted (SIGINT, nbclient's ``interrupt_on_timeout``); a kernel
    still busy GRACE_SECONDS later is killed (its sandbox with it) and a fresh one started: the cell fails, the
    cells after it run in the new kernel (without the notebook's earlier definitions), the cells before keep theirs.
    """

    def preprocess(self, nb, resources=None, km=None):
        info = (resources or {}).get("nbgrader", {})
        source = source_notebook(self.config, str(info.get("assignment", "")), str(info.get("notebook", "")))
        names = []
        if source.is_file():  # the names the release's solution cells define (never the submission's)
            cells = nbformat.read(source, as_version=4).cells
            names = judge.defined_names([c.source for c in cells if c.cell_type == "code"
                                         and c.get("metadata", {}).get("nbgrader", {}).get("solution")])
        self.raise_on_iopub_timeout = False  # outputs a flooded kernel dropped cost outputs, not the notebook
        self.session = judge.Session(self._send, names, delimiters(self.config)[:2])
        self.spent, self.cell_bytes, self.cut = 0, {}, set()
        return super().preprocess(nb, resources, km)

    def preprocess_cell(self, cell, resources, index):
        """Each cell through this class's `async_execute_cell` (nbclient's `execute_cell` is bound to its own)."""
        return run_sync(self.async_execute_cell)(cell, index, store_history=True), resources

    async def async_execute_cell(self, cell, cell_index, execution_count=None, store_history=True):
        if is_test_cell(cell):
            self.loop = asyncio.get_running_loop()
            outputs = await asyncio.to_thread(self.session.run, cell.source, float(self.timeout or 60),
                                              str(cell.metadata.nbgrader.get("grade_id", "")))
            cell.outputs = [self._capped(nbformat.from_dict(o))[0] for o in outputs]
            return cell
        killed, task = asyncio.Event(), asyncio.current_task()

        async def watchdog() -> None:  # past the limit and the grace period the kernel is still busy: stop waiting
            await asyncio.sleep(float(self.timeout or 60) + GRACE_SECONDS)
            killed.set()
            task.cancel()

        dog = asyncio.ensure_future(watchdog())
        try:
            return await super().async_execute_cell(cell, cell_index, execution_count, store_history)
        except (DeadKernelError, asyncio.CancelledError):
            if not killed.is_set():
                raise
            task.uncancel()
        finally:
            dog.cancel()
        await self._fresh_kernel()  # kills the kernel, its sandbox with it
        cell.outputs = [self._timeout_error()]
        return cell

    def output(self, outs, msg, display_id, cell_index):
        """nbclient's output, with each output, each cell and the notebook capped in bytes (a marker instead)."""
        if self.spent > NOTEBOOK_BYTES or self.cell_bytes.get(cell_index, 0) > CELL_BYTES:
            if cell_index not in self.cut:
                self.cut.add(cell_index)
                outs.append(_marker("the rest of this cell's output"))
            return None
        out = super().output(outs, msg, display_id, cell_index)
        if out is not None and outs and outs[-1] is out:
            outs[-1], size = self._capped(out)
            self.cell_bytes[cell_index] = self.cell_bytes.get(cell_index, 0) + size
            return outs[-1]
        return out

    def _capped(self, out) -> tuple:
        """One output within OUTPUT_BYTES (text cut with a marker; a larger display replaced by one), and its size."""
        size = len(json.dumps(out))
        if size > OUTPUT_BYTES:
            if out.get("output_type") == "stream":
                out.text = judge.capped(out.text, OUTPUT_BYTES)
            elif out.get("output_type") == "error":
                out.evalue = judge.capped(out.evalue, 4096)
                out.traceback = [judge.capped(line, 4096) for line in out.traceback[-20:]]
            else:
                out = _marker("an output")
            size = len(json.dumps(out))
        self.spent += size
        return out, size

    def _timeout_error(self):
        message = (f"the cell ran past its time limit ({self.timeout} s) and ignored the interrupt: its kernel was "
                   "killed and a fresh one started, so the cells after it run without this notebook's earlier "
                   "definitions.")
        return nbformat.v4.new_output("error", ename="CellTimeoutError", evalue=message,
                                      traceback=[f"CellTimeoutError: {message}"])

    async def _fresh_kernel(self) -> None:
        """Kill the kernel (SIGKILL: its sandbox with it) and start a new one, with a new client."""
        await self.km.restart_kernel(now=True)
        self.kc.stop_channels()
        await self.async_start_new_kernel_client()

    def _send(self, expression: str, timeout: float) -> dict:
        """The judge's request, from its thread: evaluated in the kernel on the notebook's event loop."""
        return asyncio.run_coroutine_threadsafe(self._request(expression, timeout), self.loop).result()

    async def _request(self, expression: str, timeout: float) -> dict:
        """Evaluate one request expression in the kernel (a user expression: the reply is data on the shell)."""
        msg_id = self.kc.execute("", silent=True, store_history=False, user_expressions={"r": expression},
                                 allow_stdin=False)
        loop = asyncio.get_running_loop()
        end = loop.time() + timeout
        while True:
            try:
                msg = await self.kc.get_shell_msg(timeout=max(end - loop.time(), 0.01))
            except Exception:
                await self.km.interrupt_kernel()
                if not await self._answers(GRACE_SECONDS):
                    await self._fresh_kernel()
                    raise judge.PastDeadline(self._timeout_error().evalue) from None
                raise judge.PastDeadline(f"the test cell ran past its time limit ({self.timeout} s) in the "
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


def is_test_cell(cell) -> bool:
    """A graded cell that is not an answer: the release's tests."""
    meta = cell.get("metadata", {}).get("nbgrader", {})
    return cell.cell_type == "code" and bool(meta.get("grade")) and not meta.get("solution")

