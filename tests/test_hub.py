"""One rule tells a local path from a Hugging Face Hub name (bertlab.hub), for the corpora and the command line."""

from __future__ import annotations

from pathlib import Path

import pytest

from bertlab.hub import hub_offline, looks_like_path


@pytest.mark.parametrize("name", ["./model", "/tmp/x", "~/data", "reviews.csv", "a/b/c", Path("model")])
def test_paths_are_recognised(name):
    assert looks_like_path(name)


@pytest.mark.parametrize("name", ["bert-base-chinese", "google-bert/bert-base-chinese", "owner/dataset"])
def test_hub_names_are_not_paths(name):
    assert not looks_like_path(name)


def test_an_owner_that_is_a_local_folder_makes_a_path(tmp_path, monkeypatch):
    (tmp_path / "runs").mkdir()
    monkeypatch.chdir(tmp_path)
    assert looks_like_path("runs/missing-model")


@pytest.mark.parametrize(("value", "offline"), [("1", True), ("yes", True), ("0", False), ("", False)])
def test_hub_offline_reads_the_switch(monkeypatch, value, offline):
    monkeypatch.delenv("HF_DATASETS_OFFLINE", raising=False)
    monkeypatch.setenv("HF_HUB_OFFLINE", value)
    assert hub_offline() is offline
