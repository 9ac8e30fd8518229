"""Device choice and mixed precision; the CUDA checks run only where a GPU is present."""

import pytest
import torch

import bertlab
from bertlab import BertConfig, BertForPreTraining
from bertlab.device import autocast, best_device

cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


def test_best_device_honours_the_override(monkeypatch):
    monkeypatch.setenv("BERTLAB_DEVICE", "cpu")
    assert best_device() == torch.device("cpu")
    monkeypatch.delenv("BERTLAB_DEVICE")
    expected = "cuda" if torch.cuda.is_available() else ("mps" if torch.backends.mps.is_available() else "cpu")
    assert best_device().type == expected


def test_autocast_is_fp32_on_cpu():
    model = bertlab.BertModel(BertConfig.from_preset("tiny", vocab_size=100))
    with autocast("cpu"):
        out = model(torch.randint(5, 100, (2, 8)))
    assert out.last_hidden_state.dtype == torch.float32


def test_cpu_bf16_is_opt_in_and_needs_the_instructions(monkeypatch):
    x = torch.randn(4, 4)
    for has, asked, expected in ((True, True, torch.bfloat16), (False, True, torch.float32),
                                 (True, False, torch.float32)):
        monkeypatch.setattr(bertlab.device, "cpu_has_bf16", lambda has=has: has)
        with autocast("cpu", cpu_bf16=asked):
            assert (x @ x).dtype == expected


@pytest.mark.slow
def test_pretraining_under_cpu_bf16_tracks_fp32(monkeypatch, tmp_path):
    """A short pretraining run under CPU bf16 autocast (emulated where the CPU lacks the instructions: the
    arithmetic is the same) follows the fp32 run's loss curve within noise, from the same weights and data."""
    from bertlab.pretrain import PretrainConfig, pretrain

    curves = {}
    for bf16 in (False, True):
        monkeypatch.setattr(bertlab.device, "cpu_has_bf16", lambda: True)
        config = PretrainConfig(preset="tiny", task="sop", max_documents=40, max_steps=30, batch_size=16,
                                max_length=64, learning_rate=1e-3, eval_every=15, eval_batches=4, log_every=5,
                                cpu_bf16=bf16, output_dir=str(tmp_path / str(bf16)), progress=False, device="cpu")
        history = pretrain(config).history
        curves[bf16] = [h["train_mlm_loss"] for h in history if "train_mlm_loss" in h]
        curves[bf16, "eval"] = [h["eval_mlm_loss"] for h in history if "eval_mlm_loss" in h]
    assert curves[True][0] < 9.0 and curves[True][-1] < curves[True][0] - 1.0  # it learns
    for fp32, bf16 in zip(curves[False] + curves[False, "eval"], curves[True] + curves[True, "eval"], strict=True):
        assert bf16 == pytest.approx(fp32, rel=0.02)


def test_compiled_model_matches_eager():
    torch.manual_seed(0)
    model = BertForPreTraining(BertConfig.from_preset("tiny", vocab_size=100)).eval()
    ids = torch.randint(5, 100, (2, 8))
    compiled = bertlab.device.maybe_compile(model, enabled=True)
    with torch.no_grad():
        a, b = model(ids).prediction_logits, compiled(ids).prediction_logits
    assert torch.allclose(a, b, atol=1e-4)


@pytest.mark.gpu
@cuda
def test_bf16_training_step_on_cuda_tracks_fp32():
    torch.manual_seed(0)
    model = BertForPreTraining(BertConfig.from_preset("mini", vocab_size=1000)).cuda()
    ids = torch.randint(5, 1000, (4, 64), device="cuda")
    labels = torch.where(torch.rand(ids.shape, device="cuda") < 0.15, ids, -100)
    nsp = torch.tensor([0, 1, 0, 1], device="cuda")
    with torch.no_grad():
        ref = model(ids, labels=labels, next_sentence_label=nsp).loss
    with autocast("cuda"):
        out = model(ids, labels=labels, next_sentence_label=nsp)
    assert out.prediction_logits.dtype == torch.bfloat16
    assert abs(out.loss.item() - ref.item()) < 0.05 * ref.item()
    out.loss.backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters())
