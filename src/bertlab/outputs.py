"""What the models return: small dataclasses whose field names match those of `transformers`."""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class BertModelOutput:
    last_hidden_state: torch.Tensor  # (B, T, H): one contextual vector per input token
    pooler_output: torch.Tensor | None = None  # (B, H): tanh(W h_[CLS] + b), the sentence-level vector
    hidden_states: tuple[torch.Tensor, ...] | None = None  # embeddings + each layer's output, if asked for


@dataclass
class BertForPreTrainingOutput:
    loss: torch.Tensor | None = None  # mlm_loss + sentence_loss (whichever labels were given)
    prediction_logits: torch.Tensor | None = None  # (B, T, V)
    seq_relationship_logits: torch.Tensor | None = None  # (B, 2): NSP or SOP
    mlm_loss: torch.Tensor | None = None
    sentence_loss: torch.Tensor | None = None


@dataclass
class MaskedLMOutput:
    loss: torch.Tensor | None = None
    logits: torch.Tensor | None = None  # (B, T, V)


@dataclass
class SequenceClassifierOutput:
    loss: torch.Tensor | None = None
    logits: torch.Tensor | None = None  # (B, num_labels)


@dataclass
class TokenClassifierOutput:
    loss: torch.Tensor | None = None
    logits: torch.Tensor | None = None  # (B, T, num_labels)


@dataclass
class QuestionAnsweringOutput:
    loss: torch.Tensor | None = None
    start_logits: torch.Tensor | None = None  # (B, T)
    end_logits: torch.Tensor | None = None  # (B, T)
