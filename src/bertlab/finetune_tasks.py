"""The four fine-tuning tasks of the lecture, each as: data -> token features -> padded batches.

    sentiment  one sentence -> one class (positive/negative review)    BertForSequenceClassification
    pos        one sentence -> one class per token (part of speech)     BertForTokenClassification
    pair       two sentences -> one class (next sentence?)              BertForSequenceClassification
    qa         question + context -> the answer's span in the context   BertForQuestionAnswering

A feature is a dict of lists (input_ids, token_type_ids, attention_mask and the labels);
:func:`pad_batch` turns a list of them into tensors.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from . import corpora
from .evaluate import evaluate_classification, evaluate_span_extraction
from .heads import BertForQuestionAnswering, BertForSequenceClassification, BertForTokenClassification
from .labels import IGNORE_INDEX

Feature = dict[str, Any]
MODEL_INPUTS = ("input_ids", "token_type_ids", "attention_mask")
PAD_VALUES = {"input_ids": None, "token_type_ids": 0, "attention_mask": 0, "labels": IGNORE_INDEX,
              "context_mask": False}  # None: the tokenizer's [PAD] id


# ---- features ---------------------------------------------------------------------------------
def encode_sentences(rows: Any, tokenizer: Any, max_length: int) -> list[Feature]:
    """Sentiment: [CLS] text [SEP] with the sentence's label."""
    enc = tokenizer(list(rows["text"]), truncation=True, max_length=max_length)
    return [_feature(enc, i, labels=label) for i, label in enumerate(rows["label"])]


def encode_pairs(rows: Any, tokenizer: Any, max_length: int) -> list[Feature]:
    """Sentence pairs: [CLS] a [SEP] b [SEP] (segment ids 0 then 1) with the pair's label."""
    enc = tokenizer(list(rows["text_a"]), list(rows["text_b"]), truncation=True, max_length=max_length)
    return [_feature(enc, i, labels=label) for i, label in enumerate(rows["label"])]


def encode_char_labels(rows: Any, tokenizer: Any, max_length: int) -> list[Feature]:
    """Part of speech: each token gets the label of its first character; [CLS], [SEP] get -100."""
    enc = tokenizer(list(rows["text"]), truncation=True, max_length=max_length, return_offsets_mapping=True)
    features = []
    for i, char_labels in enumerate(rows["char_labels"]):
        words = enc.word_ids(i)
        labels = [IGNORE_INDEX if w is None else char_labels[start]
                  for w, (start, _) in zip(words, enc["offset_mapping"][i], strict=True)]
        features.append(_feature(enc, i, labels=labels))
    return features


def answer_token_span(offsets: list[tuple[int, int]], in_context: list[bool], start: int, end: int) -> tuple[int, int]:
    """The first and last context tokens covering characters [start, end) of the context; (0, 0), the
    [CLS] token, when the answer is not (wholly) among the context tokens, e.g. truncated away."""
    pairs = enumerate(zip(offsets, in_context, strict=True))
    tokens = [t for t, ((a, b), ctx) in pairs if ctx and a < end and b > start]
    if not tokens or offsets[tokens[0]][0] > start or offsets[tokens[-1]][1] < end:
        return 0, 0
    return tokens[0], tokens[-1]


def encode_spans(rows: Any, tokenizer: Any, max_length: int) -> list[Feature]:
    """Extractive QA: [CLS] question [SEP] context [SEP]; the answer's first and last token positions."""
    enc = tokenizer(list(rows["question"]), list(rows["context"]), truncation="only_second", max_length=max_length,
                    return_offsets_mapping=True)
    features = []
    for i, row in enumerate(_rows(rows)):
        in_context = [s == 1 for s in enc.sequence_ids(i)]
        offsets = [tuple(o) for o in enc["offset_mapping"][i]]
        start = row["answer_start"]
        first, last = answer_token_span(offsets, in_context, start, start + len(row["answer_text"]))
        features.append(_feature(enc, i, start_positions=first, end_positions=last, context_mask=in_context,
                                 offsets=offsets, contexts=row["context"], answers=row["answer_text"]))
    return features


def _feature(enc: Any, i: int, **extra: Any) -> Feature:
    return {**{k: enc[k][i] for k in MODEL_INPUTS}, **extra}


def _rows(rows: Any) -> list[dict[str, Any]]:
    return [rows[i] for i in range(len(rows))]


# ---- batches ----------------------------------------------------------------------------------
def pad_batch(features: list[Feature], pad_token_id: int) -> dict[str, Any]:
    """Pad the token-level lists to the longest feature and stack them; numbers become (B,) tensors;
    anything else (offsets, texts) stays a list, for evaluation."""
    longest = max(len(f["input_ids"]) for f in features)
    batch: dict[str, Any] = {}
    for key, first in features[0].items():
        values = [f[key] for f in features]
        if key in PAD_VALUES and isinstance(first, list):
            fill = pad_token_id if PAD_VALUES[key] is None else PAD_VALUES[key]
            padded = [v + [fill] * (longest - len(v)) for v in values]
            batch[key] = torch.tensor(padded, dtype=torch.bool if key == "context_mask" else torch.long)
        elif isinstance(first, int):
            batch[key] = torch.tensor(values, dtype=torch.long)
        else:
            batch[key] = values
    return batch


# ---- the tasks --------------------------------------------------------------------------------
@dataclass(frozen=True)
class FinetuneTask:
    """How one task loads its data, turns it into features, which model it trains and how it is scored."""

    name: str
    load: Callable[..., Any]  # corpora loader: DatasetDict with train/validation/test
    encode: Callable[[Any, Any, int], list[Feature]]
    model_class: type[nn.Module]
    labels: tuple[str, ...]  # fixed label names; () = one per label id seen in training (or none, for qa)
    targets: tuple[str, ...]  # the label keys the model's forward takes

    @property
    def score_name(self) -> str:
        """The validation metric that says which run (or which step of a run) is best."""
        return "exact_match" if self.model_class is BertForQuestionAnswering else "accuracy"

    def num_labels(self, train_rows: Any) -> int:
        if self.labels:
            return len(self.labels)
        if "label" in train_rows.column_names:
            return max(2, max(train_rows["label"]) + 1)
        return 2  # qa: unused by BertForQuestionAnswering

    def evaluate(self, model: nn.Module, batches: Any, device: torch.device, max_answer_length: int) -> dict:
        if self.model_class is BertForQuestionAnswering:
            return evaluate_span_extraction(model, batches, device, max_answer_length)
        return evaluate_classification(model, batches, device)


def _pos_tags() -> tuple[str, ...]:
    return tuple(corpora.POS_TAGS)


TASKS: dict[str, FinetuneTask] = {
    "sentiment": FinetuneTask("sentiment", corpora.load_sentiment, encode_sentences, BertForSequenceClassification,
                              ("negative", "positive"), ("labels",)),
    "pos": FinetuneTask("pos", corpora.load_pos_tagging, encode_char_labels, BertForTokenClassification,
                        _pos_tags(), ("labels",)),
    "pair": FinetuneTask("pair", corpora.load_article_pairs, encode_pairs, BertForSequenceClassification,
                         (), ("labels",)),
    "qa": FinetuneTask("qa", corpora.load_span_extraction, encode_spans, BertForQuestionAnswering,
                       (), ("start_positions", "end_positions")),
}


def task_loss(model: nn.Module, batch: dict[str, Any], targets: tuple[str, ...]) -> dict[str, torch.Tensor]:
    """The model's loss on the inputs and the task's label tensors (metadata left out)."""
    return {"loss": model(**{k: batch[k] for k in MODEL_INPUTS + targets}).loss}
