"""The training loop that pretraining and fine-tuning share, with checkpoints that resume exactly.

One step: a batch (chosen by :class:`~bertlab.distributed.BatchOrder`), forward under
:func:`bertlab.autocast`, backward, gradient clipping, AdamW, learning-rate schedule. Every
``eval_every`` steps the main process evaluates on the validation split; every ``save_every`` steps
(and at the end) it writes a checkpoint directory:

    checkpoint-<step>/config.json, model.safetensors   the model (`save_pretrained`, Hugging Face format)
    checkpoint-<step>/vocab.txt, tokenizer.json ...     the tokenizer, so the directory is self-contained
    checkpoint-<step>/trainer_state.pt                  optimizer, scheduler, data order, RNG states, step

Resuming from it restores all of these, so N steps in one go and N/2 + N/2 give the same weights.
"""

from __future__ import annotations

import dataclasses
import json
import random
import shutil
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from .checkpoint import read_state_dict
from .device import autocast
from .distributed import BatchOrder, DistInfo, all_mean, barrier, broadcast, gather
from .optim import build_optimizer, linear_schedule
from .options import option

STATE_NAME = "trainer_state.pt"
ARGS_NAME = "training_args.json"
HISTORY_NAME = "history.json"
CHECKPOINT_PREFIX = "checkpoint-"


@dataclass
class TrainArgs:
    """Settings of the training loop; :class:`PretrainConfig` and :class:`FinetuneConfig` add their own."""

    output_dir: str = option("runs/bertlab", "directory for checkpoints (checkpoint-<step>/) and history.json")
    max_steps: int = option(1000, "number of optimiser steps")
    batch_size: int = option(32, "examples per step (per process under torchrun)")
    learning_rate: float = option(1e-4, "peak learning rate of AdamW")
    weight_decay: float = option(0.01, "AdamW weight decay (never on biases and LayerNorm weights)")
    warmup_steps: int | None = option(None, "steps of linear warm-up (default: 10%% of max_steps)")
    max_grad_norm: float = option(1.0, "clip the gradient norm to this (0: no clipping)")
    log_every: int = option(10, "record the mean training loss every N steps")
    eval_every: int = option(200, "evaluate on the validation split every N steps (0: only at the end)")
    eval_batches: int | None = option(None, "evaluate on at most this many validation batches")
    save_every: int = option(0, "write a checkpoint every N steps (0: only at the end)")
    save_total_limit: int | None = option(2, "keep only the newest N checkpoints")
    seed: int = option(0, "seed of every random choice: initial weights, data order, masking, dropout")
    device: str | None = option(None, "cpu, cuda, mps (default: the best one present)")
    progress: bool = option(True, "show a progress bar")
    resume_from: str | None = option(None, "checkpoint directory to resume from, or 'latest' in output_dir",
                                     metavar="DIR|latest")
    stop_at_step: int | None = option(None, "end this session at this step (with a checkpoint), to resume later")
    overwrite_output_dir: bool = option(False, "delete checkpoints already in output_dir instead of refusing")
    cpu_bf16: bool = option(False, "train under bf16 autocast on a CPU with bf16 arithmetic (AVX512-BF16 or AMX; "
                            "fp32 on other CPUs); CUDA always trains in bf16")

    def validate(self) -> None:
        """Raise a ValueError naming any setting that cannot work."""
        for f in dataclasses.fields(self):
            choices = f.metadata.get("choices")
            if choices and getattr(self, f.name) is not None and getattr(self, f.name) not in choices:
                raise ValueError(f"{f.name} must be one of {list(choices)}, got {getattr(self, f.name)!r}.")
        for name in ("max_steps", "batch_size", "log_every"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}.")
        for name in ("eval_every", "save_every", "max_grad_norm"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}.")
        if self.warmup_steps is not None and not 0 <= self.warmup_steps <= self.max_steps:
            raise ValueError(f"warmup_steps must lie in [0, max_steps={self.max_steps}], got {self.warmup_steps}.")
        if self.stop_at_step is not None and not 1 <= self.stop_at_step <= self.max_steps:
            raise ValueError(f"stop_at_step must lie in [1, max_steps={self.max_steps}], got {self.stop_at_step}.")
        if self.eval_batches is not None and self.eval_batches < 1:
            raise ValueError(f"eval_batches must be >= 1 or None (all), got {self.eval_batches}.")
        if self.save_total_limit is not None and self.save_total_limit < 1:
            raise ValueError(f"save_total_limit must be >= 1 or None, got {self.save_total_limit}.")

    @property
    def num_warmup_steps(self) -> int:
        return self.warmup_steps if self.warmup_steps is not None else self.max_steps // 10


@dataclass
class TrainResult:
    """What a run returns: the trained model, its history, and where its last checkpoint is."""

    model: nn.Module
    history: list[dict[str, float]]  # one entry per log step (train_*) and per evaluation (eval_*)
    metrics: dict[str, float]  # the last evaluation
    checkpoint_dir: Path | None
    step: int
    seconds: float  # wall time of this session
    tokenizer: Any = None

    def summary(self) -> dict[str, Any]:
        """JSON-friendly: everything but the model and tokenizer."""
        return {"step": self.step, "seconds": round(self.seconds, 2), "metrics": self.metrics,
                "checkpoint_dir": str(self.checkpoint_dir) if self.checkpoint_dir else None}


# ---- randomness -------------------------------------------------------------------------------
def set_seed(seed: int) -> None:
    """Seed Python's, NumPy's and torch's global generators."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def rng_state() -> dict[str, Any]:
    """The state of every global generator, in types that ``torch.load(weights_only=True)`` accepts."""
    kind, keys, pos, has_gauss, gauss = np.random.get_state()
    state = {"python": random.getstate(), "numpy": [kind, keys.tolist(), pos, has_gauss, gauss],
             "torch": torch.get_rng_state()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    random.setstate(state["python"])
    kind, keys, pos, has_gauss, gauss = state["numpy"]
    np.random.set_state((kind, np.array(keys, dtype=np.uint32), pos, has_gauss, gauss))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state(state["cuda"])


# ---- checkpoint directories -------------------------------------------------------------------
def list_checkpoints(output_dir: str | Path) -> list[Path]:
    """The resumable checkpoints in ``output_dir``, oldest first."""
    found = [p for p in Path(output_dir).glob(CHECKPOINT_PREFIX + "*")
             if p.name[len(CHECKPOINT_PREFIX):].isdigit() and (p / STATE_NAME).exists()]
    return sorted(found, key=lambda p: int(p.name[len(CHECKPOINT_PREFIX):]))


def find_checkpoint(resume_from: str, output_dir: str | Path) -> Path:
    """``resume_from`` itself, or for "latest" the newest checkpoint in ``output_dir``."""
    if resume_from == "latest":
        found = list_checkpoints(output_dir)
        if not found:
            raise ValueError(f"resume_from='latest' but {output_dir} holds no {CHECKPOINT_PREFIX}<step>/{STATE_NAME}.")
        return found[-1]
    path = Path(resume_from)
    if not (path / STATE_NAME).exists():
        raise ValueError(f"{path} is not a resumable checkpoint: it has no {STATE_NAME}.")
    return path


def iterate_batches(
    rows: Sequence, collate: Callable[[list], dict[str, Any]], batch_size: int, limit: int | None = None
) -> Iterator[dict[str, Any]]:
    """``rows`` in their order, collated ``batch_size`` at a time (the last batch may be smaller); at most
    ``limit`` batches. For evaluation, where every example counts once."""
    for n, start in enumerate(range(0, len(rows), batch_size)):
        if limit is not None and n >= limit:
            return
        yield collate([rows[i] for i in range(start, min(start + batch_size, len(rows)))])


def move_to(batch: dict[str, Any], device: torch.device) -> dict[str, Any]:
    return {k: v.to(device, non_blocking=True) if isinstance(v, torch.Tensor) else v for k, v in batch.items()}


LossFn = Callable[[nn.Module, dict[str, Any]], dict[str, torch.Tensor]]


class Trainer:
    """Trains ``model`` on ``train_rows`` for ``args.max_steps`` steps (see the module docstring).

    ``collate(rows) -> batch``; ``loss_fn(model, batch) -> {"loss": ..., other scalars to log}``;
    ``evaluate(model) -> {name: value}`` runs on the main process under ``torch.no_grad``;
    ``save_extra(directory)`` writes files next to the model (the tokenizer); ``generators`` are
    the torch generators the collate function draws from, saved with the checkpoint; ``stop()``, asked after
    each evaluation, ends training there when it says so (early stopping).
    """

    def __init__(
        self,
        model: nn.Module,
        args: TrainArgs,
        train_rows: Sequence,
        collate: Callable[[list], dict[str, Any]],
        loss_fn: LossFn,
        *,
        info: DistInfo,
        device: torch.device,
        evaluate: Callable[[nn.Module], dict[str, float]] | None = None,
        save_extra: Callable[[Path], Any] | None = None,
        generators: dict[str, torch.Generator] | None = None,
        find_unused_parameters: bool = False,
        desc: str = "train",
        stop: Callable[[], bool] | None = None,
    ):
        args.validate()
        self.model, self.args, self.rows, self.collate, self.loss_fn = model, args, train_rows, collate, loss_fn
        self.info, self.device, self.evaluate, self.save_extra = info, device, evaluate, save_extra
        self.generators = generators or {}
        self.find_unused_parameters, self.desc, self.stop = find_unused_parameters, desc, stop
        self.step = 0
        self.history: list[dict[str, float]] = []
        self.sums: dict[str, Any] = {}  # running sums of the losses since the last log entry
        self.count = 0
        self.metrics: dict[str, float] = {}
        self.checkpoint_dir: Path | None = None

    # ---- the loop ---------------------------------------------------------------------------
    def train(self) -> TrainResult:
        args, info, device = self.args, self.info, self.device
        t0 = time.perf_counter()
        self.model.to(device)
        optimizer = build_optimizer(self.model, args.learning_rate, args.weight_decay)
        scheduler = linear_schedule(optimizer, args.num_warmup_steps, args.max_steps)
        order = BatchOrder(len(self.rows), args.batch_size, args.seed, info.rank, info.world_size)
        if args.resume_from:
            self.load_checkpoint(find_checkpoint(args.resume_from, args.output_dir), optimizer, scheduler, order)
        else:
            self._prepare_output_dir()
        model = self.model
        if info.enabled:
            model = nn.parallel.DistributedDataParallel(
                self.model, device_ids=[device] if device.type == "cuda" else None,
                find_unused_parameters=self.find_unused_parameters,
            )
        stop = args.stop_at_step or args.max_steps
        bar = tqdm(total=args.max_steps, initial=self.step, desc=self.desc, dynamic_ncols=True,
                   disable=not (args.progress and info.is_main))
        model.train()
        while self.step < stop:
            batch = move_to(self.collate([self.rows[i] for i in order.next_batch()]), device)
            lr = optimizer.param_groups[0]["lr"]
            with autocast(device, cpu_bf16=args.cpu_bf16):
                losses = self.loss_fn(model, batch)
            losses["loss"].backward()
            grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), args.max_grad_norm or float("inf"))
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            self.step += 1
            bar.update(1)
            self.accumulate({**losses, "grad_norm": grad_norm})
            if self.step % args.log_every == 0 or self.step == args.max_steps:
                means = all_mean(self.running_means(), info)
                self.history.append({"step": self.step, "lr": lr, **means})
                bar.set_postfix(loss=f"{means['train_loss']:.4f}", lr=f"{lr:.2e}")
            if (args.eval_every and self.step % args.eval_every == 0) or self.step == args.max_steps:
                self.run_evaluation(bar)
                if self.stop is not None and broadcast(self.stop(), self.info):  # early stopping
                    stop = self.step
            if (args.save_every and self.step % args.save_every == 0) or self.step == stop:
                self.save_checkpoint(optimizer, scheduler, order)
        bar.close()
        return TrainResult(self.model, self.history, self.metrics, self.checkpoint_dir, self.step,
                           time.perf_counter() - t0)

    def accumulate(self, values: dict[str, torch.Tensor]) -> None:
        """Add this step's losses to the running sums (tensors: no device sync until they are logged)."""
        for k, v in values.items():
            self.sums[k] = self.sums.get(k, 0.0) + v.detach().float()
        self.count += 1

    def running_means(self) -> dict[str, float]:
        """The mean of each value since the last log entry, and a fresh start."""
        means = {f"train_{k}": float(v) / self.count for k, v in self.sums.items()}
        self.sums, self.count = {}, 0
        return means

    def run_evaluation(self, bar: Any = None) -> dict[str, float]:
        """Evaluate on the main process (without touching the training RNG), share the result with all."""
        metrics = None
        if self.evaluate is not None and self.info.is_main:
            devices = [self.device] if self.device.type == "cuda" else []
            self.model.eval()
            with torch.random.fork_rng(devices=devices), torch.no_grad():
                metrics = self.evaluate(self.model)
            self.model.train()
        metrics = broadcast(metrics, self.info)
        if metrics:
            self.metrics = {f"eval_{k}": v for k, v in metrics.items()}
            self.history.append({"step": self.step, **self.metrics})
            if self.info.is_main:
                line = f"step {self.step}: " + ", ".join(f"{k} {v:.4f}" for k, v in self.metrics.items())
                (bar.write if bar is not None and not bar.disable else print)(line)
        return self.metrics

    # ---- checkpoints ------------------------------------------------------------------------
    def _prepare_output_dir(self) -> None:
        existing = list_checkpoints(self.args.output_dir)
        if existing and not self.args.overwrite_output_dir:
            raise ValueError(
                f"{self.args.output_dir} already holds checkpoints ({existing[-1].name}). Resume with "
                "resume_from='latest' (--resume-from latest), choose another output_dir, or set overwrite_output_dir "
                "(--overwrite-output-dir)."
            )
        barrier(self.info)  # every process has looked before the main one deletes anything
        if self.info.is_main:
            for path in existing:
                shutil.rmtree(path)

    def save_checkpoint(self, optimizer: torch.optim.Optimizer, scheduler: Any, order: BatchOrder) -> Path:
        """Write ``output_dir/checkpoint-<step>`` (all processes call this; the main one writes)."""
        per_rank = gather({"rng": rng_state(), "generators": {k: g.get_state() for k, g in self.generators.items()}},
                          self.info)
        out = Path(self.args.output_dir)
        path = out / f"{CHECKPOINT_PREFIX}{self.step}"
        if self.info.is_main:
            tmp = out / f".{path.name}.tmp"  # written in full, then renamed: no half-written checkpoint
            shutil.rmtree(tmp, ignore_errors=True)
            self.model.save_pretrained(tmp)
            if self.save_extra is not None:
                self.save_extra(tmp)
            torch.save({
                "step": self.step, "max_steps": self.args.max_steps, "world_size": self.info.world_size,
                "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
                "order": order.state_dict(), "ranks": per_rank, "history": self.history, "metrics": self.metrics,
                "running": {"sums": {k: float(v) for k, v in self.sums.items()}, "count": self.count},
            }, tmp / STATE_NAME)
            (tmp / ARGS_NAME).write_text(json.dumps(dataclasses.asdict(self.args), indent=2) + "\n")
            if path.exists():
                shutil.rmtree(path)
            tmp.rename(path)
            (out / HISTORY_NAME).write_text(json.dumps(self.history, indent=1) + "\n")
            if self.args.save_total_limit:
                for old in list_checkpoints(out)[: -self.args.save_total_limit]:
                    shutil.rmtree(old)
        barrier(self.info)
        self.checkpoint_dir = path
        return path

    def load_checkpoint(self, path: Path, optimizer: torch.optim.Optimizer, scheduler: Any, order: BatchOrder) -> None:
        """Restore weights, optimizer, scheduler, data order, RNG states and step from ``path``."""
        state = torch.load(path / STATE_NAME, map_location="cpu", weights_only=True)
        if state["world_size"] != self.info.world_size:
            raise ValueError(
                f"{path} was written by {state['world_size']} process(es); resume it with the same number "
                f"(this run has {self.info.world_size}), so that every process continues its own data order."
            )
        if state["max_steps"] != self.args.max_steps and self.info.is_main:
            print(f"note: {path} was trained towards max_steps={state['max_steps']}; the schedule now ends at "
                  f"{self.args.max_steps}.")
        self.model.load_hf_state_dict(read_state_dict(path), strict=True, source=str(path))
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        order.load_state_dict(state["order"])
        mine = state["ranks"][self.info.rank]
        set_rng_state(mine["rng"])
        for name, g in self.generators.items():
            g.set_state(mine["generators"][name])
        self.step, self.history, self.metrics = state["step"], state["history"], state["metrics"]
        self.sums = {k: torch.tensor(v) for k, v in state["running"]["sums"].items()}
        self.count = state["running"]["count"]
        self.checkpoint_dir = path
        if self.step >= (self.args.stop_at_step or self.args.max_steps):
            raise ValueError(f"{path} is at step {self.step} already; raise max_steps (or stop_at_step) to go on.")
