"""Loading real and synthetic checkpoints: every key accounted for, every mismatch named."""

import json
import warnings
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

import bertlab
from bertlab import BertConfig, BertForPreTraining, BertForSequenceClassification, BertModel
from bertlab.checkpoint import bundled_minilm_dir, resolve_checkpoint_dir


@pytest.fixture
def pretraining_dir(tmp_path):
    torch.manual_seed(0)
    model = BertForPreTraining(BertConfig.from_preset("tiny", vocab_size=200))
    return model.save_pretrained(tmp_path / "pre")


def rewrite(directory, edit):
    """Apply edit(state) to a saved checkpoint's weights."""
    state = load_file(directory / "model.safetensors")
    edit(state)
    save_file(state, directory / "model.safetensors")


def test_bare_encoder_checkpoint_loads_into_pretraining_model_with_named_new_heads():
    with pytest.warns(UserWarning, match="newly initialised.*cls\\."):
        model = BertForPreTraining.from_pretrained(bundled_minilm_dir())
    assert model.loading_info["missing"] and all(k.startswith("cls.") for k in model.loading_info["missing"])
    assert model.loading_info["unused"] == []
    reference = BertModel.from_pretrained(bundled_minilm_dir(), strict=True)
    assert torch.equal(model.bert.encoder.layer[3].output.dense.weight, reference.encoder.layer[3].output.dense.weight)
    with pytest.raises(ValueError, match="missing from the checkpoint: cls\\."):
        BertForPreTraining.from_pretrained(bundled_minilm_dir(), strict=True)


def test_pretraining_checkpoint_fine_tunes_into_a_classifier(pretraining_dir):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        clf = BertForSequenceClassification.from_pretrained(pretraining_dir, num_labels=3)
    messages = " ".join(str(w.message) for w in caught)
    assert "classifier.weight" in messages and "cls.predictions.bias" in messages
    assert clf.classifier.out_features == 3
    pre = BertForPreTraining.from_pretrained(pretraining_dir, strict=True)
    assert torch.equal(clf.bert.pooler.dense.weight, pre.bert.pooler.dense.weight)


def test_pretraining_checkpoint_loads_into_bare_encoder(pretraining_dir):
    with pytest.warns(UserWarning, match="not used"):
        enc = BertModel.from_pretrained(pretraining_dir)
    assert all(k.startswith("cls.") for k in enc.loading_info["unused"])


def test_missing_encoder_weight_is_an_error_that_names_it(pretraining_dir):
    rewrite(pretraining_dir, lambda s: s.pop("bert.encoder.layer.1.attention.self.key.weight"))
    with pytest.raises(ValueError, match="encoder.layer.1.attention.self.key.weight"):
        BertForPreTraining.from_pretrained(pretraining_dir)


def test_unknown_weight_is_an_error_that_names_it(pretraining_dir):
    rewrite(pretraining_dir, lambda s: s.update({"bert.encoder.layer.0.adapter.weight": torch.zeros(3)}))
    with pytest.raises(ValueError, match="adapter.weight"):
        BertForPreTraining.from_pretrained(pretraining_dir)


def test_shape_mismatch_is_an_error_that_names_the_shapes(pretraining_dir):
    config = json.loads((pretraining_dir / "config.json").read_text())
    (pretraining_dir / "config.json").write_text(json.dumps({**config, "vocab_size": 201}))
    with pytest.raises(ValueError, match=r"word_embeddings.weight has shape \(200, 128\)"):
        BertForPreTraining.from_pretrained(pretraining_dir)


def test_untied_decoder_is_refused(pretraining_dir):
    rewrite(pretraining_dir, lambda s: s.update({"cls.predictions.decoder.weight": torch.randn(200, 128)}))
    with pytest.raises(ValueError, match="untied"):
        BertForPreTraining.from_pretrained(pretraining_dir)


def test_old_style_checkpoints_load(pretraining_dir, tmp_path):
    """TensorFlow-era names (gamma/beta), a stored position_ids buffer, a tied decoder copy, pytorch_model.bin."""
    state = load_file(pretraining_dir / "model.safetensors")
    old = {k.replace("LayerNorm.weight", "LayerNorm.gamma").replace("LayerNorm.bias", "LayerNorm.beta"): v
           for k, v in state.items()}
    old["bert.embeddings.position_ids"] = torch.arange(512)[None]
    old["cls.predictions.decoder.weight"] = state["bert.embeddings.word_embeddings.weight"].clone()
    target = tmp_path / "old"
    target.mkdir()
    (target / "config.json").write_text((pretraining_dir / "config.json").read_text())
    torch.save(old, target / "pytorch_model.bin")
    model = BertForPreTraining.from_pretrained(target, strict=True)
    assert torch.equal(model.bert.embeddings.LayerNorm.weight, state["bert.embeddings.LayerNorm.weight"])


def test_non_bert_checkpoint_is_refused(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "gpt2", "n_layer": 2}))
    with pytest.raises(ValueError, match="model_type='gpt2'"):
        BertModel.from_pretrained(tmp_path)


def test_directory_without_config_or_weights(tmp_path, pretraining_dir):
    with pytest.raises(ValueError, match="no config.json"):
        BertModel.from_pretrained(tmp_path)
    (pretraining_dir / "model.safetensors").unlink()
    with pytest.raises(ValueError, match="holds no weights"):
        BertModel.from_pretrained(pretraining_dir)


def test_fine_tuning_checks_the_checkpoint_first_and_a_random_start_takes_its_architecture(tmp_path, monkeypatch):
    """finetune refuses a directory that is no checkpoint before it loads any data; with init="random" the model
    has the checkpoint's architecture and none of its weights."""
    import dataclasses

    from bertlab import finetune as finetune_module
    from bertlab.checkpoint import read_config, read_state_dict
    from bertlab.finetune import FinetuneConfig, finetune
    from bertlab.shipped import course_model_dir

    loads = []
    monkeypatch.setitem(finetune_module.TASKS, "sentiment",
                        dataclasses.replace(finetune_module.TASKS["sentiment"], load=lambda: loads.append(1)))
    with pytest.raises(ValueError, match="has no config.json"):
        finetune(FinetuneConfig(task="sentiment", checkpoint=str(tmp_path), output_dir=str(tmp_path / "out")))
    assert not loads, "the data were loaded before the checkpoint was checked"
    monkeypatch.undo()

    result = finetune(FinetuneConfig(task="sentiment", checkpoint=str(course_model_dir()), init="random",
                                     output_dir=str(tmp_path / "run"), max_steps=1, batch_size=4, max_train_examples=8,
                                     max_length=16, eval_every=0, eval_batches=1, test_batches=1, progress=False))
    stored, got = read_config(course_model_dir()), result.model.config
    assert dataclasses.replace(got, num_labels=stored.num_labels) == stored
    pretrained = read_state_dict(course_model_dir())
    matrices = {name: weight for name, weight in result.model.state_dict().items()
                if name.startswith("bert.encoder.") and weight.dim() == 2}
    assert matrices and set(matrices) <= set(pretrained), sorted(set(matrices) - set(pretrained))[:3]
    for name, weight in matrices.items():
        assert weight.shape == pretrained[name].shape, name
        # One AdamW step at the default learning rate moves a weight by about 5e-5: a pretrained start would
        # still be this close to the checkpoint everywhere, a random start is not.
        assert not torch.allclose(weight.float(), pretrained[name].float(), atol=1e-2), name


def test_unknown_name_offline_says_what_to_do_instead(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ValueError, match="bundled_minilm_dir"):
        BertModel.from_pretrained("no-such-user/no-such-bert")


def test_unknown_config_override_is_refused(pretraining_dir):
    with pytest.raises(ValueError, match="not a BertConfig field"):
        bertlab.BertForSequenceClassification.from_pretrained(pretraining_dir, num_classes=3)


@pytest.mark.parametrize("name", ["./no-such-model", "runs/does/not/exist", Path("no-such-model")])
def test_a_mistyped_checkpoint_path_does_not_exist_rather_than_a_hub_download(name):
    """from_pretrained, finetune and fill_mask share resolve_checkpoint_dir: each says so, offline or online."""
    with pytest.raises(ValueError, match="does not exist"):
        resolve_checkpoint_dir(name)
    with pytest.raises(ValueError, match="does not exist"):
        BertModel.from_pretrained(name)
