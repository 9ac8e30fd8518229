"""The ``interface`` directive: a library function's or class's signature and docstring, without its body.

The chapters show bertlab's code with ``literalinclude``, but not the code of the pieces that the graded
assignments ask students to write (`coursegrader.stubs.GRADED`): a student could retype it. For those
the chapter explains the rule, and shows what the function takes and returns::

    ```{interface} bertlab.masking.mask_tokens
    ```

renders ``def mask_tokens(...):``, its docstring and ``...``. A class shows its docstring and each method's
signature and docstring. The text comes from the library's source, so it cannot drift from the code.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import textwrap
from typing import Any

from docutils import nodes
from sphinx.util.docutils import SphinxDirective

BODY = "...  # written in the assignment"


def find_definition(tree: ast.Module, qualname: str) -> ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef:
    """The function or class named ``qualname`` (``name`` or ``Class.method``) at the top of a module."""
    scope: Any = tree
    for part in qualname.split("."):
        found = [n for n in scope.body if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef)
                 and n.name == part]
        if not found:
            raise ValueError(f"no function or class {qualname!r} in the module (looked for {part!r}).")
        scope = found[0]
    return scope


def _docstring_end(node: ast.AST) -> int | None:
    """The last line of the node's docstring, if it has one."""
    first = node.body[0]
    if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) and isinstance(first.value.value, str):
        return first.end_lineno
    return None


def _signature_and_docstring(lines: list[str], node: ast.AST, with_body: bool) -> list[str]:
    start = min([node.lineno, *(d.lineno for d in getattr(node, "decorator_list", []))])
    end = _docstring_end(node) or node.body[0].lineno - 1
    shown = lines[start - 1:end]
    if with_body:
        indent = " " * node.body[0].col_offset
        shown.append(indent + BODY)
    return shown


def interface_text(source: str, qualname: str) -> str:
    """The interface of ``qualname`` in the module source: signature(s) and docstring(s), no executable line."""
    lines = source.splitlines()
    node = find_definition(ast.parse(source), qualname)
    if not isinstance(node, ast.ClassDef):
        return textwrap.dedent("\n".join(_signature_and_docstring(lines, node, with_body=True)))
    shown = _signature_and_docstring(lines, node, with_body=False)
    for member in node.body:
        if isinstance(member, ast.FunctionDef | ast.AsyncFunctionDef):
            shown += ["", *_signature_and_docstring(lines, member, with_body=True)]
    return textwrap.dedent("\n".join(shown))


def resolve(target: str) -> tuple[str, str]:
    """(module source, qualified name) of a dotted path such as ``bertlab.heads.BertPooler.forward``."""
    parts = target.split(".")
    for cut in range(len(parts) - 1, 0, -1):
        try:
            module = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        return inspect.getsource(module), ".".join(parts[cut:])
    raise ValueError(f"no importable module in {target!r}; write it as package.module.Name")


class InterfaceDirective(SphinxDirective):
    required_arguments = 1

    def run(self) -> list[nodes.Node]:
        try:
            text = interface_text(*resolve(self.arguments[0]))
        except ValueError as e:
            raise self.error(f"interface {self.arguments[0]}: {e}") from None
        block = nodes.literal_block(text, text, language="python")
        block["classes"].append("course-interface")
        return [block]


def setup(app: Any) -> dict[str, Any]:
    app.add_directive("interface", InterfaceDirective)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
