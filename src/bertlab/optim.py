"""BERT's optimiser: AdamW without weight decay on biases and LayerNorm weights, and a learning rate
that warms up linearly from 0 and then decays linearly to 0 at the last step.

Devlin et al. (2019) train with Adam (lr 1e-4, beta1 0.9, beta2 0.999, L2 weight decay 0.01), a
linear warm-up over the first 10,000 steps and linear decay afterwards; their `optimization.py`
excludes the "LayerNorm" and "bias" parameters from weight decay. Decoupled weight decay (AdamW)
is what that code implements.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.optim.lr_scheduler import LambdaLR


def no_decay(name: str, param: torch.Tensor) -> bool:
    """True for parameters that get no weight decay: biases, LayerNorm weights (any 1-d parameter)."""
    return name.endswith("bias") or "LayerNorm" in name or param.dim() < 2


def parameter_groups(model: nn.Module, weight_decay: float) -> list[dict]:
    """Two groups for the optimiser: matrices and embeddings with ``weight_decay``, the rest without."""
    decay, rest = [], []
    for name, p in model.named_parameters():
        if p.requires_grad:
            (rest if no_decay(name, p) else decay).append(p)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": rest, "weight_decay": 0.0}]


def build_optimizer(
    model: nn.Module,
    lr: float = 1e-4,
    weight_decay: float = 0.01,
    betas: tuple[float, float] = (0.9, 0.999),
    eps: float = 1e-6,
) -> torch.optim.AdamW:
    """AdamW with BERT's settings (eps 1e-6 as in the original code) and its weight-decay exclusions."""
    if lr <= 0:
        raise ValueError(f"learning rate must be positive, got {lr}.")
    if weight_decay < 0:
        raise ValueError(f"weight_decay must be >= 0, got {weight_decay}.")
    return torch.optim.AdamW(parameter_groups(model, weight_decay), lr=lr, betas=betas, eps=eps)


def warmup_linear_decay(step: int, warmup_steps: int, total_steps: int) -> float:
    """The learning-rate multiplier at ``step``: step / warmup, then falling linearly to 0 at total_steps."""
    if step < warmup_steps:
        return (step + 1) / warmup_steps  # the first update already gets a small, non-zero rate
    return max(0.0, (total_steps - step) / max(1, total_steps - warmup_steps))


def linear_schedule(optimizer: torch.optim.Optimizer, warmup_steps: int, total_steps: int) -> LambdaLR:
    """A scheduler (call ``.step()`` after each optimiser step) that applies :func:`warmup_linear_decay`."""
    if total_steps < 1:
        raise ValueError(f"total_steps must be >= 1, got {total_steps}.")
    if not 0 <= warmup_steps <= total_steps:
        raise ValueError(f"warmup_steps must lie in [0, total_steps={total_steps}], got {warmup_steps}.")
    return LambdaLR(optimizer, lambda step: warmup_linear_decay(step, warmup_steps, total_steps))
