"""bertlab is BERT: the same weights give the same numbers as `transformers`, in both directions."""

import pytest
import torch
import transformers

import bertlab
from bertlab.checkpoint import bundled_minilm_dir

TOL = 1e-5
SMALL = dict(vocab_size=1000, hidden_size=128, num_hidden_layers=3, num_attention_heads=4,
             intermediate_size=256, max_position_embeddings=64, num_labels=3)
PAIRS = [  # (bertlab class, transformers class, output fields to compare)
    (bertlab.BertForPreTraining, transformers.BertForPreTraining, ("prediction_logits", "seq_relationship_logits")),
    (bertlab.BertForMaskedLM, transformers.BertForMaskedLM, ("logits",)),
    (bertlab.BertForSequenceClassification, transformers.BertForSequenceClassification, ("logits",)),
    (bertlab.BertForTokenClassification, transformers.BertForTokenClassification, ("logits",)),
    (bertlab.BertForQuestionAnswering, transformers.BertForQuestionAnswering, ("start_logits", "end_logits")),
    (bertlab.BertModel, transformers.BertModel, ("last_hidden_state", "pooler_output")),
]


def padded_batch(vocab_size: int = 1000):
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(5, vocab_size, (4, 24), generator=g)
    mask = torch.ones_like(ids)
    for row, length in enumerate([24, 17, 9, 3]):
        mask[row, length:] = 0
        ids[row, length:] = 0  # [PAD]
    segments = (torch.arange(24) >= 10).long().expand(4, 24) * mask
    return dict(input_ids=ids, attention_mask=mask, token_type_ids=segments)


def small_config(cls) -> dict:
    """SMALL, with the two outputs per token that extractive QA needs."""
    return {**SMALL, "num_labels": 2} if "QuestionAnswering" in cls.__name__ else SMALL


def random_hf(hf_cls):
    torch.manual_seed(0)
    return hf_cls(transformers.BertConfig(**small_config(hf_cls), attn_implementation="sdpa")).eval()


def max_diff(a: torch.Tensor, b: torch.Tensor) -> float:
    assert a.shape == b.shape, (a.shape, b.shape)
    return (a - b).abs().max().item()


@pytest.mark.parametrize("ours_cls, hf_cls, fields", PAIRS, ids=lambda x: getattr(x, "__name__", ""))
def test_random_transformers_weights_give_the_same_outputs(tmp_path, ours_cls, hf_cls, fields):
    hf = random_hf(hf_cls)
    hf.save_pretrained(tmp_path)
    ours = ours_cls.from_pretrained(tmp_path, strict=True).eval()
    batch = padded_batch()
    with torch.no_grad():
        a, b = hf(**batch), ours(**batch)
    for field in fields:
        assert max_diff(getattr(a, field), getattr(b, field)) <= TOL, field


def test_pretraining_parity_covers_sequence_and_pooled_output(tmp_path):
    hf = random_hf(transformers.BertForPreTraining)
    hf.save_pretrained(tmp_path)
    ours = bertlab.BertForPreTraining.from_pretrained(tmp_path, strict=True).eval()
    batch = padded_batch()
    with torch.no_grad():
        a, b = hf.bert(**batch), ours.bert(**batch)
        labels = torch.where(batch["attention_mask"].bool(), batch["input_ids"], -100)
        nsp = torch.tensor([0, 1, 1, 0])
        la = hf(**batch, labels=labels, next_sentence_label=nsp).loss
        lb = ours(**batch, labels=labels, next_sentence_label=nsp).loss
    assert max_diff(a.last_hidden_state, b.last_hidden_state) <= TOL
    assert max_diff(a.pooler_output, b.pooler_output) <= TOL
    assert abs(la.item() - lb.item()) <= TOL


def test_masked_only_logits_give_the_same_loss_as_full_logits():
    torch.manual_seed(0)
    model = bertlab.BertForPreTraining(bertlab.BertConfig(**SMALL)).eval()
    batch = padded_batch()
    labels = torch.full_like(batch["input_ids"], -100)
    labels[:, 1:4] = batch["input_ids"][:, 1:4]
    with torch.no_grad():
        full = model(**batch, labels=labels)
        sparse = model(**batch, labels=labels, masked_only=True)
    assert sparse.prediction_logits.shape == (int((labels != -100).sum()), SMALL["vocab_size"])
    assert abs(full.loss.item() - sparse.loss.item()) <= TOL
    assert max_diff(full.prediction_logits[labels != -100], sparse.prediction_logits) <= TOL


def test_real_pretrained_minilm_matches_transformers():
    directory = bundled_minilm_dir()
    tok = transformers.BertTokenizerFast.from_pretrained(directory)
    sentences = [
        "Self-supervised learning makes its own labels from the data.",
        "BERT masks some of the input tokens and predicts them.",
        "Short one.",
    ]
    batch = dict(tok(sentences, padding=True, return_tensors="pt"))
    ours = bertlab.BertModel.from_pretrained(directory, strict=True).eval()
    hf = transformers.BertModel.from_pretrained(directory, attn_implementation="sdpa").eval()
    with torch.no_grad():
        a, b = hf(**batch), ours(**batch)
    assert batch["attention_mask"][2].sum() < batch["attention_mask"].shape[1]  # the batch really is padded
    assert max_diff(a.last_hidden_state, b.last_hidden_state) <= TOL
    assert max_diff(a.pooler_output, b.pooler_output) <= TOL
    # Real weights give real semantics: the two sentences about BERT/self-supervision are closer than to "Short one."
    emb = torch.nn.functional.normalize((b.last_hidden_state * batch["attention_mask"][..., None]).sum(1), dim=-1)
    assert emb[0] @ emb[1] > emb[0] @ emb[2]


@pytest.mark.parametrize("ours_cls, hf_cls, fields", PAIRS, ids=lambda x: getattr(x, "__name__", ""))
def test_save_pretrained_loads_in_transformers_with_identical_outputs(tmp_path, ours_cls, hf_cls, fields):
    torch.manual_seed(1)
    ours = ours_cls(bertlab.BertConfig(**small_config(ours_cls))).eval()
    ours.save_pretrained(tmp_path)
    hf, info = hf_cls.from_pretrained(tmp_path, output_loading_info=True, attn_implementation="sdpa")
    assert not info["missing_keys"] and not info["unexpected_keys"] and not info["mismatched_keys"], info
    hf.eval()
    batch = padded_batch()
    with torch.no_grad():
        a, b = hf(**batch), ours(**batch)
    for field in fields:
        assert max_diff(getattr(a, field), getattr(b, field)) <= 1e-6, field
