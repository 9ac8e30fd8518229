"""Behaviour of the model that a wrong implementation would break: gradients, weight tying, padding, input checks."""

import pytest
import torch

import bertlab
from bertlab import BertConfig, BertForPreTraining, BertModel


@pytest.fixture
def config():
    return BertConfig.from_preset("tiny", vocab_size=300, max_position_embeddings=32)


def batch(vocab_size=300, B=3, T=16, seed=0):
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(5, vocab_size, (B, T), generator=g)
    labels = torch.full_like(ids, -100)
    labels[:, 2:5] = ids[:, 2:5]
    return dict(input_ids=ids, token_type_ids=(torch.arange(T) >= T // 2).long().expand(B, T),
                attention_mask=torch.ones_like(ids), labels=labels, next_sentence_label=torch.tensor([0, 1, 0])[:B])


def test_every_parameter_gets_a_gradient(config):
    torch.manual_seed(0)
    model = BertForPreTraining(config)
    model(**batch()).loss.backward()
    no_grad = [n for n, p in model.named_parameters() if p.grad is None or p.grad.abs().sum() == 0]
    assert no_grad == []


def test_decoder_is_tied_to_the_token_embeddings_through_training(config):
    torch.manual_seed(0)
    model = BertForPreTraining(config)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
    b = batch()
    for _ in range(3):
        model(**b).loss.backward()
        opt.step()
        opt.zero_grad()
    # No separate output matrix exists, in the module or in what save_pretrained writes...
    assert not any("decoder.weight" in n for n, _ in model.named_parameters())
    # ...the logits are h' E^T + b with E the (trained) embedding matrix...
    model.eval()
    with torch.no_grad():
        out = model(b["input_ids"], token_type_ids=b["token_type_ids"])
        h = model.bert(b["input_ids"], token_type_ids=b["token_type_ids"]).last_hidden_state
        emb = model.bert.embeddings.word_embeddings.weight
        manual = model.cls.predictions.transform(h) @ emb.T + model.cls.predictions.bias
    assert torch.allclose(out.prediction_logits, manual, atol=1e-5)
    # ...and the decoder's gradient reaches embedding rows of tokens that never appear in the input.
    model.train()
    model.zero_grad()
    model(**b).loss.backward()
    unseen = torch.ones(config.vocab_size, dtype=torch.bool)
    unseen[b["input_ids"].unique()] = False
    unseen[0] = False  # [PAD] row (padding_idx) gets no gradient from the lookup by design
    assert model.bert.embeddings.word_embeddings.weight.grad[unseen].abs().sum(-1).gt(0).all()


def test_padding_does_not_change_the_real_tokens(config):
    torch.manual_seed(0)
    model = BertModel(config).eval()
    short = torch.randint(5, 300, (1, 7))
    padded = torch.cat([short, torch.randint(5, 300, (1, 9))], dim=1)  # junk after the real tokens
    mask = torch.tensor([[1] * 7 + [0] * 9])
    with torch.no_grad():
        alone = model(short)
        with_padding = model(padded, attention_mask=mask)
    assert torch.allclose(alone.last_hidden_state, with_padding.last_hidden_state[:, :7], atol=1e-5)
    assert torch.allclose(alone.pooler_output, with_padding.pooler_output, atol=1e-5)
    # Without the mask the junk is attended to, and the outputs do change: the mask matters.
    with torch.no_grad():
        unmasked = model(padded)
    assert not torch.allclose(alone.last_hidden_state, unmasked.last_hidden_state[:, :7], atol=1e-3)


def test_segment_ids_change_the_output(config):
    torch.manual_seed(0)
    model = BertModel(config).eval()
    ids = torch.randint(5, 300, (1, 8))
    with torch.no_grad():
        a = model(ids).last_hidden_state
        b = model(ids, token_type_ids=torch.zeros_like(ids)).last_hidden_state
        c = model(ids, token_type_ids=torch.ones_like(ids)).last_hidden_state
    assert torch.equal(a, b)
    assert not torch.allclose(a, c)


def test_hidden_states_are_embeddings_plus_one_per_layer(config):
    model = BertModel(config).eval()
    out = model(torch.randint(5, 300, (2, 6)), output_hidden_states=True)
    assert len(out.hidden_states) == config.num_hidden_layers + 1
    assert torch.equal(out.hidden_states[-1], out.last_hidden_state)


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda: dict(input_ids=torch.tensor([[5, 6, 300]])), "outside the vocabulary"),
        (lambda: dict(input_ids=torch.tensor([[5, -1]])), "outside the vocabulary"),
        (lambda: dict(input_ids=torch.full((1, 33), 5)), "max_position_embeddings=32"),
        (lambda: dict(input_ids=torch.tensor([5, 6, 7])), "unsqueeze"),
        (lambda: dict(input_ids=torch.tensor([[5.0, 6.0]])), "integer"),
        (lambda: dict(input_ids=torch.tensor([[5, 6]]), attention_mask=torch.ones(1, 3)), "attention_mask has shape"),
        (lambda: dict(input_ids=torch.tensor([[5, 6]]), token_type_ids=torch.zeros(2, 2, dtype=torch.long)),
         "token_type_ids has shape"),
        (lambda: dict(input_ids=torch.tensor([[5, 6]]), token_type_ids=torch.tensor([[0, 2]])), "segment ids"),
        (lambda: dict(input_ids=[[5, 6]]), "torch.Tensor"),
    ],
)
def test_bad_input_gets_a_clear_error(config, make, message):
    model = BertModel(config)
    with pytest.raises(ValueError, match=message):
        model(**make())


def test_bad_labels_get_a_clear_error(config):
    model = BertForPreTraining(config)
    b = batch()
    with pytest.raises(ValueError, match="labels have shape"):
        model(**{**b, "labels": b["labels"][:, :3]})
    with pytest.raises(ValueError, match="next_sentence_label"):
        model(**{**b, "next_sentence_label": torch.tensor([0, 2, 1])})
    clf = bertlab.BertForSequenceClassification(config)
    with pytest.raises(ValueError, match=r"\[0, 2\)"):
        clf(b["input_ids"], labels=torch.tensor([0, 1, 5]))
    qa = bertlab.BertForQuestionAnswering(config)
    with pytest.raises(ValueError, match="both"):
        qa(b["input_ids"], start_positions=torch.tensor([1, 2, 3]))


def test_task_losses_are_the_usual_ones(config):
    torch.manual_seed(0)
    b = batch()
    tok = bertlab.BertForTokenClassification(BertConfig.from_preset("tiny", vocab_size=300, num_labels=5)).eval()
    labels = torch.randint(0, 5, b["input_ids"].shape)
    labels[:, 0] = -100
    out = tok(b["input_ids"], labels=labels)
    keep = labels != -100
    assert torch.allclose(out.loss, torch.nn.functional.cross_entropy(out.logits[keep], labels[keep]))
    qa = bertlab.BertForQuestionAnswering(config).eval()
    s, e = torch.tensor([1, 2, 3]), torch.tensor([4, 2, 9])
    out = qa(b["input_ids"], start_positions=s, end_positions=e)
    ce = torch.nn.functional.cross_entropy
    assert torch.allclose(out.loss, (ce(out.start_logits, s) + ce(out.end_logits, e)) / 2)
    reg = bertlab.BertForSequenceClassification(BertConfig.from_preset("tiny", vocab_size=300, num_labels=1))
    y = torch.tensor([0.5, 1.5, -1.0])
    out = reg(b["input_ids"], labels=y)
    assert torch.allclose(out.loss, ((out.logits.squeeze(-1) - y) ** 2).mean())
