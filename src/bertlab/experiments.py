"""The course's experiments, whose models and results ship in ``bertlab/assets`` for the book to load.

    python -m bertlab.experiments pretrain   # MLM only, MLM + NSP, MLM + SOP: same data, budget and seed
    python -m bertlab.experiments longer     # each of the three trained on to three times the budget
    python -m bertlab.experiments stage1     # the MLM + SOP run trained on to 6,000 steps: the course model's stage 1
    python -m bertlab.experiments course     # stage 2: stage 1 stacked to 4 layers, trained on more text
    python -m bertlab.experiments stage3     # stage 2 trained on, same data: the course model
    python -m bertlab.experiments minilm     # all-MiniLM-L6-v2's layers with new Chinese embeddings (not shipped)
    python -m bertlab.experiments export     # each run's last checkpoint -> bertlab/assets
    python -m bertlab.experiments evaluate   # held-out MLM, NSP and SOP accuracy of each -> results/pair_tasks.json
    python -m bertlab.experiments finetune   # downstream tasks from each model and from random weights, under
                                             # the learning curves' protocol -> results/pair_downstream.json
    python -m bertlab.experiments finetuned  # the course model fine-tuned on each lecture case -> assets/finetuned
    python -m bertlab.experiments transfer   # the MiniLM start (after minilm) under the learning curves' protocol
                                             # -> results/transfer_curves.json
    python -m bertlab.experiments all        # all of these in a row (several hours on a 2-core CPU)

The pretraining comparison repeats, at a very small scale, the cross-evaluation of ALBERT
(Lan et al., 2020, Table 5): each model is asked both sentence-pair questions, including the one it
never trained on. Pretraining from scratch takes too long for a book build; the book loads what this
module wrote, and re-runs only the cheap parts (evaluation, short fine-tuning).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import shlex
import shutil
import sys
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import torch

from .checkpoint import CONFIG_NAME, SAFETENSORS_NAME, read_state_dict, write_weights
from .device import best_device
from .evaluate import evaluate_pretraining
from .heads import BertForPreTraining
from .pretraining_data import PAIR_TASKS, PretrainingCollator, build_pretraining_dataset
from .shipped import (
    COURSE_MODEL,
    FINETUNED_TASKS,
    PAIR_MODELS,
    STAGE1,
    STAGE2,
    TRAINING_NAME,
    pair_model_dir,
    write_results,
)
from .tokenizer import TOKENIZER_FILES, load_tokenizer
from .trainer import ARGS_NAME, HISTORY_NAME, iterate_batches, list_checkpoints

RUN_NAME = "run.json"

# One budget for the three pretraining runs (about 20 minutes each on one CPU core, the three side by side).
PRETRAIN = dict(preset="tiny", max_steps=1500, batch_size=64, max_length=64, learning_rate=1e-3,
                eval_every=250, eval_batches=16, log_every=10, seed=0)
# The three models trained on past the plateau of character frequencies (stage 1 below left it after about 3,000
# steps): each from its 1,500-step weights, 3,000 more steps with a fresh schedule, the same data and settings.
LONGER = dict(PRETRAIN, max_steps=3000, eval_every=500, save_every=500)
# Downstream, every pair model (and its longer twin, and random weights of its architecture) is fine-tuned under the
# learning curves' protocol (bertlab.learning_curves: rate chosen on validation, early stopping, seeds, probes) at
# one N of labelled examples per task.
DOWNSTREAM = ("sentiment", "pair")
DOWNSTREAM_SIZE = 1000
DOWNSTREAM_NAME = "pair_downstream"
TRANSFER_NAME = "transfer_curves"
# The course model, in three stages. Stage 1 (assets/course_model_stage1): the MLM + SOP pair model trained on to
# 6,000 steps, 2 layers, People's Daily only: it is past the plateau of character frequencies, where a model
# trained from scratch spends its first thousands of steps. Stage 2 (assets/course_model_stage2): stage 1 stacked on
# itself to 4 layers (progressive stacking), trained on People's Daily and the review training texts (labels
# unused), sequences of 128 tokens. Stage 3 (the course model): stage 2 trained on with the same data and sequences
# for 12,000 more steps, a fresh schedule at half the peak rate (8,000 left the held-out top-5 of an earlier course
# model at 54.4%, still rising by half a point per 1,000 steps). The compute sweep of
# `python -m bertlab.learning_curves --sweep` showed the downstream gain still growing at the end of stage 2, which
# is why stage 3 exists. Resumable: the same command goes on from the last checkpoint in runs/.../course or /stage3.
STAGE1_STEPS = 6000
COURSE = dict(preset="course", task="sop", corpus="peoples_daily+reviews", init_from=str(STAGE1), max_steps=5000,
              batch_size=32, max_length=128, learning_rate=1e-3, eval_every=500, eval_batches=16, save_every=500,
              log_every=50, seed=0)
STAGE3 = dict(COURSE, init_from=str(STAGE2), max_steps=12000, learning_rate=5e-4, eval_every=1000, log_every=100,
              seed=1)
# A real pretrained encoder adapted to Chinese (Artetxe et al. 2020): the bundled English all-MiniLM-L6-v2's layers,
# frozen, with new token embeddings for the course tokenizer learned by masked LM on the same unlabelled text.
MINILM = dict(task="none", corpus="peoples_daily+reviews", max_steps=1000, batch_size=32, max_length=64,
              learning_rate=1e-3, eval_every=250, eval_batches=8, save_every=250, log_every=25, seed=0)
TEST_MASKING_SEED = 2020  # cross_evaluate masks the held-out test articles the same way for every model
COURSE_STAGES = {"course": COURSE_MODEL, "stage 2": STAGE2, "stage 1": STAGE1}  # results/course_model.json


# ---- pretraining and export ---------------------------------------------------------------------------------
def pretrain_pair_models(runs_dir: Path, command: str, tasks: Sequence[str] = PAIR_TASKS,
                         **overrides: Any) -> dict[str, float]:
    """Train the models into runs_dir/<task> (with run.json: the command and wall time); returns the wall times."""
    from .pretrain import PretrainConfig, pretrain

    seconds = {}
    for task in tasks:
        config = PretrainConfig(task=task, output_dir=str(runs_dir / task), overwrite_output_dir=True,
                                progress=False, **{**PRETRAIN, **overrides})
        seconds[task] = pretrain(config).seconds
        record_run(runs_dir / task, command, seconds[task])
    return seconds


def train_longer(runs_dir: Path, command: str, task: str, **overrides: Any) -> float:
    """The pair model of ``task`` trained on (LONGER), in runs_dir/longer/<task>."""
    return train_in_pieces(runs_dir / "longer" / task, command,
                           {**LONGER, "task": task, "init_from": str(pair_model_dir(task))}, **overrides)


def record_run(run_dir: Path, command: str, seconds: float) -> None:
    """run.json next to a run's checkpoints: the command that made it and its wall time (export copies them)."""
    (run_dir / RUN_NAME).write_text(json.dumps({"command": command, "seconds": round(seconds, 1)}) + "\n")


def train_stage1(runs_dir: Path, command: str) -> float:
    """Stage 1 of the course model: go on from the last checkpoint of the MLM + SOP run (runs_dir/pretrain/sop) to
    STAGE1_STEPS steps with a fresh learning-rate schedule, in runs_dir/stage1."""
    from .pretrain import PretrainConfig, pretrain

    stage1 = runs_dir / "stage1"
    if not list_checkpoints(stage1):
        checkpoints = list_checkpoints(runs_dir / "pretrain" / "sop")
        if not checkpoints:
            raise ValueError(f"{runs_dir / 'pretrain' / 'sop'} holds no checkpoint; run the pretrain step first.")
        shutil.copytree(checkpoints[-1], stage1 / checkpoints[-1].name)
    config = PretrainConfig(task="sop", output_dir=str(stage1), resume_from="latest", progress=False,
                            **{**PRETRAIN, "max_steps": STAGE1_STEPS, "eval_every": 500, "save_every": 500})
    seconds = pretrain(config).seconds
    record_run(stage1, command, seconds)
    return seconds


def train_in_pieces(run_dir: Path, command: str, settings: Mapping[str, Any], **overrides: Any) -> float:
    """Pretrain with ``settings`` in run_dir, going on from its last checkpoint if there is one (so that a long
    run can be done in pieces, e.g. with --stop-at). run.json adds up the wall time of the pieces."""
    from .pretrain import PretrainConfig, pretrain

    resume = "latest" if list_checkpoints(run_dir) else None
    config = PretrainConfig(output_dir=str(run_dir), resume_from=resume, progress=False, **{**settings, **overrides})
    seconds = pretrain(config).seconds
    earlier = json.loads((run_dir / RUN_NAME).read_text())["seconds"] if resume and (run_dir / RUN_NAME).exists() else 0
    record_run(run_dir, command, earlier + seconds)
    return seconds


def train_course_model(runs_dir: Path, command: str, **overrides: Any) -> float:
    """Stage 2 of the course model (COURSE), in runs_dir/course."""
    return train_in_pieces(runs_dir / "course", command, COURSE, **overrides)


def train_stage3(runs_dir: Path, command: str, **overrides: Any) -> float:
    """Stage 3, the course model (STAGE3), in runs_dir/stage3."""
    return train_in_pieces(runs_dir / "stage3", command, STAGE3, **overrides)


def train_minilm_transfer(runs_dir: Path, command: str, **overrides: Any) -> float:
    """all-MiniLM-L6-v2 with new Chinese token embeddings (its layers frozen), in runs_dir/minilm."""
    from .checkpoint import bundled_minilm_dir

    return train_in_pieces(runs_dir / "minilm", command, {**MINILM, "transfer_from": str(bundled_minilm_dir())},
                           **overrides)


def export_model(run_dir: Path, destination: Path) -> Path:
    """Copy a run's last checkpoint into ``destination``: weights in float16 (half the size; the models load them
    into float32), config, tokenizer, and training.json (command, wall time, settings, history, final metrics)."""
    checkpoints = list_checkpoints(run_dir)
    if not checkpoints:
        raise ValueError(f"{run_dir} holds no checkpoint-<step> directory; run the pretraining first.")
    last = checkpoints[-1]
    shutil.rmtree(destination, ignore_errors=True)
    destination.mkdir(parents=True)
    write_weights(read_state_dict(last), destination / SAFETENSORS_NAME, torch.float16)
    for name in (CONFIG_NAME, *TOKENIZER_FILES, "tokenizer_config.json", "special_tokens_map.json"):
        if (last / name).exists():
            shutil.copy2(last / name, destination / name)
    history = json.loads((run_dir / HISTORY_NAME).read_text())
    args = json.loads((last / ARGS_NAME).read_text())
    evals = [h for h in history if any(k.startswith("eval_") for k in h)]
    run = json.loads((run_dir / RUN_NAME).read_text()) if (run_dir / RUN_NAME).exists() else {}
    training = {"command": run.get("command"), "seconds": run.get("seconds"), "checkpoint": last.name, "args": args,
                "history": history,
                "metrics": {k: v for k, v in evals[-1].items() if k != "step"} if evals else {}}
    (destination / TRAINING_NAME).write_text(json.dumps(training, indent=1, ensure_ascii=False) + "\n")
    return destination


def export_all(runs_dir: Path) -> None:
    """Every run that exists in runs_dir -> bertlab/assets: the pair models, stages 1 and 2, and the course model."""
    runs = {runs_dir / "pretrain" / task: PAIR_MODELS / task for task in PAIR_TASKS}
    runs |= {runs_dir / "longer" / task: pair_model_dir(task, longer=True) for task in PAIR_TASKS}
    runs |= {runs_dir / "stage1": STAGE1, runs_dir / "course": STAGE2, runs_dir / "stage3": COURSE_MODEL}
    for run, destination in runs.items():
        if list_checkpoints(run):
            print("exported", export_model(run, destination))


# ---- the cross-evaluation -------------------------------------------------------------------------------------
def held_out_instances(task: str, tokenizer: Any, max_length: int, max_examples: int | None, seed: int = 0) -> Any:
    """Unmasked instances for ``task`` from the test articles, which no model saw in training."""
    from .pretrain import peoples_daily_documents

    rows = build_pretraining_dataset(peoples_daily_documents("test", task), tokenizer, task=task,
                                     max_length=max_length, seed=seed)
    return rows if max_examples is None else rows.select(range(min(max_examples, len(rows))))


def cross_evaluate(model_dirs: Mapping[str, str | Path], *, max_length: int = 64, max_examples: int | None = 1024,
                   batch_size: int = 64, device: torch.device | None = None) -> dict[str, dict[str, float]]:
    """Each model's MLM top-1 and top-5 accuracy (single segments) and its NSP and SOP accuracy (held-out
    pairs), the same masks for every model. A model never trained on a pair task answers with an untrained head:
    chance.

    Chapter: book/nsp_sop.md
    """
    device = device or best_device()
    tokenizer = load_tokenizer()
    data = {task: held_out_instances(task, tokenizer, max_length, max_examples) for task in PAIR_TASKS}
    table = {}
    for name, directory in model_dirs.items():
        model = BertForPreTraining.from_pretrained(directory).to(device).eval()
        scores = {}
        for task, rows in data.items():
            collate = PretrainingCollator(tokenizer, generator=torch.Generator().manual_seed(TEST_MASKING_SEED))
            metrics = evaluate_pretraining(model, iterate_batches(rows, collate, batch_size), device)
            if task == "none":
                scores.update(mlm_accuracy=metrics["mlm_accuracy"], mlm_top5_accuracy=metrics["mlm_top5_accuracy"])
            else:
                scores[f"{task}_accuracy"] = metrics["sentence_accuracy"]
        table[name] = scores
    return table


# ---- downstream ---------------------------------------------------------------------------------------------
def pair_model_plan() -> Any:
    """The learning curves' protocol for the pair models: sentiment and the pair task at DOWNSTREAM_SIZE labelled
    examples, from each of the three pair models, each trained on (start "<task>-longer"), and random weights of
    their architecture ("none-random")."""
    from .learning_curves import Plan

    checkpoints = {task: str(pair_model_dir(task)) for task in PAIR_TASKS}
    checkpoints |= {f"{task}-longer": str(pair_model_dir(task, longer=True)) for task in PAIR_TASKS}
    return Plan(tasks=DOWNSTREAM, sizes=(DOWNSTREAM_SIZE,), starts=(*checkpoints, "none-random"),
                checkpoints=checkpoints)


def transfer_plan(checkpoint: str) -> Any:
    """all-MiniLM-L6-v2 with Chinese embeddings (the minilm step) and its architecture from random weights, under
    the learning curves' protocol, on sentiment at N = 300 only: a step of this 6-layer, 384-wide model costs about
    ten of the course model's on a CPU, and 300 examples is the low-label end where pretraining matters."""
    from .learning_curves import Plan

    return Plan(tasks=("sentiment",), sizes=(300,), starts=("minilm", "minilm-random"),
                checkpoints={"minilm": checkpoint})


def transfer_training(checkpoint: Path) -> dict[str, Any]:
    """How the adapted MiniLM was trained (steps, CPU minutes) and its held-out MLM top-1 beside the course
    model's, on the same masked test sentences."""
    run = json.loads((checkpoint.parent / RUN_NAME).read_text())
    mlm = cross_evaluate({"minilm": checkpoint, "course": COURSE_MODEL})
    return {"steps": int(checkpoint.name.split("-")[-1]), "minutes": round(run["seconds"] / 60, 1),
            "command": run["command"], "mlm_accuracy": mlm["minilm"]["mlm_accuracy"],
            "course_mlm_accuracy": mlm["course"]["mlm_accuracy"]}


# ---- the command line ---------------------------------------------------------------------------------------
def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bertlab.experiments", description=__doc__.split("\n\n")[1],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("step", choices=("pretrain", "longer", "stage1", "course", "stage3", "minilm", "export",
                                         "evaluate", "finetune", "finetuned", "transfer", "all"))
    parser.add_argument("--runs-dir", type=Path, default=Path("runs/experiments"), help="where the runs are written")
    parser.add_argument("--pretrain-steps", type=int, default=PRETRAIN["max_steps"])
    parser.add_argument("--jobs", type=int, default=1, help="fine-tuning runs side by side (one CPU thread each)")
    parser.add_argument("--only", choices=PAIR_TASKS,
                        help="pretrain, longer: one of the three models (run them side by side)")
    parser.add_argument("--tasks", nargs="+", choices=FINETUNED_TASKS, default=list(FINETUNED_TASKS),
                        help="finetuned: the shipped fine-tuned models to make (default: all four)")
    parser.add_argument("--course-steps", type=int, default=COURSE["max_steps"])
    parser.add_argument("--stop-at", "--course-stop-at", dest="stop_at", type=int,
                        help="course, stage3, minilm: end this piece at this step (the same command resumes it)")
    args = parser.parse_args(argv)
    command = "python -m bertlab.experiments " + shlex.join(sys.argv[1:] if argv is None else argv)
    steps = (("pretrain", "export", "longer", "stage1", "export", "course", "export", "stage3", "export", "evaluate",
              "finetune", "finetuned")
             if args.step == "all" else (args.step,))
    start = time.perf_counter()
    if "pretrain" in steps:
        tasks = (args.only,) if args.only else PAIR_TASKS
        print(pretrain_pair_models(args.runs_dir / "pretrain", command, tasks, max_steps=args.pretrain_steps))
    for step in steps:  # in order: "all" exports each stage before the next one starts from it
        if step == "stage1":
            print(train_stage1(args.runs_dir, command))
        elif step == "course":
            print(train_course_model(args.runs_dir, command, max_steps=args.course_steps,
                                     stop_at_step=args.stop_at))
        elif step == "stage3":
            print(train_stage3(args.runs_dir, command, stop_at_step=args.stop_at))
        elif step == "longer":
            for task in (args.only,) if args.only else PAIR_TASKS:
                print(train_longer(args.runs_dir, command, task, stop_at_step=args.stop_at))
        elif step == "minilm":
            print(train_minilm_transfer(args.runs_dir, command, stop_at_step=args.stop_at))
        elif step == "export":
            export_all(args.runs_dir)
    if "evaluate" in steps:
        table = cross_evaluate({task: pair_model_dir(task) for task in PAIR_TASKS})
        longer = cross_evaluate({task: pair_model_dir(task, longer=True) for task in PAIR_TASKS})
        print(json.dumps({"models": table, "longer": longer}, indent=1))
        write_results("pair_tasks", {"command": command, "models": table, "longer": longer})
        course = {length: cross_evaluate(COURSE_STAGES, max_length=length, max_examples=None) for length in (64, 128)}
        print(json.dumps(course, indent=1))
        write_results("course_model", {"command": command, "held_out": "every test article of People's Daily",
                                       "by_max_length": course})
    if "finetune" in steps:
        from .learning_curves import run_plan

        results = run_plan(pair_model_plan(), args.runs_dir / "downstream", args.jobs)
        print(json.dumps([{k: r[k] for k in ("task", "start", "seed", "test")} for r in results["points"]]))
        write_results(DOWNSTREAM_NAME, {"command": command, **results})
    if "transfer" in steps:
        from .learning_curves import run_plan

        checkpoint = list_checkpoints(args.runs_dir / "minilm")[-1]
        results = run_plan(transfer_plan(str(checkpoint)), args.runs_dir / "transfer", args.jobs)
        results["minilm_training"] = transfer_training(checkpoint)
        write_results(TRANSFER_NAME, {"command": command, **results})
    if "finetuned" in steps:
        from .finetuned_models import finetune_and_store

        with ProcessPoolExecutor(max_workers=args.jobs, mp_context=multiprocessing.get_context("spawn"),
                                 initializer=torch.set_num_threads, initargs=(1,)) as pool:
            futures = {task: pool.submit(finetune_and_store, task, command) for task in args.tasks}
            for task, future in futures.items():
                print(task, json.dumps(future.result()))
    print(f"done in {time.perf_counter() - start:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
