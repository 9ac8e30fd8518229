"""What bertlab ships besides code, and where: the course tokenizer and model (with its earlier stages), the
three NSP/SOP pair models, the fine-tuned demo models and the results of the course's experiments, with the
loaders that the book uses. Every asset path is defined here once; `bertlab.experiments` makes the assets
(``python -m bertlab.experiments --help``).

Chapter: book/finetuning.md

At import time this module imports only `bertlab.checkpoint_files`, so that the low-level modules (the tokenizer)
can take their default paths from it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from .checkpoint_files import CONFIG_NAME, SAFETENSORS_NAME

ASSETS = Path(__file__).resolve().parent / "assets"
COURSE_TOKENIZER_DIR = ASSETS / "tokenizer"
COURSE_MODEL = ASSETS / "course_model"
STAGE1 = ASSETS / "course_model_stage1"  # the course model's first two stages (see bertlab.experiments)
STAGE2 = ASSETS / "course_model_stage2"
PAIR_MODELS = ASSETS / "pair_models"
PAIR_MODELS_LONGER = ASSETS / "pair_models_longer"  # the same three trained on to three times the budget
FINETUNED = ASSETS / "finetuned"
FINETUNED_TASKS = ("sentiment", "pos", "pair", "qa")  # one shipped fine-tuned model per lecture case
RESULTS = ASSETS / "results"
TRAINING_NAME = "training.json"  # next to a shipped model: the command, wall time and history that made it


def course_model_dir() -> Path:
    """The course's own Chinese BERT (the ``course`` preset, masked LM + SOP on People's Daily and the review
    texts, in three stages).

    How it was trained, and how to train it again: ``python -m bertlab.experiments --help``.
    """
    if not (COURSE_MODEL / CONFIG_NAME).exists():
        raise ValueError(f"the course model is missing from {COURSE_MODEL}; rebuild it with: "
                         "python -m bertlab.experiments all")
    return COURSE_MODEL


def pair_model_dir(task: str, longer: bool = False) -> Path:
    """The shipped model pretrained with masked LM plus ``task``: "none", "nsp" or "sop" (same budget for all);
    with ``longer``, the same model trained on to three times that budget."""
    from .pretraining_data import PAIR_TASKS

    if task not in PAIR_TASKS:
        raise ValueError(f"task must be one of {PAIR_TASKS}, got {task!r}.")
    return (PAIR_MODELS_LONGER if longer else PAIR_MODELS) / task


def finetuned_model_dir(task: str) -> Path:
    """The shipped model for `task` ("sentiment", "pos", "pair" or "qa"): config, float16 weights, tokenizer,
    and scores.json (its validation and test scores, and the command and settings that made it)."""
    if task not in FINETUNED_TASKS:
        raise ValueError(f"task must be one of {FINETUNED_TASKS}, got {task!r}.")
    path = FINETUNED / task
    if not (path / SAFETENSORS_NAME).exists():
        raise ValueError(f"no fine-tuned model in {path}; make them with: python -m bertlab.experiments finetuned")
    return path


def load_results(name: str) -> dict[str, Any]:
    """A results file of the course's experiments, e.g. "pair_tasks", "finetune" or "learning_curves"."""
    path = RESULTS / f"{name}.json"
    if not path.exists():
        known = sorted(p.stem for p in RESULTS.glob("*.json"))
        raise ValueError(f"no results named {name!r} (known: {known}); they are made by python -m bertlab.experiments")
    return json.loads(path.read_text(encoding="utf-8"))


def write_results(name: str, results: dict[str, Any]) -> Path:
    """Store a results file (`load_results` reads it): plain JSON, Chinese kept as it is."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps(results, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    return path


def load_training(directory: str | Path) -> dict[str, Any]:
    """How a shipped model was trained: the command, its wall time, and its loss/accuracy history."""
    return json.loads(Path(directory, TRAINING_NAME).read_text(encoding="utf-8"))


def steps_trained(training: dict[str, Any]) -> int:
    """The pretraining steps behind a shipped model (``load_training``'s record): the step of the checkpoint it
    was exported from, which is below ``args["max_steps"]`` for a run stopped early in its schedule (stage 3)."""
    return int(str(training.get("checkpoint", "")).rpartition("-")[2] or training["args"]["max_steps"])
