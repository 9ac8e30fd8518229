"""The autograder's parts, without running nbgrader: the test helpers (own_work, tampering, the signed
completion line), the preprocessors, collecting submissions and the sample submissions."""

from __future__ import annotations

import importlib
import sys

import nbformat
import pytest
import torch

from bertlab.grading import course as grading
from bertlab.grading import preprocessors, samples
from bertlab.grading.signing import KEY_VARIABLE, MARK, signature


@pytest.fixture
def checks():
    sys.modules.pop("bertlab.grading.checks", None)
    return importlib.import_module("bertlab.grading.checks")


def call_passed(module, grade_id: str, **kwargs) -> None:
    """Call passed() as a test cell does: with `checks` bound to the module in the caller's globals."""
    globals()["checks"] = module
    module.passed(grade_id, **kwargs)


def test_own_work_catches_the_library_by_any_name(checks):
    import bertlab.masking as library

    alias = library.mask_tokens
    ids = torch.tensor([[2, 10, 11, 12, 3]])
    with pytest.raises(AssertionError, match="calls bertlab's own implementation"):
        with checks.own_work("mask_tokens", "masking"):
            alias(ids, vocab_size=30, mask_token_id=4, special_token_ids=[0, 1, 2, 3, 4])
    with checks.own_work("mask_tokens", "masking") as watch:  # own code: torch only
        torch.where(ids > 5, ids, torch.full_like(ids, -100))
    assert watch.calls == []


def test_own_work_allows_the_encoder_but_not_the_heads(checks):
    import bertlab

    config = bertlab.BertConfig.from_preset("tiny", vocab_size=40)
    with checks.own_work("MLMHead", "mlm_head"):
        bertlab.BertModel(config, add_pooling_layer=False)(torch.tensor([[2, 7, 3]]))
    with pytest.raises(AssertionError, match="BertLMPredictionHead"):
        with checks.own_work("MLMHead", "mlm_head"):
            from bertlab.heads import BertLMPredictionHead

            class Mine(BertLMPredictionHead):  # a subclass is the library's code all the same
                pass

            Mine(config)
    with pytest.raises(ValueError, match="keys of FORBIDDEN"):
        with checks.own_work("x", "no such piece"):
            pass


def test_rebinding_torch_or_bertlab_is_detected_and_passed_refuses(checks, monkeypatch, capsys):
    import bertlab

    assert checks.tampering() == []
    monkeypatch.setattr(torch, "equal", lambda *a: True)
    monkeypatch.setattr(bertlab.BertConfig, "from_preset", classmethod(lambda cls, *a, **k: None))
    found = checks.tampering()
    assert "torch.equal" in found and any("from_preset" in f for f in found)
    with pytest.raises(AssertionError, match="replaced code that the tests rely on"):
        call_passed(checks, "test_x")
    assert MARK not in capsys.readouterr().out


def test_passed_prints_a_signed_line_under_the_autograder(checks, monkeypatch, capsys):
    call_passed(checks, "test_x")
    assert capsys.readouterr().out.strip() == "test_x: the tests shown in this cell passed (the grader may run more)"
    call_passed(checks, "test_x", shown=False)  # a cell whose tests are all hidden claims no pass
    assert "passed" not in capsys.readouterr().out
    monkeypatch.setenv(KEY_VARIABLE, "k" * 32)
    call_passed(checks, "test_x")
    assert capsys.readouterr().out.strip() == f"{MARK} test_x {signature('test_x', 'k' * 32)}"
    assert signature("test_x", "a") != signature("test_x", "b") != signature("test_y", "b")


def test_passed_refuses_a_swapped_helper(checks):
    checks.check_close = lambda *a, **k: None
    with pytest.raises(AssertionError, match="replaced while the test ran"):
        call_passed(checks, "test_x")
    with pytest.raises(AssertionError, match="is not the test helper module"):
        globals()["checks"] = None
        checks.passed("test_x")


def grade_cell(source: str, outputs: list) -> nbformat.NotebookNode:
    cell = nbformat.v4.new_code_cell(source)
    cell.metadata["nbgrader"] = {"grade": True, "solution": False, "locked": True, "points": 1, "grade_id": "t1",
                                 "schema_version": 3}
    cell.outputs = outputs
    return cell


def test_verify_tests_ran_keeps_signed_cells_and_fails_the_others(monkeypatch):
    monkeypatch.setenv(KEY_VARIABLE, "secret")
    line = f"{MARK} t1 {signature('t1', 'secret')}\n"
    nb = nbformat.v4.new_notebook()
    nb.cells = [grade_cell("x", [nbformat.v4.new_output("stream", name="stdout", text="ok\n" + line)]),
                grade_cell("y", [nbformat.v4.new_output("stream", name="stdout", text=f"{MARK} t1 forged\n")]),
                grade_cell("z", [])]
    nb, _ = preprocessors.VerifyTestsRan().preprocess(nb, {})
    first, forged, silent = nb.cells
    assert [o.output_type for o in first.outputs] == ["stream"] and first.outputs[0].text == "ok\n"
    assert forged.outputs[-1].ename == "TestIncomplete" and silent.outputs[-1].ename == "TestIncomplete"


def test_a_warning_costs_no_points_when_the_tests_ran_to_their_end(monkeypatch):
    from nbgrader.utils import determine_grade

    monkeypatch.setenv(KEY_VARIABLE, "secret")
    line = f"{MARK} t1 {signature('t1', 'secret')}\n"
    warning = "UserWarning: the given NumPy array is not writable\n"
    nb = nbformat.v4.new_notebook()
    nb.cells = [grade_cell("x", [nbformat.v4.new_output("stream", name="stderr", text=warning),
                                 nbformat.v4.new_output("stream", name="stdout", text=line)]),
                grade_cell("y", [nbformat.v4.new_output("stream", name="stderr", text=warning)])]
    assert determine_grade(nb.cells[0])[0] == 0  # what nbgrader would do with the warning left on stderr
    nb, _ = preprocessors.VerifyTestsRan().preprocess(nb, {})
    passed, stopped = nb.cells
    assert determine_grade(passed)[0] == 1 and "no points lost" in passed.outputs[0].text
    assert warning in passed.outputs[0].text
    assert determine_grade(stopped)[0] == 0  # no completion line: the stderr stays, and the cell fails


def test_hide_hidden_tests_removes_the_region_and_the_traceback():
    source = "visible()\n### BEGIN HIDDEN TESTS\nsecret_check(42)\n### END HIDDEN TESTS\nchecks.passed('t1')"
    error = nbformat.v4.new_output("error", ename="AssertionError", evalue="labels are wrong",
                                   traceback=["Traceback", "----> 3 secret_check(42)", "AssertionError: labels"])
    nb = nbformat.v4.new_notebook()
    nb.cells = [grade_cell(source, [error])]
    nb, _ = preprocessors.HideHiddenTests().preprocess(nb, {})
    cell = nb.cells[0]
    assert "secret_check" not in cell.source and "visible()" in cell.source and "checks.passed" in cell.source
    assert cell.outputs[0].traceback == ["AssertionError: labels are wrong"]


def test_collect_files_submissions_by_notebook_name(tmp_path):
    course = grading.copy_course(grading.find_course(grading.__file__), tmp_path / "course")
    inbox = tmp_path / "inbox"
    (inbox / "alice" / "nsp_sop").mkdir(parents=True)
    (inbox / "bob").mkdir(parents=True)
    nbformat.write(nbformat.v4.new_notebook(), inbox / "alice" / "nsp_sop" / "nsp_sop.ipynb")
    nbformat.write(nbformat.v4.new_notebook(), inbox / "bob" / "masking.ipynb")
    (inbox / "bob" / "notes.ipynb").write_text("{}")  # not an assignment: left alone
    assert grading.collect(course, inbox) == [("alice", "nsp_sop"), ("bob", "masking")]
    assert (course / "submitted/bob/masking/masking.ipynb").is_file()
    assert "UTC" in (course / "submitted/alice/nsp_sop/timestamp.txt").read_text()
    assert grading.submissions(course) == [("alice", "nsp_sop"), ("bob", "masking")]
    (inbox / "bad name!").mkdir()
    nbformat.write(nbformat.v4.new_notebook(), inbox / "bad name!" / "masking.ipynb")
    notes = []
    assert grading.collect(course, inbox, log=notes.append) == [("alice", "nsp_sop"), ("bob", "masking")]
    assert any("not a usable student id" in n for n in notes) and any("notes.ipynb" in n for n in notes)
    with pytest.raises(ValueError, match="unknown assignments"):
        grading.autograde(course, ["no_such_assignment"])


def test_collect_takes_misnamed_copies_with_a_warning(tmp_path):
    course = grading.copy_course(grading.find_course(grading.__file__), tmp_path / "course")
    inbox = tmp_path / "inbox"
    for student, name in [("carol", "masking (1).ipynb"), ("dave", "Masking.ipynb"), ("erin", "masking.ipynb"),
                          ("erin", "masking (2).ipynb")]:
        (inbox / student).mkdir(parents=True, exist_ok=True)
        nbformat.write(nbformat.v4.new_notebook(metadata={"who": name}), inbox / student / name)
    notes = []
    done = grading.collect(course, inbox, log=notes.append)
    assert done == [("carol", "masking"), ("dave", "masking"), ("erin", "masking")]
    assert nbformat.read(course / "submitted/erin/masking/masking.ipynb", as_version=4).metadata.who == "masking.ipynb"
    assert any("collected as masking.ipynb" in n for n in notes) and any("also handed in" in n for n in notes)


def test_notebook_names_map_to_the_release():
    from bertlab.grading.integrity import notebook_for

    known = {"masking.ipynb", "mlm_head.ipynb"}
    for name in ["masking.ipynb", "Masking.ipynb", "masking (1).ipynb", "masking-copy.ipynb", "MASKING_2.ipynb"]:
        assert notebook_for(name, known) == "masking.ipynb", name
    assert notebook_for("notes.ipynb", known) is None and notebook_for("masking.py", known) is None


def test_points_and_grade_ids_come_from_the_release():
    from bertlab.grading.integrity import restore_metadata

    release = nbformat.read(grading.find_course(grading.__file__) / "exercises/nsp_sop/nsp_sop.ipynb", as_version=4)
    nb = nbformat.reads(nbformat.writes(release), as_version=4)
    tests = [c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade") and c.cell_type == "code"]
    tests[0].metadata.nbgrader["points"] = 600  # a forged maximum
    forged = nbformat.v4.new_code_cell("pass", metadata={"nbgrader": dict(tests[1].metadata.nbgrader,
                                                                          grade_id="test_bonus", points=99)})
    duplicate = nbformat.v4.new_code_cell("pass", metadata={"nbgrader": dict(tests[1].metadata.nbgrader)})
    nb.cells += [forged, duplicate]
    notes = restore_metadata(nb, release)
    assert tests[0].metadata.nbgrader == [c for c in release.cells if c.metadata.get("nbgrader", {}).get(
        "grade_id") == tests[0].metadata.nbgrader["grade_id"]][0].metadata.nbgrader
    assert "nbgrader" not in forged.metadata and "nbgrader" not in duplicate.metadata
    assert len(notes) == 3


@pytest.mark.filterwarnings("ignore:.*not in session")
def test_stored_scores_are_capped_at_their_maximum(tmp_path):
    from bertlab.grading.integrity import check_scores

    course = grading.copy_course(grading.find_course(grading.__file__), tmp_path / "course")
    url = f"sqlite:///{course / 'gradebook.db'}"
    grading.release(course, ["nsp_sop"], db_url=url)
    with grading._gradebook_api().Gradebook(url) as gb:
        gb.add_student("mallory")
        submission = gb.add_submission("nsp_sop", "mallory")
        grade = submission.notebooks[0].grades[0]
        grade.auto_score = grade.max_score * 50
        gb.db.commit()
        problems = check_scores(gb)
        assert len(problems) == 1 and "mallory" in problems[0]
        assert grade.auto_score == grade.max_score and check_scores(gb) == []
        grade.auto_score = -1.0
        gb.db.commit()
    from bertlab.grading.__main__ import main

    assert main(["--course", str(course), "--db-url", url, "check"]) == 1  # reports, does not fix
    with grading._gradebook_api().Gradebook(url) as gb:
        assert len(check_scores(gb, fix=False)) == 1


def test_feedback_redacts_quoted_secrets_and_disarms_script_links():
    cell = nbformat.v4.new_code_cell(
        "x = 1\n### BEGIN HIDDEN TESTS\nassert secret_function_of_the_tests(x) == 42\n### END HIDDEN TESTS\n",
        metadata={"nbgrader": {"grade": True, "solution": False, "grade_id": "t", "points": 1}})
    cell.outputs = [nbformat.v4.new_output("stream", name="stdout",
                                           text="ok\nassert secret_function_of_the_tests(x) == 42\n")]
    md = nbformat.v4.new_markdown_cell("[x](javascript:alert(1)) [y]( JavaScript :alert(2))")
    nb = nbformat.v4.new_notebook(cells=[cell, md])
    nb, _ = preprocessors.RedactSecrets().preprocess(nb, {})
    assert nb.cells[0].outputs[0].text == "ok\n" + preprocessors.REDACTED + "\n"
    assert "javascript:" not in nb.cells[1].source.lower().replace(" ", "")


def test_solved_sample_fills_every_answer_cell():
    root = grading.find_course(grading.__file__)
    release, solution = root / "exercises/nsp_sop/nsp_sop.ipynb", root / "solutions/nsp_sop/nsp_sop.ipynb"
    nb = samples.solved(release, solution, {"sop_pairs": "def sop_pairs(documents, rng):\n    return []\n"})
    answers = {c.metadata["nbgrader"]["grade_id"]: c.source for c in nb.cells
               if c.metadata.get("nbgrader", {}).get("solution")}
    assert "NotImplementedError" not in "".join(answers.values())
    assert answers["sop_pairs"].endswith("return []\n") and "BEGIN SOLUTION" not in answers["nsp_pairs"]


def test_library_named_tuples_are_not_taken_for_notebook_code(checks):
    import bertlab.pretraining_data  # noqa: F401  (defines SentencePair, a typing.NamedTuple)

    assert checks.tampering() == []
    namespace: dict = {}
    exec("def __new__(cls):\n    return None", namespace)  # the same name, compiled by notebook code
    assert checks._notebook_code(namespace["__new__"])


@pytest.mark.parametrize("prefix", ["/tmp/course/.venv", "/home/teacher/course/.venv"])
def test_no_sandbox_mount_hides_the_python_that_runs_the_kernel(prefix, monkeypatch, tmp_path):
    """A course cloned into /tmp or a home folder: its venv must stay visible in the sandbox, so no tmpfs may be
    mounted over a bind after it (the kernel then died before replying, and every submission scored 0)."""
    from bertlab.grading import sandbox

    monkeypatch.setattr(sandbox.sys, "prefix", prefix)
    monkeypatch.setattr(sandbox.sys, "exec_prefix", prefix)
    settings = sandbox.Settings(root=str(tmp_path), library=str(tmp_path / "library"), memory_mb=1024,
                                processes=64, env={})
    args = sandbox._bwrap(settings, None)
    binds = [(i, args[i + 2]) for i, a in enumerate(args) if a in ("--ro-bind", "--bind")]
    assert prefix in [target for _, target in binds]
    for i, target in binds:
        hidden = [args[j + 1] for j in range(i + 1, len(args) - 1) if args[j] == "--tmpfs"
                  and (target + "/").startswith(args[j + 1].rstrip("/") + "/")]
        assert not hidden, f"{target} is bound, then hidden by a tmpfs on {hidden}"
