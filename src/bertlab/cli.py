"""The command line: ``bertlab pretrain``, ``bertlab finetune``, ``bertlab fill-mask`` (or ``python -m bertlab``).

    python -m bertlab pretrain --preset tiny --task sop --max-steps 2000 --output-dir runs/sop
    torchrun --nproc_per_node 2 -m bertlab pretrain --preset mini --max-steps 10000
    python -m bertlab finetune --task sentiment --checkpoint runs/sop/checkpoint-2000
    python -m bertlab finetune --task sentiment --checkpoint runs/sop/checkpoint-2000 --init random
    python -m bertlab fill-mask --model runs/sop/checkpoint-2000 "台湾大[MASK]"

The options of pretrain and finetune are the fields of PretrainConfig and FinetuneConfig, so the
command line and the Python API cannot drift apart. Bad input ends with a one-line message and exit code 2.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from typing import Any

from .options import add_dataclass_options, dataclass_from_args

EXIT_USAGE = 2


def build_parser() -> argparse.ArgumentParser:
    from .finetune import FinetuneConfig
    from .pretrain import PretrainConfig

    parser = argparse.ArgumentParser(
        prog="bertlab", description="Pretrain, fine-tune and query the BERT models of the course.",
        epilog="Run 'bertlab <command> --help' for the options of a command. Multi-process: "
               "torchrun --nproc_per_node N -m bertlab pretrain ...",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="command")

    pre = commands.add_parser("pretrain", help="pretrain a BERT on People's Daily (MLM + NSP/SOP/none)",
                              description=_first_paragraph(PretrainConfig, "Pretrain BERT from random weights."))
    add_dataclass_options(pre, PretrainConfig)

    fine = commands.add_parser("finetune", help="fine-tune on sentiment, pos, pair or qa",
                               description="Fine-tune a pretrained checkpoint (or random weights, --init random) "
                                           "on one task; reports validation and test metrics.")
    add_dataclass_options(fine, FinetuneConfig)

    fill = commands.add_parser("fill-mask", help="the most probable tokens for each [MASK] of a sentence",
                               description="Print the top-k tokens, with probabilities, for each [MASK] of each TEXT.")
    fill.add_argument("text", nargs="+", help="sentence(s) with at least one [MASK], e.g. '台湾大[MASK]'")
    fill.add_argument("--model", required=True, metavar="DIR",
                      help="checkpoint with a masked-LM head and its tokenizer, e.g. runs/pretrain/checkpoint-N")
    fill.add_argument("--top-k", type=int, default=5, metavar="K", help="candidates per [MASK] (default: 5)")
    fill.add_argument("--device", default=None, help="cpu, cuda, mps (default: the best one present)")
    return parser


def _first_paragraph(cls: type, fallback: str) -> str:
    doc = (sys.modules[cls.__module__].__doc__ or fallback).strip()
    return doc.split("\n\n")[0]


def run_pretrain(args: argparse.Namespace) -> None:
    from .pretrain import PretrainConfig, pretrain

    _report(pretrain(dataclass_from_args(PretrainConfig, args)))


def run_finetune(args: argparse.Namespace) -> None:
    from .finetune import FinetuneConfig, finetune

    _report(finetune(dataclass_from_args(FinetuneConfig, args)))


def run_fill_mask(args: argparse.Namespace) -> None:
    from .device import best_device
    from .fill_mask import fill_mask, format_candidates, load_fill_mask_model

    model, tokenizer = load_fill_mask_model(args.model)
    model.to(args.device or best_device())
    for text in args.text:
        print(format_candidates(text, fill_mask(model, tokenizer, text, top_k=args.top_k)))


def _report(result: Any) -> None:
    import torch.distributed as dist

    if not dist.is_initialized() or dist.get_rank() == 0:
        print(json.dumps(result.summary(), indent=2, ensure_ascii=False))


COMMANDS = {"pretrain": run_pretrain, "finetune": run_finetune, "fill-mask": run_fill_mask}


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``bertlab`` and ``python -m bertlab``; returns the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        COMMANDS[args.command](args)
    except (ValueError, FileNotFoundError) as e:
        print(f"bertlab {args.command}: error: {e}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print(f"bertlab {args.command}: interrupted", file=sys.stderr)
        return 130
    finally:
        _shutdown()
    return 0


def _shutdown() -> None:
    import torch.distributed as dist

    if dist.is_initialized():
        dist.destroy_process_group()
