"""The autograder, end to end with real nbgrader: one batch of submissions graded in parallel
(`coursegrader.course.autograde`), then the gradebook, the autograded notebooks and the feedback checked.

The batch holds the solutions and the blank student versions of every assignment, one plausible wrong answer
per test that targets it, and damaged or hostile notebooks (an endless loop, a kernel crash, an import error,
deleted / edited / converted test cells, invalid JSON, an empty notebook, a flood of output, rebound test
helpers, swallowed errors, writes to the gradebook), and attacks on the tests themselves (forged completion
lines, IPython hooks, a fake test-helper module, patched torch, tensor subclasses, the library recompiled).
It runs once per module (a few minutes on 2 cores).
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import nbformat
import pytest

from coursegrader import autograding, samples, sandbox
from coursegrader import course as grading

# The kernels run in the sandbox where bwrap can run (tests/test_grading_sandbox.py attacks it); elsewhere these
# fairness tests still run, with the submissions trusted.
SANDBOX = sandbox.unavailable() is None

ROOT = Path(__file__).resolve().parents[1]
ASSIGNMENTS = ["masking", "mlm_head", "nsp_sop", "finetuning", "glue_score", "attention"]
CELL_TIMEOUT = 30  # seconds per cell: the endless loop costs this much

pytestmark = pytest.mark.slow

# ---- plausible wrong answers: (assignment, {grade_id: source}, the tests that must fail) --------------------
GLUE_COUNTS = '''
def confusion_counts(gold, predicted):
    if len(gold) != len(predicted) or len(gold) == 0:
        raise ValueError("gold and predicted must be non-empty and equally long.")
    pairs = list(zip(gold, predicted))
    return (sum(g == 1 and p == 1 for g, p in pairs), sum(g != 1 and p == 1 for g, p in pairs),
            sum(g == 1 and p != 1 for g, p in pairs), sum(g != 1 and p != 1 for g, p in pairs))

def accuracy(gold, predicted):
    tp, fp, fn, tn = confusion_counts(gold, predicted)
    return (tp + tn) / (tp + fp + fn + tn)

def f1(gold, predicted):
    tp, fp, fn, _ = confusion_counts(gold, predicted)
    return 2 * tp / (2 * tp + fp + fn) if tp else 0.0
'''
WRONG = {
    "masks_specials": ("masking", {"mask_tokens": '''
def mask_tokens(input_ids, *, vocab_size, mask_token_id, special_token_ids, mlm_probability=0.15, generator=None):
    chosen = torch.rand(input_ids.shape, generator=generator) < mlm_probability  # special tokens too
    return replace_chosen(input_ids, chosen, vocab_size=vocab_size, mask_token_id=mask_token_id,
                          special_token_ids=special_token_ids, generator=generator)
'''}, {"test_mask_tokens_specials"}),
    "always_mask": ("masking", {"replace_chosen": '''
def replace_chosen(input_ids, chosen, *, vocab_size, mask_token_id, special_token_ids, generator=None):
    labels = torch.where(chosen, input_ids, torch.full_like(input_ids, -100))
    masked = input_ids.clone()
    masked[chosen] = mask_token_id  # always [MASK]
    return masked, labels
'''}, {"test_mask_tokens_80_10_10"}),
    "random_specials": ("masking", {"replace_chosen": '''
def replace_chosen(input_ids, chosen, *, vocab_size, mask_token_id, special_token_ids, generator=None):
    labels = torch.where(chosen, input_ids, torch.full_like(input_ids, -100))
    action = torch.rand(input_ids.shape, generator=generator)
    random_ids = torch.randint(vocab_size, input_ids.shape, generator=generator)  # special tokens too
    masked = input_ids.clone()
    masked[chosen & (action < 0.8)] = mask_token_id
    to_random = chosen & (action >= 0.8) & (action < 0.9)
    masked[to_random] = random_ids[to_random]
    return masked, labels
'''}, {"test_mask_tokens_80_10_10"}),
    "labels_everywhere": ("masking", {"replace_chosen": '''
def replace_chosen(input_ids, chosen, *, vocab_size, mask_token_id, special_token_ids, generator=None):
    action = torch.rand(input_ids.shape, generator=generator)
    random_ids = torch.randint(5, vocab_size, input_ids.shape, generator=generator)
    masked = input_ids.clone()
    masked[chosen & (action < 0.8)] = mask_token_id
    masked[chosen & (action >= 0.8) & (action < 0.9)] = random_ids[chosen & (action >= 0.8) & (action < 0.9)]
    return masked, input_ids.clone()  # labels on every position, not -100
'''}, {"test_mask_tokens_labels"}),
    "library_masking": ("masking", {
        "mask_tokens": "from bertlab.masking import mask_tokens",
        "mask_whole_words": "from bertlab.masking import mask_whole_words",
    }, {"test_mask_tokens_shapes", "test_mask_tokens_labels", "test_mask_tokens_specials", "test_mask_tokens_80_10_10",
        "test_mask_tokens_generator", "test_mask_whole_words_shapes", "test_mask_whole_words_together",
        "test_mask_whole_words_rate"}),
    "untied_decoder": ("mlm_head", {"mlm_head": '''
class MLMHead(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, config.hidden_size)
        self.layer_norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.decoder = nn.Linear(config.hidden_size, config.vocab_size, bias=False)  # a matrix of its own
        self.bias = nn.Parameter(torch.zeros(config.vocab_size))

    def transform(self, hidden_states):
        return self.layer_norm(F.gelu(self.dense(hidden_states)))

    def forward(self, hidden_states, word_embeddings):
        return self.decoder(self.transform(hidden_states)) + self.bias
'''}, {"test_mlm_head_tied"}),
    "swapped_sop": ("nsp_sop", {"sop_pairs": '''
def sop_pairs(documents, rng):
    pairs = []
    for document in documents:
        for i in range(len(document) - 1):
            a, b = document[i], document[i + 1]
            pairs.append((b, a, 0) if rng.random() < 0.5 else (a, b, 1))  # labels the wrong way round
    return pairs
'''}, {"test_sop_pairs"}),
    "end_before_start": ("finetuning", {"best_span": '''
def best_span(start_logits, end_logits, allowed, max_answer_length=30):
    start = start_logits.masked_fill(~allowed, float("-inf")).argmax()
    end = end_logits.masked_fill(~allowed, float("-inf")).argmax()
    return int(start), int(end)  # independent argmaxes: the end may come before the start
'''}, {"test_best_span"}),
    "mcc_unguarded": ("glue_score", {"classification_metrics": GLUE_COUNTS + '''
def matthews_corrcoef(gold, predicted):
    tp, fp, fn, tn = confusion_counts(gold, predicted)
    return (tp * tn - fp * fn) / math.sqrt((tp + fp) * (tp + fn) * (tn + fp) * (tn + fn))  # 0 / 0 when constant
'''}, {"test_matthews_corrcoef"}),
    "accuracy_of_positives": ("glue_score", {"classification_metrics": GLUE_COUNTS.replace(
        "return (tp + tn) / (tp + fp + fn + tn)", "return tp / (tp + fn)  # the recall, not the accuracy") + '''
def matthews_corrcoef(gold, predicted):
    tp, fp, fn, tn = confusion_counts(gold, predicted)
    denominator = math.sqrt((tp + fp) * (tp + fn) * (tn + fp) * (tn + fn))
    return (tp * tn - fp * fn) / denominator if denominator else 0.0
'''}, {"test_accuracy"}),
    "flat_glue_average": ("glue_score", {"glue_score": '''
def glue_score(results):
    numbers = [x for score in results.values() for x in (score if isinstance(score, tuple) else (score,))]
    return sum(numbers) / len(numbers)  # a two-metric task counts twice
'''}, {"test_glue_score"}),
    "padding_ignored": ("attention", {"attention": '''
def attention(q, k, v, key_padding_mask=None):
    weights = torch.softmax(q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1]), dim=-1)  # the mask is never used
    return weights @ v, weights
'''}, {"test_attention_padding"}),
    "untied_count": ("attention", {"parameter_counts": '''
def bert_parameter_counts(config):
    V, P, S = config.vocab_size, config.max_position_embeddings, config.type_vocab_size
    H, I, L = config.hidden_size, config.intermediate_size, config.num_hidden_layers
    counts = {"embeddings": (V + P + S) * H + 2 * H,
              "layer": 4 * (H * H + H) + 2 * H + (H * I + I) + (I * H + H) + 2 * H,
              "pooler": H * H + H,
              "mlm_head": H * H + H + 2 * H + V * H + V,  # a decoder matrix of its own: not tied
              "nsp_head": 2 * H + 2}
    counts["encoder"] = L * counts["layer"]
    counts["total"] = sum(counts[p] for p in ("embeddings", "encoder", "pooler", "mlm_head", "nsp_head"))
    return counts
'''}, {"test_parameter_counts", "test_published_sizes"}),
    "heads_without_transpose": ("attention", {"heads": '''
def split_heads(x, num_heads):
    B, T, H = x.shape
    if H % num_heads:
        raise ValueError(f"{num_heads} heads do not divide the hidden size {H}.")
    return x.reshape(B, num_heads, T, H // num_heads)  # the right shape, but a head is not a slice of features


def merge_heads(x):
    B, N, T, D = x.shape
    return x.reshape(B, T, N * D)  # undoes the wrong split exactly
'''}, {"test_heads"}),
    "ties_not_averaged": ("glue_score", {"correlations": '''
def pearson(x, y):
    mx, my = sum(x) / len(x), sum(y) / len(y)
    cov = sum((a - mx) * (b - my) for a, b in zip(x, y))
    spread = math.sqrt(sum((a - mx) ** 2 for a in x) * sum((b - my) ** 2 for b in y))
    if spread == 0:
        raise ValueError("a constant sequence has no correlation.")
    return cov / spread


def average_ranks(values):
    order = sorted(range(len(values)), key=lambda i: values[i])
    ranks = [0.0] * len(values)
    for rank, i in enumerate(order, start=1):
        ranks[i] = rank  # tied values get different ranks, in the order they come
    return ranks


def spearman(x, y):
    return pearson(average_ranks(x), average_ranks(y))
'''}, {"test_spearman"}),
    "pair_ratio_averaged": ("glue_score", {"human_normalised": '''
def human_normalised(results, human):
    missing = sorted(set(results) - set(human))
    if missing:
        raise ValueError(f"no human baseline for {missing}.")
    mean = lambda score: sum(score) / len(score) if isinstance(score, tuple) else score  # noqa: E731
    return {task: mean(score) / mean(human[task]) for task, score in results.items()}  # one ratio per task
'''}, {"test_human_normalised"}),
    "nsp_own_document": ("nsp_sop", {"nsp_pairs": '''
def nsp_pairs(documents, rng):
    if len(documents) < 2:
        raise ValueError("NSP needs at least two documents.")
    pairs = []
    for document in documents:
        for i in range(len(document) - 1):
            if rng.random() < 0.5:
                pairs.append((document[i], document[i + 1], 0))
            else:
                other = documents[rng.randrange(len(documents))]  # may be A's own document
                pairs.append((document[i], rng.choice(other), 1))
    return pairs
'''}, {"test_nsp_pairs"}),
    "labels_only_changed": ("masking", {"replace_chosen": '''
def replace_chosen(input_ids, chosen, *, vocab_size, mask_token_id, special_token_ids, generator=None):
    action = torch.rand(input_ids.shape, generator=generator)
    random_ids = torch.randint(5, vocab_size, input_ids.shape, generator=generator)
    masked = input_ids.clone()
    masked[chosen & (action < 0.8)] = mask_token_id
    masked[chosen & (action >= 0.8) & (action < 0.9)] = random_ids[chosen & (action >= 0.8) & (action < 0.9)]
    changed = masked != input_ids
    return masked, torch.where(changed, input_ids, torch.full_like(input_ids, -100))  # the unchanged 10% unlabelled
'''}, {"test_mask_tokens_labels", "test_mask_whole_words_together"}),
    "span_one_too_long": ("finetuning", {"best_span": '''
def best_span(start_logits, end_logits, allowed, max_answer_length=30):
    if not bool(allowed.any()):
        raise ValueError("no position is allowed: the context is empty.")
    scores = start_logits[:, None] + end_logits[None, :]
    ones = torch.ones_like(scores, dtype=torch.bool)
    valid = torch.triu(ones) & ~torch.triu(ones, diagonal=max_answer_length + 1)  # one token too long
    valid &= torch.outer(allowed, allowed)
    return divmod(int(scores.masked_fill(~valid, float("-inf")).argmax()), scores.shape[1])
'''}, {"test_best_span"}),
}
# A correct answer that warns and writes to stderr loses nothing: the verdict is the tests', not the output's.
WRONG["warns"] = ("masking", {"mask_tokens": samples.answers(ROOT / "solutions/masking/masking.ipynb")["mask_tokens"]
                              + '''
import functools as _functools, sys as _sys, warnings as _warnings
_honest = mask_tokens


@_functools.wraps(_honest)
def mask_tokens(*args, **kwargs):
    _warnings.warn("the given NumPy array is not writable", UserWarning)
    print("a line on stderr", file=_sys.stderr)
    return _honest(*args, **kwargs)
'''}, set())

# ---- attacks on the judge: (masking) answers that fail every test, plus what would once have bent the tests -------
GARBAGE = '''
def mask_tokens(input_ids, *, vocab_size, mask_token_id, special_token_ids, mlm_probability=0.15, generator=None):
    return torch.full_like(input_ids, -5), torch.full_like(input_ids, 7)  # fails every mask_tokens test
'''
MASKING_TESTS = ["test_mask_tokens_shapes", "test_mask_tokens_labels", "test_mask_tokens_specials",
                 "test_mask_tokens_80_10_10", "test_mask_tokens_generator", "test_mask_whole_words_shapes",
                 "test_mask_whole_words_together", "test_mask_whole_words_rate"]
ATTACKS = {
    "garbage": GARBAGE,  # the control: the same answers, no attack
    "forged_lines": GARBAGE + f"""
for _g in {MASKING_TESTS!r}:
    print(f"[autograder] {{_g}} " + "0" * 24)
    print(f"{{_g}}: all tests passed")
""",
    "ipython_hooks": GARBAGE + """
_ip = get_ipython()
_ip.set_custom_exc((BaseException,), lambda *a, **k: print("all tests passed"))
_ip.input_transformers_post.append(lambda lines: [ln for ln in lines if "assert" not in ln and "checks." not in ln])
_ip.events.register("post_run_cell", lambda result: setattr(result, "error_in_exec", None))
""",
    "fake_checks_import": GARBAGE + """
import contextlib, importlib, importlib.abc, importlib.machinery, sys, types
_fake = types.ModuleType("bertlab.checks")
_fake.own_work = lambda *a, **k: contextlib.nullcontext()
_fake.check_close = _fake.check_rate = _fake.check_tensor = lambda *a, **k: None
_fake.passed = lambda *a, **k: print("all tests passed")
class _Finder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    def find_spec(self, name, path=None, target=None):
        return importlib.machinery.ModuleSpec(name, self) if name == "bertlab.checks" else None
    def create_module(self, spec):
        return _fake
    def exec_module(self, module):
        pass
sys.meta_path.insert(0, _Finder())
sys.modules["bertlab.checks"] = _fake
importlib.import_module = lambda name, *a: _fake
""",
    "patched_torch": GARBAGE + """
import builtins
torch.equal = lambda *a, **k: True
torch.allclose = lambda *a, **k: True
torch.testing.assert_close = lambda *a, **k: None
torch.Tensor.__eq__ = lambda self, other: torch.ones(self.shape, dtype=torch.bool)
torch.Tensor.__ne__ = lambda self, other: torch.zeros(self.shape, dtype=torch.bool)
builtins.all = builtins.any = lambda *a: True
""",
    "tensor_subclass": """
class _Yes(torch.Tensor):
    def __eq__(self, other):
        return torch.ones(self.shape, dtype=torch.bool)
    def __ne__(self, other):
        return torch.zeros(self.shape, dtype=torch.bool)
    @classmethod
    def __torch_function__(cls, func, types, args=(), kwargs=None):
        if func in (torch.equal, torch.allclose):
            return True
        return super().__torch_function__(func, types, args, kwargs or {})

def mask_tokens(input_ids, *, vocab_size, mask_token_id, special_token_ids, mlm_probability=0.15, generator=None):
    return torch.full_like(input_ids, -5).as_subclass(_Yes), torch.full_like(input_ids, 7).as_subclass(_Yes)
""",
    "library_recompiled": """
import inspect
import bertlab.masking as _library
_ns = {"__name__": "bertlab.masking", "__package__": "bertlab"}
exec(compile(inspect.getsource(_library), "my_masking.py", "exec"), _ns)  # the library's code, under another name
mask_tokens, mask_whole_words = _ns["mask_tokens"], _ns["mask_whole_words"]
""",
}
LIBRARY_ATTACKS = {"library_recompiled"}  # defeated by the sandbox's stubs: graded with the sandbox only

SWAPPED_SOP = WRONG["swapped_sop"][1]["sop_pairs"]
NSP_TESTS = {"test_pair_input_format": 1, "test_pair_input_truncation": 2, "test_nsp_pairs": 3, "test_sop_pairs": 3,
             "test_pair_head_shapes": 1, "test_pair_head_cls": 2}
NSP_SAME_DOCUMENT = '''
def nsp_pairs(documents, rng):
    if len(documents) < 2:
        raise ValueError("two documents needed")
    pairs = []
    for document in documents:
        for i in range(len(document) - 1):
            if rng.random() < 0.5:
                pairs.append((document[i], document[i + 1], 0))
            else:
                pairs.append((document[i], rng.choice(document), 1))  # the "random" B from A's own document
    return pairs
'''
MEAN_POOLING = '''
class PairHead(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.pooler = nn.Linear(config.hidden_size, config.hidden_size)
        self.classifier = nn.Linear(config.hidden_size, 2)

    def forward(self, hidden_states):
        return self.classifier(torch.tanh(self.pooler(hidden_states.mean(1))))  # every position, not [CLS]
'''
FAKE_CHECKS = '''
import contextlib, importlib, types
_fake = types.SimpleNamespace(
    own_work=lambda *a, **k: contextlib.nullcontext(), check_close=lambda *a, **k: None,
    check_rate=lambda *a, **k: None, check_tensor=lambda *a, **k: None,
    passed=lambda grade_id: print(f"[autograder] {grade_id} 000000000000000000000000"))
importlib.import_module = lambda name, *args: _fake
'''


def _hostile(course: Path) -> dict[str, tuple[object, str]]:
    """student -> (the nsp_sop notebook or raw text, what is wrong with it)."""
    release, solution = ROOT / "exercises/nsp_sop/nsp_sop.ipynb", ROOT / "solutions/nsp_sop/nsp_sop.ipynb"
    answers = samples.answers(solution)

    def solved(**replace):
        return samples.solved(release, solution, replace)

    def markdown(cell):
        return nbformat.v4.new_markdown_cell(cell.source, metadata=cell.metadata)

    def emptied(cell):
        cell.source = 'checks = None\nprint("all tests passed")'
        return cell

    def tampered(nb):
        samples.edit_cell(nb, "test_pair_head_cls", lambda c: None)
        samples.edit_cell(nb, "test_sop_pairs", emptied)
        return samples.edit_cell(nb, "test_nsp_pairs", markdown)

    gradebook = course / "gradebook.db"
    return {
        "loop": (solved(sop_pairs="def sop_pairs(documents, rng):\n    while True:\n        pass\n"), "endless loop"),
        "crash": (solved(pair_head="import os\nos._exit(1)\n" + answers["pair_head"]), "kernel crash"),
        "import_flood": (solved(nsp_pairs="import not_a_module_of_this_course\n" + answers["nsp_pairs"],
                                build_pair_input="for _ in range(50_000):\n    print('spam ' * 20)\n"
                                + answers["build_pair_input"]), "exception at import, and a flood of output"),
        "tampered": (tampered(solved(sop_pairs=SWAPPED_SOP, nsp_pairs=NSP_SAME_DOCUMENT, pair_head=MEAN_POOLING)),
                     "a deleted, an edited and a converted test cell, each guarding a wrong answer"),
        "not_json": ('{"cells": [{"cell_type": "code", "source": "oops"', "not valid JSON"),
        "empty": (nbformat.v4.new_notebook(), "empty notebook"),
        "fake_checks": (solved(sop_pairs=SWAPPED_SOP + FAKE_CHECKS), "rebinds the test helpers"),
        "rebinds": (solved(sop_pairs=SWAPPED_SOP + "\nimport builtins\nbuiltins.all = lambda *a: True\n"
                           "torch.equal = lambda *a: True\n"
                           "bertlab.BertConfig.from_preset = lambda *a, **k: None\n"
                           "get_ipython().set_custom_exc((BaseException,), lambda *a, **k: None)\n"),
                    "rebinds builtins, torch and bertlab functions; swallows exceptions"),
        "gradebook_writer": (solved(build_pair_input=(
            f"for _path in [{str(gradebook)!r}, '../../../gradebook.db', 'gradebook.db']:\n"
            "    try:\n"
            "        with open(_path, 'wb') as _f:\n"
            "            _f.write(b'not a database any more')\n"
            "    except OSError:\n"
            "        pass\n") + answers["build_pair_input"]),
            "writes to the gradebook"),
    }


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    """One course with every kind of submission, autograded once (2 jobs)."""
    course = grading.copy_course(ROOT, tmp_path_factory.mktemp("course") / "course")
    shutil_copy_exercises(course)
    for name in ASSIGNMENTS:
        release, solution = ROOT / f"exercises/{name}/{name}.ipynb", ROOT / f"solutions/{name}/{name}.ipynb"
        samples.write_submission(course, "solved", name, {name: samples.solved(release, solution)})
        samples.write_submission(course, "blank", name, {name: nbformat.read(release, as_version=4)})
    for student, (name, replace, _) in WRONG.items():
        release, solution = ROOT / f"exercises/{name}/{name}.ipynb", ROOT / f"solutions/{name}/{name}.ipynb"
        samples.write_submission(course, student, name, {name: samples.solved(release, solution, replace)})
    release, solution = ROOT / "exercises/masking/masking.ipynb", ROOT / "solutions/masking/masking.ipynb"
    blank_answer = "raise NotImplementedError()"
    for student, source in ATTACKS.items():
        if student not in LIBRARY_ATTACKS or SANDBOX:
            nb = samples.solved(release, solution, {"replace_chosen": blank_answer, "mask_tokens": source,
                                                    "mask_whole_words": blank_answer})
            samples.write_submission(course, student, "masking", {"masking": nb})
    hostile = _hostile(course)
    if not SANDBOX:  # trusted submissions run as the grader: this one would overwrite the batch's own gradebook
        del hostile["gradebook_writer"]
    for student, (nb, _) in hostile.items():
        samples.write_submission(course, student, "nsp_sop", {"nsp_sop": nb})
    release, solution = ROOT / "exercises/nsp_sop/nsp_sop.ipynb", ROOT / "solutions/nsp_sop/nsp_sop.ipynb"
    # handed in under another name, as nbgrader's exchange keeps it (collect would have renamed it)
    samples.write_submission(course, "misnamed", "nsp_sop", {"NSP_SOP (1)": samples.solved(release, solution)})
    results = autograding.autograde(course, jobs=2, timeout=300, cell_timeout=CELL_TIMEOUT, log=print, sandbox=SANDBOX)
    return course, {(r.student, r.assignment): r for r in results}


def shutil_copy_exercises(course: Path) -> None:
    import shutil

    shutil.copytree(ROOT / "exercises", course / "exercises")


def cell_scores(course: Path, student: str, assignment: str) -> dict[str, float]:
    """grade_id -> autograded score, read from the course gradebook."""
    with grading.gradebook(f"sqlite:///{course / 'gradebook.db'}") as gb:
        nb = gb.find_submission_notebook(assignment, assignment, student)
        scores = {g.name: float(g.auto_score or 0) for g in nb.grades}
    return {k: scores.get(k, 0.0) for k in max_points(assignment)}  # the autograded tests only


def max_points(assignment: str) -> dict[str, float]:
    nb = nbformat.read(ROOT / f"solutions/{assignment}/{assignment}.ipynb", as_version=4)
    return {c.metadata["nbgrader"]["grade_id"]: float(c.metadata["nbgrader"]["points"]) for c in nb.cells
            if c.metadata.get("nbgrader", {}).get("grade") and c.cell_type == "code"}


def outputs_text(course: Path, student: str, assignment: str) -> str:
    path = course / "autograded" / student / assignment / f"{assignment}.ipynb"
    return path.read_text()


@pytest.mark.parametrize("name", ASSIGNMENTS)
def test_solutions_earn_full_marks(graded, name):
    course, results = graded
    scores = cell_scores(course, "solved", name)
    assert scores == max_points(name)
    assert results[("solved", name)].status == "graded"
    # the verdicts are the judge's (checks.passed says so only there), not the kernel's
    assert outputs_text(course, "solved", name).count(": all tests passed") == len(max_points(name))


@pytest.mark.parametrize("name", ASSIGNMENTS)
def test_every_cell_of_a_solved_notebook_runs(graded, name):
    """Not only the graded cells: a demonstration cell that fails after the tests (say, because a test cell rebound
    a name it uses) looks to every student like a bug in their own work."""
    course, _ = graded
    nb = nbformat.read(course / "autograded" / "solved" / name / f"{name}.ipynb", as_version=4)
    failed = [(i, o.get("ename")) for i, c in enumerate(nb.cells) if c.cell_type == "code"
              for o in c.get("outputs", []) if o.get("output_type") == "error"]
    assert not failed, f"{name}: cells that raised when the solved notebook ran: {failed}"


@pytest.mark.parametrize("name", ASSIGNMENTS)
def test_blank_student_versions_earn_zero(graded, name):
    course, _ = graded
    scores = cell_scores(course, "blank", name)
    assert all(scores[k] == 0 for k in max_points(name)), scores


@pytest.mark.parametrize("student", sorted(WRONG))
def test_a_wrong_answer_loses_exactly_its_tests(graded, student):
    course, _ = graded
    name, _, failing = WRONG[student]
    scores, points = cell_scores(course, student, name), max_points(name)
    lost = {k for k in points if scores[k] != points[k]}
    assert lost == failing, f"{student}: lost {sorted(lost)}, expected to lose {sorted(failing)}"
    assert all(scores[k] == 0 for k in failing)


@pytest.mark.skipif(not SANDBOX, reason="the library's graded pieces are stubs in the sandbox only")
def test_calling_the_library_is_explained(graded):
    course, _ = graded
    assert "is part of what assignment 'masking' asks you to write" in outputs_text(course, "library_masking",
                                                                                     "masking")


@pytest.mark.parametrize("student", sorted(ATTACKS))
def test_an_attack_on_the_tests_earns_what_a_blank_answer_earns(graded, student):
    """Printed completion lines, IPython hooks, a fake test-helper module, patched torch and builtins, a tensor
    subclass that equals everything, the library's code recompiled under another name: the tests run in the
    judge on data, so each scores exactly what the blank notebook scores."""
    if student in LIBRARY_ATTACKS and not SANDBOX:
        pytest.skip("the library's graded pieces are stubs in the sandbox only")
    course, results = graded
    assert results[(student, "masking")].status == "graded"
    assert cell_scores(course, student, "masking") == cell_scores(course, "blank", "masking")
    assert set(cell_scores(course, "blank", "masking").values()) == {0.0}


# ---- robustness -----------------------------------------------------------------------------------------


def nsp(graded, student):
    course, results = graded
    return cell_scores(course, student, "nsp_sop"), results[(student, "nsp_sop")], course


def test_endless_loop_costs_only_its_test(graded):
    scores, result, course = nsp(graded, "loop")
    assert scores == NSP_TESTS | {"test_sop_pairs": 0}
    assert "CellTimeoutError" in outputs_text(course, "loop", "nsp_sop") or "timeout" in outputs_text(
        course, "loop", "nsp_sop").lower()


def test_kernel_crash_scores_nothing_it_did_not_earn(graded):
    scores, result, course = nsp(graded, "crash")
    # the crash happens before the pair head exists: its tests cannot pass; everything before it may
    assert scores["test_pair_head_shapes"] == 0 and scores["test_pair_head_cls"] == 0
    assert all(scores[k] <= v for k, v in NSP_TESTS.items())
    text = outputs_text(course, "crash", "nsp_sop") + " ".join(result.reasons)
    assert "DeadKernel" in text or "died" in text.lower() or "could not" in text.lower()


def test_import_error_costs_the_tests_of_that_cell_and_output_is_cut(graded):
    scores, _, course = nsp(graded, "import_flood")
    assert scores == NSP_TESTS | {"test_nsp_pairs": 0}
    assert "ModuleNotFoundError" in outputs_text(course, "import_flood", "nsp_sop")
    assert (course / "autograded/import_flood/nsp_sop/nsp_sop.ipynb").stat().st_size < 500_000


def test_tampered_test_cells_are_restored_or_score_zero(graded):
    scores, _, course = nsp(graded, "tampered")
    # each tampered test guards a wrong answer: none of them may earn points; the others are earned
    assert scores == NSP_TESTS | {"test_pair_head_cls": 0, "test_sop_pairs": 0, "test_nsp_pairs": 0}


@pytest.mark.parametrize("student", ["not_json", "empty"])
def test_unreadable_notebooks_score_zero_with_a_reason(graded, student):
    scores, result, course = nsp(graded, student)
    assert all(v == 0 for v in scores.values())
    text = " ".join(result.reasons) + outputs_text(course, student, "nsp_sop")
    assert "not a readable notebook" in text if student == "not_json" else "lacks the graded cells" in text


def test_a_misnamed_notebook_is_graded_as_the_release_notebook(graded):
    course, results = graded
    assert cell_scores(course, "misnamed", "nsp_sop") == max_points("nsp_sop")
    assert "NSP_SOP (1).ipynb was graded as nsp_sop.ipynb" in " ".join(results[("misnamed", "nsp_sop")].reasons)


@pytest.mark.parametrize("student", ["fake_checks", "rebinds"])
def test_rebinding_or_hiding_errors_buys_nothing(graded, student):
    scores, _, course = nsp(graded, student)
    assert scores["test_sop_pairs"] == 0
    assert scores == NSP_TESTS | {"test_sop_pairs": 0}  # the other answers are right: they keep their points


@pytest.mark.skipif(not SANDBOX, reason="the gradebook is out of the submissions' reach in the sandbox only; with "
                    "--trusted-submissions-no-sandbox their code runs as the grader, by definition")
def test_writing_to_the_gradebook_changes_no_grade(graded):
    course, results = graded
    scores = cell_scores(course, "gradebook_writer", "nsp_sop")
    assert scores == NSP_TESTS  # the answers are right; the writes hit copies or were undone
    with sqlite3.connect(course / "gradebook.db") as db:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        rows = db.execute("SELECT COUNT(*) FROM submitted_assignment").fetchone()[0]
    assert rows == len(results)
    for name in ASSIGNMENTS:  # the good submissions of the batch kept their grades
        assert cell_scores(course, "solved", name) == max_points(name)


def test_every_submission_has_a_result_and_an_autograded_notebook(graded):
    course, results = graded
    for (student, name), result in results.items():
        assert (course / "autograded" / student / name / f"{name}.ipynb").is_file()
        assert result.score <= result.max_score
        assert result.seconds < 300, f"{student}/{name} was not stopped at the time limit"
        if result.status != "graded":
            assert result.reasons, f"{student}/{name} failed without a reason"


# ---- feedback, export, regrading ------------------------------------------------------------------------


def test_feedback_hides_hidden_tests_and_export_writes_grades(graded):
    course, results = graded
    grading.feedback(course, ["finetuning", "nsp_sop"])
    for student, name in [("end_before_start", "finetuning"), ("swapped_sop", "nsp_sop"), ("solved", "nsp_sop")]:
        html = (course / "feedback" / student / name / f"{name}.html").read_text()
        source = nbformat.read(ROOT / f"solutions/{name}/{name}.ipynb", as_version=4)
        regions = [c.source.split("### BEGIN HIDDEN TESTS")[1].split("### END HIDDEN TESTS")[0]
                   for c in source.cells if "BEGIN HIDDEN TESTS" in c.source]
        hidden = [line.strip() for region in regions for line in region.splitlines() if len(line.strip()) > 25]
        assert hidden
        import html as html_lib

        text = html_lib.unescape(html)
        leaked = [line for line in hidden if line in text]
        assert not leaked, f"feedback for {student}/{name} shows hidden test lines: {leaked[:3]}"
        assert "HIDDEN TESTS" not in text
    feedback_text = (course / "feedback/swapped_sop/nsp_sop/nsp_sop.html").read_text()
    assert "a hidden test failed" in feedback_text  # the verdict of the failed hidden test, not its message,
    assert "label 0 means A and B in their original order" not in feedback_text  # which quotes what it saw
    csv_path = grading.export(course, course / "grades.csv")
    import csv

    with open(csv_path) as f:
        rows = {(r["student_id"], r["assignment"]): r for r in csv.DictReader(f)}
    for key, result in results.items():  # every graded submission, with the score of the gradebook
        assert float(rows[key]["raw_score"]) == result.score


def test_grading_twice_gives_the_same_score(graded):
    course, results = graded
    before = cell_scores(course, "swapped_sop", "nsp_sop")
    again = autograding.autograde(course, ["nsp_sop"], ["swapped_sop"], jobs=1, cell_timeout=CELL_TIMEOUT, log=print,
                              sandbox=SANDBOX)
    assert again[0].score == results[("swapped_sop", "nsp_sop")].score
    assert cell_scores(course, "swapped_sop", "nsp_sop") == before


def test_report_lists_every_submission(graded, tmp_path):
    _, results = graded
    autograding.write_report(list(results.values()), tmp_path / "report.json")
    rows = json.loads((tmp_path / "report.json").read_text())
    assert {(r["student"], r["assignment"]) for r in rows} == set(results)


def test_a_submission_stopped_at_its_time_limit_earns_nothing(graded):
    course, _ = graded
    release, solution = ROOT / "exercises/nsp_sop/nsp_sop.ipynb", ROOT / "solutions/nsp_sop/nsp_sop.ipynb"
    answers = samples.answers(solution)
    slow = samples.solved(release, solution, {"pair_head": "import time\ntime.sleep(600)\n" + answers["pair_head"]})
    samples.write_submission(course, "too_slow", "nsp_sop", {"nsp_sop": slow})
    [result] = autograding.autograde(course, ["nsp_sop"], ["too_slow"], jobs=1, timeout=40, cell_timeout=900, log=print,
                                 sandbox=SANDBOX)
    assert result.status == "failed" and "time limit" in " ".join(result.reasons)
    assert result.score == 0 and all(v == 0 for v in cell_scores(course, "too_slow", "nsp_sop").values())
