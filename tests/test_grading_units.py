"""The autograder's parts, without running nbgrader: the judge and its data-only codec (with the kernel's end
run in this process), the library stubs of the sandbox, the preprocessors, collecting submissions and the
sample submissions."""

from __future__ import annotations

import importlib
import re
import sys

import nbformat
import pytest
import torch

from coursegrader import autograding, preprocessors, samples
from coursegrader import course as grading


@pytest.fixture
def checks():
    sys.modules.pop("bertlab.checks", None)
    return importlib.import_module("bertlab.checks")


def test_passed_says_what_ran(checks, capsys):
    checks.passed("test_x")
    assert capsys.readouterr().out.strip() == "test_x: the tests shown in this cell passed (the grader may run more)"
    checks.passed("test_x", shown=False)  # a cell whose tests are all hidden claims no pass
    assert "passed" not in capsys.readouterr().out


@pytest.fixture
def kernel(monkeypatch):
    """The kernel's end of the judge in this process: requests run on names set in __main__ (as in a notebook)."""
    import json

    import __main__
    from coursegrader import remote

    def define(**names):
        for name, value in names.items():
            monkeypatch.setattr(__main__, name, value, raising=False)

    def send(expression: str, timeout: float) -> dict:
        reply = eval(expression, {"__builtins__": __builtins__})
        assert isinstance(reply, remote.Reply)
        return json.loads(reply._repr_json_()["reply"])

    return define, send


def test_the_codec_round_trips_data_and_rejects_anything_else():
    from coursegrader import remote

    values = [None, True, 3, 2.5, "x", [1, (2, 3)], {"a": (1,), 2: [None]}, torch.arange(6).reshape(2, 3),
              torch.tensor(1.5, dtype=torch.bfloat16), torch.zeros(0, 4, dtype=torch.bool)]
    for value in values:
        back = remote.decode(remote.encode(value))
        if isinstance(value, torch.Tensor):
            assert type(back) is torch.Tensor and back.dtype == value.dtype and torch.equal(back, value)
        else:
            assert back == value and type(back) is type(value)
    good = remote.encode(torch.ones(2, 2))
    for bad in [{"__tensor__": {**good["__tensor__"], "dtype": "complex64"}},  # not in the allowlist
                {"__tensor__": {**good["__tensor__"], "shape": [3, 2]}},  # the byte count does not match
                {"__tensor__": {**good["__tensor__"], "shape": [2**20, 2**20]}},  # over the size cap
                {"__pickle__": "gASV"}, {"a": 1, "b": 2}, {"__handle__": 3}]:
        with pytest.raises(remote.ProtocolError):
            remote.decode(bad)


def test_the_judge_rebuilds_plain_tensors_and_reports_in_place_changes(kernel):
    from coursegrader import judge

    class Always(torch.Tensor):  # a tensor whose comparisons are always true, in the kernel
        def __eq__(self, other):
            return torch.ones_like(torch.Tensor(self), dtype=torch.bool)

    def corrupt(ids, generator=None):
        torch.rand(3, generator=generator)
        return ids.clone().as_subclass(Always)

    define, send = kernel
    define(corrupt=corrupt, in_place=lambda ids: ids.__setitem__(0, 99))
    source = ("import torch\nids = torch.zeros(3, dtype=torch.long)\ng = torch.Generator().manual_seed(0)\n"
              "out = corrupt(ids, generator=g)\nassert type(out) is torch.Tensor\n"
              "assert not torch.equal(g.get_state(), torch.Generator().manual_seed(0).get_state())\n"
              "assert not bool((out == torch.ones(3, dtype=torch.long)).all())\nprint('fine')")
    assert judge.Session(send, ["corrupt"]).run(source, 30) == [{"output_type": "stream", "name": "stdout",
                                                                "text": "fine\n"}]
    source = "import torch\nids = torch.zeros(3, dtype=torch.long)\nin_place(ids)"
    [error] = judge.Session(send, ["in_place"]).run(source, 30)
    assert "changed its argument 1 in place" in error["evalue"]


def test_no_in_place_change_reaches_the_judges_modules_or_the_tests_own_data(kernel):
    """Write-back once changed a table of the grading process's bertlab (the next student was graded against it)
    and a list that the test then measured with: the judge's objects stay as they were, and the call fails."""
    import bertlab.glue
    from coursegrader import judge

    define, send = kernel
    define(clear=lambda table, docs=None: (table.clear(), docs.clear() if docs is not None else None) and None)
    human = dict(bertlab.glue.HUMAN)
    source = ("import bertlab.glue\ndocs = [[1, 2], [3]]\ntry:\n    clear(bertlab.glue.HUMAN, docs=docs)\n"
              "except AssertionError as e:\n    print('refused:', e)\nprint(len(docs))")
    [out] = judge.Session(send, ["clear"]).run(source, 30)
    assert "refused:" in out["text"] and "changed its argument 1 in place" in out["text"]
    assert out["text"].endswith("2\n")  # docs as the test made it
    assert bertlab.glue.HUMAN == human


def test_decoding_is_linear_and_counts_against_the_cells_time_limit(kernel):
    """A reply built as a dict of colliding keys (all hashing alike) took 191 s to decode in the judge."""
    import time

    from coursegrader import judge, remote

    colliding = {"__dict__": [[(2**61 - 1) * k, 0] for k in range(1, 2000)]}
    with pytest.raises(remote.ProtocolError, match="dict key"):
        remote.decode(colliding)
    huge = [[0] * 1000 for _ in range(900)]  # 900,000 items: legal, and longer to decode than the time left
    with pytest.raises(TimeoutError):
        remote.decode(remote.encode(huge), deadline=time.monotonic())

    import base64

    reply = {"ok": True, "value": remote.encode(huge), "changed": [], "written": {"__dict__": []},
             "rng": base64.b64encode(torch.get_rng_state().numpy().tobytes()).decode()}

    def slow_send(expression, timeout):  # the kernel takes all but a moment of the cell's time, then this reply
        time.sleep(max(0.0, timeout - 0.05))
        return reply

    start = time.monotonic()
    [error] = judge.Session(slow_send, ["big"]).run("x = big()\nwhile True:\n    pass", 1.0)
    assert error["ename"] == "CellTimeoutError" and time.monotonic() - start < 1.5


def test_feedback_of_a_test_cell_holds_nothing_derived_from_hidden_inputs(kernel):
    """Two leaks of a second private batch: a passing test's printed return value, and the student's exception
    text, recorded in a hidden test and quoted by a later test's failure message."""
    from coursegrader import judge

    define, send = kernel
    seen = []  # what the student's code recorded

    def echo(x):
        seen.append(x)
        if x == "visible" and len(seen) > 1:
            raise ValueError(f"leaked {seen}")
        return f"echo {x}"

    define(echo=echo)
    session = judge.Session(send, ["echo"])
    first = ("print(echo('visible'))\n### BEGIN HIDDEN TESTS\nprint(echo('SECRET-INPUT'))\n"
             "assert echo('SECRET-INPUT-2') == 'no', f'got {echo(\"SECRET-3\")}'\n### END HIDDEN TESTS\n")
    outputs = session.run(first, 30, "t1")
    assert outputs[0]["text"] == "echo visible\n"
    assert outputs[1]["evalue"] == "a hidden test failed" and "SECRET" in outputs[1]["traceback"][0]
    later = "assert echo('visible') == 'echo visible', 'wrong'\nprint('passed')"
    [error] = session.run(later, 30, "t2")
    assert "SECRET" not in error["evalue"] and "SECRET" in error["traceback"][0]  # the instructor sees it all
    define(echo=lambda x: f"echo {x}")
    assert session.run("print(echo('SECRET-4'))\nprint('t3: all tests passed')", 30, "t3") == [
        {"output_type": "stream", "name": "stdout", "text": "t3: all tests passed\n"}]


def test_solution_names_come_from_definitions_imports_and_assignments():
    from coursegrader import judge

    sources = ["def f(x):\n    y = 1\n", "class A:\n    pass\n", "from bertlab.masking import mask_tokens as m",
               "import torch.nn\nK = 3", "not python ("]
    assert judge.defined_names(sources) == ["f", "A", "m", "torch", "K"]


def _stub_assignments() -> list[str]:
    from coursegrader.stubs import GRADED

    return sorted(GRADED)


@pytest.mark.parametrize("assignment", _stub_assignments())
def test_the_sandbox_library_stubs_exactly_the_graded_pieces(assignment, tmp_path):
    import shutil
    import subprocess
    from pathlib import Path

    import bertlab
    from coursegrader.stubs import GRADED, stub_library

    shutil.copytree(Path(bertlab.__file__).parent, tmp_path / "bertlab", ignore=shutil.ignore_patterns("__pycache__"))
    stub_library(tmp_path, assignment)
    script = ("import importlib, inspect, sys\nfrom coursegrader.stubs import GRADED\n"
              "for target in GRADED[sys.argv[1]]:\n"
              "    module, _, name = target.partition(':')\n"
              "    obj = importlib.import_module(module)\n"
              "    for part in name.split('.') if name else []:\n"
              "        obj = getattr(obj, part)\n"
              "    assert 'what assignment' in inspect.getsource(obj), target\n"
              "import bertlab, bertlab.masking, torch\n"
              "try:\n"
              "    bertlab.BertModel(bertlab.BertConfig.from_preset('tiny', vocab_size=30), add_pooling_layer=False)\n"
              "    print('BertModel runs')\n"
              "except RuntimeError as e:\n"
              "    print(e)\n"
              "try:\n"
              "    bertlab.masking.mask_tokens(torch.tensor([[5, 6]]), vocab_size=9, mask_token_id=4, "
              "special_token_ids=[0])\n"
              "    print('mask_tokens runs')\n"
              "except RuntimeError as e:\n"
              "    print(e)\n")
    out = subprocess.run([sys.executable, "-c", script, assignment], env={"PYTHONPATH": str(tmp_path)},
                         capture_output=True, text=True, cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-2000:]
    for piece, graded_by in (("mask_tokens", "masking"), ("BertModel", "attention")):  # an ungraded piece still runs
        stubbed = f"is part of what assignment '{graded_by}' asks you to write" in out.stdout
        assert stubbed == (assignment == graded_by) and (stubbed or f"{piece} runs" in out.stdout), out.stdout
    assert GRADED[assignment]


def grade_cell(source: str, outputs: list) -> nbformat.NotebookNode:
    cell = nbformat.v4.new_code_cell(source)
    cell.metadata["nbgrader"] = {"grade": True, "solution": False, "locked": True, "points": 1, "grade_id": "t1",
                                 "schema_version": 3}
    cell.outputs = outputs
    return cell


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


def test_feedback_withholds_the_outputs_of_cells_run_after_a_hidden_test():
    """A student's function sees the hidden tests' inputs; a later cell of theirs could print them."""
    def student_cell(text: str) -> nbformat.NotebookNode:
        return nbformat.v4.new_code_cell("print(recorded)", outputs=[
            nbformat.v4.new_output("stream", name="stdout", text=text)])

    visible_only = grade_cell("visible()\nchecks.passed('t1')", [])
    hidden = grade_cell("visible()\n### BEGIN HIDDEN TESTS\nf(20, 19, 12)\n### END HIDDEN TESTS\n", [])
    nb = nbformat.v4.new_notebook()
    nb.cells = [student_cell("mine 1"), visible_only, student_cell("mine 2"), hidden, student_cell("CALL 20-19-12"),
                nbformat.v4.new_markdown_cell("text")]
    nb, _ = preprocessors.HideHiddenTests().preprocess(nb, {})
    shown = [c.outputs[0].text for c in nb.cells if c.cell_type == "code" and c.outputs]
    assert shown == ["mine 1", "mine 2", preprocessors.WITHHELD]


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
        autograding.autograde(course, ["no_such_assignment"])


def test_collect_copies_data_never_links_hard_links_or_special_files(tmp_path):
    """Symlinks in the inbox were followed: a notebook or a student folder linking to solutions/ earned full marks,
    and a link to a host file put its first line into the feedback. A folder name ending in a newline passed the
    student-id check and broke grades.csv."""
    import os

    root = grading.find_course(grading.__file__)
    course = grading.copy_course(root, tmp_path / "course")
    inbox = tmp_path / "inbox"
    solution = course / "solutions/masking/masking.ipynb"
    for student in ("link_nb", "hard_nb", "fifo_nb", "link_dir", "honest"):
        (inbox / student).mkdir(parents=True)
    (inbox / "link_nb/masking.ipynb").symlink_to(solution)
    (inbox / "link_nb/nsp_sop.ipynb").symlink_to("/etc/hostname")
    os.link(solution, inbox / "hard_nb/masking.ipynb")
    os.mkfifo(inbox / "fifo_nb/masking.ipynb")
    (inbox / "link_dir/masking").symlink_to(course / "solutions/masking", target_is_directory=True)
    (inbox / "whole_folder").symlink_to(course / "solutions/masking", target_is_directory=True)
    (inbox / "honest\n").mkdir()
    nbformat.write(nbformat.v4.new_notebook(), inbox / "honest\n" / "masking.ipynb")
    nbformat.write(nbformat.v4.new_notebook(), inbox / "honest/masking.ipynb")
    notes = []
    assert grading.collect(course, inbox, log=notes.append) == [("honest", "masking")]
    assert sorted(p.name for p in (course / "submitted").iterdir()) == ["honest"]
    for what in ("link_nb/masking.ipynb: a link", "link_nb/nsp_sop.ipynb: a link", "hard_nb/masking.ipynb: a hard",
                 "fifo_nb/masking.ipynb: not a regular", "link_dir/masking: a link", "whole_folder: a link",
                 "'honest\\n' is not a usable student id"):
        assert any(what in note for note in notes), (what, notes)
    (course / "submitted" / "honest\n" / "masking").mkdir(parents=True)  # nbgrader's own collect does not check
    assert grading.submissions(course) == [("honest", "masking")]


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
    from coursegrader.integrity import notebook_for

    known = {"masking.ipynb", "mlm_head.ipynb"}
    for name in ["masking.ipynb", "Masking.ipynb", "masking (1).ipynb", "masking-copy.ipynb", "MASKING_2.ipynb"]:
        assert notebook_for(name, known) == "masking.ipynb", name
    assert notebook_for("notes.ipynb", known) is None and notebook_for("masking.py", known) is None


def test_points_and_grade_ids_come_from_the_release():
    from coursegrader.integrity import restore_metadata

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
    from coursegrader.integrity import check_scores

    course = grading.copy_course(grading.find_course(grading.__file__), tmp_path / "course")
    url = f"sqlite:///{course / 'gradebook.db'}"
    grading.release(course, ["nsp_sop"], db_url=url)
    with grading.gradebook(url) as gb:
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
    from coursegrader.__main__ import main

    assert main(["--course", str(course), "--db-url", url, "check"]) == 1  # reports, does not fix
    with grading.gradebook(url) as gb:
        assert len(check_scores(gb, fix=False)) == 1


def test_feedback_redacts_quoted_secrets():
    cell = nbformat.v4.new_code_cell(
        "x = 1\n### BEGIN HIDDEN TESTS\nassert secret_function_of_the_tests(x) == 42\n### END HIDDEN TESTS\n",
        metadata={"nbgrader": {"grade": True, "solution": False, "grade_id": "t", "points": 1}})
    cell.outputs = [nbformat.v4.new_output("stream", name="stdout",
                                           text="ok\nassert secret_function_of_the_tests(x) == 42\n")]
    nb = nbformat.v4.new_notebook(cells=[cell])
    nb, _ = preprocessors.RedactSecrets().preprocess(nb, {})
    assert nb.cells[0].outputs[0].text == "ok\n" + preprocessors.REDACTED + "\n"


LINKS = ["javascript:alert(77)", " JavaScript :alert(77)", "java&#x73;cript:alert(77)", "java&#115;cript:alert(77)",
         "jav&#x09;ascript:alert(77)", "vbscript:alert(77)", "data:text/html;base64,YWxlcnQoNzcp#alert(77)",
         "VBScript&colon;alert(77)"]


def test_feedback_links_run_no_code_however_they_are_spelled():
    """Links spelled with character references (java&#x73;cript:) stayed live: the feedback page's markdown is
    rendered, then sanitised with an allowlist of URL schemes (nh3), and its HTML outputs by nbconvert's
    SanitizeHTML, as nbgrader_config.py sets them for generate_feedback."""
    from html.parser import HTMLParser

    from nbconvert import HTMLExporter
    from nbconvert.preprocessors.sanitize import SanitizeHTML
    from traitlets.config.loader import PyFileConfigLoader

    config = PyFileConfigLoader(grading.CONFIG, path=str(grading.find_course(grading.__file__))).load_config()
    markdown = " ".join(f"[x{i}]({link}) <a href=\"{link}\">y{i}</a> <{link}>" for i, link in enumerate(LINKS))
    html_out = nbformat.v4.new_output("display_data", data={"text/html": markdown, "text/markdown": markdown})
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell(markdown),
                                         nbformat.v4.new_code_cell("x", outputs=[html_out])])
    exporter = HTMLExporter(config=config)
    exporter.register_preprocessor(SanitizeHTML(config=config), enabled=True)
    page, _ = exporter.from_notebook_node(nb)

    class Links(HTMLParser):  # the scheme of each link as a browser reads it (tabs and newlines dropped)
        found: list[str] = []

        def handle_starttag(self, tag, attrs):
            for name, value in attrs:
                scheme = re.match(r"([A-Za-z][A-Za-z0-9+.-]*):", re.sub(r"[\t\n\r]", "", value or "").strip("\0 "))
                if name in ("href", "src", "action", "formaction") and scheme and scheme[1].lower() not in {
                        "http", "https", "mailto"}:
                    self.found.append(f"{tag} {name}={value}")

    parser = Links()
    parser.feed(page)
    assert parser.found == [], parser.found
    assert "x0" in page and "y7" in page  # the link texts are still there


def test_solved_sample_fills_every_answer_cell():
    root = grading.find_course(grading.__file__)
    release, solution = root / "exercises/nsp_sop/nsp_sop.ipynb", root / "solutions/nsp_sop/nsp_sop.ipynb"
    nb = samples.solved(release, solution, {"sop_pairs": "def sop_pairs(documents, rng):\n    return []\n"})
    answers = {c.metadata["nbgrader"]["grade_id"]: c.source for c in nb.cells
               if c.metadata.get("nbgrader", {}).get("solution")}
    assert "NotImplementedError" not in "".join(answers.values())
    assert answers["sop_pairs"].endswith("return []\n") and "BEGIN SOLUTION" not in answers["nsp_pairs"]


@pytest.mark.parametrize("prefix", ["/tmp/course/.venv", "/home/teacher/course/.venv"])
def test_no_sandbox_mount_hides_the_python_that_runs_the_kernel(prefix, monkeypatch, tmp_path):
    """A course cloned into /tmp or a home folder: its venv must stay visible in the sandbox, so no tmpfs may be
    mounted over a bind after it (the kernel then died before replying, and every submission scored 0)."""
    from coursegrader import sandbox

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


def test_the_grader_overrides_no_private_method_of_another_package():
    """The sandbox stands on public interfaces: jupyter_client's provisioner, nbclient's async_execute_cell and
    output, nbgrader's preprocessors. A name that a class of coursegrader defines over a base class of another
    package must be public and defined here (not a private method, not a rebinding like run_sync(...))."""
    import inspect

    from coursegrader import execute, preprocessors, sandbox

    classes = [c for m in (execute, preprocessors, sandbox) for _, c in inspect.getmembers(m, inspect.isclass)
               if c.__module__ == m.__name__]
    assert {"SandboxProvisioner", "SandboxedExecute", "HideHiddenTests"} <= {c.__name__ for c in classes}
    found = []
    for cls in classes:
        import ast
        import textwrap

        body = ast.parse(textwrap.dedent(inspect.getsource(cls))).body[0].body  # what the class itself defines
        names = {n.name for n in body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))}
        names |= {t.id for n in body if isinstance(n, (ast.Assign, ast.AnnAssign))
                  for t in (n.targets if isinstance(n, ast.Assign) else [n.target]) if isinstance(t, ast.Name)}
        foreign = [base for base in cls.__mro__[1:] if not base.__module__.startswith("coursegrader")]
        for name in sorted(names):
            if name.startswith("__") or not any(name in vars(base) for base in foreign):
                continue
            function = inspect.unwrap(vars(cls)[name])
            if name.startswith("_") or getattr(function, "__module__", "") != cls.__module__:
                found.append(f"{cls.__name__}.{name}")
    assert found == [], f"overrides of another package's private or rebound names: {found}"


def test_the_sandbox_provisioner_is_registered_with_jupyter_client():
    from jupyter_client.provisioning import KernelProvisionerFactory

    from coursegrader.sandbox import PROVISIONER, SandboxProvisioner

    entry = KernelProvisionerFactory.instance()._get_provisioner(PROVISIONER)
    assert entry.load() is SandboxProvisioner


def test_a_timeout_beside_a_sandbox_over_its_share_is_graded_again(tmp_path):
    """Without cgroups: a submission with a cell past its time limit is graded again, alone, when another worker's
    processes used more than their CPU share while it was graded, and only then."""
    timed_out = tmp_path / "nb.ipynb"
    timed_out.write_text('{"outputs": [{"ename": "CellTimeoutError"}]}')
    graded = autograding.Graded(tmp_path, [], start=100.0, end=160.0, worker=0)
    watch = autograding.CpuWatch([], share=1.0)
    assert autograding._timed_out(graded) and not watch.crowded(graded)
    watch.over += [(0, 120.0), (1, 30.0), (1, 170.0)]  # itself, and the other worker before and after it
    assert not watch.crowded(graded)
    watch.over.append((1, 150.0))
    assert watch.crowded(graded)
