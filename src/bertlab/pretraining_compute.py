"""The gain over random weights against pretraining compute: the learning curves' protocol at one N, for
checkpoints along the course model's pretraining.

    python -m bertlab.pretraining_compute [NAME=DIR:STEPS ...] --runs-dir runs/curves --jobs 2

(for example stage3-5000=runs/experiments/stage3/checkpoint-5000:10000, a checkpoint of stage 3 and its steps
after stage 1).

Run it with the learning curves' own ``--runs-dir``: the course model's and random weights' runs are then the
curves' own (the same rate, seeds and examples), and only the other checkpoints are trained. Each checkpoint
chooses its learning rate on validation as the curves' starts do.
"""

from __future__ import annotations

import argparse
import json
import shlex
import shutil
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from .learning_curves import RESULTS_NAME, Plan, governing_size, run_plan
from .shipped import course_model_dir

SWEEP_NAME = "pretraining_compute"
SWEEP_SIZES = (300,)
SWEEP_TASKS = ("sentiment", "pos")


def stacked_stage1(directory: Path) -> Path:
    """The course model's starting point: the shipped 2-layer stage-1 model stacked to the course architecture,
    before any stage-2 step (config and tokenizer from the course model)."""
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


def shipped_steps() -> int:
    """Steps after stage 1 behind the shipped course model: all of stage 2's, and stage 3's up to the checkpoint
    it was exported from."""
    from .experiments import COURSE
    from .shipped import load_training, steps_trained

    return COURSE["max_steps"] + steps_trained(load_training(course_model_dir()))


def pretraining_compute(steps: int) -> dict[str, float]:
    """Pretraining compute of the course model ``steps`` steps after stage 1 (stages 2 and 3 share their batch
    size and sequence length), in millions of token-layers (tokens seen in training times encoder layers: the
    part of the cost that grows with depth), and as a fraction of the shipped model's."""
    from .checkpoint import read_config
    from .experiments import COURSE
    from .shipped import STAGE1, load_training

    stage1 = load_training(STAGE1)["args"]
    layers1 = read_config(STAGE1).num_hidden_layers
    layers = read_config(course_model_dir()).num_hidden_layers
    first = stage1["max_steps"] * stage1["batch_size"] * stage1["max_length"] * layers1 / 1e6
    per_step = COURSE["batch_size"] * COURSE["max_length"] * layers / 1e6
    shipped = first + shipped_steps() * per_step
    return {"steps_after_stage1": steps, "token_layers_millions": round(first + steps * per_step, 1),
            "fraction": round((first + steps * per_step) / shipped, 3)}


def parse_sweep(items: Sequence[str]) -> dict[str, tuple[str, int]]:
    """``NAME=DIR:STEPS`` arguments -> {name: (directory, steps after stage 1)}."""
    extra = {}
    for item in items:
        name, _, rest = item.partition("=")
        directory, _, steps = rest.rpartition(":")
        if not name or not directory or not steps.isdigit():
            raise ValueError(f"--sweep takes NAME=DIR:STEPS, got {item!r}")
        extra[name] = (directory, int(steps))
    return extra


def run_sweep(runs_dir: Path, extra: dict[str, tuple[str, int]], jobs: int = 1) -> dict[str, Any]:
    """The protocol at N in SWEEP_SIZES for checkpoints along the course model's pretraining: before stage 2, any
    ``extra`` checkpoints, the end of stage 2, and the shipped model. The course model and random weights keep the
    rates the learning curves chose for them (their runs are the curves' own); every other checkpoint chooses its
    own on validation."""
    from .experiments import COURSE, cross_evaluate
    from .shipped import STAGE2, load_results

    curves = load_results(RESULTS_NAME)
    sizes = curves["plan"]["sizes"]
    kept = {(r["task"], r["start"]): r["learning_rate"] for r in curves["rates"]
            if r["task"] in SWEEP_TASKS and r["chosen_at"] == governing_size(SWEEP_SIZES[0], sizes[r["task"]])}
    checkpoints = {"stage2-0": (str(stacked_stage1(runs_dir / "stacked-stage1")), 0), **extra,
                   "stage2": (str(STAGE2), COURSE["max_steps"]),
                   "course": (str(course_model_dir()), shipped_steps())}
    checkpoints = dict(sorted(checkpoints.items(), key=lambda item: item[1][1]))  # by compute
    fixed = {f"{task}/{start}": kept[(task, start)] for task in SWEEP_TASKS for start in ("course", "random")}
    plan = Plan(tasks=SWEEP_TASKS, sizes=SWEEP_SIZES, starts=(*checkpoints, "random"), probes=False,
                checkpoints={name: path for name, (path, _) in checkpoints.items()}, fixed_rates=fixed)
    results = run_plan(plan, runs_dir, jobs)
    mlm = cross_evaluate({name: path for name, (path, _) in checkpoints.items()})
    results["checkpoints"] = {name: {**pretraining_compute(steps), "mlm_accuracy": mlm[name]["mlm_accuracy"],
                                     "mlm_top5_accuracy": mlm[name]["mlm_top5_accuracy"]}
                              for name, (_, steps) in checkpoints.items()}
    return results


def main(argv: Sequence[str] | None = None) -> int:
    from .shipped import write_results

    parser = argparse.ArgumentParser(prog="python -m bertlab.pretraining_compute", description=__doc__.split("\n\n")[0])
    parser.add_argument("checkpoints", nargs="*", metavar="NAME=DIR:STEPS",
                        help="checkpoints of stage 2 or 3, each STEPS steps after stage 1, besides the course model "
                        "before and after stage 2 and the shipped model")
    parser.add_argument("--runs-dir", type=Path, default=Path("runs/learning_curves"),
                        help="the learning curves' own runs directory, whose course and random runs it shares")
    parser.add_argument("--jobs", type=int, default=1, help="runs side by side (one CPU thread each)")
    args = parser.parse_args(argv)
    try:
        extra = parse_sweep(args.checkpoints)
    except ValueError as error:
        parser.error(str(error))
    command = "python -m bertlab.pretraining_compute " + shlex.join(sys.argv[1:] if argv is None else argv)
    results = {"command": command, **run_sweep(args.runs_dir, extra, args.jobs)}
    print(json.dumps(results["checkpoints"], indent=1))
    print("wrote", write_results(SWEEP_NAME, results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
