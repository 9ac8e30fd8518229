"""Can a sentence pair's label be read off its surface? A check for pretraining data.

A model learns whatever tells the labels apart, and the easiest thing wins. If the builder of NSP or SOP
pairs leaves a trace of the label in something other than the text's meaning (how long each segment is,
whether it starts or ends at a sentence boundary, whether it ends with a full stop), the model can score
well on the pair task without learning what the task is meant to teach. This module measures that: a
classifier that sees only such surface features, never a token's identity, is trained and scored by
cross-validation on the pairs. Near 50% the surface carries no label; far above it, the data leak.

    documents = mark_places(tokenize_documents(drop_headings(articles), tokenizer))
    pairs = create_sop_pairs(documents, rng=random.Random(0), max_num_tokens=61)
    shortcut_accuracy(pairs, punctuation_ids(tokenizer))   # about 0.52 for the course's builders
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Any, NamedTuple

# Punctuation that ends a sentence or a clause, or closes a quotation, in Chinese and ASCII text.
PUNCTUATION = "。！？；，、：…”’）」』!?;,:)"
FEATURE_NAMES = ("length A", "length B", "length A - length B",
                 "A starts a sentence", "A ends a sentence", "A starts with punctuation", "A ends with punctuation",
                 "B starts a sentence", "B ends a sentence", "B starts with punctuation", "B ends with punctuation")


class Place(NamedTuple):
    """Where a token stands: in which sentence of the corpus, at which position, in a sentence how long."""

    sentence: int
    position: int
    length: int


def mark_places(documents: Sequence[Sequence[Sequence[Any]]]) -> list[list[list[tuple[int, Place]]]]:
    """Tokenized documents (`bertlab.pretraining_data.tokenize_documents`) with each token as ``(token_id, Place)``.

    The pairing functions only cut and join lists, so their pairs of marked tokens still tell, for each segment,
    whether it starts or ends where a sentence does.

    Chapter: book/nsp_sop.md
    """
    marked, sentence = [], 0
    for document in documents:
        doc = []
        for tokens in document:
            doc.append([(_token_id(t), Place(sentence, i, len(tokens))) for i, t in enumerate(tokens)])
            sentence += 1
        marked.append(doc)
    return marked


def _token_id(token: Any) -> int:
    return int(token[0] if isinstance(token, (tuple, list)) else token)


def punctuation_ids(tokenizer: Any) -> set[int]:
    """The ids of PUNCTUATION's characters in ``tokenizer``'s vocabulary (those it has).

    Chapter: book/nsp_sop.md
    """
    vocab = tokenizer.get_vocab()
    return {vocab[c] for c in PUNCTUATION if c in vocab}


def surface_features(tokens_a: Sequence[tuple[int, Place]], tokens_b: Sequence[tuple[int, Place]],
                     punctuation: set[int]) -> list[float]:
    """FEATURE_NAMES of one pair of marked segments: lengths and what happens at each segment's two edges."""
    features = [len(tokens_a), len(tokens_b), len(tokens_a) - len(tokens_b)]
    for segment in (tokens_a, tokens_b):
        (first, start), (last, end) = segment[0], segment[-1]
        features += [start.position == 0, end.position == end.length - 1, first in punctuation, last in punctuation]
    return [float(f) for f in features]


def shortcut_accuracy(pairs: Sequence[Sequence[Any]], punctuation: set[int], folds: int = 5) -> float:
    """Cross-validated accuracy of gradient-boosted trees that predict each pair's label from its surface
    features alone (``pairs``: (tokens_a, tokens_b, label) of marked tokens, e.g. `SentencePair`s).

    Trees, not a linear model, so that a leak through a combination (a long A *and* a B that ends mid-sentence)
    is found too. Deterministic: the folds and the trees are seeded. One thread: the trees' OpenMP threads
    slow down tenfold or more on a machine whose cores are busy with something else.

    Chapter: book/nsp_sop.md
    """
    import numpy as np
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.model_selection import StratifiedKFold, cross_val_score
    from threadpoolctl import threadpool_limits

    labels = np.array([int(p[2]) for p in pairs])
    if len(set(labels.tolist())) < 2 or min(np.bincount(labels)) < folds:
        raise ValueError(f"shortcut_accuracy needs at least {folds} pairs of each label; got {np.bincount(labels)}.")
    features = np.array([surface_features(a, b, punctuation) for a, b, _ in pairs])
    trees = HistGradientBoostingClassifier(max_iter=200, early_stopping=False, random_state=0)
    splits = StratifiedKFold(folds, shuffle=True, random_state=0)
    with threadpool_limits(1):
        return float(cross_val_score(trees, features, labels, cv=splits).mean())


def leaky_sop_pairs(documents: Sequence[Sequence[Sequence[Any]]], *, rng: random.Random,
                    max_num_tokens: int) -> list[tuple[list, list, int]]:
    """SOP pairs built the way that leaks, kept to show the mistake (and to check that `shortcut_accuracy` sees
    it): pack sentences into a chunk of ``max_num_tokens``, cut it at a random sentence (a lone sentence at a
    random token), truncate, and only then swap half of the pairs.

    The segment that holds the chunk's last sentence, the one that overflowed, is usually the longer one, and
    `truncate_pair` trims the longer one: so a long in-order pair leaves with len(A) >= len(B), a swapped one
    with the reverse, and a lone sentence cut in two keeps its full stop in A exactly when the pair is swapped.
    `bertlab.pretraining_data.create_sop_pairs` is the builder that does not leak.

    Chapter: book/nsp_sop.md
    """
    from .pretraining_data import truncate_pair

    pairs = []
    for document in documents:
        i = 0
        while i < len(document):
            chunk, length = [], 0
            while i < len(document) and length < max_num_tokens:
                chunk.append(document[i])
                length, i = length + len(document[i]), i + 1
            units = [[t] for t in chunk[0]] if len(chunk) == 1 else chunk
            if len(units) < 2:
                continue
            cut = rng.randint(1, len(units) - 1)
            a, b = ([t for unit in part for t in unit] for part in (units[:cut], units[cut:]))
            a, b = truncate_pair(a, b, max_num_tokens, rng)
            pairs.append((b, a, 1) if rng.random() < 0.5 else (a, b, 0))
    return pairs
