"""The pretraining pairs' labels cannot be read off their surface (bertlab.shortcuts), on real articles."""

import random

import pytest

from bertlab.pretrain import peoples_daily_documents
from bertlab.pretraining_data import create_nsp_pairs, create_sop_pairs, tokenize_documents
from bertlab.shortcuts import (
    FEATURE_NAMES,
    leaky_sop_pairs,
    mark_places,
    punctuation_ids,
    shortcut_accuracy,
    surface_features,
)
from bertlab.tokenizer import load_tokenizer

ARTICLES = 1000  # People's Daily training articles: about 3,000 to 6,000 pairs per task and length
CHANCE_LIMIT = 0.55


@pytest.fixture(scope="module")
def tokenizer():
    return load_tokenizer()


@pytest.fixture(scope="module")
def documents(tokenizer):
    """The first training articles as the pair builders get them, each token marked with its place."""
    return {task: mark_places(tokenize_documents(peoples_daily_documents("train", task).select(range(ARTICLES)),
                                                 tokenizer)) for task in ("nsp", "none")}


@pytest.mark.parametrize("max_length", [64, 128])
@pytest.mark.parametrize("task, make_pairs", [("nsp", create_nsp_pairs), ("sop", create_sop_pairs)])
def test_no_pair_label_shows_on_the_surface(documents, tokenizer, task, make_pairs, max_length):
    pairs = make_pairs(documents["nsp"], rng=random.Random(0), max_num_tokens=max_length - 3)
    accuracy = shortcut_accuracy(pairs, punctuation_ids(tokenizer))
    assert accuracy <= CHANCE_LIMIT, (
        f"{task} pairs of {max_length} tokens: lengths and edges alone tell the label {accuracy:.1%} of the time")


@pytest.mark.parametrize("max_length", [64, 128])
def test_the_check_catches_sop_pairs_truncated_before_the_swap(documents, tokenizer, max_length):
    pairs = leaky_sop_pairs(documents["none"], rng=random.Random(0), max_num_tokens=max_length - 3)
    assert shortcut_accuracy(pairs, punctuation_ids(tokenizer)) > 0.6


def test_surface_features_read_lengths_and_edges(tokenizer):
    full_stop = tokenizer.convert_tokens_to_ids("。")
    (sentence,) = mark_places([[[(7, None), (8, None), (full_stop, None)]]])[0]
    features = dict(zip(FEATURE_NAMES, surface_features(sentence[:2], sentence[1:], {full_stop}), strict=True))
    assert features["length A"] == 2 and features["length A - length B"] == 0
    assert features["A starts a sentence"] and not features["A ends a sentence"]
    assert not features["B starts a sentence"] and features["B ends a sentence"] and features["B ends with punctuation"]


def test_a_single_label_is_refused():
    with pytest.raises(ValueError, match="each label"):
        shortcut_accuracy([([], [], 0)] * 10, set())
