"""Chapters show a graded piece's interface, never the library's code for it (book/_ext/course_interfaces.py),
and their own code cells never spell out an assignment's solution."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import nbformat
import pytest
from chapter_code import code_cells
from course_files import site_extension

from coursegrader.preprocessors import SOLUTION  # the feedback's own rule for a solution region
from coursegrader.stubs import GRADED

ROOT = Path(__file__).resolve().parents[1]
CHAPTERS = sorted((ROOT / "book").glob("*.md"))
INCLUDE = re.compile(r"```\{literalinclude\} \.\./src/bertlab/([\w/]+\.py)\n((?::\w+:.*\n)*)```")
INTERFACE = re.compile(r"```\{interface\} ([\w.]+)\n```")
ASSIGNED = re.compile(r"^(return\b|[\w\[\]\"', .]+=(?!=)|\"\w+\"\s*:)")  # what a line's expression is assigned to

PLANTED = '''
import functools


@functools.cache
def graded(
    x: int,
    y: int = 2,
) -> int:
    """What graded does."""
    secret = x * y  # the solution line
    return secret


class Head:
    """A head."""

    size = 3

    def __init__(self, n):
        self.n = n  # the solution line

    def forward(self, x):
        """Scores."""
        return x * self.n  # the solution line
'''


def course_interfaces():
    return site_extension("course_interfaces")


def graded_targets() -> set[str]:
    """What the assignments grade, as bertlab files ("masking.py") or file:object ("heads.py:BertPooler")."""
    found = set()
    for module, _, name in (target.partition(":") for targets in GRADED.values() for target in targets):
        found.add(f"{module.split('.')[-1]}.py" + (f":{name}" if name else ""))
    return found


def shown_code(chapter: str) -> list[str]:
    """The library code a chapter includes, as "file.py" (the whole file) or "file.py:Object"."""
    shown = []
    for path, options in INCLUDE.findall(chapter):
        name = Path(path).name
        pyobject = re.search(r":pyobject: ([\w.]+)", options)
        shown.append(f"{name}:{pyobject[1].split('.')[0]}" if pyobject else name)
    return shown


def graded_code_shown(chapter: str) -> list[str]:
    graded = graded_targets()
    return [item for item in shown_code(chapter) if item in graded or item.split(":")[0] in graded]


def squeezed(line: str) -> str:
    """A line of code without its comment and its spaces."""
    return re.sub(r"\s+", "", line.split("#")[0])


def operations(expression: str) -> int:
    """How many calls, operators and subscripts an expression has (0 when it is no expression on its own)."""
    try:
        tree = ast.parse(expression.strip().rstrip(","), mode="eval")
    except SyntaxError:
        return 0
    kinds = (ast.Call, ast.BinOp, ast.UnaryOp, ast.BoolOp, ast.Compare, ast.Subscript)
    return sum(isinstance(node, kinds) for node in ast.walk(tree))


def solution_expressions(source: str) -> set[str]:
    """The expressions of an answer cell's solution lines, without what they are assigned to, returned as or
    stored under: `layer = 4 * (H * H + H)` and `"layer": 4 * (H * H + H),` are the same solution. Only
    expressions of three operations or more count: `torch.softmax(scores, dim=-1)` or `len(gold)` are
    everyone's idiom, not someone's solution."""
    found = set()
    for line in (ln for block in SOLUTION.findall(source) for ln in block.splitlines()):  # markers: no operation
        expression = ASSIGNED.sub("", line.split("#")[0].strip(), count=1)
        if operations(expression) >= 3:
            found.add(squeezed(expression).rstrip(","))
    return found


def assignment_solutions() -> dict[str, set[str]]:
    """Assignment -> the solution expressions of its notebook in solutions/."""
    solutions = {}
    for notebook in sorted((ROOT / "solutions").glob("*/*.ipynb")):
        cells = nbformat.read(notebook, as_version=4).cells
        solutions[notebook.parent.name] = set().union(*(solution_expressions(c.source) for c in cells
                                                        if c.cell_type == "code"))
    return solutions


def spelled_out(chapter: str, solutions: dict[str, set[str]]) -> list[str]:
    """"assignment: expression" for each solution expression that a code cell of the chapter contains, as a whole
    (`(start+end)/2+1` is not in `(start+end)/2+10`).

    What it cannot see: the same computation under other names (`q @ k.T` for `scores @ keys.T`), an expression
    spread over several lines, or one of fewer than three operations. Those are for the reviewer of a chapter;
    the interface check above covers the library code a chapter shows."""
    lines = [squeezed(line) for cell in code_cells(chapter) for line in cell.splitlines()]
    return sorted(f"{name}: {expression}" for name, expressions in solutions.items() for expression in expressions
                  if any(re.search(rf"(?<![\w.]){re.escape(expression)}(?!\w)", line) for line in lines))


def test_an_interface_has_the_signatures_and_docstrings_but_no_body():
    interfaces = course_interfaces()
    function = interfaces.interface_text(PLANTED, "graded")
    assert function.splitlines()[:5] == ["@functools.cache", "def graded(", "    x: int,", "    y: int = 2,",
                                         ") -> int:"]
    assert '"""What graded does."""' in function and interfaces.BODY in function
    head = interfaces.interface_text(PLANTED, "Head")
    assert '"""A head."""' in head and "def __init__(self, n):" in head and '"""Scores."""' in head
    method = interfaces.interface_text(PLANTED, "Head.forward")
    assert method.startswith("def forward(self, x):")  # dedented
    for text in (function, head, method):
        assert "solution line" not in text
    with pytest.raises(ValueError, match="no function or class 'Head.backward'"):
        interfaces.interface_text(PLANTED, "Head.backward")


def test_the_check_finds_graded_code_shown_in_a_chapter():
    planted = ("```{literalinclude} ../src/bertlab/masking.py\n:pyobject: mask_tokens\n:language: python\n```\n"
               "```{literalinclude} ../src/bertlab/heads.py\n:pyobject: BertForTokenClassification.forward\n"
               ":language: python\n```\n"
               "```{literalinclude} ../src/bertlab/model.py\n:pyobject: BertEmbeddings\n:language: python\n```\n")
    assert graded_code_shown(planted) == ["masking.py:mask_tokens", "heads.py:BertForTokenClassification"]


@pytest.mark.parametrize("chapter", CHAPTERS, ids=lambda p: p.stem)
def test_no_chapter_shows_the_code_of_a_graded_piece(chapter):
    shown = graded_code_shown(chapter.read_text(encoding="utf-8"))
    assert not shown, (f"{chapter.name} includes the library's code for graded pieces {shown}: a student could "
                       "retype it. Show the interface instead: ```{interface} bertlab.<module>.<name>```")


def test_every_interface_in_the_chapters_resolves_and_hides_the_body():
    interfaces = course_interfaces()
    targets = [t for chapter in CHAPTERS for t in INTERFACE.findall(chapter.read_text(encoding="utf-8"))]
    assert len(targets) >= 10
    for target in targets:
        text = interfaces.interface_text(*interfaces.resolve(target))
        assert text.count(interfaces.BODY) >= 1, target
        assert not re.search(r"^\s*(return|raise|if|for|while|self\.\w+ =)\b", text, re.M), (target, text)


SOLUTIONS = assignment_solutions()


def test_the_assignments_have_solution_expressions_to_look_for():
    assert set(SOLUTIONS) == set(GRADED) and all(len(found) >= 3 for found in SOLUTIONS.values()), SOLUTIONS


def test_the_check_finds_a_solution_spelled_out_in_a_chapter():
    answer = ('def bert_parameter_counts(config):\n    ### BEGIN SOLUTION\n    H, I = config.hidden_size, 4\n'
              '    counts = {\n        "layer": 4 * (H * H + H) + 2 * H + (H * I + I),  # attention + feed-forward\n'
              '    }\n    return counts\n    ### END SOLUTION\n')
    solutions = {"attention": solution_expressions(answer)}
    chapter = ("```{code-cell} ipython3\nlayer = 4 * (H*H + H) + 2*H + (H*I + I)\nprint(layer)\n```\n"
               "```{code-cell} ipython3\nreturn counts\n```\n")
    assert spelled_out(chapter, solutions) == ["attention: 4*(H*H+H)+2*H+(H*I+I)"]
    assert spelled_out(chapter.replace("2*H", "3*H"), solutions) == []
    assert spelled_out(chapter.replace("(H*I + I)", "(H*I + I2)"), solutions) == []  # a longer name: not the same


@pytest.mark.parametrize("chapter", CHAPTERS, ids=lambda p: p.stem)
def test_no_chapter_spells_out_a_solution(chapter):
    found = spelled_out(chapter.read_text(encoding="utf-8"), SOLUTIONS)
    assert not found, (f"{chapter.name} has code cells that contain these assignments' solutions: {found}. Explain "
                       "the rule, or ask the assignment for a variant that the chapter does not show.")
