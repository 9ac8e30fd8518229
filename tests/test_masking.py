"""BERT masking: exact 15% per sequence, 80/10/10 rates, specials untouched, whole words kept whole.

The statistical checks are functions of the masked output, so the same check is run on deliberately
wrong maskers (negative controls) to show that it would catch them.
"""

import math

import pytest
import torch

from bertlab.masking import mask_tokens, mask_whole_words, num_to_predict

PAD, UNK, CLS, SEP, MASK = 0, 1, 2, 3, 4
SPECIALS = [PAD, UNK, CLS, SEP, MASK]
V = 1000
SIGMAS = 5  # tolerance of the statistical checks, in binomial standard errors
REPEATS = 30  # draws of a 64 x 128 batch: about 125k candidate tokens, 19k chosen


def padded_batch(seed=0, B=64, T=128, vocab_size=V):
    """[CLS] a [SEP] b [SEP] [PAD]..., random lengths, with an occasional [UNK] inside the text."""
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(len(SPECIALS), vocab_size, (B, T), generator=g)
    ids[torch.rand(B, T, generator=g) < 0.02] = UNK
    lengths = torch.randint(6, T + 1, (B,), generator=g)
    for b, n in enumerate(lengths.tolist()):
        ids[b, 0], ids[b, n // 2], ids[b, n - 1] = CLS, SEP, SEP
        ids[b, n:] = PAD
    return ids


def random_words(ids, seed=0, max_len=4):
    """Word ids for a batch: runs of 1..max_len consecutive text tokens; -1 on special tokens."""
    g = torch.Generator().manual_seed(seed)
    words = torch.full_like(ids, -1)
    for b in range(ids.shape[0]):
        w, left = -1, 0
        for t in range(ids.shape[1]):
            if ids[b, t].item() in (PAD, CLS, SEP):
                left = 0
                continue
            if left == 0:
                w, left = w + 1, int(torch.randint(1, max_len + 1, (1,), generator=g))
            words[b, t], left = w, left - 1
    return words


def run(masker, seed, vocab_size=V):
    ids = padded_batch(seed, vocab_size=vocab_size)
    masked, labels = masker(ids, generator=torch.Generator().manual_seed(1000 + seed))
    return ids, masked, labels


def bert_mask(ids, generator):
    return mask_tokens(ids, vocab_size=V, mask_token_id=MASK, special_token_ids=SPECIALS, generator=generator)


def many_draws(masker, repeats=REPEATS, vocab_size=V):
    """(ids, masked, labels) of many independent draws, concatenated along the batch dimension."""
    return [torch.cat(x) for x in zip(*(run(masker, s, vocab_size) for s in range(repeats)), strict=True)]


# ---- the checks ---------------------------------------------------------------------------------------------


def assert_rate(successes, trials, p, what):
    se = math.sqrt(p * (1 - p) / trials)
    rate = successes / trials
    assert abs(rate - p) < SIGMAS * se, f"{what}: {rate:.4f} over {trials} draws, expected {p} +- {SIGMAS * se:.4f}"


def check_selection(ids, labels, p=0.15):
    """Which tokens get a label: never a special; round(n p) (>= 1) per row; 15% overall; uniform over positions."""
    chosen = labels != -100
    candidates = ~torch.isin(ids, torch.tensor(SPECIALS))
    assert not (chosen & ~candidates).any(), "a special token or padding was chosen"
    n = candidates.sum(1)
    expected = torch.tensor([max(1, round(k * p)) if k else 0 for k in n.tolist()])
    assert torch.equal(chosen.sum(1), expected), "the number of chosen tokens per row is not round(n * p)"
    assert_rate(int(chosen.sum()), int(n.sum()), p, "share of chosen tokens")
    # uniform over positions: compare each quarter of a row's candidates with its expected count
    order = candidates.long().cumsum(1) - 1  # index of each candidate among its row's candidates
    quarter = (4 * order / n.clamp(min=1)[:, None]).floor().long()
    share = (expected / n.clamp(min=1))[:, None].expand_as(ids)
    for q in range(4):
        inside = candidates & (quarter == q)
        exp, var = share[inside].sum(), (share[inside] * (1 - share[inside])).sum()
        obs = (chosen & inside).sum()
        assert abs(obs - exp) < SIGMAS * var.sqrt(), f"quarter {q} of the rows: {int(obs)} chosen, expected {exp:.0f}"


def check_replacements(ids, masked, labels, vocab_size=V):
    """What chosen tokens become: 80% [MASK], 10% another real token, 10% unchanged; nothing else changes."""
    chosen = labels != -100
    assert labels.dtype == torch.long
    assert torch.equal(labels[chosen], ids[chosen]), "labels must be the original tokens"
    assert torch.equal(masked[~chosen], ids[~chosen]), "a token that was not chosen changed"
    n = int(chosen.sum())
    to_mask = chosen & (masked == MASK)
    unchanged = chosen & (masked == ids)
    to_random = chosen & ~to_mask & ~unchanged
    replacements = masked[to_random]
    assert not torch.isin(replacements, torch.tensor(SPECIALS)).any(), "a random replacement is a special token"
    assert (replacements < vocab_size).all()
    assert_rate(int(to_mask.sum()), n, 0.8, "share replaced by [MASK]")
    assert_rate(int(to_random.sum()), n, 0.1, "share replaced by a random token")
    assert_rate(int(unchanged.sum()), n, 0.1, "share left unchanged")


def check_whole_words(word_ids, labels):
    """Every word is chosen entirely or not at all."""
    chosen = labels != -100
    for b in range(word_ids.shape[0]):
        for w in word_ids[b].unique().tolist():
            if w >= 0:
                in_word = chosen[b][word_ids[b] == w]
                assert in_word.all() or not in_word.any(), f"row {b}: word {w} is only partly chosen"


# ---- deliberately wrong maskers (negative controls) ---------------------------------------------------------


def wrong_masker(ids, generator, *, p=0.15, mask_share=0.8, random_share=0.1, skip_specials=True, random_low=5,
                 first_k=False, vocab_size=V):
    """Per-token coin flips like Hugging Face's collator, with knobs to get it wrong on purpose."""
    candidates = ~torch.isin(ids, torch.tensor(SPECIALS)) if skip_specials else torch.ones_like(ids, dtype=torch.bool)
    if first_k:  # the right count, but always the first candidates of the row
        k = num_to_predict(candidates.sum(1), p)
        chosen = candidates & (candidates.long().cumsum(1) <= k[:, None])
    else:
        chosen = candidates & (torch.rand(ids.shape, generator=generator) < p)
    u = torch.rand(ids.shape, generator=generator)
    masked = ids.clone()
    masked[chosen & (u < mask_share)] = MASK
    to_random = chosen & (u >= mask_share) & (u < mask_share + random_share)
    masked[to_random] = torch.randint(random_low, vocab_size, ids.shape, generator=generator)[to_random]
    return masked, torch.where(chosen, ids, -100)


NEGATIVE_CONTROLS = {  # name: (check, knobs of wrong_masker, what the check says)
    "per-token coin flips (the count varies per row)": ("selection", {}, "number of chosen tokens"),
    "20% instead of 15%": ("selection", {"p": 0.2}, "number of chosen tokens"),
    "specials and padding can be chosen": ("selection", {"skip_specials": False}, "special token or padding"),
    "always the first candidates of a row": ("selection", {"first_k": True}, "quarter 0"),
    "always [MASK]": ("replacements", {"first_k": True, "mask_share": 1.0}, "by \\[MASK\\]"),
    "90/5/5 instead of 80/10/10": ("replacements", {"first_k": True, "mask_share": 0.9, "random_share": 0.05},
                                   "by \\[MASK\\]"),
    "random tokens from the whole vocabulary": ("replacements", {"first_k": True, "random_low": 0, "vocab_size": 12},
                                                "replacement is a special token"),
}


@pytest.mark.parametrize("name", list(NEGATIVE_CONTROLS))
def test_the_checks_catch_a_wrong_masker(name):
    check, knobs, message = NEGATIVE_CONTROLS[name]
    vocab_size = knobs.get("vocab_size", V)  # a tiny vocabulary makes special tokens likely random draws
    ids, masked, labels = many_draws(lambda x, generator: wrong_masker(x, generator, **knobs), 10, vocab_size)
    with pytest.raises(AssertionError, match=message):
        if check == "selection":
            check_selection(ids, labels)
        else:
            check_replacements(ids, masked, labels, vocab_size)


# ---- mask_tokens --------------------------------------------------------------------------------------------


def test_mask_tokens_rates_over_many_draws():
    ids, masked, labels = many_draws(bert_mask)
    check_selection(ids, labels)
    check_replacements(ids, masked, labels)


def test_random_replacements_are_never_special_even_in_a_tiny_vocabulary():
    ids = padded_batch(0, vocab_size=12)
    for seed in range(20):
        masked, labels = mask_tokens(ids, vocab_size=12, mask_token_id=MASK, special_token_ids=SPECIALS,
                                     generator=torch.Generator().manual_seed(seed))
        changed = (labels != -100) & (masked != MASK) & (masked != ids)
        assert changed.any()
        assert not torch.isin(masked[changed], torch.tensor(SPECIALS)).any()


def test_a_short_sentence_always_gets_exactly_one_mask():
    # 我爱吃北京烤鸭 ("I love eating Peking duck"): 7 characters, round(7 * 0.15) = 1 target every time
    ids = torch.tensor([[CLS, 10, 11, 12, 13, 14, 15, 16, SEP]])
    for seed in range(50):
        _, labels = bert_mask(ids, torch.Generator().manual_seed(seed))
        assert int((labels != -100).sum()) == 1


def test_mask_tokens_does_not_modify_its_input_and_keeps_shape_and_dtype():
    ids = padded_batch(3).int()
    before = ids.clone()
    masked, labels = mask_tokens(ids, vocab_size=V, mask_token_id=MASK, special_token_ids=SPECIALS)
    assert torch.equal(ids, before)
    assert masked.dtype == torch.int32 and masked.shape == ids.shape and labels.shape == ids.shape
    one, one_labels = mask_tokens(ids[0], vocab_size=V, mask_token_id=MASK, special_token_ids=SPECIALS)
    assert one.shape == ids[0].shape and one_labels.shape == ids[0].shape


def test_mask_tokens_is_reproducible_with_a_generator():
    ids = padded_batch(4)
    a = bert_mask(ids, torch.Generator().manual_seed(7))
    b = bert_mask(ids, torch.Generator().manual_seed(7))
    c = bert_mask(ids, torch.Generator().manual_seed(8))
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    assert not torch.equal(a[1], c[1])
    torch.manual_seed(0)
    d = mask_tokens(ids, vocab_size=V, mask_token_id=MASK, special_token_ids=SPECIALS)
    torch.manual_seed(0)
    e = mask_tokens(ids, vocab_size=V, mask_token_id=MASK, special_token_ids=SPECIALS)
    assert torch.equal(d[1], e[1])


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_mask_tokens_on_cuda_matches_the_cpu_with_a_cpu_generator():
    ids = padded_batch(6)
    cpu = bert_mask(ids, torch.Generator().manual_seed(0))
    gpu = bert_mask(ids.cuda(), torch.Generator().manual_seed(0))
    assert gpu[0].is_cuda and torch.equal(gpu[0].cpu(), cpu[0]) and torch.equal(gpu[1].cpu(), cpu[1])
    masked, labels = mask_tokens(ids.cuda(), vocab_size=V, mask_token_id=MASK, special_token_ids=SPECIALS)
    check_selection(ids, labels.cpu())


def test_rows_without_text_get_no_labels():
    ids = torch.tensor([[CLS, SEP, PAD, PAD], [PAD, PAD, PAD, PAD], [CLS, 10, 11, SEP]])
    _, labels = bert_mask(ids, torch.Generator().manual_seed(0))
    assert (labels[:2] == -100).all() and int((labels[2] != -100).sum()) == 1


@pytest.mark.parametrize(
    "change, message",
    [
        ({"input_ids": torch.rand(2, 5)}, "integer token ids"),
        ({"input_ids": torch.ones(2, 5, dtype=torch.bool)}, "integer token ids"),
        ({"input_ids": [[2, 10, 3]]}, "torch.Tensor"),
        ({"input_ids": torch.zeros(2, 2, 2, dtype=torch.long)}, "shape"),
        ({"input_ids": torch.tensor([[2, V, 3]])}, "vocab_size"),
        ({"input_ids": torch.tensor([[2, -1, 3]])}, "vocab_size"),
        ({"mlm_probability": 0.0}, "mlm_probability"),
        ({"mlm_probability": 1.0}, "mlm_probability"),
        ({"mlm_probability": 15}, "mlm_probability"),
        ({"mlm_probability": "0.15"}, "mlm_probability"),
        ({"mask_token_id": V}, "mask_token_id"),
        ({"mask_token_id": -1}, "mask_token_id"),
        ({"special_token_ids": [0, V + 5]}, "special_token_ids"),
        ({"special_token_ids": 0}, "special_token_ids"),
        ({"vocab_size": 0}, "vocab_size"),
        ({"vocab_size": 6, "input_ids": torch.tensor([[2, 5, 3]])}, "non-special"),
        ({"generator": 0}, "generator"),
    ],
)
def test_mask_tokens_rejects_bad_input(change, message):
    kw = dict(input_ids=torch.tensor([[CLS, 10, 11, SEP]]), vocab_size=V, mask_token_id=MASK,
              special_token_ids=SPECIALS)
    kw.update(change)
    with pytest.raises(ValueError, match=message):
        mask_tokens(kw.pop("input_ids"), **kw)


# ---- mask_whole_words ---------------------------------------------------------------------------------------


def wwm(ids, words, generator, p=0.15):
    return mask_whole_words(ids, words, vocab_size=V, mask_token_id=MASK, special_token_ids=SPECIALS,
                            mlm_probability=p, generator=generator)


def test_whole_word_masking_keeps_words_whole_and_the_token_rates():
    draws = []
    for seed in range(12):
        ids = padded_batch(seed)
        words = random_words(ids, seed)
        before = words.clone()
        masked, labels = wwm(ids, words, torch.Generator().manual_seed(seed))
        assert torch.equal(words, before)
        check_whole_words(words, labels)
        draws.append((ids, masked, labels))
        # about 15% of the eligible tokens (those of words without a special token): at most round(n p), and
        # less only by less than the longest word (4), unless no word fits and the first word is taken whole
        eligible = (~torch.isin(ids, torch.tensor(SPECIALS))).clone()
        for b, w in ((~eligible & (words >= 0)).nonzero().tolist()):
            eligible[b][words[b] == words[b, w]] = False
        chosen, budget = (labels != -100).sum(1), num_to_predict(eligible.sum(1), 0.15)
        assert (chosen <= budget.clamp(min=4)).all() and (chosen > budget - 4).all()
        assert not (labels != -100)[~eligible].any()
    ids, masked, labels = (torch.cat(x) for x in zip(*draws, strict=True))
    check_replacements(ids, masked, labels)  # 80/10/10 per token, as google-research/bert and BERT-wwm


def test_the_whole_word_check_catches_token_level_masking():
    ids = padded_batch(0)
    words = random_words(ids, 0)
    _, labels = bert_mask(ids, torch.Generator().manual_seed(0))
    with pytest.raises(AssertionError, match="partly chosen"):
        check_whole_words(words, labels)


def test_words_with_a_special_token_are_never_chosen():
    ids = torch.tensor([[CLS, 10, UNK, 11, 12, 13, 14, SEP]])
    words = torch.tensor([[-1, 0, 0, 1, 1, 2, 2, -1]])  # word 0 holds an [UNK]
    for seed in range(30):
        _, labels = wwm(ids, words, torch.Generator().manual_seed(seed), p=0.5)
        assert (labels[0, 1:3] == -100).all()
        check_whole_words(words, labels)


def test_positions_outside_words_are_one_token_words():
    ids = padded_batch(5)
    words = torch.full_like(ids, -1)
    _, labels = wwm(ids, words, torch.Generator().manual_seed(0))
    check_selection(ids, labels)  # the exact count of mask_tokens


def test_a_word_longer_than_the_budget_is_still_chosen():
    ids = torch.tensor([[CLS, 10, 11, 12, 13, SEP]])
    words = torch.tensor([[-1, 0, 0, 0, 0, -1]])  # one 4-character word; the budget is 1 token
    _, labels = wwm(ids, words, torch.Generator().manual_seed(0))
    assert (labels[0, 1:5] != -100).all()


def test_mask_whole_words_is_reproducible():
    ids = padded_batch(1)
    words = random_words(ids, 1)
    a = wwm(ids, words, torch.Generator().manual_seed(3))
    b = wwm(ids, words, torch.Generator().manual_seed(3))
    c = wwm(ids, words, torch.Generator().manual_seed(4))
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1]) and not torch.equal(a[1], c[1])


@pytest.mark.parametrize(
    "words, message",
    [
        (torch.zeros(1, 3, dtype=torch.long), "shape"),
        (torch.zeros(1, 4), "integer"),
        (torch.full((1, 4), -2), ">= 0"),
        ([[0, 0, 1, 1]], "torch.Tensor"),
    ],
)
def test_mask_whole_words_rejects_bad_word_ids(words, message):
    with pytest.raises(ValueError, match=message):
        wwm(torch.tensor([[CLS, 10, 11, SEP]]), words, None)
