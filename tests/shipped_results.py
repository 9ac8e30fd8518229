"""The tests' way to read a results file of bertlab/assets/results: skip, naming the command that makes it, when
the experiment has not been run for the shipped models (a results file of an older model is deleted, not kept)."""

from __future__ import annotations

from typing import Any

import pytest

COMMANDS = {
    "pair_downstream": "python -m bertlab.experiments finetune",
    "pretraining_compute": "python -m bertlab.pretraining_compute",
    "transfer_curves": "python -m bertlab.experiments transfer",
}


def stored_or_skip(name: str) -> dict[str, Any]:
    from bertlab.shipped import RESULTS, load_results

    if name in COMMANDS and not (RESULTS / f"{name}.json").exists():
        pytest.skip(f"results/{name}.json is not shipped for the current models: {COMMANDS[name]} makes it")
    return load_results(name)
