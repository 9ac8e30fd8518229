"""Pretraining examples from raw documents, one step per function, as in google-research/bert's
create_pretraining_data.py:

    documents  --drop_headings-->  (for sentence pairs from People's Daily) the articles' body text
               --tokenize_documents-->  tokenized sentences, per document
               --create_nsp_pairs | create_sop_pairs | create_single_segments-->  segment pairs (or single segments)
               --build_pair_features-->  [CLS] A [SEP] B [SEP] with token_type_ids
               --PretrainingCollator-->  a padded batch, freshly masked, for BertForPreTraining

`build_pretraining_dataset` runs the steps up to the features. Unlike google-research/bert, masking is not frozen
into the data set (there: dupe_factor copies, each masked once); the collator masks every batch anew, so
each epoch sees new masks (RoBERTa's "dynamic masking"). ``dupe_factor`` still re-draws the pairs.

A token is a ``(token_id, word_key)`` pair: ``word_key`` tells which word of the corpus the token belongs
to (for whole-word masking) and is None when the documents carry no word boundaries. The pairing
functions only cut and join lists, so they accept any tokens (plain strings included: a Chinese sentence
given as a str is a list of characters).
"""

from __future__ import annotations

import random
import re
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

import torch

from .corpora.peoples_daily import is_heading
from .masking import check_mlm_probability, mask_tokens, mask_whole_words

PAIR_TASKS = ("none", "nsp", "sop")  # the sentence-pair objective beside masked LM ("none": MLM only)
Token = tuple[int, Any]  # (token_id, word_key)


class SentencePair(NamedTuple):
    """Two segments of tokens (before [CLS]/[SEP] are added) and the sentence-pair label."""

    tokens_a: list
    tokens_b: list
    label: int  # 0: B follows A (NSP) / in order (SOP); 1: B from another document (NSP) / swapped (SOP)


# ---- step 0, for sentence pairs: documents -> body text ----------------------------------------------------


def drop_headings(documents) -> list:
    """The documents without their headings: lines that end in no sentence punctuation (`is_heading`), such as
    a headline, a byline, or a review's unfinished last line. Documents left with no sentence are dropped.

    A headline always opens its article, so in a sentence pair a segment that starts with one comes first, and
    its missing full stop says so: a pair's order could be read off its punctuation. The course's sentence-pair
    data therefore leave People's Daily's headings out (`bertlab.pretrain.peoples_daily_documents`); masked LM
    (single segments) reads them. ``documents`` as for `tokenize_documents`; rows keep their other fields, with
    ``words`` (and ``pos``) filtered alike.

    Chapter: book/nsp_sop.md
    """
    out = []
    for i, doc in enumerate(documents):
        sentences, _ = _document_fields(doc, i)
        keep = [k for k, sentence in enumerate(sentences) if not is_heading(sentence.strip())]
        if not keep:
            continue
        if isinstance(doc, Mapping):
            doc = {**doc, **{name: [doc[name][k] for k in keep] for name in ("sentences", "words", "pos")
                             if doc.get(name) is not None}}
        else:
            doc = [sentences[k] for k in keep]
        out.append(doc)
    return out


# ---- step 1: documents -> tokenized sentences -------------------------------------------------------------


def tokenize_documents(documents, tokenizer) -> list[list[list[Token]]]:
    """Tokenize every sentence (without [CLS]/[SEP]); keep the word each token belongs to when words are given.

    ``documents``: a list of documents, each a list of sentences (str), or rows with a ``sentences`` column and
    optionally a ``words`` column (one list of words per sentence), such as a split of
    `bertlab.corpora.load_peoples_daily_documents`. With words, the tokenizer reads each sentence as its list
    of words (``is_split_into_words``), so each token knows its word. Empty sentences and documents are dropped.

    Chapter: book/masking.md
    """
    if isinstance(documents, Mapping):
        raise ValueError("documents is a mapping (a DatasetDict?): pass one split, e.g. documents['train'].")
    fields = [_document_fields(doc, i) for i, doc in enumerate(documents)]
    with_words = [words is not None for _, words in fields]
    if any(with_words) and not all(with_words):
        raise ValueError("some documents have 'words' and others do not: give word boundaries for all or none.")
    sentences = [s for doc, _ in fields for s in doc]
    if any(with_words):
        inputs = [list(w) for _, words in fields for w in words]
        enc = tokenizer(inputs, is_split_into_words=True, add_special_tokens=False, verbose=False)
    else:
        enc = tokenizer(sentences, add_special_tokens=False, verbose=False)
    out, k, next_word = [], 0, 0  # next_word numbers the words of the whole corpus, so each word has its own key
    for doc, _ in fields:
        sentences_out = []
        for _ in doc:
            ids = enc["input_ids"][k]
            if any(with_words):
                words = enc.word_ids(k)
                tokens = [(i, None if w is None else next_word + w) for i, w in zip(ids, words, strict=True)]
                next_word += len(inputs[k])
            else:
                tokens = [(i, None) for i in ids]
            if tokens:
                sentences_out.append(tokens)
            k += 1
        if sentences_out:
            out.append(sentences_out)
    return out


def _document_fields(doc, i: int) -> tuple[list[str], list[list[str]] | None]:
    if isinstance(doc, str):
        raise ValueError(f"document {i} is a string; a document is a list of sentences (e.g. [text] or text cut up).")
    if isinstance(doc, Mapping):
        if "sentences" not in doc:
            raise ValueError(f"document {i} has no 'sentences' field (it has {sorted(doc)}).")
        sentences, words = list(doc["sentences"]), doc.get("words")
    else:
        sentences, words = list(doc), None
    if not all(isinstance(s, str) for s in sentences):
        raise ValueError(f"document {i}: every sentence must be a str.")
    if words is not None:
        words = [list(w) for w in words]
        if len(words) != len(sentences):
            raise ValueError(f"document {i} has {len(sentences)} sentences but {len(words)} word lists.")
        for s, w in zip(sentences, words, strict=True):
            if re.sub(r"\s", "", "".join(w)) != re.sub(r"\s", "", s):
                raise ValueError(f"document {i}: the words {w[:8]}... do not spell the sentence {s[:40]!r}.")
    return sentences, words


# ---- step 2: tokenized documents -> segment pairs ---------------------------------------------------------


def truncate_pair(tokens_a: list, tokens_b: list, max_num_tokens: int, rng: random.Random) -> tuple[list, list]:
    """Trim the pair in place to at most ``max_num_tokens`` tokens together (google-research/bert's truncate_seq_pair).

    One token at a time from the longer side (B on a tie), from its front or its back at random, so the
    model does not learn that a segment always starts or ends at a sentence boundary.
    """
    if not isinstance(tokens_a, list) or not isinstance(tokens_b, list):
        raise ValueError("truncate_pair trims lists in place: pass tokens_a and tokens_b as lists.")
    if not isinstance(max_num_tokens, int) or max_num_tokens < 0:
        raise ValueError(f"max_num_tokens must be an int >= 0, got {max_num_tokens!r}.")
    lengths = [len(tokens_a), len(tokens_b)]
    cuts = [[0, 0], [0, 0]]  # tokens to remove from the [front, back] of A and of B
    while lengths[0] + lengths[1] > max_num_tokens:
        side = 0 if lengths[0] > lengths[1] else 1
        cuts[side][0 if rng.random() < 0.5 else 1] += 1
        lengths[side] -= 1
    for tokens, (front, back) in zip((tokens_a, tokens_b), cuts, strict=True):
        del tokens[len(tokens) - back:]
        del tokens[:front]
    return tokens_a, tokens_b


def create_nsp_pairs(
    documents: Sequence[Sequence[Sequence]], *, rng: random.Random, max_num_tokens: int = 125,
    short_seq_prob: float = 0.1,
) -> list[SentencePair]:
    """Next-sentence-prediction pairs: A = consecutive sentences of a document; B = the sentences after A
    (label 0) or, half of the time, sentences from a random other document (label 1).

    A and B are two consecutive segments cut as `_next_segments` cuts them. A replaced B is as long as the B it
    replaces aimed to be, starts at a sentence and ends after one, and the pair is truncated only once B is
    chosen: so neither the segments' lengths nor where they are cut tells the label (`bertlab.shortcuts`
    measures that). When B was replaced, the sentences after A start the next pair.

    Chapter: book/nsp_sop.md
    """
    docs = _clean(documents, rng, max_num_tokens, short_seq_prob)
    if len(docs) < 2:
        raise ValueError("NSP needs at least two non-empty documents: negatives come from another document.")
    pairs = []
    for d, document in enumerate(docs):
        i = 0
        while (cut := _next_segments(document, i, rng, max_num_tokens, short_seq_prob)) is not None:
            tokens_b, i, label = cut.tokens_b, cut.end, int(rng.random() < 0.5)
            if label:
                other = rng.randrange(len(docs) - 1)
                other += other >= d  # any document but this one
                tokens_b, i = _random_segment(docs[other], cut.target_b, rng), cut.b_start
            pairs.append(SentencePair(*truncate_pair(cut.tokens_a, tokens_b, cut.length, rng), label))
    return pairs


def create_sop_pairs(
    documents: Sequence[Sequence[Sequence]], *, rng: random.Random, max_num_tokens: int = 125,
    short_seq_prob: float = 0.1,
) -> list[SentencePair]:
    """Sentence-order-prediction pairs (ALBERT): two consecutive segments of one document, in order (label 0)
    or, half of the time, swapped (label 1).

    Segments as in `create_nsp_pairs`: both are cut by the same rule, so an in-order pair is as likely to have
    its longer segment first as second. The pair is swapped *before* it is truncated, as ALBERT's data code
    does: `truncate_pair` trims the longer side, so truncating first would leave every long in-order pair with
    len(A) >= len(B) and every swapped one with the reverse.

    Chapter: book/nsp_sop.md
    """
    docs = _clean(documents, rng, max_num_tokens, short_seq_prob)
    pairs = []
    for document in docs:
        i = 0
        while (cut := _next_segments(document, i, rng, max_num_tokens, short_seq_prob)) is not None:
            first, second, i, label = cut.tokens_a, cut.tokens_b, cut.end, int(rng.random() < 0.5)
            if label:
                first, second = second, first
            pairs.append(SentencePair(*truncate_pair(first, second, cut.length, rng), label))
    return pairs


def create_single_segments(
    documents: Sequence[Sequence[Sequence]], *, rng: random.Random, max_num_tokens: int = 126,
    short_seq_prob: float = 0.1,
) -> list[list]:
    """Single segments for MLM-only pretraining: consecutive sentences of one document, packed as above."""
    segments = []
    for document in _clean(documents, rng, max_num_tokens, short_seq_prob, min_tokens=1):
        i = 0
        while i < len(document):
            tokens, i = _pack(document, i, _target_length(rng, max_num_tokens, short_seq_prob))
            segments.append(truncate_pair(tokens, [], max_num_tokens, rng)[0])
    return segments


def _clean(documents, rng, max_num_tokens, short_seq_prob, min_tokens: int = 2) -> list[list]:
    """Check the arguments of the pairing functions; drop empty sentences and documents."""
    if not isinstance(rng, random.Random):
        raise ValueError(f"rng must be a random.Random (e.g. random.Random(0)), got {type(rng).__name__}.")
    if not isinstance(max_num_tokens, int) or max_num_tokens < min_tokens:
        raise ValueError(f"max_num_tokens must be an int >= {min_tokens} (a token per side), got {max_num_tokens!r}.")
    if not 0 <= short_seq_prob <= 1:
        raise ValueError(f"short_seq_prob must lie in [0, 1], got {short_seq_prob!r}.")
    docs = [[s for s in doc if len(s)] for doc in documents]
    return [doc for doc in docs if doc]


def _target_length(rng: random.Random, max_num_tokens: int, short_seq_prob: float) -> int:
    """Usually fill the whole sequence; sometimes (short_seq_prob) aim at a random shorter length.

    Drawn per chunk (google-research/bert draws it once per document), so short_seq_prob is the share of
    short instances.
    """
    return rng.randint(min(2, max_num_tokens), max_num_tokens) if rng.random() < short_seq_prob else max_num_tokens


class _Cut(NamedTuple):
    tokens_a: list
    tokens_b: list
    target_b: int  # how many tokens B aimed at (a replacement B aims at as many)
    b_start: int  # the sentence where B starts
    end: int  # the sentence after B
    length: int  # the pair's length: truncate to this


def _next_segments(document: Sequence, start: int, rng: random.Random, max_num_tokens: int,
                   short_seq_prob: float) -> _Cut | None:
    """The next two consecutive segments of ``document`` from sentence ``start``, each of whole sentences, or
    None when fewer than two sentences are left.

    The pair's length (`_target_length`) is split at a uniformly random point into what A and what B aim at,
    and each takes sentences until it holds its share: the same rule for both, so that neither is the long one
    by construction (packing one chunk and cutting it makes B end on the sentence that overflowed, which is
    longer than most). When the document ends before B is full, what is left of it is cut at a random
    sentence boundary instead, so that the end of a document gives no segment a length of its own. Sentences
    overshoot their share, so the pair is then truncated to the length it aimed at.
    """
    if len(document) - start < 2:
        return None
    total = max(2, _target_length(rng, max_num_tokens, short_seq_prob))  # 2: a token for each side
    target_a = rng.randint(1, total - 1)
    target_b = total - target_a
    tokens_a, a_end = _pack(document, start, target_a)
    tokens_b, end = _pack(document, a_end, target_b)
    if len(tokens_b) < target_b:  # the document ended first (or A took all of it)
        a_end, end = rng.randint(start + 1, len(document) - 1), len(document)
        tokens_a, tokens_b = _flatten(document[start:a_end]), _flatten(document[a_end:])
        target_b = len(tokens_b)
    return _Cut(tokens_a, tokens_b, target_b, a_end, end, total)


def _pack(document: Sequence, start: int, target: int) -> tuple[list, int]:
    """The tokens of consecutive sentences from ``start`` until they hold ``target`` tokens (at least one
    sentence, or the rest of the document), and the index of the first sentence left."""
    tokens, i = [], start
    while i < len(document) and (i == start or len(tokens) < target):
        tokens.extend(document[i])
        i += 1
    return tokens, i


def _random_segment(document: Sequence, target_length: int, rng: random.Random) -> list:
    """Sentences from a random start in ``document`` until they hold ``target_length`` tokens (at least one)."""
    tokens: list = []
    for sentence in document[rng.randrange(len(document)):]:
        tokens.extend(sentence)
        if len(tokens) >= target_length:
            break
    return tokens


def _flatten(sentences: Sequence[Sequence]) -> list:
    return [t for s in sentences for t in s]


# ---- step 3: pairs -> model inputs ------------------------------------------------------------------------


def build_pair_features(tokens_a: Sequence, tokens_b: Sequence | None, tokenizer, max_length: int) -> dict:
    """``[CLS] A [SEP] B [SEP]`` with token_type_ids 0 for ``[CLS] A [SEP]`` and 1 for ``B [SEP]``.

    Tokens are ids, token strings or ``(id, word_key)`` pairs. ``tokens_b=None`` gives one segment,
    ``[CLS] A [SEP]``. When every token has a word key, ``word_ids`` numbers the words 0, 1, ... (-1 on
    [CLS]/[SEP]), for `bertlab.masking.mask_whole_words`. Truncate first (`truncate_pair`): a pair longer
    than ``max_length`` is an error.

    Chapter: book/nsp_sop.md
    """
    if tokens_b is not None and len(tokens_b) == 0:
        raise ValueError("tokens_b is empty: give at least one token, or None for a single segment.")
    if len(tokens_a) == 0:
        raise ValueError("tokens_a is empty: a segment needs at least one token.")
    ids_a, keys_a = _ids_and_keys(tokens_a, tokenizer)
    ids_b, keys_b = _ids_and_keys(tokens_b or [], tokenizer)
    cls, sep = tokenizer.cls_token_id, tokenizer.sep_token_id
    if cls is None or sep is None:
        raise ValueError("the tokenizer has no [CLS] or [SEP] token; use a BERT tokenizer.")
    input_ids = [cls, *ids_a, sep] + ([*ids_b, sep] if tokens_b is not None else [])
    if len(input_ids) > max_length:
        raise ValueError(
            f"the pair has {len(input_ids)} tokens with [CLS]/[SEP], more than max_length={max_length}: "
            f"trim it first with truncate_pair(tokens_a, tokens_b, {max_length - 3}, rng)."
        )
    len_a = len(ids_a) + 2  # [CLS] A [SEP]
    features = {"input_ids": input_ids, "token_type_ids": [0] * len_a + [1] * (len(input_ids) - len_a)}
    keys = [None, *keys_a, None] + ([*keys_b, None] if tokens_b is not None else [])
    if all(k is not None for k in keys_a + keys_b):
        numbers: dict = {}
        features["word_ids"] = [-1 if k is None else numbers.setdefault(k, len(numbers)) for k in keys]
    return features


def _ids_and_keys(tokens: Sequence, tokenizer) -> tuple[list[int], list]:
    ids, keys = [], []
    for t in tokens:
        if isinstance(t, str):
            t = (tokenizer.convert_tokens_to_ids(t), None)
        elif not isinstance(t, (tuple, list)):
            t = (t, None)
        ids.append(int(t[0]))
        keys.append(t[1])
    return ids, keys


# ---- step 4: instances -> masked batches ------------------------------------------------------------------


class PretrainingCollator:
    """Pads a list of instances into a batch for BertForPreTraining and masks it anew on every call.

    Returns input_ids, attention_mask, token_type_ids, labels (-100 where nothing is predicted), and
    next_sentence_label when the instances have one. ``whole_word=True`` uses the instances' ``word_ids``.
    Special tokens ([PAD], [UNK], [CLS], [SEP], [MASK]) are never masked nor used as random replacements.
    Note: with a ``generator`` and several DataLoader workers, each worker copies the same generator state.

    Chapter: book/masking.md
    """

    def __init__(self, tokenizer, mlm_probability: float = 0.15, whole_word: bool = False,
                 generator: torch.Generator | None = None):
        check_mlm_probability(mlm_probability)
        if tokenizer.pad_token_id is None or tokenizer.mask_token_id is None:
            raise ValueError("the tokenizer needs a [PAD] and a [MASK] token; use a BERT tokenizer.")
        self.tokenizer, self.mlm_probability, self.whole_word, self.generator = (
            tokenizer, mlm_probability, whole_word, generator)

    def __call__(self, instances: Sequence[Mapping]) -> dict[str, torch.Tensor]:
        if len(instances) == 0:
            raise ValueError("cannot collate an empty list of instances.")
        if self.whole_word and any("word_ids" not in x for x in instances):
            raise ValueError("whole_word=True needs word_ids in every instance: build the data set from documents "
                             "with a 'words' column (e.g. load_peoples_daily_documents).")
        B, T = len(instances), max(len(x["input_ids"]) for x in instances)
        input_ids = torch.full((B, T), self.tokenizer.pad_token_id, dtype=torch.long)
        token_type_ids = torch.zeros((B, T), dtype=torch.long)
        attention_mask = torch.zeros((B, T), dtype=torch.long)
        word_ids = torch.full((B, T), -1, dtype=torch.long)
        for b, x in enumerate(instances):
            n = len(x["input_ids"])
            input_ids[b, :n] = torch.as_tensor(x["input_ids"])
            attention_mask[b, :n] = 1
            if x.get("token_type_ids") is not None:
                token_type_ids[b, :n] = torch.as_tensor(x["token_type_ids"])
            if self.whole_word:
                word_ids[b, :n] = torch.as_tensor(x["word_ids"])
        tok = self.tokenizer
        kwargs = dict(vocab_size=len(tok), mask_token_id=tok.mask_token_id, special_token_ids=tok.all_special_ids,
                      mlm_probability=self.mlm_probability, generator=self.generator)
        if self.whole_word:
            masked, labels = mask_whole_words(input_ids, word_ids, **kwargs)
        else:
            masked, labels = mask_tokens(input_ids, **kwargs)
        batch = {"input_ids": masked, "attention_mask": attention_mask, "token_type_ids": token_type_ids,
                 "labels": labels}
        has_label = [x.get("next_sentence_label") is not None for x in instances]
        if all(has_label):
            batch["next_sentence_label"] = torch.tensor([int(x["next_sentence_label"]) for x in instances])
        elif any(has_label):
            raise ValueError("some instances have a next_sentence_label and others not; do not mix tasks in a batch.")
        return batch


# ---- all steps --------------------------------------------------------------------------------------------


def build_pretraining_dataset(documents, tokenizer, *, task: str = "nsp", max_length: int = 128, seed: int = 0,
                              dupe_factor: int = 1, short_seq_prob: float = 0.1):
    """Documents -> a shuffled `datasets.Dataset` of unmasked instances (input_ids, token_type_ids, and
    next_sentence_label for "nsp"/"sop", word_ids when the documents have words); mask with PretrainingCollator.

    ``task``: "nsp" (BERT), "sop" (ALBERT) or "none" (single segments, MLM only, as RoBERTa).
    ``dupe_factor``: how many times to go over the documents, each time with new random pairs.

    Chapter: book/masking.md
    """
    if task not in PAIR_TASKS:
        raise ValueError(f"task must be one of {PAIR_TASKS}, got {task!r}.")
    if not isinstance(max_length, int) or max_length < 5:
        raise ValueError(f"max_length must be an int >= 5 ([CLS] A [SEP] B [SEP]), got {max_length!r}.")
    if not isinstance(dupe_factor, int) or dupe_factor < 1:
        raise ValueError(f"dupe_factor must be a positive int, got {dupe_factor!r}.")
    docs = tokenize_documents(documents, tokenizer)
    rng = random.Random(seed)
    rows = []
    for _ in range(dupe_factor):
        if task == "none":
            for segment in create_single_segments(docs, rng=rng, max_num_tokens=max_length - 2,
                                                  short_seq_prob=short_seq_prob):
                rows.append(build_pair_features(segment, None, tokenizer, max_length))
        else:
            make_pairs = create_nsp_pairs if task == "nsp" else create_sop_pairs
            for a, b, label in make_pairs(docs, rng=rng, max_num_tokens=max_length - 3, short_seq_prob=short_seq_prob):
                rows.append({**build_pair_features(a, b, tokenizer, max_length), "next_sentence_label": label})
    if not rows:
        raise ValueError("the documents gave no instance: are they empty?")
    rng.shuffle(rows)
    import datasets  # here, not at the top: importing it takes a while and only this function needs it

    return datasets.Dataset.from_list(rows)
