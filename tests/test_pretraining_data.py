"""Documents -> sentence pairs -> masked batches: each step on its own, then all of them together.

The pairing functions accept any tokens, so most tests use tokens that say where they come from,
``(document, position)``, and check NSP/SOP labels against the original document order.
"""

import math
import random

import datasets
import pytest
import torch
from transformers import BertTokenizerFast

from bertlab import BertConfig, BertForPreTraining
from bertlab.pretraining_data import (
    PretrainingCollator,
    SentencePair,
    build_pair_features,
    build_pretraining_dataset,
    create_nsp_pairs,
    create_single_segments,
    create_sop_pairs,
    tokenize_documents,
    truncate_pair,
)

SPECIAL_TOKENS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
CHARS = [chr(0x4E00 + i) for i in range(800)]  # CJK characters 一 丁 丂 ...: each used once in the test corpus


def positional_documents(n_docs=40, seed=0):
    """Documents whose tokens are (document, position) pairs: sentences of 3..12 tokens, 2..12 sentences."""
    rng = random.Random(seed)
    docs = []
    for d in range(n_docs):
        pos, doc = 0, []
        for _ in range(rng.randint(2, 12)):
            n = rng.randint(3, 12)
            doc.append([(d, p) for p in range(pos, pos + n)])
            pos += n
        docs.append(doc)
    return docs


def chinese_documents(n_docs=16, seed=0):
    """Rows like load_peoples_daily_documents ('sentences' and their 'words') in which every character occurs
    once, so that ORIGIN[character] = (document, position) tells where a piece of text comes from."""
    rng = random.Random(seed)
    fresh = iter(CHARS)
    docs = []
    for d in range(n_docs):
        sentences, words = [], []
        for _ in range(rng.randint(2, 6)):
            ws = ["".join(next(fresh) for _ in range(rng.randint(1, 3))) for _ in range(rng.randint(2, 5))]
            sentences.append("".join(ws))
            words.append(ws)
        docs.append({"doc_id": f"d{d}", "sentences": sentences, "words": words})
    return docs


def origins(docs):
    return {c: (d, p) for d, doc in enumerate(docs) for p, c in enumerate("".join(doc["sentences"]))}


@pytest.fixture(scope="module")
def tokenizer(tmp_path_factory):
    """A character-level BERT tokenizer built from a vocabulary file (special tokens first)."""
    folder = tmp_path_factory.mktemp("tokenizer")
    (folder / "vocab.txt").write_text("\n".join(SPECIAL_TOKENS + CHARS) + "\n", encoding="utf-8")
    return BertTokenizerFast.from_pretrained(str(folder))


def assert_half(k, n, what):
    assert abs(k / n - 0.5) < 5 * math.sqrt(0.25 / n), f"{what}: {k} of {n}, expected half (5 standard errors)"


def span(tokens):
    """(document, first position, last position) of a contiguous run of positional tokens."""
    docs = {d for d, _ in tokens}
    positions = [p for _, p in tokens]
    assert len(docs) == 1, f"a segment mixes documents {docs}"
    assert positions == list(range(positions[0], positions[0] + len(positions))), "a segment is not contiguous"
    return docs.pop(), positions[0], positions[-1]


def check_nsp(pairs, max_num_tokens):
    for a, b, label in pairs:
        assert 1 <= len(a) and 1 <= len(b) and len(a) + len(b) <= max_num_tokens
        (doc_a, _, end_a), (doc_b, start_b, _) = span(a), span(b)
        if label == 1:
            assert doc_b != doc_a, "an NSP negative comes from the same document"
        else:
            assert doc_b == doc_a and start_b > end_a, "an NSP positive is not the text that follows A"


def check_sop(pairs, max_num_tokens):
    for a, b, label in pairs:
        assert 1 <= len(a) and 1 <= len(b) and len(a) + len(b) <= max_num_tokens
        (doc_a, start_a, end_a), (doc_b, start_b, end_b) = span(a), span(b)
        assert doc_a == doc_b, "an SOP pair mixes documents"
        assert (start_b > end_a) if label == 0 else (start_a > end_b), f"SOP label {label} contradicts the order"


# ---- truncate_pair ------------------------------------------------------------------------------------------


def test_truncate_pair_trims_the_longer_side_in_place():
    rng = random.Random(0)
    a, b = list(range(10)), list(range(100, 103))
    out = truncate_pair(a, b, 8, rng)
    assert out[0] is a and out[1] is b
    assert b == [100, 101, 102] and len(a) == 5 and a == list(range(a[0], a[0] + 5))
    a, b = list(range(4)), list(range(100, 104))
    truncate_pair(a, b, 7, rng)  # a tie trims B, as google-research/bert
    assert a == [0, 1, 2, 3] and len(b) == 3
    a, b = [1, 2], [3]
    truncate_pair(a, b, 5, rng)
    assert (a, b) == ([1, 2], [3])


def test_truncate_pair_keeps_contiguous_pieces_and_cuts_front_or_back_at_random():
    rng = random.Random(1)
    fronts = 0
    for _ in range(400):
        la, lb, m = rng.randint(1, 30), rng.randint(1, 30), rng.randint(2, 40)
        a, b = list(range(la)), list(range(100, 100 + lb))
        truncate_pair(a, b, m, rng)
        assert len(a) + len(b) == min(la + lb, m) and a and b
        assert a == list(range(a[0], a[0] + len(a))) and b == list(range(b[0], b[0] + len(b)))
        one = list(range(6))
        truncate_pair(one, [9], 6, rng)  # exactly one token goes: the first or the last
        fronts += one[0] == 1
    assert_half(fronts, 400, "cuts from the front")


def test_truncate_pair_needs_lists():
    with pytest.raises(ValueError, match="lists"):
        truncate_pair((1, 2, 3), [4], 2, random.Random(0))
    with pytest.raises(ValueError, match="max_num_tokens"):
        truncate_pair([], [], -1, random.Random(0))


# ---- NSP and SOP pairs --------------------------------------------------------------------------------------


def test_nsp_pairs_follow_the_document_or_come_from_another_one():
    pairs = create_nsp_pairs(positional_documents(), rng=random.Random(0), max_num_tokens=40)
    check_nsp(pairs, 40)
    assert_half(sum(p.label for p in pairs), len(pairs), "NSP negatives")


def test_nsp_positives_are_the_very_next_text_when_nothing_is_truncated():
    docs = positional_documents(seed=1)
    for seed in range(5):
        pairs = create_nsp_pairs(docs, rng=random.Random(seed), max_num_tokens=10_000, short_seq_prob=0.0)
        for a, b, label in pairs:
            assert a[0][1] in {s[0][1] for s in docs[a[0][0]]}  # A starts at a sentence
            if label == 0:
                assert span(b)[1] == span(a)[2] + 1


def test_the_nsp_check_catches_a_negative_from_the_same_document():
    docs = positional_documents(2)
    bad = [SentencePair(docs[0][0], docs[0][2], 1)]
    with pytest.raises(AssertionError, match="same document"):
        check_nsp(bad, 100)


def test_nsp_needs_two_documents():
    with pytest.raises(ValueError, match="two"):
        create_nsp_pairs(positional_documents(1), rng=random.Random(0))


def test_sop_labels_match_the_original_order():
    pairs = create_sop_pairs(positional_documents(), rng=random.Random(0), max_num_tokens=40)
    check_sop(pairs, 40)
    assert_half(sum(p.label for p in pairs), len(pairs), "swapped SOP pairs")
    flipped = [SentencePair(a, b, 1 - label) for a, b, label in pairs[:5]]
    with pytest.raises(AssertionError, match="contradicts"):
        check_sop(flipped, 40)


def test_sop_segments_are_consecutive_when_nothing_is_truncated():
    pairs = create_sop_pairs(positional_documents(seed=2), rng=random.Random(0), max_num_tokens=10_000,
                             short_seq_prob=0.0)
    for a, b, label in pairs:
        first, second = (a, b) if label == 0 else (b, a)
        assert span(second)[1] == span(first)[2] + 1


def test_pairs_of_raw_sentences_are_pairs_of_characters():
    # 今天下雨 / 我们不出去 ("It rains today" / "we are not going out")
    (a, b, label), = create_sop_pairs([["今天下雨", "我们不出去"]], rng=random.Random(0), short_seq_prob=0.0)
    assert ("".join(a), "".join(b)) == (("今天下雨", "我们不出去") if label == 0 else ("我们不出去", "今天下雨"))


def test_short_seq_prob_gives_shorter_pairs():
    docs = positional_documents(seed=3)
    full, mean = {}, {}  # share of pairs that fill all 30 tokens, and the mean length of a pair
    for prob in (0.0, 1.0):
        pairs = create_sop_pairs(docs, rng=random.Random(0), max_num_tokens=30, short_seq_prob=prob)
        lengths = [len(a) + len(b) for a, b, _ in pairs]
        full[prob], mean[prob] = sum(n == 30 for n in lengths) / len(pairs), sum(lengths) / len(pairs)
    # segments hold whole sentences, so a short target still overshoots at times: shorter, not short
    assert full[0.0] > 0.5 and full[1.0] < full[0.0] / 2 and mean[1.0] < 0.8 * mean[0.0]


def test_single_segments_are_in_order_and_within_the_limit():
    docs = positional_documents(seed=4)
    segments = create_single_segments(docs, rng=random.Random(0), max_num_tokens=30)
    last_end = {}
    for s in segments:
        d, start, end = span(s)
        assert len(s) <= 30 and start > last_end.get(d, -1)
        last_end[d] = end


@pytest.mark.parametrize(
    "kwargs, message",
    [({"rng": 0}, "random.Random"), ({"max_num_tokens": 1}, "max_num_tokens"), ({"short_seq_prob": 2}, "short_seq")],
)
def test_pairing_arguments_are_checked(kwargs, message):
    with pytest.raises(ValueError, match=message):
        create_sop_pairs(positional_documents(2), **{"rng": random.Random(0), **kwargs})


# ---- features -----------------------------------------------------------------------------------------------


def test_build_pair_features_layout(tokenizer):
    ids = tokenizer.convert_tokens_to_ids(CHARS[:4])
    f = build_pair_features(ids[:3], ids[3:], tokenizer, 8)
    assert f["input_ids"] == [2, *ids[:3], 3, ids[3], 3]
    assert f["token_type_ids"] == [0, 0, 0, 0, 0, 1, 1]
    assert "word_ids" not in f
    assert build_pair_features(CHARS[:2], None, tokenizer, 8) == {"input_ids": [2, *ids[:2], 3],
                                                                    "token_type_ids": [0, 0, 0, 0]}
    words = build_pair_features([(ids[0], 7), (ids[1], 7)], [(ids[2], 3), (ids[3], 9)], tokenizer, 8)["word_ids"]
    assert words == [-1, 0, 0, -1, 1, 2, -1]


def test_build_pair_features_refuses_too_long_or_empty_segments(tokenizer):
    with pytest.raises(ValueError, match="truncate_pair"):
        build_pair_features(CHARS[:3], CHARS[3:5], tokenizer, 7)
    with pytest.raises(ValueError, match="empty"):
        build_pair_features(CHARS[:1], [], tokenizer, 7)


def test_tokenize_documents_keeps_word_boundaries(tokenizer):
    docs = chinese_documents(3)
    tokenized = tokenize_documents(docs, tokenizer)
    seen_keys = set()
    for doc, tokens in zip(docs, tokenized, strict=True):
        for sentence, words, sentence_tokens in zip(doc["sentences"], doc["words"], tokens, strict=True):
            assert [i for i, _ in sentence_tokens] == tokenizer(sentence, add_special_tokens=False)["input_ids"]
            expected = [w for w, word in enumerate(words) for _ in word]  # the word of each character
            keys = [k for _, k in sentence_tokens]
            assert [keys.index(k) for k in keys] == [expected.index(w) for w in expected]
            assert not seen_keys & set(keys)  # every word of the corpus has its own key
            seen_keys |= set(keys)


@pytest.mark.parametrize(
    "documents, message",
    [
        ({"train": []}, "one split"),
        (["一个文档"], "string"),  # "a document": a str instead of a list of sentences
        ([{"sentences": ["一丁七"], "words": [["一", "七"]]}], "do not spell"),
        ([{"sentences": ["一丁"], "words": [["一", "丁"]]}, {"sentences": ["七"]}], "all or none"),
        ([{"text": "一丁"}], "sentences"),
    ],
)
def test_tokenize_documents_rejects_bad_documents(tokenizer, documents, message):
    with pytest.raises(ValueError, match=message):
        tokenize_documents(documents, tokenizer)


# ---- the data set and the collator --------------------------------------------------------------------------


@pytest.mark.parametrize("task", ["nsp", "sop", "none"])
def test_build_pretraining_dataset(tokenizer, task):
    docs = chinese_documents()
    data = build_pretraining_dataset(datasets.Dataset.from_list(docs), tokenizer, task=task, max_length=24)
    assert data.to_list() == build_pretraining_dataset(docs, tokenizer, task=task, max_length=24).to_list()
    assert ("next_sentence_label" in data.column_names) == (task != "none") and "word_ids" in data.column_names
    origin = origins(docs)
    pairs = []
    for row in data:
        tokens = tokenizer.convert_ids_to_tokens(row["input_ids"])
        sep = [i for i, t in enumerate(tokens) if t == "[SEP]"]
        assert len(tokens) <= 24 and tokens[0] == "[CLS]" and tokens[-1] == "[SEP]"
        assert len(sep) == (1 if task == "none" else 2)
        assert row["token_type_ids"] == [0] * (sep[0] + 1) + [1] * (len(tokens) - sep[0] - 1)
        assert [w == -1 for w in row["word_ids"]] == [t in ("[CLS]", "[SEP]") for t in tokens]
        a, b = [origin[t] for t in tokens[1:sep[0]]], [origin[t] for t in tokens[sep[0] + 1:-1]]
        if task == "none":
            span(a)
        else:
            pairs.append(SentencePair(a, b, row["next_sentence_label"]))
    if task != "none":
        (check_nsp if task == "nsp" else check_sop)(pairs, 21)
        assert 0.25 < sum(p.label for p in pairs) / len(pairs) < 0.75


def test_dataset_seed_and_dupe_factor(tokenizer):
    docs = chinese_documents()
    one = build_pretraining_dataset(docs, tokenizer, task="sop", max_length=24, seed=0)
    other = build_pretraining_dataset(docs, tokenizer, task="sop", max_length=24, seed=1)
    three = build_pretraining_dataset(docs, tokenizer, task="sop", max_length=24, seed=0, dupe_factor=3)
    assert one.to_list() != other.to_list()
    assert 2 * len(one) < len(three) < 4 * len(one)
    with pytest.raises(ValueError, match="task"):
        build_pretraining_dataset(docs, tokenizer, task="mlm")
    with pytest.raises(ValueError, match="max_length"):
        build_pretraining_dataset(docs, tokenizer, max_length=4)


def test_collator_pads_masks_afresh_and_feeds_the_model(tokenizer):
    data = build_pretraining_dataset(chinese_documents(), tokenizer, task="nsp", max_length=32, seed=0)
    rows = [data[i] for i in range(16)]
    collate = PretrainingCollator(tokenizer, generator=torch.Generator().manual_seed(0))
    batch = collate(rows)
    assert set(batch) == {"input_ids", "attention_mask", "token_type_ids", "labels", "next_sentence_label"}
    lengths = torch.tensor([len(r["input_ids"]) for r in rows])
    assert batch["input_ids"].shape == (16, int(lengths.max())) and lengths.min() < lengths.max()
    padding = torch.arange(int(lengths.max()))[None, :] >= lengths[:, None]
    assert torch.equal(batch["attention_mask"], (~padding).long())
    assert (batch["input_ids"][padding] == tokenizer.pad_token_id).all() and (batch["labels"][padding] == -100).all()
    assert (batch["token_type_ids"][padding] == 0).all()
    assert batch["next_sentence_label"].tolist() == [r["next_sentence_label"] for r in rows]
    chosen = batch["labels"] != -100
    for b, r in enumerate(rows):
        original = torch.tensor(r["input_ids"])
        n = len(original)
        assert torch.equal(batch["labels"][b, :n][chosen[b, :n]], original[chosen[b, :n]])
        assert int(chosen[b].sum()) == max(1, round((n - 3) * 0.15))  # [CLS] and two [SEP] never chosen
    assert not torch.equal(collate(rows)["labels"], batch["labels"])  # a new mask at every call
    again = PretrainingCollator(tokenizer, generator=torch.Generator().manual_seed(0))(rows)
    assert torch.equal(again["input_ids"], batch["input_ids"])
    config = BertConfig.from_preset("tiny", vocab_size=len(tokenizer), max_position_embeddings=32)
    torch.manual_seed(0)
    out = BertForPreTraining(config)(**batch)
    assert torch.isfinite(out.loss) and out.sentence_loss is not None


def test_collator_whole_word_masking_uses_the_word_ids(tokenizer):
    data = build_pretraining_dataset(chinese_documents(), tokenizer, task="none", max_length=32, seed=0)
    rows = [data[i] for i in range(len(data))]
    batch = PretrainingCollator(tokenizer, whole_word=True, generator=torch.Generator().manual_seed(0))(rows)
    assert "next_sentence_label" not in batch
    chosen = batch["labels"] != -100
    for b, r in enumerate(rows):
        words = torch.tensor(r["word_ids"])
        for w in words.unique().tolist():
            if w >= 0:
                in_word = chosen[b, : len(words)][words == w]
                assert in_word.all() or not in_word.any()
    with pytest.raises(ValueError, match="word_ids"):
        PretrainingCollator(tokenizer, whole_word=True)([{"input_ids": [2, 5, 3]}])


def test_collator_rejects_bad_input(tokenizer):
    with pytest.raises(ValueError, match="mlm_probability"):
        PretrainingCollator(tokenizer, mlm_probability=1.5)
    collate = PretrainingCollator(tokenizer)
    with pytest.raises(ValueError, match="empty"):
        collate([])
    with pytest.raises(ValueError, match="mix"):
        collate([{"input_ids": [2, 5, 3], "next_sentence_label": 0}, {"input_ids": [2, 6, 3]}])
