"""The course tokenizer: a character-level WordPiece vocabulary for Chinese, in Hugging Face format.

Chinese BERT models read characters: the normaliser puts spaces around every CJK character, so each one is a
token of its own, as in Google's Chinese BERT. Runs of Latin letters and digits stay words and are cut into
single-character WordPiece pieces with ``##`` marking a continuation (1998 -> 1 ##9 ##9 ##8). Latin is lowercased
and accents are stripped; punctuation, full-width ，。！？ included, is split off as its own token.

The pipeline is exactly the one `transformers.BertTokenizerFast` builds (BertNormalizer, BertPreTokenizer,
WordPiece), because transformers 5 rebuilds that pipeline from the vocabulary whenever it loads a BERT
tokenizer: an extra normalisation step (NFKC, to fold full-width １９９８ into 1998) would be dropped on loading,
and the same text would tokenize differently depending on how the tokenizer was loaded. So full-width letters
and digits, which People's Daily uses throughout, keep tokens of their own (１ and 1 are different tokens).

The vocabulary is every piece seen at least `min_frequency` times in the training splits of both corpora
(People's Daily and the reviews), so the fine-tuning text is covered too, most frequent first. Rebuild the
committed files with ``python -m bertlab.tokenizer``; the same corpora give exactly the same vocab.txt.
"""

from __future__ import annotations

import argparse
import os
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path

from tokenizers import Tokenizer, decoders, normalizers, pre_tokenizers, processors
from tokenizers.models import WordPiece
from transformers import BertTokenizerFast

from .checkpoint_files import TOKENIZER_FILES, VOCAB_NAME
from .shipped import COURSE_TOKENIZER_DIR

SPECIAL_TOKENS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]  # ids 0..4, in this order
PAD, UNK, CLS, SEP, MASK = SPECIAL_TOKENS
CONTINUATION = "##"
DEFAULT_MIN_FREQUENCY = 5
MODEL_MAX_LENGTH = 512


def bert_pipeline(vocab: dict[str, int] | None = None) -> Tokenizer:
    """A `tokenizers.Tokenizer`: BERT's uncased pipeline, WordPiece over `vocab` (only the special tokens if None)."""
    vocab = vocab or {token: i for i, token in enumerate(SPECIAL_TOKENS)}
    tokenizer = Tokenizer(WordPiece(vocab, unk_token=UNK, continuing_subword_prefix=CONTINUATION))
    tokenizer.normalizer = normalizers.BertNormalizer(
        clean_text=True, handle_chinese_chars=True, strip_accents=None, lowercase=True
    )
    tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tokenizer.post_processor = processors.TemplateProcessing(
        single=f"{CLS}:0 $A:0 {SEP}:0",
        pair=f"{CLS}:0 $A:0 {SEP}:0 $B:1 {SEP}:1",
        special_tokens=[(CLS, vocab[CLS]), (SEP, vocab[SEP])],
    )
    tokenizer.decoder = decoders.WordPiece(prefix=CONTINUATION)
    return tokenizer


def count_pieces(texts: Iterable[str]) -> Counter[str]:
    """How often each character-level piece occurs: a word's first character as is, the others as ##character."""
    pipeline = bert_pipeline()
    counts: Counter[str] = Counter()
    for text in texts:
        for word, _ in pipeline.pre_tokenizer.pre_tokenize_str(pipeline.normalizer.normalize_str(text)):
            counts[word[0]] += 1
            counts.update(CONTINUATION + c for c in word[1:])
    return counts


def build_vocab(counts: Counter[str], min_frequency: int = DEFAULT_MIN_FREQUENCY) -> list[str]:
    """SPECIAL_TOKENS, then every piece counted at least min_frequency times, most frequent first (ties: by text)."""
    if min_frequency < 1:
        raise ValueError(f"min_frequency must be at least 1, not {min_frequency}.")
    kept = [piece for piece, n in counts.items() if n >= min_frequency and piece not in SPECIAL_TOKENS]
    if not kept:
        raise ValueError(f"No piece occurs {min_frequency} times in the texts; give more text or lower min_frequency.")
    return SPECIAL_TOKENS + sorted(kept, key=lambda piece: (-counts[piece], piece))


def train_tokenizer(texts: Iterable[str], out_dir: str | os.PathLike,
                    min_frequency: int = DEFAULT_MIN_FREQUENCY) -> BertTokenizerFast:
    """Count the pieces of `texts`, keep the frequent ones, save a BertTokenizerFast to `out_dir` and load it back.

    `out_dir` gets vocab.txt (one token per line, line number = id), tokenizer.json and tokenizer_config.json.
    """
    vocab = build_vocab(count_pieces(texts), min_frequency)
    tokenizer = BertTokenizerFast(
        tokenizer_object=bert_pipeline({token: i for i, token in enumerate(vocab)}),
        do_lower_case=True, tokenize_chinese_chars=True, strip_accents=None, model_max_length=MODEL_MAX_LENGTH,
        pad_token=PAD, unk_token=UNK, cls_token=CLS, sep_token=SEP, mask_token=MASK,
    )
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    save_tokenizer(tokenizer, out)
    return load_tokenizer(out)


def save_tokenizer(tokenizer: BertTokenizerFast, directory: str | os.PathLike) -> None:
    """The tokenizer next to the model: tokenizer.json and its config, plus vocab.txt (one token per line, line
    number = id), which transformers 5 no longer writes but older tools and the slow BertTokenizer read."""
    tokenizer.save_pretrained(str(directory))
    tokens = [token for token, _ in sorted(tokenizer.get_vocab().items(), key=lambda kv: kv[1])]
    Path(directory, VOCAB_NAME).write_text("".join(t + "\n" for t in tokens), encoding="utf-8")


def read_vocab(directory: str | os.PathLike) -> dict[str, int]:
    """token -> id of a checkpoint's vocab.txt (any BERT checkpoint's, not only the course's)."""
    tokens = Path(directory, VOCAB_NAME).read_text(encoding="utf-8").split("\n")  # only "\n" ends a token
    if tokens[-1] == "":
        tokens.pop()  # the file's final newline
    return {token: i for i, token in enumerate(tokens)}


def holds_tokenizer(directory: str | os.PathLike) -> bool:
    """Whether a directory holds a saved tokenizer (either of TOKENIZER_FILES)."""
    return any(Path(directory, name).is_file() for name in TOKENIZER_FILES)


def load_checkpoint_tokenizer(directory: str | os.PathLike) -> BertTokenizerFast:
    """The tokenizer saved next to a model: ours, or that of any BERT checkpoint (whose special-token ids may
    differ from the course tokenizer's, e.g. [CLS] = 101 in Google's vocabularies)."""
    if not holds_tokenizer(directory):
        raise ValueError(f"{directory} holds no tokenizer ({' or '.join(TOKENIZER_FILES)}); pass one with --tokenizer.")
    return BertTokenizerFast.from_pretrained(str(directory))


def load_tokenizer(path: str | os.PathLike | None = None) -> BertTokenizerFast:
    """A saved tokenizer directory (default: the committed course tokenizer) as a BertTokenizerFast.

    Chapter: book/bert_encoder.md
    """
    directory = Path(path) if path is not None else COURSE_TOKENIZER_DIR
    if not holds_tokenizer(directory):
        raise ValueError(f"{directory} holds no tokenizer ({' or '.join(TOKENIZER_FILES)}). Use load_tokenizer() for "
                         "the course tokenizer, or make one with train_tokenizer(texts, out_dir).")
    tokenizer = BertTokenizerFast.from_pretrained(str(directory))
    if tokenizer.convert_tokens_to_ids(SPECIAL_TOKENS) != list(range(len(SPECIAL_TOKENS))):
        raise ValueError(f"{directory} is not a bertlab tokenizer: {SPECIAL_TOKENS} must have ids 0..4.")
    return tokenizer


def unk_rate(tokenizer: BertTokenizerFast, texts: Sequence[str]) -> float:
    """The fraction of tokens (special tokens not counted) that are [UNK]."""
    ids = tokenizer(list(texts), add_special_tokens=False, verbose=False)["input_ids"]
    total = sum(len(x) for x in ids)
    if total == 0:
        raise ValueError("The texts produce no tokens; unk_rate needs some text.")
    return sum(x.count(tokenizer.unk_token_id) for x in ids) / total


def build_course_tokenizer(out_dir: str | os.PathLike = COURSE_TOKENIZER_DIR,
                           min_frequency: int = DEFAULT_MIN_FREQUENCY) -> dict[str, float | int | str]:
    """(Re)build the course tokenizer from the training splits of both corpora; report its size and [UNK] rates."""
    from .corpora import corpus_texts, load_sentiment, tagged_sentences

    tokenizer = train_tokenizer(corpus_texts("train"), out_dir, min_frequency)
    return {
        "out_dir": str(out_dir),
        "vocab_size": len(tokenizer),
        "min_frequency": min_frequency,
        "unk_rate_peoples_daily_validation": unk_rate(tokenizer, [s.text for s in tagged_sentences("validation")]),
        "unk_rate_reviews_validation": unk_rate(tokenizer, load_sentiment("validation")["text"]),
    }


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bertlab.tokenizer", description=build_course_tokenizer.__doc__)
    parser.add_argument("--out", default=str(COURSE_TOKENIZER_DIR), help="output directory (default: %(default)s)")
    parser.add_argument("--min-frequency", type=int, default=DEFAULT_MIN_FREQUENCY)
    args = parser.parse_args(argv)
    for name, value in build_course_tokenizer(args.out, args.min_frequency).items():
        print(f"{name}: {value:.4%}" if isinstance(value, float) else f"{name}: {value}")


if __name__ == "__main__":
    main()
