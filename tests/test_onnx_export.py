"""The course model exported to ONNX (bertlab.onnx_export), as the website's live demos run it, checked in Python.

The logits must be bertlab's, and the attention maps those of transformers' own BERT (eager attention, which
returns its weights) on the same checkpoint, both within 1e-4, for sentences of several lengths (the number of
tokens is a dynamic axis of the graph).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from bertlab.onnx_export import OUTPUT_NAMES, load_masked_lm, main
from bertlab.shipped import course_model_dir
from bertlab.tokenizer import load_tokenizer

ort = pytest.importorskip("onnxruntime")

SENTENCES = [
    "台湾大[MASK]",  # National Taiwan Univ[ersity]
    "春[MASK]即将来临，当前正值火灾多发期。",  # The Spring Fes[tival] is coming, and fires are most frequent ...
    "（新华社记者兰红光[MASK]）",  # (Xinhua News Agency reporter Lan Hongguang, [photo])
    "1998年BERT模型",  # "the BERT model of 1998": Latin and digits become ## pieces
    "好",  # "good": one token between [CLS] and [SEP]
]


@pytest.fixture(scope="module")
def exported(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("onnx") / "course-model.onnx"
    main(["--out", str(out)])  # the documented command: python -m bertlab.onnx_export --out FILE
    return out


@pytest.fixture(scope="module")
def session(exported):
    return ort.InferenceSession(str(exported), providers=["CPUExecutionProvider"])


def test_the_file_is_small_and_has_the_documented_outputs(exported, session):
    assert exported.stat().st_size < 6_000_000  # fp16 weights: about 4 MB for the course model
    assert [o.name for o in session.get_outputs()] == OUTPUT_NAMES
    assert [i.name for i in session.get_inputs()] == ["input_ids"]


@pytest.mark.parametrize("text", SENTENCES)
def test_onnx_logits_match_bertlab(session, text):
    tokenizer = load_tokenizer(course_model_dir())
    ids = tokenizer(text, return_tensors="pt")["input_ids"]
    logits, attentions = session.run(None, {"input_ids": ids.numpy()})
    with torch.no_grad():
        expected = load_masked_lm()(ids).logits.numpy()
    assert logits.shape == expected.shape == (1, ids.shape[1], len(tokenizer))
    np.testing.assert_allclose(logits, expected, atol=1e-4, rtol=0)


@pytest.mark.parametrize("text", SENTENCES[1:3])
def test_onnx_attentions_match_transformers(session, text):
    from transformers import BertForMaskedLM

    tokenizer = load_tokenizer(course_model_dir())
    ids = tokenizer(text, return_tensors="pt")["input_ids"]
    _, attentions = session.run(None, {"input_ids": ids.numpy()})
    reference = BertForMaskedLM.from_pretrained(str(course_model_dir()), attn_implementation="eager",
                                                dtype=torch.float32).eval()
    with torch.no_grad():
        expected = torch.stack(reference(ids, output_attentions=True).attentions)[:, 0].numpy()  # (L, N, T, T)
    config = reference.config
    T = ids.shape[1]
    assert attentions.shape == (config.num_hidden_layers, config.num_attention_heads, T, T)
    np.testing.assert_allclose(attentions, expected, atol=1e-4, rtol=0)
    np.testing.assert_allclose(attentions.sum(-1), 1.0, atol=1e-5)
