"""The course library as the sandbox of one assignment sees it: its graded pieces replaced by stubs that raise.

Each assignment asks students to write pieces that the course library also implements. In the non-editable
copy of the library that a sandboxed kernel imports (`coursegrader.sandbox.prepare`), the body of every
function and method of those pieces becomes ``raise RuntimeError(...)`` (an AST rewrite of the copied
module), so a solution that calls, subclasses, aliases or re-executes the library's version earns nothing for
it, whatever name or file it goes through: the code is not there. Only the pieces of the assignment being
graded are stubbed (mlm_head's notebooks legitimately import bertlab.masking.mask_tokens).

`GRADED` names the pieces by module and qualified name (``module:Qualified.name``); a module alone stands for
every function and class defined in it.
"""

from __future__ import annotations

import ast
from pathlib import Path

_MLM_HEADS = ("BertPredictionHeadTransform", "BertLMPredictionHead", "BertOnlyMLMHead", "BertPreTrainingHeads",
              "predict_tokens", "BertForMaskedLM", "BertForPreTraining", "mlm_loss")

GRADED: dict[str, tuple[str, ...]] = {
    "masking": ("bertlab.masking",),
    "mlm_head": (*(f"bertlab.heads:{name}" for name in _MLM_HEADS), "bertlab.fill_mask",
                 "bertlab.pretrain:pretraining_loss"),
    "nsp_sop": ("bertlab.pretraining_data", "bertlab.model:BertPooler", "bertlab.heads:BertPreTrainingHeads",
                "bertlab.heads:BertForPreTraining", "bertlab.heads:BertForSequenceClassification"),
    "finetuning": ("bertlab.heads:BertForSequenceClassification", "bertlab.heads:BertForTokenClassification",
                   "bertlab.heads:BertForQuestionAnswering", "bertlab.finetune_tasks:task_loss",
                   "bertlab.evaluate:best_span", "bertlab.evaluate:evaluate_span_extraction"),
    # the attention module (its head split and merge), and building a model to count its parameters
    "attention": ("bertlab.model:BertSelfAttention", "bertlab.model:BertModel", "bertlab.model:BertEncoder",
                  "bertlab.model:BertLayer", "bertlab.heads:BertForPreTraining", "bertlab.heads:BertPreTrainingHeads"),
    "glue_score": ("bertlab.glue",),
}


def _message(where: str, assignment: str) -> str:
    return (f"{where} is part of what assignment {assignment!r} asks you to write: in the autograder the course "
            "library's version of it is a stub that only raises this error. Write it yourself.")


class _Stubber(ast.NodeTransformer):
    """Replace the bodies of the named functions and classes (every method) of one module."""

    def __init__(self, module: str, names: set[str] | None, assignment: str) -> None:
        self.module, self.names, self.assignment = module, names, assignment
        self.path: list[str] = []
        self.done: set[str] = set()

    def _wanted(self, qualname: str) -> bool:
        if self.names is None:
            return True
        return any(qualname == n or qualname.startswith(n + ".") for n in self.names)

    def visit_ClassDef(self, node: ast.ClassDef) -> ast.ClassDef:
        self.path.append(node.name)
        self.generic_visit(node)
        self.path.pop()
        return node

    def visit_FunctionDef(self, node: ast.FunctionDef) -> ast.FunctionDef:
        qualname = ".".join([*self.path, node.name])
        if not self._wanted(qualname):
            return node
        self.done.update(n for n in (self.names or ()) if qualname == n or qualname.startswith(n + "."))
        docstring = node.body[:1] if ast.get_docstring(node) is not None else []
        message = _message(f"{self.module}.{qualname}", self.assignment)
        node.body = [*docstring, ast.Raise(exc=ast.Call(func=ast.Name("RuntimeError", ast.Load()),
                                                        args=[ast.Constant(message)], keywords=[]), cause=None)]
        return node  # nested functions go with the body

    visit_AsyncFunctionDef = visit_FunctionDef


def stub_library(library: Path, assignment: str) -> list[str]:
    """Rewrite the copy of bertlab under `library` (the folder holding ``bertlab/``); return what was stubbed."""
    by_module: dict[str, set[str] | None] = {}
    for target in GRADED.get(assignment, ()):
        module, _, name = target.partition(":")
        if not name:
            by_module[module] = None
        elif by_module.get(module, set()) is not None:
            by_module.setdefault(module, set()).add(name)
    stubbed = []
    for module, names in by_module.items():
        path = library.joinpath(*module.split(".")).with_suffix(".py")
        if not path.is_file():
            raise ValueError(f"GRADED[{assignment!r}] names {module}, which the course library does not have.")
        stubber = _Stubber(module, names, assignment)
        tree = stubber.visit(ast.parse(path.read_text(), filename=str(path)))
        missing = sorted((names or set()) - stubber.done)
        if missing:
            raise ValueError(f"GRADED[{assignment!r}]: {module} has no {', '.join(missing)}.")
        path.write_text(ast.unparse(ast.fix_missing_locations(tree)) + "\n")
        stubbed.append(module if names is None else ", ".join(f"{module}:{n}" for n in sorted(names)))
    return stubbed
