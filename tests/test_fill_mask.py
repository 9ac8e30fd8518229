"""fill_mask: the top-k tokens and their probabilities at each [MASK], from a model and its tokenizer."""

import pytest
import torch

from bertlab import BertConfig, BertForMaskedLM, BertForPreTraining
from bertlab.checkpoint import bundled_minilm_dir
from bertlab.fill_mask import fill_mask, format_candidates, load_fill_mask_model
from bertlab.tokenizer import load_tokenizer


@pytest.fixture(scope="module")
def tokenizer():
    return load_tokenizer()  # the course tokenizer (characters of the People's Daily corpus)


def tiny_model(tokenizer, cls=BertForPreTraining, favour: str | None = None):
    torch.manual_seed(0)
    model = cls(BertConfig.from_preset("tiny", vocab_size=len(tokenizer), num_hidden_layers=1)).eval()
    if favour is not None:  # make one token by far the most probable everywhere
        with torch.no_grad():
            model.cls.predictions.bias[tokenizer.convert_tokens_to_ids(favour)] = 30.0
    return model


def test_a_model_that_favours_a_token_predicts_it(tokenizer):
    # 台湾大[MASK]: "National Taiwan Univ[ersity]"; 学 completes 大学, university
    (candidates,) = fill_mask(tiny_model(tokenizer, favour="学"), tokenizer, "台湾大[MASK]", top_k=3)
    assert [token for token, _ in candidates][0] == "学"
    assert candidates[0][1] > 0.99 and len(candidates) == 3


def test_probabilities_are_the_softmax_of_the_logits_at_each_mask(tokenizer):
    model = tiny_model(tokenizer, cls=BertForMaskedLM)
    text = "[MASK]京是中国的首[MASK]"  # "[Bei]jing is China's capi[tal]"
    predictions = fill_mask(model, tokenizer, text, top_k=4)
    assert len(predictions) == 2  # one list per [MASK], left to right
    enc = tokenizer(text, return_tensors="pt")
    positions = (enc["input_ids"][0] == tokenizer.mask_token_id).nonzero().flatten()
    with torch.no_grad():
        probs = model(enc["input_ids"], enc["attention_mask"], enc["token_type_ids"]).logits[0].softmax(-1)
    for position, candidates in zip(positions, predictions, strict=True):
        expected = probs[position].topk(4)
        assert [t for t, _ in candidates] == tokenizer.convert_ids_to_tokens(expected.indices.tolist())
        assert [p for _, p in candidates] == pytest.approx(expected.values.tolist(), abs=1e-6)
        assert all(a >= b for (_, a), (_, b) in zip(candidates, candidates[1:], strict=False))
    lines = format_candidates(text, predictions).splitlines()
    assert lines[0] == text and lines[1].startswith("  [MASK] 1: ") and len(lines) == 3


def test_text_without_mask_is_a_clear_error(tokenizer):
    with pytest.raises(ValueError, match=r"has no \[MASK\]"):
        fill_mask(tiny_model(tokenizer), tokenizer, "台湾大学")
    with pytest.raises(ValueError, match="top_k"):
        fill_mask(tiny_model(tokenizer), tokenizer, "台湾大[MASK]", top_k=0)


def test_load_from_a_pretraining_checkpoint_with_its_tokenizer(tmp_path, tokenizer):
    model = tiny_model(tokenizer, favour="学")
    model.save_pretrained(tmp_path)
    tokenizer.save_pretrained(tmp_path)
    loaded, loaded_tokenizer = load_fill_mask_model(tmp_path)
    assert isinstance(loaded, BertForMaskedLM) and not loaded.training
    text = "台湾大[MASK]"
    assert fill_mask(loaded, loaded_tokenizer, text, top_k=1) == fill_mask(model, tokenizer, text, top_k=1)


def test_checkpoint_without_mlm_head_is_refused():
    with pytest.raises(ValueError, match="no masked-LM head"):
        load_fill_mask_model(bundled_minilm_dir())  # a sentence-embedding encoder: no MLM head
