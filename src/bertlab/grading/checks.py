"""Helpers for the autograder tests in the course's notebooks (solutions/, exercises/).

Every test cell loads a fresh copy of this module (``sys.modules.pop`` then ``importlib.import_module``), so
nothing a student's cell rebinds here changes what the tests do. On import, and again when a test cell ends
(`passed`), the module checks that no notebook code has been put in place of what the tests rely on: Python's
builtins, torch's functions and classes, bertlab's modules, and IPython's cell machinery (AST and input
transformers, exception handlers, tracing). `passed` prints the cell's completion line; under the autograder
(``BERTLAB_GRADING_KEY`` set) the line is signed, and `bertlab.grading.preprocessors.VerifyTestsRan` gives a
test cell its points only when its signed line is there.

`own_work` is how a test makes sure that the graded piece is the student's own code: while the student's
function runs, every call into bertlab's implementation of that piece is recorded, whatever name the student
reached it by (an alias, a subclass, a function saved before a rebinding), because calls are matched by the
code they run (file and qualified name), not by the name they were called through.
"""

from __future__ import annotations

import builtins
import contextlib
import functools
import os
import sys
import sysconfig
import threading
import types
import warnings
from collections.abc import Iterator
from pathlib import Path

import torch

from .signing import KEY_VARIABLE, MARK, signature

LIBRARY_DIR = Path(__file__).resolve().parents[1]  # src/bertlab, found from this file, not from a module attribute
# Where genuine code lives: the standard library, installed packages, bertlab. Code compiled anywhere else (a
# notebook cell, exec of a string) is the notebook's own.
_TRUSTED = tuple(
    os.path.realpath(p) + os.sep
    for p in {*sysconfig.get_paths().values(), sys.prefix, sys.base_prefix, sys.exec_prefix, str(LIBRARY_DIR)}
    if p
)

# The code that each graded piece must not call: a bertlab file, "file.py" (all of it) or "file.py:Qualified.name",
# or a module of another package by its dotted name ("sklearn.metrics._classification", all of it).
FORBIDDEN = {
    "masking": ("masking.py",),
    "mlm_head": (
        "heads.py:BertPredictionHeadTransform", "heads.py:BertLMPredictionHead", "heads.py:BertOnlyMLMHead",
        "heads.py:BertPreTrainingHeads", "heads.py:predict_tokens", "heads.py:BertForMaskedLM",
        "heads.py:BertForPreTraining", "fill_mask.py",
    ),
    "mlm_loss": ("heads.py:mlm_loss", "heads.py:predict_tokens", "heads.py:BertForMaskedLM",
                 "heads.py:BertForPreTraining", "pretrain.py:pretraining_loss"),
    "pairs": ("pretraining_data.py",),
    "pair_head": ("model.py:BertPooler", "heads.py:BertPreTrainingHeads", "heads.py:BertForPreTraining",
                  "heads.py:BertForSequenceClassification"),
    "sequence_head": ("heads.py:BertForSequenceClassification", "finetune_tasks.py:task_loss"),
    "token_head": ("heads.py:BertForTokenClassification", "finetune_tasks.py:task_loss"),
    "span_head": ("heads.py:BertForQuestionAnswering", "finetune_tasks.py:task_loss"),
    "best_span": ("evaluate.py:best_span", "evaluate.py:evaluate_span_extraction"),
    # attention: PyTorch's multi-head attention (bertlab's module takes hidden states, not q, k and v, and
    # returns no weights); the parameter count: building a bertlab model and counting it
    "attention": ("torch.nn.modules.activation:MultiheadAttention",
                  "torch.nn.functional:multi_head_attention_forward"),
    "parameter_counts": ("model.py:BertModel", "model.py:BertEncoder", "model.py:BertLayer", "heads.py",
                         "checkpoint.py:PreTrainedBert"),
    # GLUE's metrics and score: bertlab.glue, and the scikit-learn and SciPy functions that compute them
    "glue_metrics": ("glue.py", "sklearn.metrics._classification", "scipy.stats._stats_py",
                     "scipy.stats._mstats_basic"),
    "glue_score": ("glue.py",),
}


def _module_file(module: str) -> str:
    """The source file of a module of another package, found without importing the module itself."""
    import importlib.util

    spec = importlib.util.find_spec(module)
    if spec is None or not spec.origin:
        raise ValueError(f"FORBIDDEN names {module!r}, which is not installed here.")
    return spec.origin


class OwnWork:
    """The calls into forbidden bertlab code recorded while a student's function ran."""

    def __init__(self, piece: str, targets: tuple[str, ...]):
        self.piece = piece
        self.rules: list[tuple[str, str]] = []
        for target in targets:
            file, _, qualname = target.partition(":")
            self.rules.append((str(LIBRARY_DIR / file) if file.endswith(".py") else _module_file(file), qualname))
        self.files = {file for file, _ in self.rules}
        self.calls: list[str] = []
        self.outside = False  # a call into another package than bertlab

    def matches(self, code) -> bool:
        if code.co_filename not in self.files or code.co_name == "<module>":
            return False
        name = getattr(code, "co_qualname", code.co_name)
        return any(
            code.co_filename == file and (not q or name == q or name.startswith(q + "."))
            for file, q in self.rules
        )

    def profile(self, frame, event, arg):
        caller = frame.f_back
        if event == "call" and self.matches(frame.f_code) and not (caller and self.matches(caller.f_code)):
            name = getattr(frame.f_code, "co_qualname", frame.f_code.co_name)
            where = f"{Path(frame.f_code.co_filename).stem}.{name}"
            if where not in self.calls:
                self.calls.append(where)
                self.outside |= not frame.f_code.co_filename.startswith(str(LIBRARY_DIR) + os.sep)

    def whose(self) -> str:
        """Whose code was called: "bertlab's", or "a library's" when it was another package's."""
        return "a library's" if self.outside else "bertlab's"


@contextlib.contextmanager
def own_work(piece: str, *parts: str) -> Iterator[OwnWork]:
    """Run a student's code for `piece` and fail if it used bertlab's own implementation of it.

    ``parts`` are keys of `FORBIDDEN` (the graded pieces whose bertlab code is off limits). Python warnings
    raised meanwhile are silenced: nbgrader gives no points to a test cell that writes to stderr, and a
    warning is no reason to lose a test.
    """
    unknown = [p for p in parts if p not in FORBIDDEN]
    if unknown or not parts:
        raise ValueError(f"own_work needs keys of FORBIDDEN {sorted(FORBIDDEN)}, got {list(parts)}.")
    watch = OwnWork(piece, tuple(target for p in parts for target in FORBIDDEN[p]))
    previous, previous_threads = sys.getprofile(), threading.getprofile()
    hook = watch.profile  # one bound method object, to recognise it afterwards
    sys.setprofile(hook)
    threading.setprofile(hook)
    error = None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield watch
    except BaseException as e:  # report a forbidden call first: it may be why the code failed
        error = e
    finally:
        tampered = sys.getprofile() is not hook
        sys.setprofile(previous)
        threading.setprofile(previous_threads)
    if watch.calls:
        raise AssertionError(
            f"{piece} calls {watch.whose()} own implementation ({', '.join(watch.calls)}). This piece is the "
            "exercise: write it yourself. A solution that calls a library's version earns no points for it."
        ) from error
    if tampered:
        raise AssertionError(
            f"{piece} switched off the autograder's check of which code it calls (sys.setprofile); "
            "the test cannot vouch for it, so it earns no points."
        ) from error
    if error is not None:
        raise error


def check_close(actual, expected, what: str, atol: float = 1e-5, rtol: float = 1e-4) -> None:
    """assert_close with a message that names what was compared."""
    if not isinstance(actual, torch.Tensor):
        raise AssertionError(f"{what}: expected a torch.Tensor, got {type(actual).__name__}.")
    if tuple(actual.shape) != tuple(expected.shape):
        raise AssertionError(f"{what}: expected shape {tuple(expected.shape)}, got {tuple(actual.shape)}.")
    try:
        torch.testing.assert_close(actual.detach().double(), expected.detach().double(), atol=atol, rtol=rtol)
    except AssertionError as e:
        raise AssertionError(f"{what} differs from the expected values.\n{e}") from None


def check_rate(observed: float, expected: float, tolerance: float, what: str) -> None:
    """A statistical check: `observed` must lie within `tolerance` of `expected`."""
    if abs(observed - expected) > tolerance:
        raise AssertionError(f"{what} is {observed:.3f}; expected {expected:.3f} (within {tolerance:.3f}).")


def check_number(actual, expected: float, what: str, tolerance: float = 1e-9) -> None:
    """`actual` must be a real number (int or float, not a tensor or a bool) within `tolerance` of `expected`."""
    import math

    if isinstance(actual, bool) or not isinstance(actual, int | float):
        raise AssertionError(f"{what}: expected a number (int or float), got {type(actual).__name__}.")
    if not math.isfinite(actual) or abs(actual - expected) > tolerance:
        raise AssertionError(f"{what} is {actual!r}; expected {expected!r}.")


def check_tensor(value, what: str, shape: tuple[int, ...], integer: bool | None = None) -> None:
    """`value` must be a tensor of this shape (and integer or floating point, when `integer` is given)."""
    if not isinstance(value, torch.Tensor):
        raise AssertionError(f"{what} must be a torch.Tensor, got {type(value).__name__}.")
    if tuple(value.shape) != tuple(shape):
        raise AssertionError(f"{what} must have shape {tuple(shape)}, got {tuple(value.shape)}.")
    if integer is True and (value.dtype.is_floating_point or value.dtype == torch.bool):
        raise AssertionError(f"{what} must hold integer ids (torch.long), got dtype {value.dtype}.")
    if integer is False and not value.dtype.is_floating_point:
        raise AssertionError(f"{what} must be floating point, got dtype {value.dtype}.")


# ---- the tests' environment -----------------------------------------------------------------------------------


def _namedtuple_new(value: types.FunctionType) -> bool:
    """The ``__new__`` that collections.namedtuple (and typing.NamedTuple) compiles for each tuple class."""
    return (str(value.__module__).startswith("namedtuple_") and value.__globals__.get("_tuple_new") is tuple.__new__
            and set(value.__globals__) <= {"_tuple_new", "__builtins__", "__name__"})


def _notebook_code(value, depth: int = 0) -> bool:
    """True if `value` is (or wraps) a function or class compiled outside the standard library and packages."""
    if depth > 3:
        return False
    if isinstance(value, functools.partial):
        return _notebook_code(value.func, depth + 1)
    if isinstance(value, (types.MethodType, staticmethod, classmethod)):
        return _notebook_code(value.__func__, depth + 1)
    if isinstance(value, property):
        return any(_notebook_code(f, depth + 1) for f in (value.fget, value.fset) if f is not None)
    code = getattr(value, "__code__", None)
    if isinstance(value, types.FunctionType) and isinstance(code, types.CodeType):
        filename = code.co_filename
        if filename.startswith("<frozen"):
            return False
        if filename == "<string>" and _namedtuple_new(value):
            return False
        if filename == "<string>" and value.__module__ != "__main__":  # made by exec in a module (dataclasses)
            file = getattr(sys.modules.get(value.__module__), "__file__", None)
            return file is None or not os.path.realpath(file).startswith(_TRUSTED)
        return not os.path.realpath(filename).startswith(_TRUSTED)
    if isinstance(value, type):
        if value.__module__ == "__main__":
            return True  # defined in the notebook (the kernel's __main__ may have a file of its own)
        module = sys.modules.get(value.__module__)
        file = getattr(module, "__file__", None)
        if file is None:
            return module is None  # built into the interpreter or a C module, unless its module is unknown
        return not os.path.realpath(file).startswith(_TRUSTED)
    if type(value).__module__ == "__main__":
        return True  # an instance of a class the notebook defined
    return False


def _scan(namespace: dict, where: str, found: list[str], limit: int = 5) -> None:
    for name, value in list(namespace.items()):
        if len(found) >= limit:
            return
        try:
            if _notebook_code(value):
                found.append(f"{where}.{name}")
        except Exception:  # an object that breaks on inspection is not what a test relies on
            continue


def tampering() -> list[str]:
    """What the notebook has put in place of genuine code the tests rely on (empty when nothing)."""
    found: list[str] = []
    _scan(vars(builtins), "builtins", found)
    for module in (torch, torch.nn.functional, torch.testing, torch.nn, torch.optim):
        _scan(vars(module), module.__name__, found)
    for cls in (torch.Tensor, torch._C.TensorBase, torch.nn.Module, torch.nn.Linear, torch.nn.LayerNorm,
                torch.nn.Embedding, torch.optim.AdamW, torch.Generator):
        _scan(dict(vars(cls)), f"{cls.__module__}.{cls.__qualname__}", found)
    for name, module in list(sys.modules.items()):
        if (name == "bertlab" or name.startswith("bertlab.")) and isinstance(module, types.ModuleType):
            if name == __name__:
                continue
            _scan(vars(module), name, found)
            for attr, value in list(vars(module).items()):
                if isinstance(value, type) and value.__module__.startswith("bertlab"):
                    _scan(dict(vars(value)), f"{name}.{attr}", found)
    if sys.gettrace() is not None:
        found.append("sys.settrace (a trace function can skip test lines)")
    shell = _ipython()
    if shell is not None:
        if getattr(shell, "custom_exceptions", ()):
            found.append("IPython's set_custom_exc (it hides errors)")
        for attr in ("ast_transformers", "input_transformers_post", "input_transformers_cleanup"):
            if any(_notebook_code(t) for t in getattr(shell, attr, [])):
                found.append(f"IPython's {attr} (they rewrite cells)")
        if getattr(shell, "ast_transformers", []):
            found.append("IPython's ast_transformers (they rewrite cells)")
        for event, callbacks in getattr(getattr(shell, "events", None), "callbacks", {}).items():
            if any(_notebook_code(c) for c in callbacks):
                found.append(f"IPython's {event} event callbacks")
    return found


def _ipython():
    module = sys.modules.get("IPython")
    getter = getattr(module, "get_ipython", None)
    return getter() if callable(getter) else None


def verify_environment() -> None:
    """Fail the test if notebook code replaced what the tests rely on; a rebinding must not buy points."""
    found = tampering()
    if found:
        raise AssertionError(
            "this notebook replaced code that the tests rely on: " + ", ".join(found) + ". Tests cannot vouch for "
            "your work under such changes, so this test earns no points. Remove the rebinding (restart the kernel "
            "and run the notebook from the top)."
        )


_GENUINE = {}  # this module's own functions as imported; passed() makes sure none was swapped


def passed(grade_id: str, shown: bool = True) -> None:
    """The last line of every test cell: check the environment again and print the cell's completion line.

    ``shown=False`` marks a cell whose tests are all hidden: in the student's copy nothing was checked, and the
    line says so instead of claiming a pass."""
    frame = sys._getframe(1)
    this = sys.modules.get(__name__)
    if frame.f_globals.get("checks") is not this or this is None or vars(this).get("_GENUINE") is not _GENUINE:
        raise AssertionError("the name `checks` in this test cell is not the test helper module: no points.")
    swapped = [name for name, value in _GENUINE.items() if vars(this).get(name) is not value]
    if swapped:
        raise AssertionError(f"the test helpers {swapped} were replaced while the test ran: no points.")
    verify_environment()
    key = os.environ.get(KEY_VARIABLE)
    if key:
        print(f"{MARK} {grade_id} {signature(grade_id, key)}")
    else:
        print(f"{grade_id}: the tests shown in this cell passed (the grader may run more)" if shown else
              f"{grade_id}: nothing checked yet: this cell's tests are hidden and run when the notebook is graded")


_GENUINE.update({name: value for name, value in list(globals().items()) if isinstance(value, types.FunctionType)})
verify_environment()
