"""Helpers for the test cells of the course's notebooks (solutions/, exercises/).

Under the autograder the test cells run in the judge (`coursegrader.judge`), in the grading process, with
the notebook's functions reached in the sandboxed kernel through data; these helpers then run there too. A
student running the notebook runs them in the kernel, for feedback only.
"""

from __future__ import annotations

import contextlib
import sys
import warnings
from collections.abc import Iterator
from typing import Any

import torch

from .labels import IGNORE_INDEX


@contextlib.contextmanager
def own_work(piece: str) -> Iterator[None]:
    """Run the student's code for `piece`: Python warnings silenced (a warning is no reason to fail a test), and a
    piece still left as ``raise NotImplementedError()`` reported by its name.

    Whether the piece is the student's own code is settled by the sandbox, not here: there the course library's
    implementation of every graded piece of the assignment is a stub that raises (`coursegrader.stubs`)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            yield
        except NotImplementedError:
            raise AssertionError(f"{piece} is not written yet: its answer cell still raises NotImplementedError.") \
                from None


def _is_remote(obj: Any) -> bool:
    """Whether `obj` is the judge's stand-in for a name of the student's kernel. Only the grader's judge makes
    them, so where it was never imported (a student's own kernel) nothing is."""
    judge = sys.modules.get("coursegrader.judge")
    return judge is not None and isinstance(obj, judge.Remote)


def backward(function: Any, *args: Any, **kwargs: Any) -> Any:
    """Call `function` and back-propagate the sum of its output (its first, if a tuple); return the output.

    Gradients land in the tensor arguments' ``.grad`` and in the parameters of the notebook's module. In the
    judge, `function` lives in the kernel and the backward pass runs there (`coursegrader.judge.backward`)."""
    if _is_remote(function):
        return sys.modules["coursegrader.judge"].backward(function, *args, **kwargs)
    result = function(*args, **kwargs)
    (result[0] if isinstance(result, tuple) else result).sum().backward()
    return result


def check_close(actual, expected, what: str, atol: float = 1e-5, rtol: float = 1e-4) -> None:
    """assert_close with a message that names what was compared."""
    if not isinstance(actual, torch.Tensor):
        raise AssertionError(f"{what}: expected a torch.Tensor, got {type(actual).__name__}.")
    if tuple(actual.shape) != tuple(expected.shape):
        raise AssertionError(f"{what}: expected shape {tuple(expected.shape)}, got {tuple(actual.shape)}.")
    try:
        torch.testing.assert_close(actual.detach().double(), expected.detach().double(), atol=atol, rtol=rtol)
    except AssertionError as e:
        raise AssertionError(f"{what} differs from the expected values.\n{e}") from None


def check_rate(observed: float, expected: float, tolerance: float, what: str) -> None:
    """A statistical check: `observed` must lie within `tolerance` of `expected`."""
    if abs(observed - expected) > tolerance:
        raise AssertionError(f"{what} is {observed:.3f}; expected {expected:.3f} (within {tolerance:.3f}).")


def check_number(actual, expected: float, what: str, tolerance: float = 1e-9) -> None:
    """`actual` must be a real number (int or float, not a tensor or a bool) within `tolerance` of `expected`."""
    import math

    if isinstance(actual, bool) or not isinstance(actual, int | float):
        raise AssertionError(f"{what}: expected a number (int or float), got {type(actual).__name__}.")
    if not math.isfinite(actual) or abs(actual - expected) > tolerance:
        raise AssertionError(f"{what} is {actual!r}; expected {expected!r}.")


def check_tensor(value, what: str, shape: tuple[int, ...], integer: bool | None = None) -> None:
    """`value` must be a tensor of this shape (and integer or floating point, when `integer` is given)."""
    if not isinstance(value, torch.Tensor):
        raise AssertionError(f"{what} must be a torch.Tensor, got {type(value).__name__}.")
    if tuple(value.shape) != tuple(shape):
        raise AssertionError(f"{what} must have shape {tuple(shape)}, got {tuple(value.shape)}.")
    if integer is True and (value.dtype.is_floating_point or value.dtype == torch.bool):
        raise AssertionError(f"{what} must hold integer ids (torch.long), got dtype {value.dtype}.")
    if integer is False and not value.dtype.is_floating_point:
        raise AssertionError(f"{what} must be floating point, got dtype {value.dtype}.")


def passed(grade_id: str, shown: bool = True) -> None:
    """The last line of every test cell: say that the tests shown ran to their end (the grader may run more).

    ``shown=False`` marks a cell whose tests are all hidden: in the student's copy nothing was checked."""
    judge = sys.modules.get("coursegrader.judge")
    if getattr(judge, "ACTIVE", False):  # graded: the judge ran every test of the cell, hidden ones included
        print(f"{grade_id}: all tests passed")
        return
    print(f"{grade_id}: the tests shown in this cell passed (the grader may run more)" if shown else
          f"{grade_id}: nothing checked yet: this cell's tests are hidden and run when the notebook is graded")


# ---- training through the student's head and loss -----------------------------------------------------------


def train_mlm(head_class: Any, loss_fn: Any, mask_fn: Any, config: Any, encoder: torch.nn.Module,
              input_ids: torch.Tensor, attention_mask: torch.Tensor, *, mask_token_id: int,
              special_token_ids: list[int], steps: int = 30, batch_size: int = 16,
              lr: float = 2e-3, seed: int = 0) -> tuple[list[float], Any]:
    """Train `encoder` (in place, built from `config`) and a fresh ``head_class(config)`` with `loss_fn` on
    batches masked by `mask_fn`; return the losses of the steps and the trained head.

    In the judge the student's head, loss and masking live in the kernel: the training runs there, on a copy
    of `encoder` sent as data, and the trained encoder comes back as data. What the kernel reports is not the
    verdict: judge the result with `masked_token_loss`, computed here."""
    if not _is_remote(head_class):
        state = _train_here(head_class, loss_fn, mask_fn, config, dict(encoder.state_dict()), input_ids,
                            attention_mask, mask_token_id, special_token_ids, steps, batch_size, lr, seed)
    else:
        here = head_class._library("bertlab.checks:_train_here")
        state = here(head_class, loss_fn, mask_fn, config, dict(encoder.state_dict()), input_ids,
                     attention_mask, mask_token_id, special_token_ids, steps, batch_size, lr, seed)
    if not (isinstance(state, dict) and isinstance(state.get("losses"), list)
            and isinstance(state.get("encoder"), dict)):
        raise AssertionError("training did not return its losses and the trained encoder.")
    encoder.load_state_dict(state["encoder"])
    return [float(x) for x in state["losses"]], state["head"]


def _train_here(head_class, loss_fn, mask_fn, config, encoder_state, input_ids, attention_mask, mask_token_id,
                special_token_ids, steps, batch_size, lr, seed) -> dict:
    """The training loop of `train_mlm`, where the student's code lives."""
    from bertlab import BertModel

    encoder = BertModel(config, add_pooling_layer=False)
    encoder.load_state_dict(encoder_state)
    head = head_class(config)
    optimizer = torch.optim.AdamW(list(encoder.parameters()) + list(head.parameters()), lr=lr)
    generator = torch.Generator().manual_seed(seed)
    losses = []
    for step in range(steps):
        rows = torch.arange(batch_size * step, batch_size * step + batch_size) % len(input_ids)
        ids, labels = mask_fn(input_ids[rows], vocab_size=config.vocab_size, mask_token_id=mask_token_id,
                              special_token_ids=special_token_ids, generator=generator)
        hidden = encoder(ids, attention_mask[rows]).last_hidden_state
        loss = loss_fn(head(hidden, encoder.embeddings.word_embeddings.weight), labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(float(loss.detach()))
    return {"losses": losses, "encoder": dict(encoder.state_dict()), "head": head}


def masked_token_loss(encoder: torch.nn.Module, head: Any, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                      labels: torch.Tensor) -> float:
    """The mean cross-entropy of `head`'s scores at the labelled positions (computed here, whatever `head` is)."""
    picked = labels != IGNORE_INDEX
    with torch.no_grad():
        hidden = encoder(input_ids, attention_mask).last_hidden_state[picked][None]  # (1, N, H)
        scores = head(hidden, encoder.embeddings.word_embeddings.weight)
    vocab_size = encoder.embeddings.word_embeddings.weight.shape[0]
    check_tensor(scores, "the head's scores at the masked positions", (1, int(picked.sum()), vocab_size), integer=False)
    return float(torch.nn.functional.cross_entropy(scores[0].detach().double(), labels[picked]))
