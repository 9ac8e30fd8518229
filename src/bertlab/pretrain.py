"""Pretraining BERT on the People's Daily corpus: masked LM plus NSP, SOP, or nothing.

    result = pretrain(PretrainConfig(preset="tiny", task="sop", max_steps=2000, output_dir="runs/sop"))
    result.history, result.metrics, result.checkpoint_dir

Sentence pairs are built once from the documents (:mod:`bertlab.pretraining_data`); the tokens to
predict are chosen afresh for every batch (dynamic masking, as RoBERTa; BERT fixed them up front).
The vocabulary logits are computed at the masked positions only (``masked_only=True``), as the
original BERT does.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import datasets
import torch
from torch import nn

from .checkpoint import normalize_keys, read_config, read_state_dict, resolve_checkpoint_dir
from .config import PRESETS, BertConfig
from .corpora import load_peoples_daily_documents, review_documents
from .distributed import init_distributed
from .evaluate import evaluate_pretraining
from .heads import BertForPreTraining
from .labels import IGNORE_INDEX
from .masking import check_mlm_probability
from .options import option
from .pretraining_data import PAIR_TASKS, PretrainingCollator, build_pretraining_dataset, drop_headings
from .tokenizer import load_tokenizer, read_vocab, save_tokenizer
from .trainer import TrainArgs, Trainer, TrainResult, iterate_batches, set_seed

CORPORA = ("peoples_daily", "peoples_daily+reviews")
WORD_EMBEDDINGS = "bert.embeddings.word_embeddings.weight"
VALIDATION_MASKING_SEED = 12345  # the validation set is masked the same way at every evaluation of a run


@dataclass
class PretrainConfig(TrainArgs):
    """Everything a pretraining run depends on (see also :class:`~bertlab.trainer.TrainArgs`)."""

    output_dir: str = option("runs/pretrain", "directory for checkpoints (checkpoint-<step>/) and history.json")
    preset: str = option("tiny", "model size (BertConfig.from_preset)", choices=tuple(PRESETS))
    task: str = option("nsp", "sentence-pair task beside masked LM: nsp, sop, or none (MLM only)", choices=PAIR_TASKS)
    corpus: str = option("peoples_daily", "unlabelled training text: the People's Daily training articles, and with "
                         "+reviews the review training split's texts too (their labels unused)", choices=CORPORA)
    whole_word_masking: bool = option(False, "mask all characters of a word together (Chinese BERT-wwm)")
    mlm_probability: float = option(0.15, "fraction of tokens to predict")
    max_length: int = option(128, "tokens per training sequence, [CLS] and [SEP] included")
    dupe_factor: int = option(1, "how many times to build sentence pairs from each document (different pairings)")
    tokenizer: str | None = option(None, "tokenizer directory (default: the course tokenizer)",
                                   metavar="DIR")
    init_from: str | None = option(None, "start from this checkpoint's weights, not random ones; one with fewer "
                                   "layers is stacked on itself to fill the preset's layers (progressive stacking)",
                                   metavar="DIR")
    transfer_from: str | None = option(None, "cross-lingual transfer: keep this pretrained encoder's layers frozen "
                                       "and learn only new token embeddings for the course tokenizer (and the MLM "
                                       "head), as Artetxe et al. (2020) do; needs task='none'", metavar="DIR")
    max_documents: int | None = option(None, "use only the first N training articles (for quick runs)",
                                       metavar="N")
    cpu_bf16: bool = option(True, "train under bf16 autocast on a CPU with bf16 arithmetic (AVX512-BF16 or AMX), "
                            "where it is faster than fp32 (bench/cpu_autocast.py); fp32 on other CPUs")

    def validate(self) -> None:
        super().validate()
        if self.whole_word_masking and self.corpus != "peoples_daily":
            raise ValueError("whole_word_masking needs word boundaries, which only the People's Daily corpus has; "
                             f"use corpus='peoples_daily' or turn whole-word masking off (corpus={self.corpus!r}).")
        check_mlm_probability(self.mlm_probability)
        max_positions = BertConfig.from_preset(self.preset).max_position_embeddings
        if not 8 <= self.max_length <= max_positions:
            raise ValueError(f"max_length must lie in [8, {max_positions}] for preset {self.preset!r}, "
                             f"got {self.max_length}.")
        if self.dupe_factor < 1:
            raise ValueError(f"dupe_factor must be >= 1, got {self.dupe_factor}.")
        if self.transfer_from and (self.task != "none" or self.init_from):
            raise ValueError("transfer_from learns token embeddings with masked LM alone: use task='none' and no "
                             "init_from.")
        if self.max_documents is not None and self.max_documents < 2:
            raise ValueError(f"max_documents must be >= 2 (NSP draws from other documents), got {self.max_documents}.")


def model_config(config: PretrainConfig, tokenizer: Any) -> BertConfig:
    """The preset's architecture (or that of ``transfer_from``) with the tokenizer's vocabulary."""
    if config.transfer_from:
        bert_config = read_config(resolve_checkpoint_dir(config.transfer_from))
        bert_config.vocab_size, bert_config.pad_token_id = len(tokenizer), tokenizer.pad_token_id
        return bert_config
    return BertConfig.from_preset(config.preset, vocab_size=len(tokenizer), pad_token_id=tokenizer.pad_token_id)


def initial_model(config: PretrainConfig, tokenizer: Any) -> BertForPreTraining:
    """The model a run starts from: random weights (seeded with ``config.seed``), or those of ``init_from``."""
    set_seed(config.seed)
    model = BertForPreTraining(model_config(config, tokenizer))
    if config.init_from:
        model.load_hf_state_dict(stacked_state(read_state_dict(resolve_checkpoint_dir(config.init_from)),
                                               model.config.num_hidden_layers), strict=True, source=config.init_from)
    if config.transfer_from:
        transplant_body(model, resolve_checkpoint_dir(config.transfer_from), tokenizer)
    return model


def transplant_body(model: BertForPreTraining, source: Path, tokenizer: Any) -> None:
    """Load ``source``'s encoder into ``model`` except its token embeddings, and freeze it.

    Tokens that both vocabularies share (the special tokens, and the Chinese characters that an English
    vocabulary happens to hold) start from the source's vectors; the others keep their random start. Only the
    token embeddings and the MLM head then learn: the layers stay exactly as the source's pretraining left them.
    """
    state = normalize_keys(read_state_dict(source))
    old_embeddings = state[WORD_EMBEDDINGS]
    state[WORD_EMBEDDINGS] = model.bert.embeddings.word_embeddings.weight.detach().clone()  # the new vocabulary
    for key in [k for k in state if k.startswith("cls.predictions.") and k.endswith(("bias", "decoder.weight"))
                and state[k].shape[0] == old_embeddings.shape[0]]:
        del state[key]  # the output layer over the old vocabulary (its hidden-size transform carries over)
    model.load_hf_state_dict(state, source=str(source))
    old_vocab = read_vocab(source)
    with torch.no_grad():
        embeddings = model.bert.embeddings.word_embeddings.weight
        embeddings.normal_(0.0, float(old_embeddings.std()))  # the scale the frozen layers were trained on
        for token, new_id in tokenizer.get_vocab().items():
            if token in old_vocab:
                embeddings[new_id] = old_embeddings[old_vocab[token]]
    for name, parameter in model.named_parameters():
        parameter.requires_grad = name == WORD_EMBEDDINGS or name.startswith("cls.predictions.")


def stacked_state(state: dict[str, torch.Tensor], num_layers: int) -> dict[str, torch.Tensor]:
    """A checkpoint's weights for a model of ``num_layers`` layers: layer i gets the checkpoint's layer i mod L.

    Gong et al. (2019), "Efficient training of BERT by progressively stacking": a trained shallow BERT stacked on
    itself is a far better start for a deeper one than random weights, since its layers already attend usefully.
    """
    state = normalize_keys(state)
    prefix = "bert.encoder.layer."
    layers = sorted({int(k[len(prefix):].split(".")[0]) for k in state if k.startswith(prefix)})
    if not layers or num_layers % len(layers):
        raise ValueError(f"cannot stack a checkpoint of {len(layers)} layers into {num_layers}: use a checkpoint "
                         "whose layer count divides the preset's.")
    out = {k: v for k, v in state.items() if not k.startswith(prefix)}
    for i in range(num_layers):
        source = f"{prefix}{i % len(layers)}."
        out.update({f"{prefix}{i}.{k[len(source):]}": v for k, v in state.items() if k.startswith(source)})
    return out


def peoples_daily_documents(split: str, task: str) -> Any:
    """People's Daily articles as pretraining documents: for a sentence-pair task without their headings
    (`bertlab.pretraining_data.drop_headings`: a headline always comes first, and would give SOP's order away).

    Chapter: book/nsp_sop.md
    """
    documents = load_peoples_daily_documents(split=split)
    return documents if task == "none" else datasets.Dataset.from_list(drop_headings(documents))


def pretraining_split(config: PretrainConfig, tokenizer: Any, split: str, seed: int) -> Any:
    """Masking-ready instances (sentence pairs, or single segments for task="none") of one split. Validation
    is always People's Daily, so that runs on different corpora are measured on the same text.

    With corpus="peoples_daily+reviews", the reviews are single segments for masked LM alone, whatever the task
    (their pair label is IGNORE_INDEX, which the pair loss skips): a review is a few sentences, and the order of
    a pair cut from one shows on its surface (a long description first, a short verdict after, with or without a
    full stop), which a classifier of lengths and punctuation reads well above chance.
    """
    documents = peoples_daily_documents(split, config.task)
    if config.max_documents is not None and split == "train":
        documents = documents.select(range(min(config.max_documents, len(documents))))
    mixed = split == "train" and config.corpus == "peoples_daily+reviews"
    if mixed:
        documents = [list(d) for d in documents["sentences"]]  # plain sentences, as the reviews: no word boundaries
    rows = build_pretraining_dataset(documents, tokenizer, task=config.task, max_length=config.max_length,
                                     seed=seed, dupe_factor=config.dupe_factor)
    if not mixed:
        return rows
    reviews = review_documents("train")[:config.max_documents]
    segments = build_pretraining_dataset(reviews, tokenizer, task="none", max_length=config.max_length,
                                         seed=seed, dupe_factor=config.dupe_factor)
    if config.task != "none":
        segments = segments.add_column("next_sentence_label", [IGNORE_INDEX] * len(segments),
                                       feature=rows.features["next_sentence_label"])
    return datasets.concatenate_datasets([rows, segments]).shuffle(seed=seed).flatten_indices()


def pretraining_loss(model: nn.Module, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The summed loss to train on, and its parts to log."""
    out = model(**batch, masked_only=True)
    losses = {"loss": out.loss, "mlm_loss": out.mlm_loss}
    if out.sentence_loss is not None:
        losses["sentence_loss"] = out.sentence_loss
    return losses


def evaluate_split(model: nn.Module, rows: Any, config: PretrainConfig, tokenizer: Any,
                   device: torch.device) -> dict[str, float]:
    """Validation losses and accuracies, with the same masks at every evaluation."""
    collate = PretrainingCollator(tokenizer, mlm_probability=config.mlm_probability,
                                  whole_word=config.whole_word_masking,
                                  generator=torch.Generator().manual_seed(VALIDATION_MASKING_SEED))
    return evaluate_pretraining(model, iterate_batches(rows, collate, config.batch_size, config.eval_batches), device)


def pretrain(config: PretrainConfig) -> TrainResult:
    """Pretrain a BERT from random weights; checkpoints go to ``config.output_dir``."""
    config.validate()
    info, device = init_distributed(config.device)
    tokenizer = load_tokenizer(config.tokenizer)
    train_rows = pretraining_split(config, tokenizer, "train", config.seed)
    val_rows = pretraining_split(config, tokenizer, "validation", config.seed + 1)
    model = initial_model(config, tokenizer)
    masking = torch.Generator().manual_seed(config.seed * 1000 + info.rank)  # each process masks differently
    collate = PretrainingCollator(tokenizer, mlm_probability=config.mlm_probability,
                                  whole_word=config.whole_word_masking, generator=masking)
    trainer = Trainer(
        model, config, train_rows, collate, pretraining_loss, info=info, device=device,
        evaluate=partial(evaluate_split, rows=val_rows, config=config, tokenizer=tokenizer, device=device),
        save_extra=partial(save_tokenizer, tokenizer), generators={"masking": masking},
        find_unused_parameters=config.task == "none",  # the sentence-pair head gets no gradient then
        desc=f"pretrain {config.preset}/{config.task}",
    )
    result = trainer.train()
    result.tokenizer = tokenizer
    return result
