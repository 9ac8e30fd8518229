"""Ask a masked language model what belongs at each [MASK] of a sentence.

    model, tokenizer = load_fill_mask_model("runs/pretrain/checkpoint-2000")
    fill_mask(model, tokenizer, "台湾大[MASK]")  # "National Taiwan Univ[ersity]"
    # [[('学', 0.93), ('会', 0.02), ...]]     学 = the "-sity" of 大学, university

Every [MASK] is predicted in the same forward pass, each without knowing what the others become.
"""

from __future__ import annotations

import os
import warnings
from typing import Any

import torch
from torch import nn

from .checkpoint import resolve_checkpoint_dir
from .heads import BertForMaskedLM
from .tokenizer import load_checkpoint_tokenizer

Candidates = list[tuple[str, float]]  # (token, probability), most probable first


@torch.no_grad()
def fill_mask(model: nn.Module, tokenizer: Any, text: str, top_k: int = 5) -> list[Candidates]:
    """For each [MASK] of ``text``, left to right, the ``top_k`` most probable tokens and their probabilities.

    ``model`` is a :class:`~bertlab.BertForMaskedLM` or :class:`~bertlab.BertForPreTraining`.

    Chapter: book/masking.md
    """
    mask = tokenizer.mask_token
    if top_k < 1:
        raise ValueError(f"top_k must be >= 1, got {top_k}.")
    if mask not in text:
        raise ValueError(f"{text!r} has no {mask}: put {mask} where a token should be predicted, e.g. '台湾大{mask}'.")
    device = next(model.parameters()).device
    enc = tokenizer(text, return_tensors="pt", truncation=True, max_length=model.config.max_position_embeddings)
    positions = (enc["input_ids"][0] == tokenizer.mask_token_id).nonzero().flatten()
    if len(positions) == 0:
        raise ValueError(f"the {mask} of {text!r} was truncated away (the text is longer than the model takes).")
    was_training = model.training
    model.eval()
    inputs = {k: enc[k].to(device) for k in ("input_ids", "attention_mask", "token_type_ids") if k in enc}
    out = model(**inputs)
    model.train(was_training)
    logits = out.prediction_logits if hasattr(out, "prediction_logits") else out.logits  # (1, T, V)
    probs = logits[0, positions.to(device)].float().softmax(-1)  # (masks, V)
    top = probs.topk(min(top_k, probs.shape[-1]), dim=-1)
    return [
        list(zip(tokenizer.convert_ids_to_tokens(ids.tolist()), p.tolist(), strict=True))
        for p, ids in zip(top.values.cpu(), top.indices.cpu(), strict=True)
    ]


def format_candidates(text: str, predictions: list[Candidates]) -> str:
    """A readable table: one line per [MASK] with its candidates and their probabilities."""
    lines = [text]
    for n, candidates in enumerate(predictions, start=1):
        lines.append(f"  [MASK] {n}: " + "  ".join(f"{token} {p:.3f}" for token, p in candidates))
    return "\n".join(lines)


def load_fill_mask_model(directory: str | os.PathLike) -> tuple[BertForMaskedLM, Any]:
    """A checkpoint's masked-LM model (a BertForPreTraining checkpoint's NSP/SOP head is left out) and the
    tokenizer saved next to it.

    Chapter: book/masking.md
    """
    path = resolve_checkpoint_dir(directory)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*not used from")  # the pooler and NSP head: not needed here
        warnings.filterwarnings("ignore", message=".*newly initialised")  # reported as an error below
        model = BertForMaskedLM.from_pretrained(path)
    missing = model.loading_info["missing"]
    if missing:
        raise ValueError(f"{path} has no masked-LM head (missing {missing[0]} ...): it cannot fill in [MASK]. "
                         "Use a pretraining checkpoint (BertForPreTraining or BertForMaskedLM).")
    tokenizer = load_checkpoint_tokenizer(path)
    if len(tokenizer) > model.config.vocab_size:
        raise ValueError(f"the tokenizer in {path} has {len(tokenizer)} tokens, the model {model.config.vocab_size}.")
    return model.eval(), tokenizer
