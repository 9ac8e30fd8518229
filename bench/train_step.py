"""Training-step throughput: bertlab.BertForPreTraining vs transformers.BertForPreTraining (SDPA).

Both models get the same config, the same initial weights, the same batch (MLM labels on 15% of
the tokens, NSP labels) and the same AdamW settings, on the same device. Steps of the two are
timed in alternating rounds in this one process, so that a busy machine slows both alike; the
ratio reported is median(bertlab seq/s) / median(transformers seq/s).

    python bench/train_step.py                         # mini and bert-base, seq len 128, CPU or GPU
    python bench/train_step.py --presets mini --rounds 3

Peak memory: on CUDA, torch.cuda.max_memory_allocated over the timed steps; on CPU, the growth of
the peak resident set size (VmHWM, Linux) of a fresh child process that runs three steps of one model.
On CUDA the steps run under bf16 autocast and model FLOPs utilisation is reported as
6 x parameters x tokens/s / peak bf16 FLOP/s.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch

import bertlab
from bertlab.checkpoint import PreTrainedBert

DEFAULT_BATCH = {"tiny": 32, "mini": 32, "bert-base": 8, "bert-large": 4}
PEAK_BF16_TFLOPS = {"H100": 989.0, "H200": 989.0, "A100": 312.0, "L4": 121.0, "A10": 125.0}  # dense, no sparsity


IMPLS = ("transformers", "bertlab", "bertlab-masked")  # bertlab-masked: MLM logits at masked positions only


def make_models(preset: str, device: torch.device, impls: tuple[str, ...] = IMPLS) -> dict[str, torch.nn.Module]:
    """The models to compare, all with the same initial weights (the transformers model's)."""
    import transformers

    cfg = bertlab.BertConfig.from_preset(preset)
    torch.manual_seed(0)
    hf = transformers.BertForPreTraining(transformers.BertConfig(**cfg.to_hf_dict(), attn_implementation="sdpa"))
    models: dict[str, torch.nn.Module] = {}
    for name in impls:
        if name == "transformers":
            models[name] = hf
        else:
            ours = bertlab.BertForPreTraining(cfg)
            ours.load_hf_state_dict(hf.state_dict(), strict=True)
            models[name] = ours
    return {k: m.to(device).train() for k, m in models.items()}


def make_batch(cfg: bertlab.BertConfig, batch: int, seq_len: int, device: torch.device) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    ids = torch.randint(5, cfg.vocab_size, (batch, seq_len), generator=g)
    chosen = torch.rand(batch, seq_len, generator=g) < 0.15
    labels = torch.where(chosen, ids, torch.full_like(ids, -100))
    segment = (torch.arange(seq_len) >= seq_len // 2).long().expand(batch, seq_len).contiguous()
    b = dict(
        input_ids=ids, attention_mask=torch.ones_like(ids), token_type_ids=segment, labels=labels,
        next_sentence_label=torch.randint(0, 2, (batch,), generator=g),
    )
    return {k: v.to(device) for k, v in b.items()}


def step_fn(name: str, model: torch.nn.Module, batch: dict, device: torch.device):
    """One training step: forward with MLM + NSP labels, backward, clip, AdamW."""
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=0.01)
    kwargs = {"masked_only": True} if name == "bertlab-masked" else {}

    def step() -> None:
        with bertlab.autocast(device):
            loss = model(**batch, **kwargs).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)

    return step


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()
    elif device.type == "mps":
        torch.mps.synchronize()


def timed(step, steps: int, device: torch.device) -> float:
    sync(device)
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    sync(device)
    return time.perf_counter() - t0


def cpu_peak_rss_mib(preset: str, impl: str, batch: int, seq_len: int) -> float:
    """Peak RSS growth of a fresh child process that builds one model and runs three training steps."""
    script = f"""
import sys, torch
sys.path.insert(0, {str(Path(__file__).parent)!r})
import train_step as t
dev = torch.device('cpu')
def hwm():  # peak resident set of this process, MiB (VmHWM is per process image; ru_maxrss is inherited)
    return next(int(l.split()[1]) for l in open('/proc/self/status') if l.startswith('VmHWM')) / 1024
base = hwm()
model = t.make_models({preset!r}, dev, ({impl!r},))[{impl!r}]
step = t.step_fn({impl!r}, model, t.make_batch(model.config, {batch}, {seq_len}, dev), dev)
for _ in range(3):
    step()
print(hwm() - base)
"""
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    return float(out.stdout.strip().splitlines()[-1])


def peak_tflops(device: torch.device, override: float | None) -> float | None:
    if override:
        return override
    if device.type != "cuda":
        return None
    name = torch.cuda.get_device_name(device)
    return next((v for k, v in PEAK_BF16_TFLOPS.items() if k in name), None)


def bench_preset(preset: str, args, device: torch.device) -> dict:
    models = make_models(preset, device)
    cfg = models["bertlab"].config
    batch_size = args.batch_size or DEFAULT_BATCH.get(preset, 8)
    batch = make_batch(cfg, batch_size, args.seq_len, device)
    steps = {name: step_fn(name, m, batch, device) for name, m in models.items()}
    for step in steps.values():  # warm-up: allocator, kernels, autotuning
        timed(step, args.warmup, device)
    rates: dict[str, list[float]] = {k: [] for k in steps}
    peak_mem: dict[str, float] = {}
    for r in range(args.rounds):
        order = list(steps)[r % len(steps):] + list(steps)[: r % len(steps)]  # rotate who goes first
        for name in order:
            if device.type == "cuda":
                torch.cuda.reset_peak_memory_stats(device)
            seconds = timed(steps[name], args.steps, device)
            rates[name].append(args.steps * batch_size / seconds)
            if device.type == "cuda":
                peak_mem[name] = max(peak_mem.get(name, 0.0), torch.cuda.max_memory_allocated(device) / 2**20)
    if device.type == "cpu" and not args.no_memory and Path("/proc/self/status").exists():
        for name in steps:
            peak_mem[name] = cpu_peak_rss_mib(preset, name, batch_size, args.seq_len)
    med = {k: statistics.median(v) for k, v in rates.items()}
    params = PreTrainedBert.num_parameters(models["bertlab"])
    result = {
        "preset": preset, "device": str(device), "batch": batch_size, "seq_len": args.seq_len, "params": params,
        "seq_per_s": med, "all_rounds_seq_per_s": rates, "peak_mem_mib": peak_mem,
        "ratio": {k: med[k] / med["transformers"] for k in med if k != "transformers"},
    }
    tflops = peak_tflops(device, args.peak_tflops)
    if tflops:
        result["tokens_per_s"] = {k: v * args.seq_len for k, v in med.items()}
        result["mfu"] = {k: 6 * params * v * args.seq_len / (tflops * 1e12) for k, v in med.items()}
    return result


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--presets", nargs="+", default=["mini", "bert-base"])
    p.add_argument("--seq-len", type=int, default=128)
    p.add_argument("--batch-size", type=int, default=None, help="default: per preset, see DEFAULT_BATCH")
    p.add_argument("--rounds", type=int, default=5, help="alternating timed rounds per model")
    p.add_argument("--steps", type=int, default=3, help="training steps per round")
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--device", default=None, help="default: bertlab.best_device()")
    p.add_argument("--peak-tflops", type=float, default=None, help="peak bf16 TFLOP/s, for MFU on unknown GPUs")
    p.add_argument("--no-memory", action="store_true", help="skip the CPU peak-memory child processes")
    p.add_argument("--json", default=None, help="also write the results to this file")
    args = p.parse_args()
    device = torch.device(args.device) if args.device else bertlab.best_device()
    print(f"torch {torch.__version__}, device {device}, threads {torch.get_num_threads()}")
    results = []
    for preset in args.presets:
        r = bench_preset(preset, args, device)
        results.append(r)
        line = f"{preset:>10}  batch {r['batch']} x {r['seq_len']}  seq/s: " + ", ".join(
            f"{k} {v:.2f}" for k, v in r["seq_per_s"].items())
        line += "  ratio vs transformers: " + ", ".join(f"{k} {v:.3f}" for k, v in r["ratio"].items())
        if r["peak_mem_mib"]:
            line += "  peak MiB: " + ", ".join(f"{k} {v:.0f}" for k, v in r["peak_mem_mib"].items())
        if "mfu" in r:
            line += "  tokens/s: " + ", ".join(f"{k} {v:.0f}" for k, v in r["tokens_per_s"].items())
            line += "  MFU: " + ", ".join(f"{k} {v:.1%}" for k, v in r["mfu"].items())
        print(line, flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)


if __name__ == "__main__":
    main()
