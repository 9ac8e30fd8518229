"""Masked-language-model corruption: hide some tokens of a batch and keep the originals as labels.

BERT's recipe (Devlin et al. 2019, section 3.1): choose 15% of the (non-special) tokens as prediction
targets; replace 80% of those with [MASK], 10% with a random token, and leave 10% unchanged. The model
must predict the original token at every chosen position, so it cannot rely on seeing [MASK] (which
never occurs at fine-tuning time) and must keep a good representation of every input token.

Decisions (and why):

* "15%" is an exact count per sequence, ``round(n * mlm_probability)`` and at least 1, where n is the
  number of non-special tokens, as in google-research/bert (which rounds ``len(tokens) * 0.15``). Per-token
  coin flips (Hugging Face's collator) give the same 15% on average, but a short teaching example such as
  a 7-character sentence then comes back with nothing masked a third of the time (0.85**7 = 0.32), and
  a small batch with no masked token at all has an undefined (NaN) loss. The exact count makes
  "15% of this sentence" literally true and every sequence contributes at least one prediction.
* The 80/10/10 split is drawn independently per chosen token (as google-research/bert does).
* The "random token" is drawn uniformly from the non-special vocabulary, excluding the original token,
  so the three outcomes are disjoint: [MASK] 80%, a different real token 10%, unchanged 10%
  (google-research/bert draws from the whole vocabulary, specials included, and may redraw the original).
* ``mask_token_id`` always counts as special: [MASK] is never chosen as a target nor drawn as a replacement.
"""

from __future__ import annotations

from collections.abc import Iterable
from numbers import Integral, Real

import torch

from .labels import IGNORE_INDEX

MASK_FRACTION = 0.8  # of the chosen tokens: replaced by [MASK]
RANDOM_FRACTION = 0.1  # of the chosen tokens: replaced by a random other token (the remaining 10% stay)


def mask_tokens(
    input_ids: torch.Tensor,
    *,
    vocab_size: int,
    mask_token_id: int,
    special_token_ids: Iterable[int],
    mlm_probability: float = 0.15,
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """BERT's masking of a (B, T) batch (or one (T,) sequence) of token ids.

    Returns ``(masked_input_ids, labels)``: labels hold the original id at the chosen positions and -100
    elsewhere. Tokens in ``special_token_ids`` (give [CLS], [SEP] and [PAD] at least) are never chosen.
    The input is not modified. Pass a seeded ``torch.Generator`` for reproducible masks.

    Chapter: book/masking.md
    """
    ids, specials = _check_inputs(input_ids, vocab_size, mask_token_id, special_token_ids, mlm_probability, generator)
    candidates = ~torch.isin(ids, specials)  # (B, T)
    keys = _uniform(ids.shape, generator, ids.device)  # a random rank for each position
    keys = keys.masked_fill(~candidates, 2.0)  # non-candidates sort last
    rank = keys.argsort(dim=-1).argsort(dim=-1)  # rank of each position among its row
    chosen = rank < num_to_predict(candidates.sum(dim=-1), mlm_probability)[:, None]  # the k lowest keys per row
    return _corrupt(ids, chosen, vocab_size, mask_token_id, specials, generator, input_ids)


def mask_whole_words(
    input_ids: torch.Tensor,
    word_ids: torch.Tensor,
    *,
    vocab_size: int,
    mask_token_id: int,
    special_token_ids: Iterable[int],
    mlm_probability: float = 0.15,
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Whole-word masking (Chinese BERT-wwm, Cui et al. 2019/2021): the characters of a word are chosen together.

    ``word_ids`` has the shape of ``input_ids``; positions of a row that share a word id (>= 0) form one word;
    -1 marks a position outside any word (a non-special token there is a one-token word of its own).
    A word that contains a special token is never chosen. As in google-research/bert, words are taken in
    random order until about ``mlm_probability`` of the row's tokens are chosen (a word that would overshoot
    the count is skipped; at least one word is chosen), and the 80/10/10 decision is then made per token,
    like the released BERT-wwm models (their [MASK] is the "generalised" mask: [MASK], random, or kept).

    Chapter: book/masking.md
    """
    ids, specials = _check_inputs(input_ids, vocab_size, mask_token_id, special_token_ids, mlm_probability, generator)
    words = _check_word_ids(word_ids, input_ids).reshape(ids.shape)
    candidates = ~torch.isin(ids, specials)
    keys = _uniform(ids.shape, generator, ids.device)  # a word's random key is the key of its first token
    chosen = torch.zeros_like(candidates)
    rows = zip(words.tolist(), candidates.tolist(), keys.tolist(), strict=True)
    for b, (row_words, row_candidates, row_keys) in enumerate(rows):
        chosen[b, _choose_words(row_words, row_candidates, row_keys, mlm_probability)] = True
    return _corrupt(ids, chosen, vocab_size, mask_token_id, specials, generator, input_ids)


def num_to_predict(num_candidates: torch.Tensor, mlm_probability: float) -> torch.Tensor:
    """How many tokens to choose in a row of n candidates: round(n * p), at least 1 (0 when n is 0)."""
    k = torch.round(num_candidates.double() * mlm_probability).long()
    return torch.where(num_candidates > 0, k.clamp(min=1), 0)


def _choose_words(row_words: list[int], row_candidates: list[bool], row_keys: list[float], p: float) -> list[int]:
    """The positions of one row chosen by whole-word masking (google-research/bert's greedy word filling)."""
    groups: dict[tuple[int, int], list[int]] = {}  # word -> its positions; -1 positions are words of their own
    for t, w in enumerate(row_words):
        groups.setdefault((0, w) if w >= 0 else (1, t), []).append(t)
    words = [pos for pos in groups.values() if all(row_candidates[t] for t in pos)]
    words.sort(key=lambda pos: row_keys[pos[0]])  # a random order of the words
    budget = int(num_to_predict(torch.tensor(sum(len(pos) for pos in words)), p))
    picked: list[int] = []
    for pos in words:
        if len(picked) >= budget:
            break
        if len(picked) + len(pos) <= budget:  # a word that would overshoot the count is skipped
            picked += pos
    if not picked and words:  # every word is longer than the budget: take the first one anyway
        picked = words[0]
    return picked


def _corrupt(ids, chosen, vocab_size, mask_token_id, specials, generator, original):
    """Apply 80% [MASK] / 10% random other token / 10% unchanged at the chosen positions; build the labels.

    Chapter: book/masking.md
    """
    u = _uniform(ids.shape, generator, ids.device)
    to_mask = chosen & (u < MASK_FRACTION)
    to_random = chosen & (u >= MASK_FRACTION) & (u < MASK_FRACTION + RANDOM_FRACTION)
    # A random other token: draw an index among the M-1 non-special ids that differ from the original.
    allowed = torch.arange(vocab_size, device=ids.device)
    allowed = allowed[~torch.isin(allowed, specials)]  # (M,) sorted
    own = torch.searchsorted(allowed, ids)  # index of the original among the allowed ids (where it is one)
    r = torch.randint(0, len(allowed) - 1, ids.shape, generator=generator, device=_draw_device(generator, ids.device))
    r = r.to(ids.device)
    replacement = allowed[r + (r >= own).long()]
    masked = ids.clone()
    masked[to_mask] = mask_token_id
    masked[to_random] = replacement[to_random]
    labels = torch.full_like(ids, IGNORE_INDEX)
    labels[chosen] = ids[chosen]
    return masked.to(original.dtype).reshape(original.shape), labels.reshape(original.shape)


def _draw_device(generator: torch.Generator | None, device: torch.device) -> torch.device:
    return generator.device if generator is not None else device


def _uniform(shape, generator, device) -> torch.Tensor:
    return torch.rand(shape, generator=generator, device=_draw_device(generator, device)).to(device)


def check_mlm_probability(mlm_probability: float) -> None:
    """The one rule for the fraction of tokens to predict, checked by every public entry point that takes it."""
    if isinstance(mlm_probability, bool) or not isinstance(mlm_probability, Real) or not 0 < mlm_probability < 1:
        raise ValueError(
            f"mlm_probability must be a number strictly between 0 and 1 (BERT uses 0.15), got {mlm_probability!r}."
        )


def _is_int(x) -> bool:
    return isinstance(x, Integral) and not isinstance(x, bool)


def _check_inputs(input_ids, vocab_size, mask_token_id, special_token_ids, mlm_probability, generator):
    """Validate the arguments; return the ids as (B, T) and the special ids (with [MASK]) as a tensor."""
    if not isinstance(input_ids, torch.Tensor):
        raise ValueError(f"input_ids must be a torch.Tensor of token ids, got {type(input_ids).__name__}.")
    if input_ids.dtype.is_floating_point or input_ids.dtype.is_complex or input_ids.dtype == torch.bool:
        raise ValueError(f"input_ids must hold integer token ids (e.g. torch.long), got dtype {input_ids.dtype}.")
    if input_ids.dim() not in (1, 2):
        raise ValueError(f"input_ids must have shape (T,) or (B, T), got {tuple(input_ids.shape)}.")
    if not _is_int(vocab_size) or vocab_size < 1:
        raise ValueError(f"vocab_size must be a positive int, got {vocab_size!r}.")
    if not _is_int(mask_token_id) or not 0 <= mask_token_id < vocab_size:
        raise ValueError(f"mask_token_id must be an int in [0, vocab_size={vocab_size}), got {mask_token_id!r}.")
    if input_ids.numel() and (int(input_ids.min()) < 0 or int(input_ids.max()) >= vocab_size):
        raise ValueError(
            f"input_ids must lie in [0, vocab_size={vocab_size}); "
            f"found {int(input_ids.min())}..{int(input_ids.max())}. "
            "Is vocab_size that of the tokenizer that produced them (len(tokenizer))?"
        )
    if isinstance(special_token_ids, (str, bytes)) or not isinstance(special_token_ids, Iterable):
        raise ValueError(f"special_token_ids must be a collection of ints, got {special_token_ids!r}.")
    specials = [int(s) if isinstance(s, torch.Tensor) else s for s in special_token_ids]
    bad = [s for s in specials if not _is_int(s) or not 0 <= s < vocab_size]
    if bad:
        raise ValueError(f"special_token_ids must be ints in [0, vocab_size={vocab_size}); got {bad}.")
    specials = sorted({int(s) for s in specials} | {int(mask_token_id)})
    if vocab_size - len(specials) < 2:
        raise ValueError(
            f"the vocabulary has {vocab_size - len(specials)} non-special token(s); masking needs at least 2 "
            "(a random replacement must differ from the original)."
        )
    check_mlm_probability(mlm_probability)
    if generator is not None and not isinstance(generator, torch.Generator):
        raise ValueError(f"generator must be a torch.Generator or None, got {type(generator).__name__}.")
    ids = input_ids.reshape(1, -1) if input_ids.dim() == 1 else input_ids
    return ids.long(), torch.tensor(specials, dtype=torch.long, device=ids.device)


def _check_word_ids(word_ids, input_ids) -> torch.Tensor:
    if not isinstance(word_ids, torch.Tensor):
        raise ValueError(f"word_ids must be a torch.Tensor, got {type(word_ids).__name__}.")
    if word_ids.dtype.is_floating_point or word_ids.dtype.is_complex or word_ids.dtype == torch.bool:
        raise ValueError(f"word_ids must hold integer word indices (e.g. torch.long), got dtype {word_ids.dtype}.")
    if word_ids.shape != input_ids.shape:
        raise ValueError(
            f"word_ids must have the shape of input_ids {tuple(input_ids.shape)} (one word index per token), "
            f"got {tuple(word_ids.shape)}."
        )
    if word_ids.numel() and int(word_ids.min()) < -1:
        raise ValueError(f"word_ids must be >= 0, or -1 outside any word; found {int(word_ids.min())}.")
    return word_ids.to(input_ids.device)
