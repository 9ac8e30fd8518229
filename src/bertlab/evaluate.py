"""Metrics: masked-LM top-1 accuracy, sentence-pair accuracy, classification and token accuracy,
and extractive QA (best span decoding, exact match, character F1).

The counting functions return (correct, total) so that batches add up exactly; the ``evaluate_*``
loops run a model over batches and return the means.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from typing import Any

import torch
from torch import nn

from .device import autocast
from .labels import IGNORE_INDEX

Batch = dict[str, Any]


# ---- counting ---------------------------------------------------------------------------------
def mlm_accuracy(prediction_logits: torch.Tensor, labels: torch.Tensor, k: int = 1) -> tuple[int, int]:
    """Top-k hits (the true token among the k best scores; k=1: the argmax) at the masked positions
    (labels != -100), and how many there are.

    ``prediction_logits`` is (B, T, V), or (M, V) from ``masked_only=True``: the masked positions in the
    order of ``labels != -100``.
    """
    selected = labels != IGNORE_INDEX
    if prediction_logits.dim() == labels.dim() + 1:
        prediction_logits = prediction_logits[selected]  # (B, T, V) -> (M, V)
    if prediction_logits.shape[0] != int(selected.sum()):
        raise ValueError(
            f"{prediction_logits.shape[0]} rows of logits for {int(selected.sum())} masked positions; "
            "pass (B, T, V) logits, or the (M, V) ones of masked_only=True with the same labels."
        )
    if k == 1:
        top = prediction_logits.argmax(-1, keepdim=True)  # (M, 1)
    else:
        top = prediction_logits.topk(min(k, prediction_logits.shape[-1]), dim=-1).indices  # (M, k)
    correct = (top == labels[selected][:, None]).any(-1).sum()
    return int(correct), int(selected.sum())


def classification_accuracy(logits: torch.Tensor, labels: torch.Tensor) -> tuple[int, int]:
    """Top-1 hits of (B, C) logits against (B,) labels: sentiment, sentence pairs, NSP/SOP."""
    return int((logits.argmax(-1) == labels).sum()), labels.numel()


def token_accuracy(logits: torch.Tensor, labels: torch.Tensor) -> tuple[int, int]:
    """Top-1 hits of (B, T, C) logits at the labelled positions of (B, T) labels (-100 = not counted)."""
    selected = labels != IGNORE_INDEX
    return int((logits.argmax(-1)[selected] == labels[selected]).sum()), int(selected.sum())


# ---- extractive QA ----------------------------------------------------------------------------
def best_span(
    start_logits: torch.Tensor, end_logits: torch.Tensor, allowed: torch.Tensor, max_answer_length: int = 30
) -> tuple[int, int]:
    """The (start, end) token positions with the highest start + end score such that both lie where
    ``allowed`` (the context tokens), start <= end and end - start + 1 <= max_answer_length. All 1-D (T,).

    Chapter: book/finetuning.md
    """
    if not bool(allowed.any()):
        raise ValueError("no token is allowed in the answer span (is the context empty or truncated away?).")
    T = start_logits.shape[0]
    scores = start_logits.float()[:, None] + end_logits.float()[None, :]  # (T, T): [start, end]
    i = torch.arange(T)
    valid = (i[None, :] >= i[:, None]) & (i[None, :] - i[:, None] < max_answer_length)
    valid &= allowed[:, None] & allowed[None, :]
    flat = scores.masked_fill(~valid, float("-inf")).argmax()
    return int(flat // T), int(flat % T)


def _normalize(text: str) -> str:
    return "".join(text.split())  # whitespace carries no meaning in Chinese text


def exact_match(prediction: str, answer: str) -> float:
    """1.0 when the prediction is the answer (ignoring whitespace), else 0.0."""
    return float(_normalize(prediction) == _normalize(answer))


def char_f1(prediction: str, answer: str) -> float:
    """F1 of the characters the two strings share (as SQuAD's F1 on words; Chinese has no spaces)."""
    pred, gold = _normalize(prediction), _normalize(answer)
    if not pred or not gold:
        return float(pred == gold)
    common = sum((Counter(pred) & Counter(gold)).values())
    if common == 0:
        return 0.0
    precision, recall = common / len(pred), common / len(gold)
    return 2 * precision * recall / (precision + recall)


# ---- evaluation loops -------------------------------------------------------------------------
class Totals:
    """Running sums: ``add(name, value, count)``, then ``means()`` = sum / count per name."""

    def __init__(self) -> None:
        self.sums: dict[str, float] = {}
        self.counts: dict[str, float] = {}

    def add(self, name: str, value: float, count: float = 1) -> None:
        self.sums[name] = self.sums.get(name, 0.0) + float(value)
        self.counts[name] = self.counts.get(name, 0.0) + float(count)

    def means(self) -> dict[str, float]:
        return {k: self.sums[k] / self.counts[k] for k in self.sums if self.counts[k]}


def _inputs(batch: Batch, device: torch.device) -> dict[str, torch.Tensor]:
    keys = ("input_ids", "attention_mask", "token_type_ids")
    return {k: batch[k].to(device) for k in keys if k in batch}


@torch.no_grad()
def evaluate_pretraining(model: nn.Module, batches: Iterable[Batch], device: torch.device) -> dict[str, float]:
    """Losses, MLM top-1 and top-5 accuracy at masked positions, and NSP/SOP accuracy (when labelled)."""
    totals = Totals()
    for batch in batches:
        labels = batch["labels"].to(device)
        pair = batch.get("next_sentence_label")
        pair = pair.to(device) if pair is not None else None
        with autocast(device):
            out = model(**_inputs(batch, device), labels=labels, next_sentence_label=pair, masked_only=True)
        hits, n = mlm_accuracy(out.prediction_logits, labels)
        totals.add("mlm_loss", out.mlm_loss.item() * n, n)
        totals.add("mlm_accuracy", hits, n)
        totals.add("mlm_top5_accuracy", mlm_accuracy(out.prediction_logits, labels, k=5)[0], n)
        if pair is not None:
            totals.add("sentence_loss", out.sentence_loss.item() * len(pair), len(pair))
            totals.add("sentence_accuracy", *classification_accuracy(out.seq_relationship_logits, pair))
    means = totals.means()
    means["loss"] = means.get("mlm_loss", 0.0) + means.get("sentence_loss", 0.0)
    return means


@torch.no_grad()
def evaluate_classification(model: nn.Module, batches: Iterable[Batch], device: torch.device) -> dict[str, float]:
    """Loss and accuracy of a sequence classifier (sentiment, sentence pairs), or of a token classifier
    (part of speech) when the labels are (B, T)."""
    totals = Totals()
    for batch in batches:
        labels = batch["labels"].to(device)
        with autocast(device):
            out = model(**_inputs(batch, device), labels=labels)
        count = token_accuracy if labels.dim() == 2 else classification_accuracy
        hits, n = count(out.logits, labels)
        totals.add("loss", out.loss.item() * n, n)
        totals.add("accuracy", hits, n)
    return totals.means()


@torch.no_grad()
def evaluate_span_extraction(
    model: nn.Module, batches: Iterable[Batch], device: torch.device, max_answer_length: int = 30
) -> dict[str, float]:
    """Exact match and character F1 of the decoded answer spans.

    Each batch carries, besides the model inputs, ``context_mask`` (B, T: True at context tokens),
    ``offsets`` (per example, the (start, end) characters of each token in the context), ``contexts``
    and ``answers`` (the gold answer texts).
    """
    totals = Totals()
    for batch in batches:
        with autocast(device):
            out = model(**_inputs(batch, device))
        for b, (context, answer) in enumerate(zip(batch["contexts"], batch["answers"], strict=True)):
            start, end = best_span(out.start_logits[b].cpu(), out.end_logits[b].cpu(), batch["context_mask"][b],
                                   max_answer_length)
            prediction = context[batch["offsets"][b][start][0]: batch["offsets"][b][end][1]]
            totals.add("exact_match", exact_match(prediction, answer))
            totals.add("f1", char_f1(prediction, answer))
    return totals.means()
