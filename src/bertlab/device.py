"""Where to run: CUDA, then Apple MPS, then CPU; and the mixed precision that suits each."""

from __future__ import annotations

import contextlib
import functools
import os
from pathlib import Path

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


@functools.cache
def cpu_has_bf16() -> bool:
    """Whether this CPU has bf16 arithmetic (x86 AVX512-BF16 or AMX), read from /proc/cpuinfo (Linux).

    Without it torch emulates bf16 with conversions, which makes a CPU step slower than fp32; with it, a course
    pretraining step under bf16 autocast is faster (`python bench/cpu_autocast.py` measures both on this machine).
    """
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return any(flag in flags.split() for flag in ("avx512_bf16", "amx_bf16"))


def autocast(device: torch.device | str, enabled: bool = True,
             cpu_bf16: bool = False) -> contextlib.AbstractContextManager:
    """bf16 autocast (matmuls in bf16, reductions in fp32) on CUDA, and on a CPU with bf16 arithmetic when
    ``cpu_bf16`` asks for it; plain fp32 elsewhere.

    On the CPU it is opt-in (pretraining asks for it): fine-tuning and evaluation stay fp32 there, so that a
    stored result is what any CPU computes again. Apple MPS stays fp32 (its autocast support varies).
    """
    device = torch.device(device)
    if enabled and device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    if enabled and cpu_bf16 and device.type == "cpu" and cpu_has_bf16():
        return torch.autocast("cpu", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def maybe_compile(model: torch.nn.Module, enabled: bool) -> torch.nn.Module:
    """torch.compile the model when asked (it pays off on long GPU runs; first steps are slow)."""
    return torch.compile(model) if enabled else model
