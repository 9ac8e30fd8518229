"""A sentence-pair task from People's Daily: is B the sentence that follows A, or one from another article?

The lecture's third fine-tuning case reads two segments and gives one class, ``[CLS] A [SEP] B [SEP]``.
Every two neighbouring sentences of an article give two pairs: A with the sentence after it (label 1) and
A with a sentence of another article of the same split (label 0). The classes are balanced and every A is
seen once with each answer, so neither sentence alone tells it: the model has to compare the two (a topic,
a name, a place carried on). It is BERT's next-sentence question, asked of labelled pairs. Splits follow
the article splits of `load_peoples_daily_documents`, so no article gives sentences to two splits.
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
    "label": datasets.ClassLabel(names=["another article", "next sentence"]),
})


def make_article_pairs(articles: list[list[str]], rng: random.Random) -> list[tuple[str, str, int]]:
    """(text_a, text_b, label) pairs: for every sentence A of an article that has a next one, (A, the next
    sentence, 1) and (A, a sentence of another article, 0). Sentences shorter than MIN_SENTENCE_CHARS are left
    out first, so "next" is the next usable one; an article needs two of them.

    The other article's sentence is drawn from the same pool as the true next sentences: every usable sentence
    but an article's first, all equally likely. So B alone, its length or its punctuation, says nothing of the
    label (a first sentence, often a headline, would only ever be a negative).

    Chapter: book/finetuning.md
    """
    usable = [[s for s in article if len(s) >= MIN_SENTENCE_CHARS] for article in articles]
    usable = [a for a in usable if len(a) >= 2]
    if len(usable) < 2:
        raise ValueError("article pairs need at least two articles with two sentences of "
                         f">= {MIN_SENTENCE_CHARS} characters each.")
    followers = [(i, s) for i, article in enumerate(usable) for s in article[1:]]  # every possible true B
    pairs = []
    for i, article in enumerate(usable):
        for a, b in zip(article, article[1:], strict=False):  # each sentence with the one after it
            pairs.append((a, b, 1))
            other, sentence = rng.choice(followers)
            while other == i:  # any article but this one
                other, sentence = rng.choice(followers)
            pairs.append((a, sentence, 0))
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
    """"Is B the sentence after A?" (the lecture's sentence-pair case), from People's Daily.

    Columns: text_a, text_b, label (1 = B follows A in its article, 0 = B comes from another article). Built
    per split by `make_article_pairs`; `source` as for `load_peoples_daily_documents`.
    """
    check_split(split)
    return pick_split(_article_pairs(resolve_source(source, BUNDLED), seed), split)
