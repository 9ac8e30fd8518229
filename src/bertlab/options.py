"""Settings dataclasses as command-line options: a field declares its flag's help text (`option`), and
`add_dataclass_options` turns every field of a dataclass into one ``--flag`` of an argparse parser.

A leaf module (standard library only): the library's settings classes (TrainArgs, PretrainConfig,
FinetuneConfig) declare their fields with `option`, and the command line (`bertlab.cli`) reads them, so the
library never imports its command line.
"""

from __future__ import annotations

import argparse
import dataclasses
import types
import typing
from typing import Any


def option(default: Any, help: str, **extra: Any) -> Any:
    """A dataclass field with the help text (and choices, metavar) that the command line shows for it."""
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


def dataclass_from_args(cls: type, args: argparse.Namespace) -> Any:
    """An instance of the dataclass ``cls`` from the options that `add_dataclass_options` added."""
    return cls(**{f.name: getattr(args, f.name) for f in dataclasses.fields(cls)})


def _base_type(hint: Any) -> tuple[type, bool]:
    """``int | None`` -> (int, True); ``float`` -> (float, False)."""
    if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union:
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        return args[0], True
    return hint, False
