"""The assignments: exercises/ is what nbgrader generates from solutions/, and gives nothing away.

Also the shape the course promises for every assignment: a link to its chapter, points per part, hidden tests
in the test cells, a written question graded by hand, and every test cell ending with its completion line.
"""

from __future__ import annotations

import re
from pathlib import Path

import nbformat
import pytest

from coursegrader import course as grading
from coursegrader.samples import SOLUTION_MARKERS

ROOT = Path(__file__).resolve().parents[1]
ASSIGNMENTS = grading.assignments(ROOT)
CHAPTERS = {"masking": "masking", "mlm_head": "masking", "nsp_sop": "nsp_sop", "finetuning": "finetuning",
            "glue_score": "glue", "attention": "bert_encoder"}
HIDDEN = re.compile(r"### BEGIN HIDDEN TESTS(.*?)### END HIDDEN TESTS", re.S)


def notebook(folder: str, name: str) -> nbformat.NotebookNode:
    return nbformat.read(ROOT / folder / name / f"{name}.ipynb", as_version=4)


def nbgrader_meta(cell) -> dict:
    return cell.metadata.get("nbgrader", {})


def comparable(nb: nbformat.NotebookNode) -> dict:
    """A notebook without what may change between two runs of generate_assignment (nothing else is dropped)."""
    data = nbformat.from_dict(nb)
    data.metadata.pop("widgets", None)
    for cell in data.cells:
        cell.pop("execution_count", None)
    return data


def test_every_assignment_has_its_chapter():
    assert ASSIGNMENTS == sorted(CHAPTERS)


@pytest.mark.slow
def test_exercises_are_what_generate_assignment_makes(tmp_path):
    course = grading.copy_course(ROOT, tmp_path / "course")
    grading.release(course, db_url=f"sqlite:///{tmp_path / 'gradebook.db'}")
    made = sorted(p.relative_to(course / "exercises") for p in (course / "exercises").rglob("*") if p.is_file())
    committed = sorted(p.relative_to(ROOT / "exercises") for p in (ROOT / "exercises").rglob("*") if p.is_file())
    assert made == committed, "exercises/ holds other files than generate_assignment makes: run `make release`."
    for rel in made:
        fresh = comparable(nbformat.read(course / "exercises" / rel, as_version=4))
        assert fresh == comparable(nbformat.read(ROOT / "exercises" / rel, as_version=4)), (
            f"exercises/{rel} differs from what nbgrader generates from solutions/: run `make release`.")


@pytest.mark.parametrize("name", ASSIGNMENTS)
def test_no_solution_or_hidden_test_in_exercises(name):
    student = nbformat.writes(notebook("exercises", name))
    assert "BEGIN SOLUTION" not in student and "HIDDEN TESTS" not in student
    source = notebook("solutions", name)
    secret = []
    for cell in source.cells:
        meta = nbgrader_meta(cell)
        if meta.get("solution") and cell.cell_type == "code":
            body = cell.source.split("### BEGIN SOLUTION")[1:]  # what lies inside the solution markers
            secret += [ln.strip() for part in body for ln in part.split("### END SOLUTION")[0].splitlines()]
        elif meta.get("solution"):
            secret += [ln.strip() for ln in cell.source.splitlines()]  # the model answer of a written question
        for hidden in HIDDEN.findall(cell.source):
            secret += [ln.strip() for ln in hidden.splitlines()]
    public = "\n".join(  # the solution notebook without its secrets: lines there are no secret
        HIDDEN.sub("", re.sub(r"### BEGIN SOLUTION.*?### END SOLUTION", "", c.source, flags=re.S))
        for c in source.cells if not (nbgrader_meta(c).get("solution") and c.cell_type == "markdown"))
    # distinctive lines only (short ones, like `return x`, recur), and none that the instructions or tests show
    secret = [s for s in secret if len(s) > 30 and s not in public]
    assert len(secret) > 10
    leaked = [s for s in secret if s in student]
    assert not leaked, f"exercises/{name} shows solution or hidden-test lines: {leaked[:3]}"


@pytest.mark.parametrize("name", ASSIGNMENTS)
def test_assignment_structure(name):
    nb = notebook("solutions", name)
    intro = nb.cells[0].source
    assert f"(../../book/{CHAPTERS[name]}.md)" in intro, "the notebook links to its chapter"
    assert "no points" in intro, "the notebook says that calling bertlab's own implementation earns no points"
    tests = [c for c in nb.cells if nbgrader_meta(c).get("grade") and c.cell_type == "code"]
    manual = [c for c in nb.cells if nbgrader_meta(c).get("grade") and nbgrader_meta(c).get("solution")]
    answers = [c for c in nb.cells if nbgrader_meta(c).get("solution") and c.cell_type == "code"]
    assert len(tests) >= 4 and answers
    assert len(manual) == 1 and manual[0].cell_type == "markdown", "one written question, graded by hand"
    assert all(float(nbgrader_meta(c)["points"]) > 0 for c in tests + manual)
    assert sum("BEGIN HIDDEN TESTS" in c.source for c in tests) >= 3, "hidden tests in the test cells"
    for cell in tests:
        grade_id = nbgrader_meta(cell)["grade_id"]
        assert nbgrader_meta(cell)["locked"], f"{grade_id} must be locked"
        assert re.search(rf'checks\.passed\("{grade_id}"(, shown=False)?\)$', cell.source.rstrip()), (
            f"{grade_id} must end with checks.passed: it tells the student that the cell ran to its end")
        assert 'checks = importlib.import_module("bertlab.checks")' in cell.source
    total = sum(float(nbgrader_meta(c)["points"]) for c in tests + manual)
    table = [int(p) for p in re.findall(r"\| (\d+) \|[ \t]*$", intro, re.M)]  # the last column: points
    assert table[-1] == sum(float(nbgrader_meta(c)["points"]) for c in manual)
    assert total == sum(table), "the points table adds up"
    for cell in answers:
        assert SOLUTION_MARKERS.search(cell.source), "every answer cell has solution markers"


@pytest.mark.parametrize("name", ASSIGNMENTS)
def test_student_notebooks_link_to_the_published_chapters(name):
    """A student's copy travels (nbgrader exchange, a learning platform): its chapter links are absolute, at the
    address set once in _config.yml, and name a page the site builds."""
    from coursegrader.preprocessors import published_base

    base = published_base(ROOT)
    text = "\n".join(c.source for c in notebook("exercises", name).cells if c.cell_type == "markdown")
    assert "../book/" not in text, f"exercises/{name} still links to a chapter by a relative path"
    pages = re.findall(re.escape(base) + r"book/([\w-]+)\.html", text)
    assert CHAPTERS[name] in pages, f"exercises/{name} does not link to its chapter at {base}"
    assert all((ROOT / "book" / f"{page}.md").is_file() for page in pages)


def test_chapter_links_are_rewritten_with_their_anchor_and_only_them():
    from coursegrader.preprocessors import published_links

    text = "[ch](../../book/masking.md#whole-word) [x](https://example.org/a.md) [y](../book/nsp_sop.md)"
    assert published_links(text, "https://c.example/") == (
        "[ch](https://c.example/book/masking.html#whole-word) [x](https://example.org/a.md) "
        "[y](https://c.example/book/nsp_sop.html)")


def test_a_course_without_a_published_address_is_told_where_to_set_it(tmp_path):
    from coursegrader.preprocessors import published_base

    (tmp_path / "_config.yml").write_text("title: x\n")
    with pytest.raises(ValueError, match="html.baseurl"):
        published_base(tmp_path)


VISIBLE_CHECK = re.compile(r"^\s*(assert\b|checks\.(?!passed\b)\w+\()|^\s*with checks\.", re.M)


@pytest.mark.parametrize("name", ASSIGNMENTS)
def test_a_cell_claims_a_pass_only_when_it_shows_tests(name):
    """In the student's copy a test cell whose tests are all hidden checks nothing, so its last line must say so
    (`shown=False`) instead of printing that the tests passed on a blank notebook."""
    for cell in notebook("exercises", name).cells:
        if not (nbgrader_meta(cell).get("grade") and cell.cell_type == "code"):
            continue
        body = cell.source.rsplit("checks.passed(", 1)[0]
        shows_tests = bool(VISIBLE_CHECK.search(body))
        claims_pass = "shown=False" not in cell.source.rsplit("checks.passed(", 1)[1]
        assert shows_tests == claims_pass, (
            f"exercises/{name}, {nbgrader_meta(cell)['grade_id']}: "
            + ("it shows no test but its last line claims a pass: add shown=False" if claims_pass
               else "it shows tests: drop shown=False"))


@pytest.mark.parametrize("grade_id", ["test_nsp_pairs", "test_sop_pairs"])
def test_a_correct_pair_sampler_fails_the_rate_check_by_chance_below_one_in_a_million(grade_id):
    """The hidden rate check draws a fair coin per pair: with n pairs and tolerance t, a correct solution fails with
    probability P(|Binomial(n, 1/2) / n - 1/2| > t); a sampler at rate 0.3 must still fail (nearly) always."""
    from scipy.stats import binom

    cell = next(c for c in notebook("solutions", "nsp_sop").cells if nbgrader_meta(c).get("grade_id") == grade_id)
    hidden = HIDDEN.findall(cell.source)[0]
    namespace: dict = {}
    exec(cell.source.split("docs = toy_documents()")[0].split("checks = importlib")[1].split("\n", 1)[1], namespace)
    documents = re.search(r"docs = toy_documents\(num_documents=(\d+), seed=(\d+)\)", hidden)
    tolerance = float(re.search(r"check_rate\([^\n]*, 0\.5, ([\d.]+),", hidden)[1])
    n = sum(len(d) - 1 for d in namespace["toy_documents"](int(documents[1]), int(documents[2])))

    def passes(rate: float) -> float:
        return sum(binom.pmf(k, n, rate) for k in range(n + 1) if abs(k / n - 0.5) <= tolerance)

    assert 1 - passes(0.5) < 1e-6, f"{grade_id}: {n} pairs fail a correct solution with p = {1 - passes(0.5):.1e}"
    assert passes(0.3) < 1e-6, f"{grade_id}: a sampler at rate 0.3 would pass"


def run_as_a_student(nb: nbformat.NotebookNode, folder: Path) -> list[tuple[int, str]]:
    """Execute `nb` top to bottom in a plain Jupyter kernel, as a student does (the test cells run in that kernel,
    not in the grader's judge); the (cell index, error name) of every cell that raised."""
    from nbclient import NotebookClient

    NotebookClient(nb, timeout=600, kernel_name="python3", allow_errors=True,
                   resources={"metadata": {"path": str(folder)}}).execute()
    return [(i, o.get("ename")) for i, c in enumerate(nb.cells) if c.cell_type == "code"
            for o in c.get("outputs", []) if o.get("output_type") == "error"]


@pytest.mark.slow
@pytest.mark.parametrize("name", ASSIGNMENTS)
def test_a_solved_notebook_runs_in_the_students_own_kernel(name):
    """A test cell that rebinds a name (say `config`) breaks the demonstration cells after it, in the student's
    kernel only: under the grader the test cells run in the judge. So run the student's copy, solved, as they do."""
    from coursegrader.samples import solved

    nb = solved(ROOT / "exercises" / name / f"{name}.ipynb", ROOT / "solutions" / name / f"{name}.ipynb")
    failed = run_as_a_student(nb, ROOT / "exercises" / name)
    assert not failed, f"{name}: cells that raised in the student's kernel: {failed}"
    tests = [c for c in nb.cells if nbgrader_meta(c).get("grade") and c.cell_type == "code"]
    said = ["".join(o.get("text", "") for o in c.outputs) for c in tests]
    assert all(": the tests shown in this cell passed" in s or ": nothing checked yet" in s for s in said), said


def test_running_as_a_student_catches_a_test_cell_that_rebinds_a_name():
    """The check above can fail: a visible test cell that rebinds the name of the solution's function breaks the
    next cell that uses it."""
    from coursegrader.samples import solved

    name = "glue_score"
    nb = solved(ROOT / "exercises" / name / f"{name}.ipynb", ROOT / "solutions" / name / f"{name}.ipynb")
    first_test = next(i for i, c in enumerate(nb.cells) if nbgrader_meta(c).get("grade") and c.cell_type == "code")
    function = next(c for c in nb.cells[:first_test] if nbgrader_meta(c).get("solution") and c.cell_type == "code")
    defined = re.search(r"^def (\w+)", function.source, re.M)[1]
    nb.cells[first_test].source += f"\n{defined} = None  # a test that leaves its own binding behind\n"
    nb.cells.insert(first_test + 1, nbformat.v4.new_code_cell(f"{defined}([1], [1])"))
    assert (first_test + 1, "TypeError") in run_as_a_student(nb, ROOT / "exercises" / name)
