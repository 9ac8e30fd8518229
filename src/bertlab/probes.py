"""Linear probes: how much of a task a frozen encoder's features already hold.

Fine-tuning changes every weight, so a fine-tuned score mixes what pretraining put into the encoder with what
the few labelled examples taught it. A probe keeps the encoder frozen and trains only a logistic regression on
its output vectors: the mean of the token vectors of a sentence (or a pair), or each token's own vector for a
tagging task. Pretrained features should beat random ones of the same architecture; how far, at each N, says
what the pretraining stored.
"""

from __future__ import annotations

from functools import partial
from typing import Any

import numpy as np
import torch

C_GRID = (0.01, 0.1, 1.0, 10.0)  # inverse regularisation strengths tried on validation
TOKEN_TASKS = ("pos",)  # one label per token, probed per token; the others per sentence


@torch.no_grad()
def frozen_features(encoder: torch.nn.Module, features: list[dict], task: str, pad_token_id: int,
                    batch_size: int = 64) -> tuple[np.ndarray, np.ndarray]:
    """(vectors, labels) of encoded examples (`FinetuneTask.encode`): per example the mean of its token vectors
    (padding excluded), or for a token task each labelled token's vector."""
    from .finetune_tasks import pad_batch
    from .labels import IGNORE_INDEX
    from .trainer import iterate_batches

    encoder.eval()
    vectors, labels = [], []
    for batch in iterate_batches(features, partial(pad_batch, pad_token_id=pad_token_id), batch_size):
        mask = batch["attention_mask"]
        hidden = encoder(batch["input_ids"], mask, batch["token_type_ids"]).last_hidden_state  # (B, T, H)
        if task in TOKEN_TASKS:
            selected = batch["labels"] != IGNORE_INDEX
            vectors.append(hidden[selected].numpy())
            labels.append(batch["labels"][selected].numpy())
        else:
            weights = mask.unsqueeze(-1).to(hidden.dtype)
            vectors.append(((hidden * weights).sum(1) / weights.sum(1)).numpy())
            labels.append(batch["labels"].numpy())
    return np.concatenate(vectors), np.concatenate(labels)


def probe_scores(train: tuple[np.ndarray, np.ndarray], validation: tuple[np.ndarray, np.ndarray],
                 test: tuple[np.ndarray, np.ndarray]) -> dict[str, Any]:
    """A logistic regression on standardised vectors, C chosen on validation (a tie goes to the stronger
    regularisation); its C and its validation and test accuracy."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from threadpoolctl import threadpool_limits

    fitted = {}
    with threadpool_limits(1):
        for C in C_GRID:
            model = make_pipeline(StandardScaler(), LogisticRegression(C=C, max_iter=2000)).fit(*train)
            fitted[C] = (model, float(model.score(*validation)))
        best = max(C_GRID, key=lambda C: (fitted[C][1], -C))
        model, validation_accuracy = fitted[best]
        return {"C": best, "validation": validation_accuracy, "test": float(model.score(*test))}
