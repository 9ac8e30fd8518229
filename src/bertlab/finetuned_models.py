"""The course model fine-tuned on each of the lecture's four cases, shipped for chapter 5's demos.

    python -m bertlab.experiments finetuned    # fine-tune and store in bertlab/assets/finetuned/<task>/

A book build has about two minutes for the whole fine-tuning chapter: enough to watch a short run learn,
not to train four models to a useful accuracy. So these are fine-tuned once, on each task's whole training
split with early stopping, and stored in float16 with their test scores; the chapter loads them.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

import torch

from .shipped import FINETUNED, course_model_dir, finetuned_model_dir

SCORES_NAME = "scores.json"
# One recipe per task: steps of 32 examples, sequence length (pairs and QA read two segments), and where a
# task needs them, its own pooling and learning rate.
RECIPES: dict[str, dict[str, Any]] = {
    "sentiment": dict(max_steps=400, max_length=64),
    "pos": dict(max_steps=1000, max_length=64),
    # the mean of the tokens: [CLS] (a pooler trained for sentence order) stayed at chance on the earlier
    # same-article task and trailed the mean in a probe of this one; 4,000 steps, about two passes over the 60,000
    # training pairs (with one pass, the best validation score came at 1,650 of 2,000 steps)
    "pair": dict(max_steps=4000, max_length=128, pooling="mean", learning_rate=3e-4),
    "qa": dict(max_steps=500, max_length=128),
}
SHARED = dict(batch_size=32, learning_rate=5e-4, eval_every=50, eval_batches=8, test_batches=32, seed=0)


def load_scores(task: str) -> dict[str, Any]:
    """How the shipped model for `task` was made and how well it does (test_* are on the test split)."""
    return json.loads((finetuned_model_dir(task) / SCORES_NAME).read_text(encoding="utf-8"))


def finetune_and_store(task: str, command: str, checkpoint: Path | None = None) -> dict[str, Any]:
    """Fine-tune the course model on `task` (whole training split, early stopping) and store it in the package.

    Chapter: book/finetuning.md
    """
    from .finetune import FinetuneConfig, finetune
    from .tokenizer import save_tokenizer

    with tempfile.TemporaryDirectory() as tmp:
        config = FinetuneConfig(task=task, checkpoint=str(checkpoint or course_model_dir()), output_dir=tmp,
                                keep_best=True, save_total_limit=1, progress=False, **{**SHARED, **RECIPES[task]})
        result = finetune(config)
    destination = FINETUNED / task
    result.model.save_pretrained(destination, dtype=torch.float16)  # half the size; loads into float32
    save_tokenizer(result.tokenizer, destination)
    scores = {"command": command, "settings": {**SHARED, **RECIPES[task]}, "seconds": round(result.seconds, 1),
              **{k: v for k, v in result.metrics.items() if k.startswith(("test_", "best_eval_"))}}
    (destination / SCORES_NAME).write_text(json.dumps(scores, indent=1) + "\n", encoding="utf-8")
    return scores
