"""No import cycles among the modules of src/: each package's modules form layers, and a module never imports
one that (directly or through others) imports it back.

Every import counts, at module level or inside a function: a function-level import that closes a loop still
ties the two modules together (changing one means reading the other), and only hides the cycle from Python.
The graph is read from the source with ``ast``, so the test needs nothing installed and sees every module,
also those that no test imports.
"""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"


def module_name(path: Path, src: Path) -> str:
    """src/bertlab/corpora/sources.py -> bertlab.corpora.sources; a package's __init__.py -> the package."""
    parts = list(path.relative_to(src).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imported_modules(path: Path, name: str, known: set[str]) -> set[str]:
    """The modules of ``known`` that the file at ``path`` (module ``name``) imports, anywhere in it.

    ``from package import thing`` is an import of the module package.thing when there is one, else of the
    package itself (thing is then a name that its __init__.py defines).
    """
    is_package = path.name == "__init__.py"
    package = name if is_package else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                origin = ".".join(base + ([node.module] if node.module else []))
            else:
                origin = node.module or ""
            targets = [f"{origin}.{alias.name}" if f"{origin}.{alias.name}" in known else origin
                       for alias in node.names]
        else:
            continue
        for target in targets:
            # import a.b.c names a.b.c; the longest known prefix is the module it loads from src/.
            while target and target not in known:
                target = target.rpartition(".")[0]
            if target and target != name:
                found.add(target)
    return found


def import_graph(src: Path) -> dict[str, set[str]]:
    """Module -> the modules of src/ that it imports."""
    files = {module_name(p, src): p for p in sorted(src.rglob("*.py"))}
    known = set(files)
    return {name: imported_modules(path, name, known) for name, path in files.items()}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan), each as a sorted list."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def a_loop(graph: dict[str, set[str]], component: list[str]) -> list[str]:
    """One import loop inside ``component``, as a path from its first module back to it (for the message)."""
    members = set(component)
    start = component[0]
    paths = {start: [start]}
    frontier = [start]
    while frontier:
        node = frontier.pop(0)
        for nxt in sorted(graph[node] & members):
            if nxt == start:
                return paths[node] + [start]
            if nxt not in paths:
                paths[nxt] = paths[node] + [nxt]
                frontier.append(nxt)
    raise AssertionError(f"{component} is not a cycle")


def test_no_import_cycles_in_src():
    graph = import_graph(SRC)
    assert "bertlab.model" in graph and "coursegrader.sandbox" in graph, "the source tree was not found"
    loops = [" -> ".join(a_loop(graph, c)) for c in cycles(graph)]
    assert not loops, "import cycles among the modules of src/ (move the shared piece below both):\n" + "\n".join(loops)


def test_the_cycle_finder_finds_cycles_and_only_cycles(tmp_path):
    # A package whose modules import each other in a loop, through a function-level and a relative import,
    # beside a chain that loops nowhere; and a submodule importing its package's __init__, which imports it.
    pkg = tmp_path / "pkg"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("from .b import thing\n")
    (pkg / "b.py").write_text("def f():\n    from pkg import c\n")
    (pkg / "c.py").write_text("import pkg.a\n")
    (pkg / "d.py").write_text("from . import e\n")
    (pkg / "e.py").write_text("import os\n")
    (pkg / "sub" / "__init__.py").write_text("from .leaf import x\n")
    (pkg / "sub" / "leaf.py").write_text("from pkg.sub import y\n")
    graph = import_graph(tmp_path)
    assert graph["pkg.d"] == {"pkg.e"} and graph["pkg.e"] == set()
    assert cycles(graph) == [["pkg.a", "pkg.b", "pkg.c"], ["pkg.sub", "pkg.sub.leaf"]]
    assert a_loop(graph, ["pkg.a", "pkg.b", "pkg.c"]) == ["pkg.a", "pkg.b", "pkg.c", "pkg.a"]
