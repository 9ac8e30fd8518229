"""The judge: graded test cells run here, in the trusted grading process, never in the student's kernel.

A test cell's source (the release's, hidden tests included: nbgrader restored it from the gradebook) runs in a
fresh namespace of this process, where every name that the assignment's solution cells define is a `Remote`:
calling it, reading its attributes or iterating it sends a request to the student's kernel and rebuilds the
reply from data (`coursegrader.remote`). The assertions run here, on tensors this process built itself, so
nothing the notebook does to its own interpreter (hooks, patched builtins or torch, fake modules, tensor
subclasses, printed lines) can turn a failed test into a pass.

Faithfulness: each request carries this process's torch RNG state and grad mode, and the kernel's RNG state
comes back with the reply (one random stream, as if the test ran in the kernel); generator and random.Random
arguments get their new states, and gradients (`backward`) their values. Nothing else is written back: the
kernel gets copies of the arguments, and a call that changes a tensor, list or dict argument in place fails the
test (the course's functions leave their inputs alone), so no test data and no module of this process changes.

What the feedback may show: a test cell's output is what it printed and the message of its failed test, until
the notebook's code has seen a hidden test's input. From the first line of a hidden test on, printed text is
dropped and a failure reads "a hidden test failed" (or, for a visible test, a note), since any value the
notebook's code returns, prints or raises may carry those inputs; the full message stays in the error's
traceback, which the instructor sees in autograded/ and the feedback never shows.
"""

from __future__ import annotations

import ast
import base64
import contextlib
import io
import json
import random
import time
from collections.abc import Callable
from typing import Any

import torch

from . import remote

ACTIVE = False  # True while a test cell runs in the judge (checks.passed then says that every test ran)

Send = Callable[[str, float], dict]  # (expression, timeout) -> the reply's JSON data, or raises
CELL = "<test cell>"
HIDDEN_MARK = "__coursegrader_hidden__"  # called by the cell's code as its hidden tests start (see _Marked)
SHOWN_BYTES = 64 * 2**10  # the most printed text and message a test cell keeps (the rest: a marker)


class RemoteError(Exception):
    """An exception raised by the student's code in the kernel, reported by type name and message."""


class PastDeadline(BaseException):
    """The test cell ran past its time limit (a BaseException: a test's ``except Exception`` cannot swallow it)."""


# Exceptions of the student's code that a test may expect (``except ValueError``) come back as their own type.
EXCEPTIONS = {e.__name__: e for e in (ValueError, TypeError, IndexError, KeyError, RuntimeError, NameError,
                                      AttributeError, NotImplementedError, ZeroDivisionError, StopIteration)}


def capped(text: str, limit: int = SHOWN_BYTES) -> str:
    """`text` cut to `limit` bytes of UTF-8, with a marker that says how much was cut."""
    data = text.encode("utf-8", "replace")
    if len(data) <= limit:
        return text
    return data[:limit].decode("utf-8", "ignore") + f"\n[... {len(data) - limit:,} more bytes cut by the autograder]\n"


class Session:
    """One notebook's kernel as the judge sees it: requests by `send`, under the running cell's deadline, and
    whether the notebook's code has seen a hidden test's input yet (`exposed`)."""

    def __init__(self, send: Send, names: list[str], hidden: tuple[str, str] = ("BEGIN HIDDEN TESTS",
                                                                                  "END HIDDEN TESTS")) -> None:
        self.send, self.names, self.hidden = send, names, hidden
        self.deadline = float("inf")
        self.exposed = False

    def request(self, op: str, target: dict, **fields: Any) -> Any:
        """Run one operation in the kernel; return its value as rebuilt here (raise what it raised)."""
        message = {"op": op, "target": target, "grad": torch.is_grad_enabled(),
                   "rng": base64.b64encode(torch.get_rng_state().numpy().tobytes()).decode(), **fields}
        payload = base64.b64encode(json.dumps(message).encode()).decode()
        expression = f"__import__('coursegrader.remote', fromlist=['serve']).serve({payload!r})"
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise PastDeadline("the test cell ran past its time limit")
        reply = self.send(expression, left)
        if not isinstance(reply, dict) or not isinstance(reply.get("rng"), str):
            raise remote.ProtocolError("the kernel's reply is not a reply")
        state = remote._b64(reply["rng"], [0, 10_000])
        if state:
            with contextlib.suppress(RuntimeError, ValueError):
                torch.set_rng_state(torch.frombuffer(bytearray(state), dtype=torch.uint8).clone())
        if reply.get("ok") is not True:
            ename, evalue = str(reply.get("ename", "Error"))[:100], str(reply.get("evalue", ""))[:2000]
            raise EXCEPTIONS.get(ename, RemoteError)(f"{evalue}" if ename in EXCEPTIONS else f"{ename}: {evalue}")
        return reply

    def value(self, data: Any) -> Any:
        """A reply's value: plain data, with handles wrapped as `Remote` objects; decoded within the deadline."""
        try:
            return remote.decode(data, lambda handle: Remote(self, {"handle": handle}), deadline=self.deadline)
        except TimeoutError as e:
            raise PastDeadline(str(e)) from None

    def _hidden_lines(self, source: str) -> set[int]:
        lines, inside = set(), False
        for number, line in enumerate(source.splitlines(), start=1):
            inside = inside or self.hidden[0] in line
            if inside:
                lines.add(number)
            inside = inside and self.hidden[1] not in line
        return lines

    def run(self, source: str, timeout: float, grade_id: str = "") -> list[dict]:
        """Run one test cell's source here; return the cell's outputs (nbformat dicts): what it printed and, if
        it failed, one error whose message is safe for the feedback (see the module's docstring)."""
        self.deadline = time.monotonic() + timeout
        hidden = self._hidden_lines(source)
        namespace: dict[str, Any] = {"__name__": "__main__", "__builtins__": __builtins__,
                                     HIDDEN_MARK: lambda: setattr(self, "exposed", True)}
        namespace.update({name: Remote(self, {"name": name}) for name in self.names})
        shown, dropped = io.StringIO(), io.StringIO()
        printed = _Printed(lambda text: (dropped if self.exposed else shown).write(text))

        error = None
        global ACTIVE
        ACTIVE = True
        try:
            code = compile(_Marked(hidden).visit(ast.parse(source)), CELL, "exec")
            with contextlib.redirect_stdout(printed), contextlib.redirect_stderr(io.StringIO()):
                exec(code, namespace)
        except BaseException as e:  # noqa: BLE001 - every failure of the test is the cell's verdict
            error = e
        finally:
            ACTIVE = False
        outputs = []
        text = shown.getvalue() + (f"{grade_id}: all tests passed\n" if dropped.getvalue() and error is None else "")
        if text:
            outputs.append({"output_type": "stream", "name": "stdout", "text": capped(text)})
        if error is not None:
            outputs.append(self._verdict(error, hidden))
        return outputs

    def _verdict(self, error: BaseException, hidden: set[int]) -> dict:
        ename = "CellTimeoutError" if isinstance(error, PastDeadline) else type(error).__name__
        full = str(error) or ("raised by the notebook's code" if isinstance(error, Exception) else "stopped")
        line = next((tb.tb_lineno for tb in _frames(error.__traceback__) if tb.tb_frame.f_code.co_filename == CELL),
                    0)
        if isinstance(error, PastDeadline) or not self.exposed:
            safe = full
        elif line in hidden:
            safe = "a hidden test failed"
        else:
            safe = ("a test of this cell failed; its message is not shown, because the notebook's code had seen a "
                    "hidden test's inputs by then: run the cell in your notebook to read it")
        return {"output_type": "error", "ename": ename, "evalue": capped(safe, 4096),
                "traceback": [capped(f"{ename}: {full}")]}


class _Marked(ast.NodeTransformer):
    """A call of HIDDEN_MARK before each statement on a hidden line: the judge learns when hidden tests start."""

    def __init__(self, lines: set[int]) -> None:
        self.lines = lines

    def generic_visit(self, node: ast.AST) -> ast.AST:
        super().generic_visit(node)
        for field in ("body", "orelse", "finalbody"):
            statements = getattr(node, field, None)
            if isinstance(statements, list) and statements and isinstance(statements[0], ast.stmt):
                marked = []
                for statement in statements:
                    if statement.lineno in self.lines:
                        call = ast.Call(ast.Name(HIDDEN_MARK, ast.Load()), [], [])
                        marked.append(ast.fix_missing_locations(ast.copy_location(ast.Expr(call), statement)))
                    marked.append(statement)
                setattr(node, field, marked)
        return node


class _Printed(io.TextIOBase):
    """stdout of a test cell: each write goes to `sink` (which picks the shown or the dropped part)."""

    def __init__(self, sink: Callable[[str], Any]) -> None:
        self.sink = sink

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        self.sink(text)
        return len(text)


def _frames(tb):
    while tb is not None:
        yield tb
        tb = tb.tb_next


def _encode_argument(value: Any) -> Any:
    return remote.encode(value, keep=lambda obj: _handle_of(obj))


def _handle_of(obj: Any) -> int:
    if isinstance(obj, Remote):
        if "handle" not in obj._ref:
            reply = obj._session.request("handle", obj._ref).get("value")
            if not (isinstance(reply, dict) and type(reply.get("__handle__")) is int):
                raise remote.ProtocolError("the kernel did not give a handle")
            return reply["__handle__"]
        return obj._ref["handle"]
    raise remote.ProtocolError(f"a test passed a {type(obj).__name__}, which cannot be sent to the kernel")


def _write_back(original: Any, new: Any) -> None:
    """A generator's new state, or a gradient, into the test's own object (nothing else comes back)."""
    if isinstance(original, torch.Tensor) and isinstance(new, torch.Tensor):
        if new.grad is not None and original.is_leaf and original.requires_grad and new.grad.shape == original.shape:
            original.grad = new.grad if original.grad is None else original.grad + new.grad
    elif isinstance(original, torch.Generator) and isinstance(new, torch.Generator):
        original.set_state(new.get_state())
    elif isinstance(original, random.Random) and isinstance(new, random.Random):
        original.setstate(new.getstate())


class Remote:
    """A name of the notebook (or an object it returned) that lives in the kernel; used through data only."""

    __slots__ = ("_session", "_ref")

    def __init__(self, session: Session, ref: dict) -> None:
        object.__setattr__(self, "_session", session)
        object.__setattr__(self, "_ref", ref)

    def _call(self, args: tuple, kwargs: dict, backward: bool = False) -> Any:
        reply = self._session.request("call", self._ref, args=[_encode_argument(a) for a in args],
                                      kwargs={"__dict__": [[k, _encode_argument(v)] for k, v in kwargs.items()]},
                                      backward=backward)
        changed = reply.get("changed", [])
        for key in changed if isinstance(changed, list) else []:
            if (isinstance(key, int) and 0 <= key < len(args)) or (isinstance(key, str) and key in kwargs):
                where = f"its argument {key + 1}" if isinstance(key, int) else f"its argument {key}="
                raise AssertionError(f"{self._ref.get('name', 'the function')} changed {where} in place: the course's "
                                     "functions leave their inputs as they are (work on a copy).")
        written = self._session.value(reply.get("written", {"__dict__": []}))
        if not isinstance(written, dict):
            raise remote.ProtocolError("the kernel's written arguments are not a dict")
        for key, new in written.items():
            if isinstance(key, int) and 0 <= key < len(args):
                _write_back(args[key], new)
            elif isinstance(key, str) and key in kwargs:
                _write_back(kwargs[key], new)
        return self._session.value(reply.get("value"))

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self._call(args, kwargs)

    def _library(self, name: str) -> Remote:
        """A helper of the course library (``module:name``), called where this object lives (in the kernel)."""
        return Remote(self._session, {"library": name})

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        return self._session.value(self._session.request("getattr", self._ref, name=name).get("value"))

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError("the test cannot set attributes of the notebook's objects")

    def __iter__(self):
        items = self._session.value(self._session.request("iter", self._ref).get("value"))
        if not isinstance(items, list):
            raise remote.ProtocolError("iteration did not give a list")
        return iter(items)

    def __len__(self) -> int:
        n = self._session.request("len", self._ref).get("value")
        if type(n) is not int or n < 0:
            raise remote.ProtocolError("len() did not give a count")
        return n

    def __getitem__(self, key: Any) -> Any:
        return self._session.value(self._session.request("getitem", self._ref, key=_encode_argument(key)).get("value"))

    def __repr__(self) -> str:
        return f"<the notebook's {self._ref.get('name', 'object')} (in the kernel)>"


def backward(function: Remote, *args: Any, **kwargs: Any) -> Any:
    """Call `function` in the kernel and back-propagate the sum of its output (its first, if a tuple) there.

    The gradients of the tensor arguments come back into their ``.grad``; those of the notebook's parameters
    stay in the kernel (read them as attributes, e.g. ``head.bias.grad``). Returns the call's value."""
    if not isinstance(function, Remote):
        raise TypeError("backward() takes one of the notebook's functions or objects")
    return function._call(args, kwargs, backward=True)


def defined_names(sources: list[str]) -> list[str]:
    """The top-level names that these (solution) cells bind: functions, classes, imports, simple assignments."""
    names: list[str] = []
    for source in sources:
        try:
            tree = ast.parse(source)
        except SyntaxError:
            continue
        for node in tree.body:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                names.append(node.name)
            elif isinstance(node, (ast.Import, ast.ImportFrom)):
                names += [(a.asname or a.name).split(".")[0] for a in node.names if a.name != "*"]
            elif isinstance(node, ast.Assign):
                names += [t.id for t in node.targets if isinstance(t, ast.Name)]
    return list(dict.fromkeys(names))
