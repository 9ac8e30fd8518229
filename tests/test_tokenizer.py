"""bertlab.tokenizer: the committed character-level WordPiece tokenizer for Chinese."""

import pytest
from tokenizers import Tokenizer
from transformers import BertTokenizerFast

from bertlab.corpora import corpus_texts, load_sentiment, tagged_sentences
from bertlab.shipped import COURSE_TOKENIZER_DIR
from bertlab.tokenizer import (
    SPECIAL_TOKENS,
    build_course_tokenizer,
    build_vocab,
    count_pieces,
    load_tokenizer,
    train_tokenizer,
    unk_rate,
)


@pytest.fixture(scope="module")
def tokenizer():
    return load_tokenizer()


def test_special_tokens_come_first(tokenizer):
    assert SPECIAL_TOKENS == ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    assert tokenizer.convert_tokens_to_ids(SPECIAL_TOKENS) == [0, 1, 2, 3, 4]
    assert (tokenizer.pad_token_id, tokenizer.unk_token_id, tokenizer.cls_token_id,
            tokenizer.sep_token_id, tokenizer.mask_token_id) == (0, 1, 2, 3, 4)
    vocab_lines = (COURSE_TOKENIZER_DIR / "vocab.txt").read_text("utf-8").splitlines()
    assert vocab_lines[:5] == SPECIAL_TOKENS and len(vocab_lines) == len(tokenizer)
    assert 2000 < len(tokenizer) < 8000


def test_one_token_per_chinese_character(tokenizer):
    assert tokenizer.tokenize("台湾大学") == ["台", "湾", "大", "学"]  # National Taiwan University
    ids = tokenizer("台湾大学")["input_ids"]
    assert len(ids) == 6 and ids[0] == 2 and ids[-1] == 3 and 1 not in ids
    assert tokenizer.decode(ids, skip_special_tokens=True).replace(" ", "") == "台湾大学"
    assert tokenizer.tokenize("我[MASK]你") == ["我", "[MASK]", "你"]  # "I [MASK] you"


def test_digits_latin_and_punctuation(tokenizer):
    iphone = ["i", "##p", "##h", "##o", "##n", "##e"]
    assert tokenizer.tokenize("iPhone 12很好！") == iphone + ["1", "##2", "很", "好", "！"]  # "iPhone 12, very good!"
    # Full-width digits, as People's Daily writes them, keep their own pieces (see the module docstring).
    assert tokenizer.tokenize("１９９８年，") == ["１", "##９", "##９", "##８", "年", "，"]  # "1998,"
    assert tokenizer.tokenize("Café") == tokenizer.tokenize("cafe")  # lowercased, accents stripped


def test_pairs_get_segment_ids(tokenizer):
    encoded = tokenizer("很好", "不错")  # "very good", "not bad"
    assert encoded["input_ids"][0] == 2 and encoded["input_ids"].count(3) == 2
    assert encoded["token_type_ids"] == [0, 0, 0, 0, 1, 1, 1]


def test_loads_the_same_every_way(tokenizer):
    plain = BertTokenizerFast.from_pretrained(str(COURSE_TOKENIZER_DIR))
    raw = Tokenizer.from_file(str(COURSE_TOKENIZER_DIR / "tokenizer.json"))
    texts = [s.text for s in tagged_sentences("validation")[:200]] + list(load_sentiment("validation")["text"][:200])
    expected = [e.ids for e in raw.encode_batch(texts)]
    assert plain(texts)["input_ids"] == expected
    assert tokenizer(texts)["input_ids"] == expected


def test_unk_rate_is_low_on_validation_text(tokenizer):
    assert unk_rate(tokenizer, [s.text for s in tagged_sentences("validation")]) < 0.01
    assert unk_rate(tokenizer, list(load_sentiment("validation")["text"])) < 0.01
    assert unk_rate(tokenizer, ["ⅷ㈱"]) == 1.0  # roman numeral eight, "(stock company)": never in the corpora


def test_min_frequency_decides_the_vocabulary(tmp_path):
    texts = ["我爱北京。", "我爱上海。", "我们 ok"]  # "I love Beijing.", "I love Shanghai.", "we ok"
    counts = count_pieces(texts)
    assert counts["我"] == 3 and counts["##k"] == 1 and "##我" not in counts
    assert build_vocab(counts, 2) == SPECIAL_TOKENS + ["我", "。", "爱"]
    with pytest.raises(ValueError, match="min_frequency"):
        build_vocab(counts, 0)
    small = train_tokenizer(texts, tmp_path / "tok", min_frequency=1)
    assert small.tokenize("ok我") == ["o", "##k", "我"] and small.tokenize("好") == ["[UNK]"]
    assert isinstance(load_tokenizer(tmp_path / "tok"), BertTokenizerFast)
    with pytest.raises(ValueError, match="holds no tokenizer"):
        load_tokenizer(tmp_path)


def test_rebuilding_gives_the_committed_vocabulary(tmp_path):
    assert corpus_texts("train")  # the training splits of both corpora
    report = build_course_tokenizer(tmp_path)
    committed = (COURSE_TOKENIZER_DIR / "vocab.txt").read_bytes()
    assert (tmp_path / "vocab.txt").read_bytes() == committed
    assert report["unk_rate_peoples_daily_validation"] < 0.01 and report["unk_rate_reviews_validation"] < 0.01
