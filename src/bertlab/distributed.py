"""Data-parallel training across processes (``torchrun --nproc_per_node N``), and the order of the data.

Every process holds a full copy of the model and trains on its own share of each batch;
DistributedDataParallel averages the gradients, so all copies take the same step. A single
process (plain ``python``) is the special case world_size = 1, and runs the same code.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist

from .device import best_device


@dataclass(frozen=True)
class DistInfo:
    """This process's place among the training processes."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        """Only the main process logs, evaluates and writes checkpoints."""
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1


def init_distributed(device: str | None = None) -> tuple[DistInfo, torch.device]:
    """Join the process group described by torchrun's environment (RANK, WORLD_SIZE, MASTER_ADDR ...).

    gloo on CPU, nccl on CUDA, where each process takes the GPU numbered by its LOCAL_RANK. Without
    those variables (or with WORLD_SIZE=1) this is a single process on ``device`` (default: the best one).
    A process group that the caller has set up already is used as it is.
    """
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size == 1 and not dist.is_initialized():
        return DistInfo(), torch.device(device) if device else best_device()
    local_rank = int(os.environ.get("LOCAL_RANK", os.environ.get("RANK", "0")))
    target = torch.device(device) if device else best_device()
    if target.type == "cuda":
        target = torch.device("cuda", local_rank)
        torch.cuda.set_device(target)
    elif target.type != "cpu":
        raise ValueError(f"distributed training runs on CUDA (nccl) or CPU (gloo), not {target.type}.")
    if not dist.is_initialized():
        dist.init_process_group("nccl" if target.type == "cuda" else "gloo")
    return DistInfo(dist.get_rank(), dist.get_world_size(), local_rank), target


def all_mean(values: dict[str, float], info: DistInfo) -> dict[str, float]:
    """The mean of each value over the processes (the values themselves in a single process)."""
    if not info.enabled or not values:
        return values
    t = torch.tensor(list(values.values()), dtype=torch.float64)
    if dist.get_backend() == "nccl":  # nccl reduces GPU tensors only
        t = t.cuda()
    dist.all_reduce(t)
    return dict(zip(values, (t / info.world_size).tolist(), strict=True))


def broadcast(obj: Any, info: DistInfo) -> Any:
    """The main process's ``obj``, on every process."""
    if not info.enabled:
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def gather(obj: Any, info: DistInfo) -> list[Any]:
    """Every process's ``obj``, in rank order, on every process."""
    if not info.enabled:
        return [obj]
    out: list[Any] = [None] * info.world_size
    dist.all_gather_object(out, obj)
    return out


def barrier(info: DistInfo) -> None:
    if info.enabled:
        dist.barrier()


class BatchOrder:
    """Which examples form each batch: a seeded shuffle per epoch, this process's share, cut into batches.

    Epoch e is shuffled by a generator seeded with ``seed + e`` (as DistributedSampler does), process r
    takes every world_size-th example from position r, and the last incomplete batch of an epoch is
    dropped. The whole state is (epoch, batch), so a resumed run continues at exactly the batch it
    stopped at.
    """

    def __init__(self, num_examples: int, batch_size: int, seed: int = 0, rank: int = 0, world_size: int = 1):
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}.")
        self.num_examples, self.batch_size, self.seed = num_examples, batch_size, seed
        self.rank, self.world_size = rank, world_size
        self.batches_per_epoch = num_examples // world_size // batch_size
        if self.batches_per_epoch == 0:
            raise ValueError(
                f"{num_examples} training examples are fewer than one batch of {batch_size} for each of "
                f"{world_size} process(es); lower the batch size or use more data."
            )
        self.epoch, self.batch = 0, 0
        self._indices: list[int] | None = None

    def epoch_indices(self, epoch: int) -> list[int]:
        """This process's examples for ``epoch``, in order."""
        g = torch.Generator().manual_seed(self.seed + epoch)
        perm = torch.randperm(self.num_examples, generator=g)
        return perm[self.rank : self.batches_per_epoch * self.batch_size * self.world_size : self.world_size].tolist()

    def next_batch(self) -> list[int]:
        if self.batch == self.batches_per_epoch:
            self.epoch, self.batch, self._indices = self.epoch + 1, 0, None
        if self._indices is None:
            self._indices = self.epoch_indices(self.epoch)
        start = self.batch * self.batch_size
        self.batch += 1
        return self._indices[start : start + self.batch_size]

    def state_dict(self) -> dict[str, int]:
        return {"epoch": self.epoch, "batch": self.batch, "num_examples": self.num_examples,
                "world_size": self.world_size, "batch_size": self.batch_size}

    def load_state_dict(self, state: dict[str, int]) -> None:
        mine = self.state_dict()
        for key in ("num_examples", "world_size", "batch_size"):
            if state[key] != mine[key]:
                raise ValueError(
                    f"the checkpoint was trained with {key}={state[key]}, this run has {mine[key]}; "
                    "resume with the same data, number of processes and batch size."
                )
        self.epoch, self.batch, self._indices = state["epoch"], state["batch"], None
