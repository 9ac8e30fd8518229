"""A local path or a Hugging Face Hub name? The one rule that the corpora and checkpoint loading use to tell them
apart, so that a mistyped path gets "does not exist" instead of a failed download; and the environment that
switches the Hub off. Standard library only: tasks.py reads OFFLINE_ENV before any package is installed.
"""

from __future__ import annotations

import os
from pathlib import Path

# Everything the course runs offline (the book build, the tests, the autograder): no Hugging Face download is
# tried, tokenizers does not fork threads, and str hashes are the same in every process.
OFFLINE_ENV = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1",
               "TOKENIZERS_PARALLELISM": "false", "PYTHONHASHSEED": "0"}
DATA_SUFFIXES = {".txt", ".csv", ".tsv", ".json", ".jsonl", ".parquet"}


def looks_like_path(name: str | os.PathLike) -> bool:
    """True when `name` can only be meant as a local path: a path object, a name that starts like a path, has a
    data file's suffix, or has more slashes than a Hub id (``owner/name``) or a parent folder that exists."""
    if isinstance(name, os.PathLike):
        return True
    if name.startswith((".", "/", "~", "\\")) or Path(name).suffix.lower() in DATA_SUFFIXES:
        return True
    return name.count("/") > 1 or ("/" in name and Path(name).parent.is_dir())


def hub_offline() -> bool:
    """True when the user switched Hugging Face downloads off (HF_DATASETS_OFFLINE or HF_HUB_OFFLINE)."""
    return any(os.environ.get(v, "").strip().upper() in {"1", "ON", "YES", "TRUE"}
               for v in ("HF_DATASETS_OFFLINE", "HF_HUB_OFFLINE"))
