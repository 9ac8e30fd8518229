"""bertlab: the BERT library of the course "Self-Supervised Learning and BERT"."""

from .config import PRESETS, BertConfig
from .device import autocast, best_device
from .heads import (
    BertForMaskedLM,
    BertForPreTraining,
    BertForQuestionAnswering,
    BertForSequenceClassification,
    BertForTokenClassification,
)
from .model import BertModel

__all__ = [
    "PRESETS",
    "BertConfig",
    "BertModel",
    "BertForPreTraining",
    "BertForMaskedLM",
    "BertForSequenceClassification",
    "BertForTokenClassification",
    "BertForQuestionAnswering",
    "autocast",
    "best_device",
]
__version__ = "0.1.0"
