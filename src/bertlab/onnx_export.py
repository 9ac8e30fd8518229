"""The course model as ONNX, for the live demos of the website (onnxruntime-web runs it in the reader's browser).

    python -m bertlab.onnx_export --out course-model.onnx

Re-run it whenever the course model changes; the book build (book/_ext/course_demos.py) does so by itself,
keyed on a hash of the checkpoint, and puts the file into the site's ``_static/course-demos/``.

The exported graph takes one sentence, ``input_ids`` of shape (1, T) (segment A, no padding: what the demos
feed it), and returns two outputs:

* ``logits``: (1, T, V), the masked-LM scores of every position, the same numbers as
  :class:`~bertlab.BertForMaskedLM` (``tests/test_onnx_export.py`` checks them within 1e-4);
* ``attentions``: (L, N, T, T), the attention probabilities of every layer and head,
  row ``i`` of a map being what query token ``i`` takes from each key token.

bertlab's attention runs in PyTorch's fused kernel, which does not return its weights, so the export
computes each layer's attention step by step, ``softmax(q k^T / sqrt(d)) v``, with the layer's own
weights. The course model is stored in fp16, so every weight is stored in fp16 in the ONNX file too, with a
Cast to fp32 in front of it: the file is half the size of an fp32 one (about 4 MB instead of 7.5 MB) and the
numbers are the same, as every fp16 value is exactly an fp32 value. (A weight that fp16 cannot hold
exactly stays fp32.) onnxruntime folds the casts away when it loads the model, and computes in fp32.
"""

from __future__ import annotations

import argparse
import hashlib
import math
import os
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import torch
from torch import nn

from .checkpoint import CONFIG_NAME, SAFETENSORS_NAME
from .heads import BertForMaskedLM
from .shipped import course_model_dir

if TYPE_CHECKING:
    import onnx

INPUT_NAMES = ["input_ids"]
OUTPUT_NAMES = ["logits", "attentions"]
OPSET = 17


class MaskedLMWithAttentions(nn.Module):
    """A :class:`~bertlab.BertForMaskedLM` run layer by layer, returning its logits and every attention map."""

    def __init__(self, mlm: BertForMaskedLM):
        super().__init__()
        self.mlm = mlm.eval()

    def forward(self, input_ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(1, T) token ids -> logits (1, T, V) and attention probabilities (layers, heads, T, T)."""
        bert = self.mlm.bert
        x = bert.embeddings(input_ids)  # (1, T, H)
        maps = []
        for layer in bert.encoder.layer:
            attn = layer.attention.self
            B, T, H = x.shape

            def heads(t: torch.Tensor) -> torch.Tensor:  # (B, T, H) -> (B, heads, T, d)
                return t.view(B, T, attn.num_heads, attn.head_dim).transpose(1, 2)  # noqa: B023

            q, k, v = heads(attn.query(x)), heads(attn.key(x)), heads(attn.value(x))
            weights = torch.softmax(q @ k.transpose(-2, -1) / math.sqrt(attn.head_dim), dim=-1)
            y = (weights @ v).transpose(1, 2).reshape(B, T, H)
            x = layer.attention.output(y, x)
            x = layer.output(layer.intermediate(x), x)
            maps.append(weights[0])
        logits = self.mlm.cls.predictions(x, bert.embeddings.word_embeddings.weight)
        return logits, torch.stack(maps)


def load_masked_lm(model_dir: str | os.PathLike | None = None) -> BertForMaskedLM:
    """The masked-LM part of a checkpoint (default: the course model), in eval mode."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*not used from")  # the pooler and the SOP head
        model = BertForMaskedLM.from_pretrained(Path(model_dir) if model_dir else course_model_dir())
    return model.eval()


def checkpoint_hash(model_dir: str | os.PathLike | None = None) -> str:
    """A short hash of a checkpoint's config and weights, and of this exporter: when it changes, export again."""
    directory = Path(model_dir) if model_dir else course_model_dir()
    h = hashlib.sha256()
    for path in (directory / CONFIG_NAME, directory / SAFETENSORS_NAME, Path(__file__)):
        h.update(path.read_bytes())
    return h.hexdigest()[:16]


def export_onnx(out: str | os.PathLike, model_dir: str | os.PathLike | None = None) -> Path:
    """Write the masked-LM model of ``model_dir`` (default: the course model) to the ONNX file ``out``."""
    try:
        import onnx
    except ImportError:
        raise RuntimeError("the ONNX export needs the package onnx: pip install 'bertlab[onnx]'") from None
    wrapper = MaskedLMWithAttentions(load_masked_lm(model_dir))
    example = torch.tensor([[2, 10, 11, 4, 3]])  # [CLS] two tokens [MASK] [SEP]; T is a dynamic axis
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript exporter announces its deprecation
        torch.onnx.export(
            wrapper, (example,), str(out), dynamo=False, opset_version=OPSET,
            input_names=INPUT_NAMES, output_names=OUTPUT_NAMES,
            dynamic_axes={"input_ids": {1: "tokens"}, "logits": {1: "tokens"},
                          "attentions": {2: "tokens", 3: "tokens"}},
        )
    model = onnx.load(str(out))
    store_weights_in_fp16(model)
    onnx.save(model, str(out))
    return out


def store_weights_in_fp16(model: onnx.ModelProto) -> int:
    """Store each fp32 initializer that fp16 holds exactly as fp16, cast back to fp32 in the graph; return how many."""
    import numpy as np
    from onnx import TensorProto, helper, numpy_helper

    graph, casts, kept = model.graph, [], []
    for init in graph.initializer:
        value = numpy_helper.to_array(init)
        if init.data_type != TensorProto.FLOAT or value.size < 16 or not np.array_equal(
                value.astype(np.float16).astype(np.float32), value):
            kept.append(init)
            continue
        half = numpy_helper.from_array(value.astype(np.float16), name=init.name + "_fp16")
        kept.append(half)
        casts.append(helper.make_node("Cast", [half.name], [init.name], to=TensorProto.FLOAT,
                                      name=init.name + "_to_fp32"))
    del graph.initializer[:]
    graph.initializer.extend(kept)
    nodes = casts + list(graph.node)
    del graph.node[:]
    graph.node.extend(nodes)
    return len(casts)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bertlab.onnx_export", description=export_onnx.__doc__)
    parser.add_argument("--out", default="course-model.onnx", help="the ONNX file to write (default: %(default)s)")
    parser.add_argument("--model", default=None, help="a checkpoint directory (default: the course model)")
    args = parser.parse_args(argv)
    path = export_onnx(args.out, args.model)
    print(f"{path}: {path.stat().st_size / 1e6:.2f} MB")


if __name__ == "__main__":
    main()
