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
