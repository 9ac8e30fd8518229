"""BertConfig presets, validation and the parameter counts the lecture quotes."""

import pytest
import torch

from bertlab import BertConfig, BertForPreTraining, BertModel


def count(model_cls, preset: str) -> int:
    with torch.device("meta"):  # shapes only: no memory for 335M parameters
        return model_cls(BertConfig.from_preset(preset)).num_parameters()


def test_bert_base_is_110m_and_large_is_335m():
    # Devlin et al. (2019): BERT-base 110M, BERT-large 340M (335M when counted exactly).
    base, large = count(BertModel, "bert-base"), count(BertModel, "bert-large")
    assert abs(base - 110e6) / 110e6 < 0.01, base
    assert abs(large - 335e6) / 335e6 < 0.01, large
    # The pretraining heads add the MLM transform, output bias and NSP layer, not another vocab matrix (tied).
    extra = count(BertForPreTraining, "bert-base") - base
    assert extra == 768 * 768 + 768 + 2 * 768 + 30522 + 768 * 2 + 2


def test_presets_have_the_published_shapes():
    base = BertConfig.from_preset("bert-base")
    assert (base.num_hidden_layers, base.hidden_size, base.num_attention_heads) == (12, 768, 12)
    large = BertConfig.from_preset("bert-large")
    assert (large.num_hidden_layers, large.hidden_size, large.num_attention_heads) == (24, 1024, 16)
    mini, tiny = BertConfig.from_preset("mini"), BertConfig.from_preset("tiny")
    assert (mini.num_hidden_layers, mini.hidden_size, mini.num_attention_heads) == (4, 256, 4)
    assert (tiny.num_hidden_layers, tiny.hidden_size, tiny.num_attention_heads) == (2, 128, 2)
    assert BertConfig.from_preset("mini", vocab_size=5000).vocab_size == 5000


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(hidden_size=100, num_attention_heads=3), "divisible"),
        (dict(hidden_act="tanh"), "hidden_act"),
        (dict(vocab_size=0), "vocab_size"),
    ],
)
def test_bad_configs_are_refused_with_a_reason(kwargs, message):
    with pytest.raises(ValueError, match=message):
        BertConfig(**kwargs)


def test_unknown_preset_lists_the_known_ones():
    with pytest.raises(ValueError, match="mini"):
        BertConfig.from_preset("bert-huge")


def test_hf_dict_round_trip_and_transformers_reads_it():
    import transformers

    cfg = BertConfig.from_preset("tiny", vocab_size=321, num_labels=3)
    d = cfg.to_hf_dict("BertForSequenceClassification")
    assert BertConfig.from_hf_dict(d) == cfg
    hf = transformers.BertConfig(**d)
    assert (hf.hidden_size, hf.num_hidden_layers, hf.vocab_size, hf.num_labels) == (128, 2, 321, 3)


@pytest.mark.parametrize(
    "d, message",
    [
        ({"model_type": "gpt2"}, "not 'bert'"),
        ({"model_type": "bert", "position_embedding_type": "relative_key"}, "absolute"),
        ({"model_type": "bert", "is_decoder": True}, "decoder"),
    ],
)
def test_non_bert_configs_are_refused(d, message):
    with pytest.raises(ValueError, match=message):
        BertConfig.from_hf_dict(d)
