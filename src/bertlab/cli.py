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
import dataclasses
import json
import sys
import types
import typing
from collections.abc import Sequence
from typing import Any

EXIT_USAGE = 2


def option(default: Any, help: str, **extra: Any) -> Any:
    """A dataclass field with the help text (and choices, metavar) that the command line shows for it: the
    settings classes (TrainArgs, PretrainConfig, FinetuneConfig) declare their flags with it."""
    return dataclasses.field(default=default, metadata={"help": help, **extra})


def add_dataclass_options(parser: argparse.ArgumentParser, cls: type) -> None:
    """One ``--option`` per dataclass field, with its type, default, choices and help text."""
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        kind, optional = _base_type(hints[f.name])
        flag = "--" + f.name.replace("_", "-")
        help_text = f.metadata.get("help", "")
        if kind is bool:
            parser.add_argument(flag, action=argparse.BooleanOptionalAction, default=f.default,
                                help=help_text + " (default: %(default)s)")
            continue
        if "(default" not in help_text:
            help_text += " (default: none)" if optional and f.default is None else " (default: %(default)s)"
        metavar = f.metadata.get("metavar", f.name.split("_")[-1].upper())
        parser.add_argument(flag, type=kind, default=f.default, choices=f.metadata.get("choices"),
                            metavar=None if f.metadata.get("choices") else metavar, help=help_text)


def _base_type(hint: Any) -> tuple[type, bool]:
    """``int | None`` -> (int, True); ``float`` -> (float, False)."""
    if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union:
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        return args[0], True
    return hint, False


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

    _report(pretrain(_config(PretrainConfig, args)))


def run_finetune(args: argparse.Namespace) -> None:
    from .finetune import FinetuneConfig, finetune

    _report(finetune(_config(FinetuneConfig, args)))


def run_fill_mask(args: argparse.Namespace) -> None:
    from .device import best_device
    from .fill_mask import fill_mask, format_candidates, load_fill_mask_model

    model, tokenizer = load_fill_mask_model(args.model)
    model.to(args.device or best_device())
    for text in args.text:
        print(format_candidates(text, fill_mask(model, tokenizer, text, top_k=args.top_k)))


def _config(cls: type, args: argparse.Namespace) -> Any:
    return cls(**{f.name: getattr(args, f.name) for f in dataclasses.fields(cls)})


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
