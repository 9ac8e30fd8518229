"""Fine-tuning a pretrained BERT (or the same architecture from random weights) on one task.

    result = finetune(FinetuneConfig(task="sentiment", checkpoint="runs/pretrain/checkpoint-2000"))
    result.metrics  # eval_accuracy (validation), test_accuracy; QA: exact_match and f1

``init="random"`` trains the same architecture from random weights with the same budget: the
difference between the two is what pretraining bought.
"""

from __future__ import annotations

import dataclasses
import json
import random
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .checkpoint import read_config, resolve_checkpoint_dir
from .config import PRESETS, BertConfig
from .distributed import DistInfo, broadcast, init_distributed
from .finetune_tasks import TASKS, FinetuneTask, pad_batch, task_loss
from .options import option
from .tokenizer import holds_tokenizer, load_checkpoint_tokenizer, load_tokenizer, save_tokenizer
from .trainer import TrainArgs, Trainer, TrainResult, iterate_batches, set_seed

TEST_METRICS_NAME = "test_metrics.json"


@dataclass
class FinetuneConfig(TrainArgs):
    """Everything a fine-tuning run depends on (see also :class:`~bertlab.trainer.TrainArgs`).

    Chapter: book/finetuning.md
    """

    output_dir: str = option("runs/finetune", "directory for checkpoints (checkpoint-<step>/) and history.json")
    task: str = option("sentiment", "sentiment, pos (part of speech), pair (sentence pairs) or qa (span extraction)",
                       choices=tuple(TASKS))
    checkpoint: str | None = option(None, "pretrained checkpoint directory (config.json, weights, tokenizer)",
                                    metavar="DIR")
    init: str = option("pretrained", "pretrained: the checkpoint's weights; random: its architecture, random weights",
                       choices=("pretrained", "random"))
    preset: str = option("tiny", "model size for init=random without a checkpoint", choices=tuple(PRESETS))
    tokenizer: str | None = option(None, "tokenizer directory (default: the checkpoint's, else the course tokenizer)",
                                   metavar="DIR")
    learning_rate: float = option(5e-5, "peak learning rate of AdamW")
    max_length: int = option(128, "tokens per example, [CLS] and [SEP] included (longer inputs are truncated)")
    max_answer_length: int = option(30, "qa: longest answer span (in tokens) that decoding considers")
    max_train_examples: int | None = option(None, "use N training examples drawn at random (for quick runs)",
                                            metavar="N")
    eval_every: int = option(100, "evaluate on the validation split every N steps (0: only at the end)")
    test_batches: int | None = option(None, "score the final model on at most this many test batches "
                                      "(default: as many as eval_batches)", metavar="N")
    pooling: str | None = option(None, "sentence tasks: classify the [CLS] vector (cls) or the mean of the token "
                                 "vectors (mean); default: what the checkpoint's config says (cls)",
                                 choices=("cls", "mean"))
    keep_best: bool = option(False, "end with the weights of the best validation score, not the last")
    patience: int | None = option(None, "early stopping: end the run once this many evaluations in a row have not "
                                  "beaten the best validation score (needs keep_best)", metavar="N")

    def validate(self) -> None:
        super().validate()
        if self.init == "pretrained" and not self.checkpoint:
            raise ValueError("init='pretrained' needs a checkpoint directory (--checkpoint DIR); "
                             "use init='random' to train from random weights.")
        if self.max_length < 8:
            raise ValueError(f"max_length must be >= 8, got {self.max_length}.")
        if self.max_answer_length < 1:
            raise ValueError(f"max_answer_length must be >= 1, got {self.max_answer_length}.")
        if self.test_batches is not None and self.test_batches < 1:
            raise ValueError(f"test_batches must be >= 1 or None, got {self.test_batches}.")
        if self.max_train_examples is not None and self.max_train_examples < 1:
            raise ValueError(f"max_train_examples must be >= 1, got {self.max_train_examples}.")
        if self.patience is not None and (self.patience < 1 or not self.keep_best or not self.eval_every):
            raise ValueError(f"patience must be >= 1, with keep_best and eval_every > 0 (got patience={self.patience}, "
                             f"keep_best={self.keep_best}, eval_every={self.eval_every}).")


def finetune_tokenizer(config: FinetuneConfig, checkpoint: Path | None) -> Any:
    """The tokenizer given, else the checkpoint's own (saved next to its weights), else the course one."""
    if config.tokenizer:
        return load_tokenizer(config.tokenizer)
    if checkpoint is not None and holds_tokenizer(checkpoint):
        return load_checkpoint_tokenizer(checkpoint)
    return load_tokenizer()


def build_model(config: FinetuneConfig, task: FinetuneTask, num_labels: int, checkpoint: Path | None,
                tokenizer: Any, stored: BertConfig | None = None) -> nn.Module:
    """The task model: the checkpoint's encoder plus a new head, or the same architecture at random.

    ``stored`` is the checkpoint's config, already read (`finetune` reads it once, before loading data).
    """
    set_seed(config.seed)
    pooling = {"classifier_pooling": config.pooling} if config.pooling else {}
    if config.init == "pretrained":
        model = task.model_class.from_pretrained(checkpoint, num_labels=num_labels, **pooling)
    else:
        if checkpoint is not None:
            bert_config = dataclasses.replace(stored or read_config(checkpoint), num_labels=num_labels, **pooling)
        else:
            bert_config = BertConfig.from_preset(config.preset, vocab_size=len(tokenizer), num_labels=num_labels,
                                                 pad_token_id=tokenizer.pad_token_id, **pooling)
        model = task.model_class(bert_config)
    seeded_head(model, config.seed)
    return model


@torch.no_grad()
def seeded_head(model: nn.Module, seed: int) -> None:
    """Draw the task head's weights (BERT's N(0, initializer_range), zero biases) from ``seed`` alone.

    The head is new in every start, but how much of the random stream the encoder used first differs between a
    pretrained start and a random one. Drawn apart, a run from each start with one seed begins with the same
    head, so a paired difference between them measures the encoder alone.
    """
    generator = torch.Generator().manual_seed(seed)
    std = model.config.initializer_range
    for name, parameter in model.named_parameters():
        if name.startswith(model.head_prefixes):
            if name.endswith("bias"):
                parameter.zero_()
            else:
                parameter.copy_(torch.randn(parameter.shape, generator=generator) * std)


def check_fit(model: nn.Module, tokenizer: Any, max_length: int) -> None:
    if len(tokenizer) > model.config.vocab_size:
        raise ValueError(f"the tokenizer has {len(tokenizer)} tokens but the model only {model.config.vocab_size}: "
                         "use the tokenizer the checkpoint was trained with.")
    if max_length > model.config.max_position_embeddings:
        raise ValueError(f"max_length {max_length} exceeds the model's max_position_embeddings "
                         f"({model.config.max_position_embeddings}).")


def evaluate_task(model: nn.Module, features: list, config: FinetuneConfig, task: FinetuneTask, pad_id: int,
                  device: torch.device) -> dict[str, float]:
    """The task's metrics on every feature given (`finetune` has already cut each split to its size)."""
    batches = iterate_batches(features, partial(pad_batch, pad_token_id=pad_id), config.batch_size)
    return task.evaluate(model, batches, device, config.max_answer_length)


def finetune(config: FinetuneConfig) -> TrainResult:
    """Fine-tune on ``config.task``; metrics on validation (eval_*) and, at the end, on test (test_*).

    Chapter: book/finetuning.md
    """
    config.validate()
    info, device = init_distributed(config.device)
    task = TASKS[config.task]
    checkpoint = resolve_checkpoint_dir(config.checkpoint) if config.checkpoint else None
    stored = read_config(checkpoint) if checkpoint is not None else None  # not BERT: fails here, before the data
    tokenizer = finetune_tokenizer(config, checkpoint)
    data = task.load()
    limits = {"train": config.max_train_examples,  # eval_batches caps evaluation: encode no more than it reads
              "validation": config.eval_batches and config.eval_batches * config.batch_size}
    limits["test"] = config.test_batches * config.batch_size if config.test_batches else limits["validation"]
    seeds = {"train": config.seed, "validation": 0, "test": 0}  # evaluation subsets: the same for every run
    splits = {name: sample_rows(data[name], limits[name], seeds[name]) for name in ("train", "validation", "test")}
    features = {name: task.encode(rows, tokenizer, config.max_length) for name, rows in splits.items()}
    train = splits["train"]
    model = build_model(config, task, task.num_labels(train), checkpoint, tokenizer, stored)
    check_fit(model, tokenizer, config.max_length)
    evaluate = partial(evaluate_task, config=config, task=task, pad_id=tokenizer.pad_token_id, device=device)
    best = BestWeights(task.score_name, config.patience) if config.keep_best else None
    validate = partial(evaluate, features=features["validation"])
    trainer = Trainer(
        model, config, features["train"], partial(pad_batch, pad_token_id=tokenizer.pad_token_id),
        partial(task_loss, targets=task.targets), info=info, device=device,
        evaluate=validate if best is None else best.watch(validate, step=lambda: trainer.step),
        save_extra=partial(save_tokenizer, tokenizer),
        desc=f"finetune {config.task} ({config.init})",
        stop=best.exhausted if best is not None else None,
    )
    result = trainer.train()
    result.tokenizer = tokenizer
    stopped_early = best is not None and best.exhausted()
    if best is not None and best.state is not None:
        best.restore(result.model)
        result.metrics = {**result.metrics, "best_eval_step": best.step, f"best_eval_{task.score_name}": best.score,
                          "stopped_early": stopped_early}
    if result.step == config.max_steps or stopped_early:
        test = final_test_metrics(result, evaluate, features["test"], info)
        result.metrics = {**result.metrics, **test}
        if info.is_main:
            Path(config.output_dir, TEST_METRICS_NAME).write_text(json.dumps(test, indent=2) + "\n")
    return result


class BestWeights:
    """Remembers the weights of the best validation score seen so far, and says when to stop early.

    ``watch(evaluate, step)`` wraps the evaluation the trainer calls (``step()`` says at which step); after
    training, ``restore(model)`` loads the best weights back. With ``patience``, ``exhausted()`` turns true once
    that many evaluations in a row have not beaten the best score.
    """

    def __init__(self, score_name: str, patience: int | None = None):
        self.score_name, self.patience = score_name, patience
        self.score = float("-inf")
        self.state: dict[str, torch.Tensor] | None = None
        self.step = 0
        self.since_best = 0  # evaluations since the best one

    def watch(self, evaluate: Any, step: Any) -> Any:
        def evaluate_and_remember(model: nn.Module) -> dict[str, float]:
            metrics = evaluate(model)
            if metrics[self.score_name] > self.score:
                self.score, self.step, self.since_best = metrics[self.score_name], step(), 0
                self.state = {k: v.detach().clone() for k, v in model.state_dict().items()}
            else:
                self.since_best += 1
            return metrics
        return evaluate_and_remember

    def exhausted(self) -> bool:
        return self.patience is not None and self.since_best >= self.patience

    def restore(self, model: nn.Module) -> None:
        model.load_state_dict(self.state)


def sample_rows(rows: Any, n: int | None, seed: int) -> Any:
    """A seeded random subset of n rows (not the first n: a split may be sorted, e.g. by label), or all rows."""
    if n is None or n >= len(rows):
        return rows
    return rows.select(sorted(random.Random(seed).sample(range(len(rows)), n)))


def final_test_metrics(result: TrainResult, evaluate: Any, features: list, info: DistInfo) -> dict[str, float]:
    """The final model's metrics on the test split (computed by the main process, shared with all)."""
    metrics = None
    if info.is_main:
        result.model.eval()
        metrics = {f"test_{k}": v for k, v in evaluate(result.model, features=features).items()}
    return broadcast(metrics, info)
