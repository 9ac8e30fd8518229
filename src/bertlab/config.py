"""BERT hyper-parameters: one dataclass, a few named presets, and the mapping to `config.json`.

The field names are those of Hugging Face's `BertConfig`, so a `config.json` written by
`transformers` reads straight into :class:`BertConfig` and back.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

ACTIVATIONS = ("gelu", "gelu_new", "gelu_pytorch_tanh", "relu", "silu", "swish")
POOLINGS = ("cls", "mean")


@dataclass
class BertConfig:
    """The sizes of one BERT (defaults: BERT-base, Devlin et al. 2019), field for field as in `config.json`.

    Chapter: book/bert_encoder.md
    """

    vocab_size: int = 30522
    hidden_size: int = 768
    num_hidden_layers: int = 12
    num_attention_heads: int = 12
    intermediate_size: int = 3072
    hidden_act: str = "gelu"
    hidden_dropout_prob: float = 0.1
    attention_probs_dropout_prob: float = 0.1
    max_position_embeddings: int = 512
    type_vocab_size: int = 2
    initializer_range: float = 0.02
    layer_norm_eps: float = 1e-12
    pad_token_id: int = 0
    num_labels: int = 2  # used by the classification heads only
    # What BertForSequenceClassification classifies: "cls", the pooled [CLS] vector (BERT, and transformers),
    # or "mean", the mean of the last layer's token vectors (not a transformers option; kept in config.json).
    classifier_pooling: str = "cls"

    def __post_init__(self) -> None:
        if self.hidden_size % self.num_attention_heads != 0:
            raise ValueError(
                f"hidden_size ({self.hidden_size}) must be divisible by num_attention_heads "
                f"({self.num_attention_heads}): each head gets hidden_size / num_attention_heads dimensions."
            )
        if self.classifier_pooling not in POOLINGS:
            raise ValueError(f"classifier_pooling must be one of {POOLINGS}, got {self.classifier_pooling!r}.")
        if self.hidden_act not in ACTIVATIONS:
            raise ValueError(f"hidden_act {self.hidden_act!r} is not supported; choose one of {ACTIVATIONS}.")
        for name in ("vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads",
                     "intermediate_size", "max_position_embeddings", "type_vocab_size", "num_labels"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name} must be a positive integer, got {getattr(self, name)!r}.")

    @property
    def head_dim(self) -> int:
        return self.hidden_size // self.num_attention_heads

    # ---- presets ---------------------------------------------------------------------------
    @classmethod
    def from_preset(cls, name: str, **overrides: Any) -> BertConfig:
        """A named size (see :data:`PRESETS`), with any field overridden, e.g. ``vocab_size``."""
        if name not in PRESETS:
            raise ValueError(f"Unknown preset {name!r}; choose one of {sorted(PRESETS)}.")
        return cls(**{**PRESETS[name], **overrides})

    # ---- config.json -----------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def to_hf_dict(self, architecture: str | None = None) -> dict[str, Any]:
        """The `config.json` content that `transformers.BertConfig` reads."""
        d = self.to_dict()
        num_labels = d.pop("num_labels")
        d["id2label"] = {str(i): f"LABEL_{i}" for i in range(num_labels)}
        d["label2id"] = {f"LABEL_{i}": i for i in range(num_labels)}
        d["model_type"] = "bert"
        d["position_embedding_type"] = "absolute"
        d["tie_word_embeddings"] = True
        if architecture:
            d["architectures"] = [architecture]
        return d

    @classmethod
    def from_hf_dict(cls, d: dict[str, Any], source: str = "config") -> BertConfig:
        """Read a Hugging Face `config.json` dict; refuse anything that is not a plain BERT."""
        model_type = d.get("model_type")
        if model_type != "bert":
            raise ValueError(
                f"{source} has model_type={model_type!r}, not 'bert'. bertlab loads BERT checkpoints only; "
                "for other architectures use the transformers library."
            )
        pos = d.get("position_embedding_type", "absolute")
        if pos != "absolute":
            raise ValueError(f"{source} uses position_embedding_type={pos!r}; bertlab implements 'absolute' only.")
        if d.get("is_decoder") or d.get("add_cross_attention"):
            raise ValueError(f"{source} is a BERT decoder (is_decoder/add_cross_attention); bertlab is encoder-only.")
        known = {f.name for f in fields(cls)}
        kwargs = {k: v for k, v in d.items() if k in known}
        if "id2label" in d and "num_labels" not in d:
            kwargs["num_labels"] = len(d["id2label"])
        return cls(**kwargs)

    @classmethod
    def from_json_file(cls, path: str | Path) -> BertConfig:
        path = Path(path)
        try:
            d = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as e:
            raise ValueError(f"{path} is not valid JSON ({e}); is it a BERT config.json?") from None
        return cls.from_hf_dict(d, source=str(path))


PRESETS: dict[str, dict[str, Any]] = {
    # Devlin et al. (2019), Table "BERT_BASE" and "BERT_LARGE".
    "bert-base": dict(hidden_size=768, num_hidden_layers=12, num_attention_heads=12, intermediate_size=3072),
    "bert-large": dict(hidden_size=1024, num_hidden_layers=24, num_attention_heads=16, intermediate_size=4096),
    # Course sizes: small enough to pretrain on a laptop CPU in minutes. "tiny" and "mini" are the sizes of
    # Turc et al. (2019), "Well-read students learn better"; "course" is the course model: four layers of tiny's
    # width, deeper for the same cost per layer (a 2-core CPU fine-tunes it dozens of times in an hour).
    "mini": dict(hidden_size=256, num_hidden_layers=4, num_attention_heads=4, intermediate_size=1024),
    "course": dict(hidden_size=128, num_hidden_layers=4, num_attention_heads=4, intermediate_size=512),
    "tiny": dict(hidden_size=128, num_hidden_layers=2, num_attention_heads=2, intermediate_size=512),
}
