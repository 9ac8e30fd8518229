"""Low-label learning curves: test accuracy against the number of labelled examples N, from pretrained weights,
from random weights of the same architecture, with each start's encoder frozen (linear probes), and for a
counting method that needs no BERT.

    python -m bertlab.learning_curves --jobs 2      # every task, start and size -> results/learning_curves.json
    python -m bertlab.learning_curves --quick       # a small version of the same, for tests (about a minute)
    python -m bertlab.pretraining_compute --runs-dir runs/curves   # the gain against pretraining compute

One protocol for every start, so that the gap between the curves is what pretraining bought (`describe` writes
it out from a stored plan, for the book):

1. N training examples are drawn at random; the draw depends on the seed, not on the start, and so does the new
   task head (`bertlab.finetune.seeded_head`): runs of one seed differ only in the encoder.
2. Each run trains for at most `Plan.max_passes` passes over its N examples (at least `Plan.min_steps` steps),
   is evaluated on the validation split about once a pass, stops early once `Plan.patience` evaluations in a
   row have not beaten its best, and ends with the weights of its best evaluation.
3. The learning rate is chosen per task and start on the validation split, from LEARNING_RATES, at the smallest
   and at the largest N; every other N uses the rate chosen at the nearer of the two (in log N). The test
   split chooses nothing.
4. The counting baselines choose their regularisation on the same validation split; the probes theirs too.

Every finished run is appended to ``<runs-dir>/runs.jsonl``, so an interrupted experiment resumes where it
stopped when started again with the same arguments.
"""

from __future__ import annotations

import argparse
import json
import math
import multiprocessing
import shlex
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch

from .probes import TOKEN_TASKS
from .shipped import course_model_dir

RESULTS_NAME = "learning_curves"
CURVE_TASKS = ("sentiment", "pos", "pair")  # not finetune_tasks.TASKS (every task, by name)
SENTENCE_TASKS = tuple(task for task in CURVE_TASKS if task not in TOKEN_TASKS)  # one label per sentence (pair)
SIZES = (100, 1000)  # the low-label end, where the lecture's claim lives (chapter 5's shipped models use all
# labels); a third size would cost about an hour more of the two CPU cores the curves were made on
LEARNING_RATES = (1e-4, 3e-4, 1e-3)
STARTS = ("course", "random")  # the course model, and its architecture from random weights
MAX_LENGTH = {"sentiment": 64, "pos": 64, "pair": 128}
BATCH_SIZE = 32
VALIDATION_EXAMPLES = 256  # a fixed subset of the validation split, the same for every run
TEST_EXAMPLES = 1024  # likewise for the test split, scored once at the end of each run


@dataclass
class Plan:
    """What to run; `quick()` is a small version of the full plan for tests."""

    tasks: tuple[str, ...] = CURVE_TASKS
    sizes: tuple[int, ...] = SIZES
    starts: tuple[str, ...] = STARTS
    few_labels: int = 300  # up to this N a point has seeds_few seeds, above it seeds_many
    seeds_few: tuple[int, ...] = (0, 1, 2, 3, 4)
    seeds_many: tuple[int, ...] = (0, 1, 2)
    learning_rates: tuple[float, ...] = LEARNING_RATES
    selection_seeds_few: tuple[int, ...] = (0, 1)  # the rate's validation score: the mean over these seeds
    selection_seeds_many: tuple[int, ...] = (0,)
    max_passes: float = 20.0
    min_steps: int = 300  # at 100 steps, 5 of 32 course-model runs at N = 100 were still improving at their cap
    min_eval_steps: int = 10  # evaluate every pass, but not more often than every this many steps
    patience: int = 3
    validation_examples: int = VALIDATION_EXAMPLES
    test_examples: int = TEST_EXAMPLES
    probes: bool = True
    # every sentence task is classified from the mean of the tokens, as the probes read the encoder: the [CLS]
    # pooler of the course model was trained for sentence order, a task it did not learn (chapter 4); fine-tuning
    # [CLS] made the sentiment curves compare a start's pooler where the probes compared its token vectors
    pooling: dict[str, str] = field(default_factory=lambda: {task: "mean" for task in SENTENCE_TASKS})
    checkpoints: dict[str, str] = field(default_factory=lambda: {"course": str(course_model_dir())})
    fixed_rates: dict[str, float] = field(default_factory=dict)  # "task/start": a rate chosen elsewhere, no grid

    @classmethod
    def quick(cls) -> Plan:
        return cls(tasks=("sentiment",), sizes=(32, 64), few_labels=32, seeds_few=(0, 1), seeds_many=(0,),
                   learning_rates=(3e-4, 1e-3), selection_seeds_few=(0,), max_passes=2, min_steps=4,
                   min_eval_steps=2, patience=1, validation_examples=32, test_examples=64)

    def seeds(self, n: int) -> tuple[int, ...]:
        return self.seeds_few if n <= self.few_labels else self.seeds_many

    def selection_seeds(self, n: int) -> tuple[int, ...]:
        return self.selection_seeds_few if n <= self.few_labels else self.selection_seeds_many

    def budget(self, n: int) -> tuple[int, int]:
        """(most steps, evaluate every) for N training examples: `max_passes` passes (at least `min_steps`),
        an evaluation about every pass."""
        per_pass = math.ceil(n / BATCH_SIZE)
        return max(self.min_steps, math.ceil(self.max_passes * per_pass)), max(self.min_eval_steps, per_pass)


def selection_sizes(sizes: Sequence[int]) -> tuple[int, ...]:
    """The N at which learning rates are chosen: the smallest and the largest."""
    return tuple(sorted({min(sizes), max(sizes)}))


def governing_size(n: int, sizes: Sequence[int]) -> int:
    """The selection size whose chosen rate N uses: the nearer one in log N (the smaller on a tie)."""
    return min(selection_sizes(sizes), key=lambda s: (abs(math.log(n / s)), s))


def training_size(task: str) -> int:
    from .finetune_tasks import TASKS as FINETUNE_TASKS

    return len(FINETUNE_TASKS[task].load()["train"])


# ---- one run of each kind ---------------------------------------------------------------------------------------
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
            keep_best=True, patience=plan.patience, batch_size=BATCH_SIZE, max_length=MAX_LENGTH[task],
            pooling=plan.pooling.get(task), save_total_limit=1, progress=False,
            eval_batches=max(1, plan.validation_examples // BATCH_SIZE),
            test_batches=max(1, plan.test_examples // BATCH_SIZE))
        result = finetune(config)
    return {"kind": "finetune", "task": task, "start": start, "n": n, "seed": seed, "learning_rate": learning_rate,
            "validation": result.metrics["best_eval_accuracy"], "best_step": result.metrics["best_eval_step"],
            "test": result.metrics["test_accuracy"], "steps": result.step, "max_steps": steps,
            "eval_every": eval_every, "stopped_early": result.metrics["stopped_early"],
            "pooling": plan.pooling.get(task), "seconds": round(result.seconds, 1)}


def _splits(plan: Plan, task: str, n: int, seed: int) -> dict[str, Any]:
    """The rows a fine-tuning run of (N, seed) sees: its N training examples and the shared evaluation subsets."""
    from .finetune import sample_rows
    from .finetune_tasks import TASKS as FINETUNE_TASKS

    data = FINETUNE_TASKS[task].load()
    evaluation = {"validation": plan.validation_examples, "test": plan.test_examples}
    return {"train": sample_rows(data["train"], n, seed),
            **{name: sample_rows(data[name], max(1, size // BATCH_SIZE) * BATCH_SIZE, 0)
               for name, size in evaluation.items()}}


def baseline_point(plan: Plan, task: str, n: int, seed: int) -> dict[str, Any]:
    """The counting method on the same N examples (same draw), tuned on the same validation subset."""
    from .counting_baselines import tuned_baseline

    return {"kind": "baseline", "task": task, "n": n, "seed": seed, **tuned_baseline(task, **_splits(plan, task, n,
                                                                                                    seed))}


def probe_point(plan: Plan, task: str, start: str, n: int, seed: int) -> dict[str, Any]:
    """A linear probe of the start's frozen encoder (random weights: drawn from the seed) on the same rows."""
    from .checkpoint import read_config, resolve_checkpoint_dir
    from .finetune_tasks import TASKS as FINETUNE_TASKS
    from .model import BertModel
    from .probes import frozen_features, probe_scores
    from .tokenizer import load_checkpoint_tokenizer
    from .trainer import set_seed

    name, init = start_weights(plan, start)
    checkpoint = resolve_checkpoint_dir(name)
    set_seed(seed)
    if init == "pretrained":
        encoder = BertModel.from_pretrained(checkpoint)
    else:
        encoder = BertModel(read_config(checkpoint))
    tokenizer = load_checkpoint_tokenizer(checkpoint)
    encode = FINETUNE_TASKS[task].encode
    vectors = {name: frozen_features(encoder, encode(rows, tokenizer, MAX_LENGTH[task]), task,
                                     tokenizer.pad_token_id) for name, rows in _splits(plan, task, n, seed).items()}
    return {"kind": "probe", "task": task, "start": start, "n": n, "seed": seed, **probe_scores(**vectors)}


# ---- the whole experiment ------------------------------------------------------------------------------------------
def _key(run: dict[str, Any]) -> tuple:
    return run.get("kind", "finetune"), run["task"], run.get("start"), run["n"], run["seed"], run.get("learning_rate")


RUNNERS: dict[str, Callable[..., dict[str, Any]]] = {"finetune": finetune_point, "probe": probe_point,
                                                      "baseline": baseline_point}


def stored_runs(log: Path, plan: Plan) -> dict[tuple, dict[str, Any]]:
    """The runs of runs.jsonl that this plan can reuse, by _key: a fine-tuning run made under another step budget
    (an earlier plan's min_steps or max_passes) or another pooling (none recorded: [CLS]) is not one of its runs,
    and is made again."""
    done = {}
    if log.exists():
        for line in log.read_text().splitlines():
            run = json.loads(line)
            if run.get("kind", "finetune") == "finetune" and (run.get("max_steps") != plan.budget(run["n"])[0]
                                                             or run.get("pooling") != plan.pooling.get(run["task"])):
                continue
            done[_key(run)] = run
    return done


def run_plan(plan: Plan, runs_dir: Path, jobs: int = 1) -> dict[str, Any]:
    """Every run of the plan (resuming from runs_dir/runs.jsonl): the learning-rate grid, the chosen points,
    the probes and the baselines."""
    runs_dir.mkdir(parents=True, exist_ok=True)
    log = runs_dir / "runs.jsonl"
    done = stored_runs(log, plan)

    def run_all(todo: list[tuple]) -> None:  # (kind, task, start, n, seed, rate), as _key
        todo = [key for key in dict.fromkeys(todo) if key not in done]
        if not todo:
            return
        with ProcessPoolExecutor(max_workers=jobs, mp_context=multiprocessing.get_context("spawn"),
                                 initializer=torch.set_num_threads, initargs=(1,)) as pool:
            futures = [pool.submit(RUNNERS[kind], plan, task, *([start] if start else []), n, seed,
                                   *([rate] if rate else [])) for kind, task, start, n, seed, rate in todo]
            for future in futures:
                run = future.result()
                done[_key(run)] = run
                with log.open("a") as f:
                    f.write(json.dumps(run) + "\n")

    sizes = {task: sorted({min(n, training_size(task)) for n in plan.sizes}) for task in plan.tasks}
    pairs = [(task, start) for task in plan.tasks for start in plan.starts]
    free = [(task, start) for task, start in pairs if f"{task}/{start}" not in plan.fixed_rates]
    grid = [("finetune", task, start, s, seed, lr) for task, start in free for s in selection_sizes(sizes[task])
            for lr in plan.learning_rates for seed in plan.selection_seeds(s)]
    run_all(grid)
    rates = []
    for task, start in pairs:
        for s in selection_sizes(sizes[task]):
            fixed = plan.fixed_rates.get(f"{task}/{start}")
            if fixed is None:  # the best mean validation score wins; a tie goes to the smaller rate
                score = {lr: statistics.mean(done[("finetune", task, start, s, seed, lr)]["validation"]
                                             for seed in plan.selection_seeds(s)) for lr in plan.learning_rates}
                fixed = max(plan.learning_rates, key=lambda lr: (score[lr], -lr))
            rates.append({"task": task, "start": start, "chosen_at": s, "learning_rate": fixed})
    chosen = {(r["task"], r["start"], r["chosen_at"]): r["learning_rate"] for r in rates}
    points = [("finetune", task, start, n, seed, chosen[(task, start, governing_size(n, sizes[task]))])
              for task, start in pairs for n in sizes[task] for seed in plan.seeds(n)]
    probes = [("probe", task, start, n, seed, None) for task, start in pairs if plan.probes for n in sizes[task]
              for seed in plan.seeds(n)]
    baselines = [("baseline", task, None, n, seed, None) for task in plan.tasks for n in sizes[task]
                 for seed in plan.seeds(n)]
    run_all(points + probes + baselines)
    stored_plan = {k: v for k, v in asdict(plan).items() if k != "checkpoints"} | {"sizes": sizes}  # no local paths
    return {"plan": stored_plan, "rates": rates, "grid": [done[k] for k in grid], "points": [done[k] for k in points],
            "probes": [done[k] for k in probes], "baselines": [done[k] for k in baselines]}


# ---- what the runs say ---------------------------------------------------------------------------------------------
def summarize(results: dict[str, Any]) -> dict[str, dict[str, dict[int, dict[str, float]]]]:
    """{task: {start, "probe <start>" or "baseline": {N: {"mean", "std", "min", "max", "seeds"}}}} of the test
    accuracies over seeds (std: the sample standard deviation, 0 for one seed)."""
    table: dict = defaultdict(lambda: defaultdict(lambda: defaultdict(list)))
    for run in results["points"]:
        table[run["task"]][run["start"]][run["n"]].append(run["test"])
    for run in results.get("probes", []):
        table[run["task"]][f"probe {run['start']}"][run["n"]].append(run["test"])
    for run in results["baselines"]:
        table[run["task"]]["baseline"][run["n"]].append(run["test"])
    return {task: {start: {n: _describe(v) for n, v in sorted(by_n.items())} for start, by_n in starts.items()}
            for task, starts in table.items()}


def _describe(values: list[float]) -> dict[str, float]:
    return {"mean": statistics.mean(values), "std": statistics.stdev(values) if len(values) > 1 else 0.0,
            "min": min(values), "max": max(values), "seeds": len(values)}


def paired_differences(results: dict[str, Any], first: str = "course", second: str = "random",
                       kind: str = "points") -> dict[str, dict[int, dict[str, float]]]:
    """{task: {N: {"mean", "low", "high", "seeds"}}}: the test accuracy of ``first`` minus that of ``second``,
    seed by seed (same examples, same head), its mean and 95% confidence interval (Student's t)."""
    from scipy import stats

    scores = defaultdict(dict)
    for run in results[kind]:
        scores[(run["task"], run["n"], run["seed"])][run["start"]] = run["test"]
    by_cell: dict = defaultdict(lambda: defaultdict(list))
    for (task, n, _), pair in sorted(scores.items()):
        if first in pair and second in pair:
            by_cell[task][n].append(pair[first] - pair[second])
    out: dict = {}
    for task, by_n in by_cell.items():
        for n, diffs in sorted(by_n.items()):
            mean = statistics.mean(diffs)
            half = (stats.t.ppf(0.975, len(diffs) - 1) * statistics.stdev(diffs) / math.sqrt(len(diffs))
                    if len(diffs) > 1 else math.inf)
            out.setdefault(task, {})[n] = {"mean": mean, "low": mean - half, "high": mean + half, "seeds": len(diffs)}
    return out


def capped_while_rising(run: dict[str, Any], patience: int) -> bool:
    """A run that reached its step limit without stopping early, its best score among its last `patience`
    evaluations: it may still have been improving."""
    return not run["stopped_early"] and run["best_step"] > run["max_steps"] - patience * run["eval_every"]


def _pools_the_mean(stored_plan: dict[str, Any]) -> bool:
    """Whether every sentence task of a stored plan fine-tunes a head on the mean of the token vectors."""
    pooling = stored_plan.get("pooling") or {}
    return all(pooling.get(task) == "mean" for task in stored_plan["sizes"] if task in SENTENCE_TASKS)


def describe(stored_plan: dict[str, Any]) -> list[str]:
    """The protocol of a stored plan, one sentence per rule, for the book."""
    p = stored_plan
    sizes = ", ".join(f"{task}: {', '.join(str(n) for n in ns)}" for task, ns in p["sizes"].items())
    rates = ", ".join(f"{lr:g}" for lr in p["learning_rates"])
    return [
        f"Sizes N per task ({sizes}); {len(p['seeds_few'])} seeds up to N = {p['few_labels']}, "
        f"{len(p['seeds_many'])} above. A seed draws the N examples and the new head, the same for every start.",
        f"Each run trains for at most {p['max_passes']:g} passes over its N examples (at least {p['min_steps']} "
        f"steps of {BATCH_SIZE}), is scored on {p['validation_examples']} validation examples about once a pass "
        f"(at most every {p['min_eval_steps']} steps), stops early after {p['patience']} evaluations in a row "
        "without a new best, and ends with the weights of its best evaluation.",
        f"The learning rate is chosen per task and start from {{{rates}}} on validation, at the smallest and the "
        f"largest N (the mean over {len(p['selection_seeds_few'])} seeds at the smallest, "
        f"{len(p['selection_seeds_many'])} at the largest); every other N takes the rate chosen at the nearer "
        "of the two in log N.",
        f"Test accuracy on the same {p['test_examples']} test examples for every run; the test split chooses "
        "nothing.",
        ("A sentence task's fine-tuned head reads the mean of the token vectors, as the probes do, not the [CLS] "
         "vector, whose pooler the course model trained for sentence order." if _pools_the_mean(p) else
         "A sentence task's fine-tuned head reads the [CLS] vector; the probes read the mean of the token vectors."),
        "Linear probes: the start's encoder frozen, a logistic regression on the mean of the token vectors "
        "(per token for part of speech), its regularisation chosen on validation; the counting baselines "
        "choose theirs on validation too.",
    ]


def main(argv: Sequence[str] | None = None) -> int:
    from .shipped import write_results

    parser = argparse.ArgumentParser(prog="python -m bertlab.learning_curves", description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs-dir", type=Path, default=Path("runs/learning_curves"))
    parser.add_argument("--jobs", type=int, default=1, help="runs side by side (one CPU thread each)")
    parser.add_argument("--tasks", nargs="+", choices=CURVE_TASKS, default=list(CURVE_TASKS))
    parser.add_argument("--starts", nargs="+", choices=STARTS, default=list(STARTS))
    parser.add_argument("--checkpoint", help="the pretrained model (default: the course model in the package); "
                        "random weights take its architecture")
    parser.add_argument("--quick", action="store_true", help="a small plan (for tests); writes nothing to the package")
    # with --quick or --checkpoint the results go to <runs-dir>/learning_curves.json, not into the package
    args = parser.parse_args(argv)
    command = "python -m bertlab.learning_curves " + shlex.join(sys.argv[1:] if argv is None else argv)
    plan = Plan.quick() if args.quick else Plan(tasks=tuple(args.tasks), starts=tuple(args.starts))
    if args.checkpoint:
        plan.checkpoints = {"course": args.checkpoint}
    start = time.perf_counter()
    results = {"command": command, **run_plan(plan, args.runs_dir, args.jobs)}
    print(json.dumps(summarize(results), indent=1))
    if args.quick or args.checkpoint:  # the package's results are those of the shipped course model
        path = args.runs_dir / f"{RESULTS_NAME}.json"
        path.write_text(json.dumps(results, indent=1) + "\n")
        print("wrote", path)
    else:
        print("wrote", write_results(RESULTS_NAME, results))
    print(f"done in {time.perf_counter() - start:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
