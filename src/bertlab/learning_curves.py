"""Low-label learning curves: test accuracy against the number of labelled examples, from pretrained weights,
from random weights of the same architecture, and for a classical method that needs no BERT.

    python -m bertlab.learning_curves --jobs 2      # every task, start and size -> results/learning_curves.json
    python -m bertlab.learning_curves --quick       # a small version of the same, for tests (about a minute)
    python -m bertlab.learning_curves --sweep       # the gap at a few N against pretraining compute
    python -m bertlab.learning_curves --transfer runs/experiments/minilm/checkpoint-1000   # MiniLM adapted to Chinese

The lecture's claim is that a pretrained model needs few labels. Each point of a curve is measured the same
way for every start, so that the gap between the curves is what pretraining bought:

1. N training examples are drawn at random (the draw depends on the seed, not on the start).
2. The learning rate is chosen for each (task, start) on the validation split, from LEARNING_RATES, with
   seed 0 at N = `Plan.select_at`; every size and seed then uses the chosen rate. The test split is never
   used to choose anything.
3. Each run trains for a budget that grows with N (`budget`) and ends with the weights of its best
   validation score (early stopping, `FinetuneConfig.keep_best`).

Every finished run is appended to ``<runs-dir>/runs.jsonl``, so an interrupted experiment resumes where it
stopped when started again with the same arguments.
"""

from __future__ import annotations

import argparse
import json
import math
import multiprocessing
import shlex
import sys
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch

from .finetuned_models import RECIPES
from .shipped import course_model_dir

RESULTS_NAME = "learning_curves"
SWEEP_NAME = "pretraining_compute"
SWEEP_SIZES = (300, 1000)
TRANSFER_NAME = "transfer_curves"
TRANSFER_SIZES = (300,)
CURVE_TASKS = ("sentiment", "pos", "pair")  # not finetune_tasks.TASKS (every task, by name)
SIZES = (100, 300, 1000, 3000, None)  # None: the whole training split
SEEDS = (0, 1, 2)
LEARNING_RATES = (1e-4, 3e-4, 1e-3)
STARTS = ("course", "random")  # the course model, and its architecture from random weights
SWEEP_TASKS = ("sentiment", "pos")
MAX_LENGTH = {"sentiment": 64, "pos": 64, "pair": 128}
BATCH_SIZE = 32
VALIDATION_EXAMPLES = 256  # a fixed subset of the validation split, the same for every run
TEST_EXAMPLES = 1024  # likewise for the test split, scored once at the end of each run


@dataclass
class Plan:
    """What to run; `quick()` is a small version of the full plan for tests."""

    tasks: tuple[str, ...] = CURVE_TASKS
    sizes: tuple[int | None, ...] = SIZES
    seeds: tuple[int, ...] = SEEDS
    learning_rates: tuple[float, ...] = LEARNING_RATES
    starts: tuple[str, ...] = STARTS
    select_at: int = 1000  # the size at which each start's learning rate is chosen
    epochs: float = 10.0  # passes over the N examples, within the step limits below
    # At 60 steps, every course-model POS run at N <= 300 had its best validation score at its last step: the
    # budget ended the runs while they still improved. 250 steps with early stopping lets them peak.
    min_steps: int = 250
    max_steps: int = 300
    evaluations: int = 8  # validation scores per run, for early stopping
    validation_examples: int = VALIDATION_EXAMPLES
    test_examples: int = TEST_EXAMPLES
    # sentence pairs are classified from the mean of the tokens, as in the shipped pair model's recipe: the [CLS]
    # vector of a model pretrained with SOP carries sentence order, not "next sentence?"
    pooling: dict[str, str] = field(default_factory=lambda: {"pair": RECIPES["pair"]["pooling"]})
    checkpoints: dict[str, str] = field(default_factory=lambda: {"course": str(course_model_dir())})
    fixed_rates: dict[str, float] = field(default_factory=dict)  # "task/start": a rate chosen elsewhere, no grid

    @classmethod
    def transfer(cls, checkpoint: str) -> Plan:
        """all-MiniLM-L6-v2 with Chinese embeddings (`python -m bertlab.experiments minilm`) and its architecture
        from random weights, on sentiment at N = 300 only: a step of this 6-layer, 384-wide model costs about
        ten of the course model's on a CPU, and 300 examples is the low-label end where pretraining matters."""
        return cls(tasks=("sentiment",), sizes=TRANSFER_SIZES, starts=("minilm", "minilm-random"),
                   select_at=TRANSFER_SIZES[0], checkpoints={"minilm": checkpoint})

    @classmethod
    def quick(cls) -> Plan:
        return cls(tasks=("sentiment",), sizes=(32, 64), seeds=(0, 1), learning_rates=(3e-4, 1e-3), select_at=32,
                   min_steps=4, max_steps=4, evaluations=2, validation_examples=32, test_examples=64)

    def budget(self, n: int) -> tuple[int, int]:
        """(steps, evaluate every) for N training examples: `epochs` passes, clipped to [min_steps, max_steps],
        with `evaluations` validation scores on the way."""
        steps = min(self.max_steps, max(self.min_steps, math.ceil(self.epochs * n / BATCH_SIZE)))
        return steps, max(1, steps // self.evaluations)


def training_size(task: str) -> int:
    from .finetune_tasks import TASKS as FINETUNE_TASKS

    return len(FINETUNE_TASKS[task].load()["train"])


# ---- one run ----------------------------------------------------------------------------------------------------
def start_weights(plan: Plan, start: str) -> tuple[str, str]:
    """(checkpoint, init) of a start: a name in ``plan.checkpoints`` is that model's weights; "random" is the
    course model's architecture with random weights, and "<name>-random" that of checkpoint <name>."""
    if start == "random" or start.endswith("-random"):
        base = "course" if start == "random" else start[:-len("-random")]
        return plan.checkpoints[base], "random"
    if start not in plan.checkpoints:
        raise ValueError(f"no checkpoint for the start {start!r} (known: {sorted(plan.checkpoints)}).")
    return plan.checkpoints[start], "pretrained"


def finetune_point(plan: Plan, task: str, start: str, n: int, seed: int, learning_rate: float) -> dict[str, Any]:
    """Fine-tune one start on N examples with one seed and learning rate; its validation and test scores."""
    from .finetune import FinetuneConfig, finetune

    steps, eval_every = plan.budget(n)
    checkpoint, init = start_weights(plan, start)
    with tempfile.TemporaryDirectory() as tmp:
        config = FinetuneConfig(
            task=task, init=init, checkpoint=checkpoint, output_dir=tmp,
            max_train_examples=n, seed=seed, learning_rate=learning_rate, max_steps=steps, eval_every=eval_every,
            keep_best=True, batch_size=BATCH_SIZE, max_length=MAX_LENGTH[task], pooling=plan.pooling.get(task),
            save_total_limit=1, progress=False,
            eval_batches=max(1, plan.validation_examples // BATCH_SIZE),
            test_batches=max(1, plan.test_examples // BATCH_SIZE))
        result = finetune(config)
    return {"task": task, "start": start, "n": n, "seed": seed, "learning_rate": learning_rate,
            "validation": result.metrics["best_eval_accuracy"], "best_step": result.metrics["best_eval_step"],
            "test": result.metrics["test_accuracy"], "steps": steps, "seconds": round(result.seconds, 1)}


# ---- classical baselines ------------------------------------------------------------------------------------------
def baseline_point(plan: Plan, task: str, n: int, seed: int) -> dict[str, Any]:
    """The classical method's test accuracy on the same N examples (same draw) and the same test subset."""
    from .finetune import _sample
    from .finetune_tasks import TASKS as FINETUNE_TASKS

    data = FINETUNE_TASKS[task].load()
    train = _sample(data["train"], n, seed)
    test = _sample(data["test"], max(1, plan.test_examples // BATCH_SIZE) * BATCH_SIZE, 0)  # finetune's subset
    from .experiments import logistic_regression_baseline  # bag of characters + logistic regression

    method = {"sentiment": logistic_regression_baseline, "pair": shared_characters, "pos": tag_lookup}[task]
    return {"task": task, "n": n, "seed": seed, "test": method(train, test)}


def shared_characters(train: Any, test: Any) -> float:
    """Sentence pairs: logistic regression on which characters the two sentences share, and how many."""
    import numpy as np
    from scipy.sparse import csr_matrix, hstack
    from sklearn.feature_extraction.text import CountVectorizer
    from sklearn.linear_model import LogisticRegression

    vectorizer = CountVectorizer(analyzer="char", lowercase=False, binary=True)
    vectorizer.fit(list(train["text_a"]) + list(train["text_b"]))

    def features(rows: Any) -> Any:
        shared = vectorizer.transform(rows["text_a"]).multiply(vectorizer.transform(rows["text_b"]))
        overlap = np.asarray(shared.sum(axis=1), dtype=float)
        sizes = np.array([[len(set(a) | set(b))] for a, b in zip(rows["text_a"], rows["text_b"], strict=True)])
        return hstack([shared, csr_matrix(overlap / np.maximum(sizes, 1))]).tocsr()

    classifier = LogisticRegression(max_iter=2000).fit(features(train), train["label"])
    return float(classifier.score(features(test), test["label"]))


def tag_lookup(train: Any, test: Any) -> float:
    """Part of speech: each character gets the tag it has most often in the training sentences (unseen characters
    the most frequent tag overall); token accuracy."""
    counts: dict[str, Counter] = defaultdict(Counter)
    for text, labels in zip(train["text"], train["char_labels"], strict=True):
        for char, label in zip(text, labels, strict=True):
            counts[char][label] += 1
    overall = Counter(label for labels in train["char_labels"] for label in labels).most_common(1)[0][0]
    hits = total = 0
    for text, labels in zip(test["text"], test["char_labels"], strict=True):
        for char, label in zip(text, labels, strict=True):
            guess = counts[char].most_common(1)[0][0] if char in counts else overall
            hits, total = hits + (guess == label), total + 1
    return hits / total


# ---- the whole experiment ------------------------------------------------------------------------------------------
def _key(run: dict[str, Any]) -> tuple:
    return run["task"], run["start"], run["n"], run["seed"], run["learning_rate"]


def run_plan(plan: Plan, runs_dir: Path, jobs: int = 1) -> dict[str, Any]:
    """Every run of the plan (resuming from runs_dir/runs.jsonl), then the chosen learning rates and baselines."""
    runs_dir.mkdir(parents=True, exist_ok=True)
    log = runs_dir / "runs.jsonl"
    done = {}
    if log.exists():
        for line in log.read_text().splitlines():
            run = json.loads(line)
            done[_key(run)] = run
    sizes = {task: [training_size(task) if n is None else n for n in plan.sizes] for task in plan.tasks}
    cells = [(task, start, n) for task in plan.tasks for start in plan.starts for n in sizes[task]]

    def run_all(todo: list[tuple]) -> None:
        todo = [args for args in todo if args not in done]
        if not todo:
            return
        with ProcessPoolExecutor(max_workers=jobs, mp_context=multiprocessing.get_context("spawn"),
                                 initializer=torch.set_num_threads, initargs=(1,)) as pool:
            futures = [pool.submit(finetune_point, plan, *args) for args in todo]
            for future in futures:
                run = future.result()
                done[_key(run)] = run
                with log.open("a") as f:
                    f.write(json.dumps(run) + "\n")

    first, pairs = plan.seeds[0], [(task, start) for task in plan.tasks for start in plan.starts]
    free = [(task, start) for task, start in pairs if f"{task}/{start}" not in plan.fixed_rates]
    grid = [(task, start, plan.select_at, first, lr) for task, start in free for lr in plan.learning_rates]
    run_all(grid)
    # the best validation score wins; a tie goes to the smaller rate (the first of LEARNING_RATES)
    chosen = {(task, start): max((done[(task, start, plan.select_at, first, lr)] for lr in plan.learning_rates),
                                 key=lambda r: r["validation"])["learning_rate"] for task, start in free}
    chosen |= {(task, start): plan.fixed_rates[f"{task}/{start}"] for task, start in pairs if (task, start) not in free}
    wanted = [(task, start, n, seed, chosen[(task, start)]) for task, start, n in cells for seed in plan.seeds]
    run_all(wanted)
    baselines = [baseline_point(plan, task, n, seed) for task in plan.tasks for n in sizes[task] for seed in plan.seeds]
    stored_plan = {k: v for k, v in asdict(plan).items() if k != "checkpoints"} | {"sizes": sizes}  # no local paths
    return {"plan": stored_plan, "points": [done[key] for key in wanted], "baselines": baselines,
            "grid": [done[key] for key in grid]}


def summarize(results: dict[str, Any]) -> dict[str, dict[str, dict[int, dict[str, float]]]]:
    """{task: {start or "baseline": {N: {"mean", "min", "max"}}}} of the test accuracies over seeds."""
    table: dict = defaultdict(lambda: defaultdict(lambda: defaultdict(list)))
    for run in results["points"]:
        table[run["task"]][run["start"]][run["n"]].append(run["test"])
    for run in results["baselines"]:
        table[run["task"]]["baseline"][run["n"]].append(run["test"])
    return {task: {start: {n: {"mean": sum(v) / len(v), "min": min(v), "max": max(v)} for n, v in sorted(by_n.items())}
                   for start, by_n in starts.items()} for task, starts in table.items()}


# ---- the gap against pretraining compute ---------------------------------------------------------------------------
def stacked_stage1(directory: Path) -> Path:
    """The course model's starting point: the shipped 2-layer stage-1 model stacked to the course architecture,
    before any stage-2 step (config and tokenizer from the course model)."""
    import shutil

    from .checkpoint import SAFETENSORS_NAME, read_config, read_state_dict, write_weights
    from .pretrain import stacked_state
    from .shipped import STAGE1, TRAINING_NAME

    course = course_model_dir()
    directory.mkdir(parents=True, exist_ok=True)
    for path in course.iterdir():
        if path.is_file() and path.suffix in (".json", ".txt") and path.name != TRAINING_NAME:
            shutil.copy2(path, directory / path.name)
    layers = read_config(course).num_hidden_layers
    state = {k: v.clone() for k, v in stacked_state(read_state_dict(STAGE1), layers).items()}  # no shared tensors
    write_weights(state, directory / SAFETENSORS_NAME, torch.float32)
    return directory


def pretraining_compute(steps: int) -> dict[str, float]:
    """Pretraining compute of the course model ``steps`` steps after stage 1 (stages 2 and 3 share their batch
    size and sequence length), in millions of token-layers (tokens seen in training times encoder layers: the
    part of the cost that grows with depth), and as a fraction of the shipped model's."""
    from .checkpoint import read_config
    from .experiments import COURSE, STAGE3
    from .shipped import STAGE1, load_training

    stage1 = load_training(STAGE1)["args"]
    layers1 = read_config(STAGE1).num_hidden_layers
    layers = read_config(course_model_dir()).num_hidden_layers
    first = stage1["max_steps"] * stage1["batch_size"] * stage1["max_length"] * layers1 / 1e6
    per_step = COURSE["batch_size"] * COURSE["max_length"] * layers / 1e6
    shipped = first + (COURSE["max_steps"] + STAGE3["max_steps"]) * per_step
    return {"steps_after_stage1": steps, "token_layers_millions": round(first + steps * per_step, 1),
            "fraction": round((first + steps * per_step) / shipped, 3)}


def run_sweep(runs_dir: Path, extra: dict[str, tuple[str, int]], jobs: int = 1) -> dict[str, Any]:
    """The learning curves' protocol at N in SWEEP_SIZES for checkpoints along the course model's pretraining:
    before stage 2, any ``extra`` {name: (directory, steps after stage 1)}, the end of stage 2, and the shipped
    model. Each uses the learning rate chosen for the course model in the learning curves (per task), and the
    random-weights runs are the curves' own (same rate, same seeds)."""
    from .experiments import COURSE, STAGE3, cross_evaluate
    from .shipped import STAGE2, load_results

    curves = load_results(RESULTS_NAME)
    rates = {(r["task"], r["start"]): r["learning_rate"] for r in curves["points"] if r["task"] in SWEEP_TASKS}
    checkpoints = {"stage2-0": (str(stacked_stage1(runs_dir / "stacked-stage1")), 0), **extra,
                   "stage2": (str(STAGE2), COURSE["max_steps"]),
                   "course": (str(course_model_dir()), COURSE["max_steps"] + STAGE3["max_steps"])}
    checkpoints = dict(sorted(checkpoints.items(), key=lambda item: item[1][1]))  # by compute
    fixed = {f"{task}/{name}": rates[(task, "course")] for task in SWEEP_TASKS for name in checkpoints}
    fixed |= {f"{task}/random": rates[(task, "random")] for task in SWEEP_TASKS}
    plan = Plan(tasks=SWEEP_TASKS, sizes=SWEEP_SIZES, learning_rates=(), starts=(*checkpoints, "random"),
                select_at=max(SWEEP_SIZES), checkpoints={name: path for name, (path, _) in checkpoints.items()},
                fixed_rates=fixed)
    results = run_plan(plan, runs_dir, jobs)
    mlm = cross_evaluate({name: path for name, (path, _) in checkpoints.items()})
    results["checkpoints"] = {name: {**pretraining_compute(steps), "mlm_accuracy": mlm[name]["mlm_accuracy"],
                                     "mlm_top5_accuracy": mlm[name]["mlm_top5_accuracy"]}
                              for name, (_, steps) in checkpoints.items()}
    return results


def transfer_training(checkpoint: Path) -> dict[str, Any]:
    """How the adapted MiniLM was trained (steps, CPU minutes) and its held-out MLM top-1 beside the course
    model's, on the same masked test sentences."""
    from .experiments import RUN_NAME, cross_evaluate

    run = json.loads((checkpoint.parent / RUN_NAME).read_text())
    mlm = cross_evaluate({"minilm": checkpoint, "course": course_model_dir()})
    return {"steps": int(checkpoint.name.split("-")[-1]), "minutes": round(run["seconds"] / 60, 1),
            "command": run["command"], "mlm_accuracy": mlm["minilm"]["mlm_accuracy"],
            "course_mlm_accuracy": mlm["course"]["mlm_accuracy"]}


def main(argv: Sequence[str] | None = None) -> int:
    from .experiments import write_results

    parser = argparse.ArgumentParser(prog="python -m bertlab.learning_curves", description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs-dir", type=Path, default=Path("runs/learning_curves"))
    parser.add_argument("--jobs", type=int, default=1, help="runs side by side (one CPU thread each)")
    parser.add_argument("--tasks", nargs="+", choices=CURVE_TASKS, default=list(CURVE_TASKS))
    parser.add_argument("--starts", nargs="+", choices=STARTS, default=list(STARTS))
    parser.add_argument("--checkpoint", help="the pretrained model (default: the course model in the package); "
                        "random weights take its architecture")
    parser.add_argument("--sweep", nargs="*", metavar="NAME=DIR:STEPS",
                        help="the gap against pretraining compute (results/pretraining_compute.json), for the course "
                        "model before and after stage 2, the shipped model, and any checkpoint DIR of stage 2 or 3 "
                        "STEPS steps after stage 1")
    parser.add_argument("--transfer", metavar="DIR", help="the MiniLM start adapted to Chinese, from this checkpoint "
                        "(results/transfer_curves.json)")
    parser.add_argument("--quick", action="store_true", help="a small plan (for tests); writes nothing to the package")
    # with --quick or --checkpoint the results go to <runs-dir>/learning_curves.json, not into the package
    args = parser.parse_args(argv)
    command = "python -m bertlab.learning_curves " + shlex.join(sys.argv[1:] if argv is None else argv)
    plan = Plan.quick() if args.quick else Plan(tasks=tuple(args.tasks), starts=tuple(args.starts))
    if args.transfer:
        plan = Plan.transfer(args.transfer)
    if args.checkpoint:
        plan.checkpoints = {"course": args.checkpoint}
    start = time.perf_counter()
    if args.sweep is not None:
        extra = {}
        for item in args.sweep:
            name, _, rest = item.partition("=")
            directory, _, steps = rest.rpartition(":")
            if not name or not directory or not steps.isdigit():
                parser.error(f"--sweep takes NAME=DIR:STEPS, got {item!r}")
            extra[name] = (directory, int(steps))
        results = {"command": command, **run_sweep(args.runs_dir, extra, args.jobs)}
        print(json.dumps(results["checkpoints"], indent=1))
        print("wrote", write_results(SWEEP_NAME, results))
        return 0
    results = {"command": command, **run_plan(plan, args.runs_dir, args.jobs)}
    if args.transfer:
        results["minilm_training"] = transfer_training(Path(args.transfer))
    print(json.dumps(summarize(results), indent=1))
    if args.quick or args.checkpoint:  # the package's results are those of the shipped course model
        path = args.runs_dir / f"{RESULTS_NAME}.json"
        path.write_text(json.dumps(results, indent=1) + "\n")
        print("wrote", path)
    else:
        print("wrote", write_results(TRANSFER_NAME if args.transfer else RESULTS_NAME, results))
    print(f"done in {time.perf_counter() - start:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
