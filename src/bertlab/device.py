"""Where to run: CUDA, then Apple MPS, then CPU; and the mixed precision that suits each."""

from __future__ import annotations

import contextlib
import os

import torch


def best_device() -> torch.device:
    """The fastest device present. Set BERTLAB_DEVICE (e.g. "cpu") to choose one yourself."""
    forced = os.environ.get("BERTLAB_DEVICE")
    if forced:
        return torch.device(forced)
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def autocast(device: torch.device | str, enabled: bool = True) -> contextlib.AbstractContextManager:
    """bf16 autocast on CUDA (matmuls in bf16, reductions in fp32); plain fp32 elsewhere.

    On CPU bf16 is often slower than fp32 without AMX, and MPS autocast support varies, so both stay fp32.
    """
    device = torch.device(device)
    if enabled and device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def maybe_compile(model: torch.nn.Module, enabled: bool) -> torch.nn.Module:
    """torch.compile the model when asked (it pays off on long GPU runs; first steps are slow)."""
    return torch.compile(model) if enabled else model
