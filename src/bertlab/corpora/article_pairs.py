"""A sentence-pair task from People's Daily: do two sentences come from the same article?

The lecture's third fine-tuning case reads two segments and gives one class, ``[CLS] A [SEP] B [SEP]``.
Half of the pairs here are two sentences of one article (label 1), half pair a sentence with one from
another article of the same split (label 0). Neither sentence alone tells the answer: the model has to
compare what the two are about (a topic, a place, a person). Splits follow the article splits of
`load_peoples_daily_documents`, so no article gives sentences to two splits.
"""

from __future__ import annotations

import functools
import os
import random

import datasets

from .peoples_daily import BUNDLED, split_articles
from .sources import (
    DEFAULT_SEED,
    SourceKey,
    check_split,
    pair_columns,
    pick_split,
    resolve_source,
    to_dataset_dict,
)

# Shorter sentences are mostly datelines and captions (（附图片） "(with a picture)"), which name no topic.
MIN_SENTENCE_CHARS = 10

ARTICLE_PAIR_FEATURES = datasets.Features({
    "text_a": datasets.Value("string"),
    "text_b": datasets.Value("string"),
    "label": datasets.ClassLabel(names=["different article", "same article"]),
})


def make_article_pairs(articles: list[list[str]], rng: random.Random) -> list[tuple[str, str, int]]:
    """(text_a, text_b, label) pairs: label 1 when both sentences come from one article, 0 when B comes from
    another article. Each article's sentences are shuffled and taken two at a time; for a fair coin's half of
    the pairs, B is swapped for a random sentence of a random other article. Articles need two usable sentences.

    Chapter: book/finetuning.md
    """
    usable = [[s for s in article if len(s) >= MIN_SENTENCE_CHARS] for article in articles]
    usable = [a for a in usable if len(a) >= 2]
    if len(usable) < 2:
        raise ValueError("article pairs need at least two articles with two sentences of "
                         f">= {MIN_SENTENCE_CHARS} characters each.")
    pairs = []
    for i, article in enumerate(usable):
        sentences = article[:]
        rng.shuffle(sentences)
        for a, b in zip(sentences[0::2], sentences[1::2], strict=False):
            if rng.random() < 0.5:
                pairs.append((a, b, 1))
            else:
                other = rng.randrange(len(usable) - 1)
                other += other >= i  # any article but this one
                pairs.append((a, rng.choice(usable[other]), 0))
    rng.shuffle(pairs)
    return pairs


@functools.lru_cache(maxsize=8)
def _article_pairs(key: SourceKey, seed: int) -> datasets.DatasetDict:
    columns = {}
    for split, articles in split_articles(key, seed).items():
        texts = [[sentence.text for sentence in article.sentences] for article in articles]
        columns[split] = pair_columns(make_article_pairs(texts, random.Random(f"article-pairs-{seed}-{split}")))
    return to_dataset_dict(columns, ARTICLE_PAIR_FEATURES)


def load_article_pairs(split: str | None = None, *, source: str | os.PathLike | None = None,
                       seed: int = DEFAULT_SEED) -> datasets.Dataset | datasets.DatasetDict:
    """"Do these two sentences come from the same article?" (the lecture's sentence-pair case), from People's Daily.

    Columns: text_a, text_b, label (1 = same article, 0 = different articles). Built per split by
    `make_article_pairs`; `source` as for `load_peoples_daily_documents`.
    """
    check_split(split)
    return pick_split(_article_pairs(resolve_source(source, BUNDLED), seed), split)
