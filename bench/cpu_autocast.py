"""A pretraining step on the CPU in fp32 and under bf16 autocast, side by side: is bf16 faster on this CPU?

The step is the course's: the `course` preset (or another), a batch of 64 sequences of 128 tokens, masked LM at
the masked positions only plus the sentence-pair head, backward, gradient clipping and AdamW. The two precisions
run in alternating rounds in this one process, from the same weights and batch, so that a busy machine slows both
alike; the ratio is median(fp32 step time) / median(bf16 step time), above 1 where bf16 is faster.

    python bench/cpu_autocast.py                     # course preset, 64 x 128, this machine's threads
    python bench/cpu_autocast.py --preset mini --threads 1

torch emulates bf16 on CPUs without bf16 arithmetic (AVX512-BF16 or AMX), which is slow; `bertlab.device.
cpu_has_bf16` reads the flags, and pretraining uses bf16 only where they are present (PretrainConfig.cpu_bf16).
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import time

import torch

import bertlab
from bertlab.device import cpu_has_bf16


def make_step(model: bertlab.BertForPreTraining, batch: dict, bf16: bool):
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=0.01)

    def step() -> None:
        context = torch.autocast("cpu", dtype=torch.bfloat16) if bf16 else contextlib.nullcontext()
        with context:
            loss = model(**batch, masked_only=True).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    return step


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--preset", default="course")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--seq-len", type=int, default=128)
    p.add_argument("--vocab-size", type=int, default=3908, help="the course tokenizer's")
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--steps", type=int, default=3, help="steps per round")
    p.add_argument("--threads", type=int, default=None, help="default: torch's")
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    config = bertlab.BertConfig.from_preset(args.preset, vocab_size=args.vocab_size)
    torch.manual_seed(0)
    reference = bertlab.BertForPreTraining(config)
    models = {}
    for name in ("fp32", "bf16"):
        models[name] = bertlab.BertForPreTraining(config)
        models[name].load_state_dict(reference.state_dict())
        models[name].train()
    g = torch.Generator().manual_seed(1)
    ids = torch.randint(5, args.vocab_size, (args.batch_size, args.seq_len), generator=g)
    labels = torch.where(torch.rand(ids.shape, generator=g) < 0.15, ids, torch.full_like(ids, -100))
    batch = {"input_ids": ids, "attention_mask": torch.ones_like(ids), "labels": labels,
             "token_type_ids": (torch.arange(args.seq_len) >= args.seq_len // 2).long().expand_as(ids).contiguous(),
             "next_sentence_label": torch.randint(0, 2, (args.batch_size,), generator=g)}
    steps = {name: make_step(model, batch, name == "bf16") for name, model in models.items()}
    for step in steps.values():  # warm-up
        step()
    seconds: dict[str, list[float]] = {name: [] for name in steps}
    for r in range(args.rounds):
        for name in list(steps)[r % 2:] + list(steps)[:r % 2]:  # alternate who goes first
            t0 = time.perf_counter()
            for _ in range(args.steps):
                steps[name]()
            seconds[name].append((time.perf_counter() - t0) / args.steps)
    fp32, bf16 = (statistics.median(seconds[name]) for name in ("fp32", "bf16"))
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, CPU bf16 arithmetic: {cpu_has_bf16()}")
    print(f"{args.preset}, batch {args.batch_size} x {args.seq_len}: fp32 {fp32:.3f} s/step, bf16 autocast "
          f"{bf16:.3f} s/step, speed-up {fp32 / bf16:.2f}x")


if __name__ == "__main__":
    main()
