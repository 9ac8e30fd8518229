"""Heads on top of the encoder, and the task models that pair them with it.

Pretraining: the masked-LM head (a classifier over the vocabulary at each position, its output
matrix tied to the token embeddings) and a binary sentence-pair head on [CLS] (NSP or SOP).
Fine-tuning: sequence classification, token classification, and span extraction (extractive QA).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .checkpoint import PreTrainedBert
from .config import BertConfig
from .labels import IGNORE_INDEX
from .model import BertModel, activation
from .outputs import (
    BertForPreTrainingOutput,
    MaskedLMOutput,
    QuestionAnsweringOutput,
    SequenceClassifierOutput,
    TokenClassifierOutput,
)


class BertPredictionHeadTransform(nn.Module):
    """dense -> activation -> LayerNorm, applied to each position before the vocabulary projection.

    Chapter: book/masking.md
    """

    def __init__(self, config: BertConfig):
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, config.hidden_size)
        self.act = activation(config.hidden_act)
        self.LayerNorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.LayerNorm(self.act(self.dense(x)))


class BertLMPredictionHead(nn.Module):
    """Masked-LM head: (B, T, H) -> (B, T, V) scores over the vocabulary.

    The output matrix is the token-embedding matrix itself (weight tying), so the head owns only
    the transform and a per-token output bias.

    Chapter: book/masking.md
    """

    def __init__(self, config: BertConfig):
        super().__init__()
        self.transform = BertPredictionHeadTransform(config)
        self.bias = nn.Parameter(torch.zeros(config.vocab_size))

    def forward(self, x: torch.Tensor, word_embeddings: torch.Tensor) -> torch.Tensor:
        return F.linear(self.transform(x), word_embeddings, self.bias)  # (B, T, V)


class BertOnlyMLMHead(nn.Module):
    def __init__(self, config: BertConfig):
        super().__init__()
        self.predictions = BertLMPredictionHead(config)


class BertPreTrainingHeads(nn.Module):
    """The masked-LM head plus the sentence-pair head (2 classes, on the pooled [CLS] vector).

    Chapter: book/nsp_sop.md
    """

    def __init__(self, config: BertConfig):
        super().__init__()
        self.predictions = BertLMPredictionHead(config)
        self.seq_relationship = nn.Linear(config.hidden_size, 2)


def mlm_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Cross-entropy over the vocabulary at the masked positions only (labels == -100 elsewhere)."""
    return F.cross_entropy(logits.flatten(0, -2).float(), labels.flatten(), ignore_index=IGNORE_INDEX)


def pair_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy of the pairs whose label is not IGNORE_INDEX (an unpaired segment has none), and 0 for
    a batch without any (where a plain mean would be 0 / 0)."""
    total = F.cross_entropy(logits.float(), labels, ignore_index=IGNORE_INDEX, reduction="sum")
    return total / (labels != IGNORE_INDEX).sum().clamp(min=1)


def predict_tokens(
    head: BertLMPredictionHead,
    hidden: torch.Tensor,
    word_embeddings: torch.Tensor,
    labels: torch.Tensor | None,
    masked_only: bool,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Vocabulary logits and the MLM loss.

    With ``masked_only`` (and labels), the vocabulary projection runs only at the M masked positions,
    as the original BERT pretraining code does (it gathers `masked_lm_positions` first): the loss is the
    same, the largest matrix product of a small model shrinks by about 1 / mlm_probability, and the
    logits come back as (M, V) in the order of ``labels != -100``. Otherwise they are (B, T, V).
    """
    if labels is not None and labels.shape != hidden.shape[:-1]:
        raise ValueError(
            f"labels have shape {tuple(labels.shape)}, expected {tuple(hidden.shape[:-1])} (one per input token)."
        )
    if labels is not None and masked_only:
        selected = labels != IGNORE_INDEX  # (B, T)
        logits = head(hidden[selected], word_embeddings)  # (M, V)
        return logits, mlm_loss(logits, labels[selected])
    logits = head(hidden, word_embeddings)  # (B, T, V)
    if labels is None:
        return logits, None
    selected = labels != IGNORE_INDEX  # the loss reads the masked rows only: log-softmax over M rows, not B x T
    return logits, mlm_loss(logits[selected], labels[selected])


def _check_class_labels(labels: torch.Tensor, num_classes: int, name: str) -> None:
    if torch.compiler.is_compiling():
        return
    valid = labels[labels != IGNORE_INDEX]
    if valid.numel() and (int(valid.min()) < 0 or int(valid.max()) >= num_classes):
        raise ValueError(
            f"{name} must be class indices in [0, {num_classes}) or {IGNORE_INDEX} (ignored); "
            f"found {int(valid.min())}..{int(valid.max())}."
        )


class BertForPreTraining(PreTrainedBert):
    """BERT's pretraining model: masked LM + a sentence-pair task (NSP in BERT, SOP in ALBERT).

    ``labels`` (B, T): the original token at masked positions, -100 elsewhere.
    ``next_sentence_label`` (B,): 0 = B follows A (NSP) / in order (SOP), 1 = random B / swapped.
    Either label may be left out; the loss is the sum of those given.
    ``masked_only=True`` computes vocabulary logits at the masked positions only (see `predict_tokens`).

    Chapter: book/masking.md
    """

    hf_architecture = "BertForPreTraining"
    head_prefixes = ("cls.",)

    def __init__(self, config: BertConfig):
        super().__init__(config)
        self.bert = BertModel(config, add_pooling_layer=True)
        self.cls = BertPreTrainingHeads(config)
        self.init_weights()

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        next_sentence_label: torch.Tensor | None = None,
        masked_only: bool = False,
    ) -> BertForPreTrainingOutput:
        out = self.bert(input_ids, attention_mask, token_type_ids)
        word_embeddings = self.bert.embeddings.word_embeddings.weight
        logits, lm = predict_tokens(self.cls.predictions, out.last_hidden_state, word_embeddings, labels, masked_only)
        pair_logits = self.cls.seq_relationship(out.pooler_output)  # (B, 2)
        pair = None
        if next_sentence_label is not None:
            _check_class_labels(next_sentence_label, 2, "next_sentence_label")
            pair = pair_loss(pair_logits, next_sentence_label.view(-1))
        losses = [x for x in (lm, pair) if x is not None]
        return BertForPreTrainingOutput(
            loss=sum(losses) if losses else None,
            prediction_logits=logits,
            seq_relationship_logits=pair_logits,
            mlm_loss=lm,
            sentence_loss=pair,
        )


class BertForMaskedLM(PreTrainedBert):
    """Masked LM alone (no sentence-pair task, no pooler), as RoBERTa pretrains."""

    hf_architecture = "BertForMaskedLM"
    head_prefixes = ("cls.",)

    def __init__(self, config: BertConfig):
        super().__init__(config)
        self.bert = BertModel(config, add_pooling_layer=False)
        self.cls = BertOnlyMLMHead(config)
        self.init_weights()

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        masked_only: bool = False,
    ) -> MaskedLMOutput:
        out = self.bert(input_ids, attention_mask, token_type_ids)
        word_embeddings = self.bert.embeddings.word_embeddings.weight
        logits, loss = predict_tokens(self.cls.predictions, out.last_hidden_state, word_embeddings, labels, masked_only)
        return MaskedLMOutput(loss=loss, logits=logits)


def mean_pool(hidden: torch.Tensor, attention_mask: torch.Tensor | None) -> torch.Tensor:
    """The mean of the token vectors (B, T, H) -> (B, H), over the real tokens only (attention_mask 1)."""
    if attention_mask is None:
        return hidden.mean(1)
    weights = attention_mask.to(hidden.dtype).unsqueeze(-1)  # (B, T, 1)
    return (hidden * weights).sum(1) / weights.sum(1).clamp(min=1.0)


class BertForSequenceClassification(PreTrainedBert):
    """One label per sequence (or sentence pair) from the pooled [CLS] vector, or with
    ``config.classifier_pooling="mean"`` from the mean of the token vectors; num_labels=1 is regression.

    Chapter: book/finetuning.md
    """

    hf_architecture = "BertForSequenceClassification"
    head_prefixes = ("classifier.",)

    def __init__(self, config: BertConfig):
        super().__init__(config)
        self.bert = BertModel(config, add_pooling_layer=True)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)
        self.classifier = nn.Linear(config.hidden_size, config.num_labels)
        self.init_weights()

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
    ) -> SequenceClassifierOutput:
        """Logits (B, num_labels) from the sentence vector ([CLS] pooler or token mean); with labels, the loss.

        Chapter: book/finetuning.md
        """
        out = self.bert(input_ids, attention_mask, token_type_ids)
        if self.config.classifier_pooling == "mean":
            pooled = mean_pool(out.last_hidden_state, attention_mask)  # (B, H)
        else:
            pooled = out.pooler_output  # (B, H)
        logits = self.classifier(self.dropout(pooled))  # (B, num_labels)
        loss = None
        if labels is not None:
            if self.config.num_labels == 1:
                loss = F.mse_loss(logits.squeeze(-1).float(), labels.float())
            else:
                _check_class_labels(labels, self.config.num_labels, "labels")
                loss = F.cross_entropy(logits.float(), labels.view(-1))
        return SequenceClassifierOutput(loss=loss, logits=logits)


class BertForTokenClassification(PreTrainedBert):
    """One label per token (e.g. part of speech); positions labelled -100 carry no loss.

    Chapter: book/finetuning.md
    """

    hf_architecture = "BertForTokenClassification"
    head_prefixes = ("classifier.",)

    def __init__(self, config: BertConfig):
        super().__init__(config)
        self.bert = BertModel(config, add_pooling_layer=False)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)
        self.classifier = nn.Linear(config.hidden_size, config.num_labels)
        self.init_weights()

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
    ) -> TokenClassifierOutput:
        """Logits (B, T, num_labels), one row per token; with labels (B, T), the loss over the non -100 ones.

        Chapter: book/finetuning.md
        """
        h = self.bert(input_ids, attention_mask, token_type_ids).last_hidden_state  # (B, T, H)
        logits = self.classifier(self.dropout(h))  # (B, T, num_labels)
        loss = None
        if labels is not None:
            if labels.shape != input_ids.shape:
                raise ValueError(f"labels have shape {tuple(labels.shape)}, expected {tuple(input_ids.shape)}.")
            _check_class_labels(labels, self.config.num_labels, "labels")
            loss = F.cross_entropy(logits.flatten(0, 1).float(), labels.flatten(), ignore_index=IGNORE_INDEX)
        return TokenClassifierOutput(loss=loss, logits=logits)


class BertForQuestionAnswering(PreTrainedBert):
    """Extractive QA: two scores per token, for "the answer starts here" and "the answer ends here".

    Chapter: book/finetuning.md
    """

    hf_architecture = "BertForQuestionAnswering"
    head_prefixes = ("qa_outputs.",)

    def __init__(self, config: BertConfig):
        if config.num_labels != 2:
            raise ValueError(
                f"BertForQuestionAnswering predicts two scores per token (start, end): config.num_labels must be 2, "
                f"got {config.num_labels}."
            )
        super().__init__(config)
        self.bert = BertModel(config, add_pooling_layer=False)
        self.qa_outputs = nn.Linear(config.hidden_size, 2)
        self.init_weights()

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None,
        start_positions: torch.Tensor | None = None,
        end_positions: torch.Tensor | None = None,
    ) -> QuestionAnsweringOutput:
        """Start and end logits (B, T) each; with both gold positions, the mean of the two cross-entropies.

        Chapter: book/finetuning.md
        """
        h = self.bert(input_ids, attention_mask, token_type_ids).last_hidden_state  # (B, T, H)
        start_logits, end_logits = self.qa_outputs(h).unbind(-1)  # (B, T) each
        loss = None
        if (start_positions is None) != (end_positions is None):
            raise ValueError("give both start_positions and end_positions, or neither.")
        if start_positions is not None:
            T = input_ids.shape[1]
            _check_class_labels(start_positions, T, "start_positions")
            _check_class_labels(end_positions, T, "end_positions")
            loss = (F.cross_entropy(start_logits.float(), start_positions.view(-1))
                    + F.cross_entropy(end_logits.float(), end_positions.view(-1))) / 2
        return QuestionAnsweringOutput(loss=loss, start_logits=start_logits, end_logits=end_logits)
