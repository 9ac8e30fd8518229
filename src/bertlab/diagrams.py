"""Diagrams of BERT's structure, drawn from real inputs: the encoder stack, the masked-LM head, the
sentence-pair head on [CLS], and whole-word next to character masking.

Each function takes what the chapter has just computed (the tokens, the model's probabilities, the
masks it drew) and returns a matplotlib Figure in the course's colours (:data:`bertlab.plotting.COLORS`):
blue what the model reads, purple the model, grey its vectors and hidden positions, orange what it
must predict. Figures have a white background, so that they read the same on a dark page.
"""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.patches import FancyBboxPatch

from .plotting import COLORS, diagram_axes, draw_tokens, token_colors

GREY_INK = "#555555"


def _box(ax: Axes, x: float, y: float, width: float, height: float, text: str, color: str, *,
         ink: str = "white", fontsize: float = 10, alpha: float = 1.0) -> None:
    """A rounded box centred on (x, y) with a centred label."""
    ax.add_patch(FancyBboxPatch((x - width / 2, y - height / 2), width, height, alpha=alpha,
                                boxstyle="round,pad=0.02,rounding_size=0.12", facecolor=color, edgecolor=color))
    ax.text(x, y, text, ha="center", va="center", fontsize=fontsize, color=ink)


def _arrow(ax: Axes, start: tuple[float, float], end: tuple[float, float], color: str = GREY_INK) -> None:
    ax.annotate("", xy=end, xytext=start, arrowprops=dict(arrowstyle="->", color=color, linewidth=1.2))


def _layer(ax: Axes, bottom: float, n: int, name: str) -> None:
    """One encoder layer over n columns: self-attention (every column to every column) under feed-forward
    (each column alone), both with their residual connection and LayerNorm."""
    left, right = -0.5, n - 0.5
    ax.add_patch(FancyBboxPatch((left, bottom), right - left, 2.0, boxstyle="round,pad=0.02,rounding_size=0.15",
                                facecolor=COLORS["model"], edgecolor=COLORS["model"], alpha=0.12))
    for i in range(n):
        for j in range(n):
            ax.plot([i, j], [bottom + 0.1, bottom + 0.9], color=COLORS["model"], alpha=0.35, linewidth=0.8)
        ax.plot([i, i], [bottom + 1.1, bottom + 1.9], color=COLORS["model"], linewidth=2.2)
    ax.text(right + 0.25, bottom + 0.5, "self-attention + add & norm\n(every token looks at every token)",
            va="center", fontsize=9.5)
    ax.text(right + 0.25, bottom + 1.5, "feed-forward + add & norm\n(each token on its own)", va="center",
            fontsize=9.5)
    ax.text(left - 0.3, bottom + 1.0, name, ha="right", va="center", fontsize=10.5, color=COLORS["model"])


def encoder_stack(tokens: Sequence[str], num_layers: int, hidden_size: int) -> Figure:
    """The encoder: embeddings, then ``num_layers`` layers of self-attention and feed-forward, one output
    vector per input token (the first and last layers drawn, the ones between elided)."""
    n = len(tokens)
    fig, ax = plt.subplots(figsize=(n * 0.85 + 6.5, 8.2))
    diagram_axes(ax)
    draw_tokens(ax, list(tokens), y=0, colors=token_colors(tokens), fontsize=10)
    _box(ax, (n - 1) / 2, 1.2, n - 0.1, 0.6, "embeddings: token + segment + position", COLORS["neutral"],
         ink="#222222", fontsize=9.5)
    for i in range(n):
        _arrow(ax, (i, 0.42), (i, 0.88))
    shown = [1, num_layers] if num_layers > 1 else [1]
    bottom = 2.0
    for k, layer in enumerate(shown):
        _layer(ax, bottom, n, f"layer {layer}")
        bottom += 2.0
        if k == 0 and num_layers > 2:
            ax.text((n - 1) / 2, bottom + 0.35, f"… {num_layers - 2} more layers of the same shape …",
                    ha="center", va="center", fontsize=10, color=GREY_INK)
            bottom += 0.7
    outputs = [f"$h_{{{i}}}$" for i in range(n)]
    draw_tokens(ax, outputs, y=bottom + 0.6, colors=[COLORS["neutral"]] * n, fontsize=10)
    ax.text(n - 0.2, bottom + 0.6, f"{n} vectors of {hidden_size} numbers", va="center", fontsize=10)
    ax.text(n - 0.2, 0, f"{n} tokens in", va="center", fontsize=10)
    ax.set_xlim(-2.2, n + 4.6)
    ax.set_ylim(-0.6, bottom + 1.2)
    ax.set_title(f"The encoder: {num_layers} layers, each keeps the sequence's length", fontsize=12)
    return fig


def mlm_head(tokens: Sequence[str], position: int, candidates: Sequence[tuple[str, float]], target: str,
             vocab_size: int, hidden_size: int) -> Figure:
    """The masked-LM head at one position: the encoder's vector h -> linear, GELU, LayerNorm -> scores
    against every token embedding -> softmax over the vocabulary, scored by cross-entropy against the
    one-hot vector of the original token. ``candidates``: (token, probability), the model's best first."""
    import math

    fig, (ax, bars) = plt.subplots(1, 2, figsize=(12, 4.6), gridspec_kw={"width_ratios": [1.35, 1]})
    diagram_axes(ax)
    n = len(tokens)
    draw_tokens(ax, list(tokens), y=0, colors=[COLORS["mask"] if i == position else c
                                               for i, c in enumerate(token_colors(tokens))], fontsize=10)
    _box(ax, (n - 1) / 2, 1.2, n - 0.1, 0.7, "BERT encoder", COLORS["model"])
    draw_tokens(ax, [""] * n, y=2.3, height=0.45,
                colors=[COLORS["mask"] if i == position else COLORS["neutral"] for i in range(n)])
    ax.text(-0.6, 2.3, f"h: {hidden_size} numbers\nper position", ha="right", va="center", fontsize=9.5)
    steps = [(3.45, f"linear {hidden_size}→{hidden_size}, GELU, LayerNorm"),
             (4.55, f"× token embeddings $E^T$ (tied) + bias: {vocab_size:,} scores"),
             (5.65, "softmax: a probability for every token")]
    _arrow(ax, (position, 2.55), (position, 3.15))
    for k, (y, text) in enumerate(steps):
        _box(ax, position, y, 5.6, 0.6, text, COLORS["model"] if k < 2 else COLORS["target"], fontsize=9)
        if k:
            _arrow(ax, (position, y - 0.8), (position, y - 0.32))
    ax.set_xlim(min(-2.4, position - 3.0), max(n - 0.4, position + 3.0))
    ax.set_ylim(-0.6, 6.2)
    ax.set_title("The masked-LM head, at the [MASK] position", fontsize=11.5)

    names = [token for token, _ in candidates]
    if target not in names:
        names.append(target)
    probs = dict(candidates)
    y = list(range(len(names)))[::-1]
    bars.barh(y, [probs.get(t, 0.0) for t in names], color=COLORS["model"], height=0.38, label="model: p(token)")
    bars.barh([v - 0.38 for v in y], [1.0 if t == target else 0.0 for t in names], color=COLORS["target"],
              height=0.38, label=f"target: one-hot of {target}")
    bars.set_yticks([v - 0.19 for v in y], names, fontsize=11)
    bars.set_xlim(0, 1.05)
    bars.set_xlabel("probability")
    bars.legend(loc="upper left", bbox_to_anchor=(0, -0.16), ncol=2, fontsize=9)
    p = probs.get(target)
    bars.set_title(f"cross-entropy = −log p({target})" + (f" = {-math.log(p):.2f}" if p else ""), fontsize=11.5)
    fig.tight_layout()
    return fig


def pair_head(tokens: Sequence[str], segments: Sequence[int], questions: Sequence[tuple[str, str]]) -> Figure:
    """The sentence-pair head: [CLS] A [SEP] B [SEP] through the encoder; the [CLS] vector through the pooler
    (linear + tanh) and one linear layer to two classes. ``questions``: (task, its two classes)."""
    n = len(tokens)
    fig, ax = plt.subplots(figsize=(n * 0.8 + 5.5, 5.2))
    diagram_axes(ax)
    draw_tokens(ax, list(tokens), y=0, colors=token_colors(tokens, segments), fontsize=10)
    for segment, name in ((0, "A"), (1, "B")):
        at = [i for i, s in enumerate(segments) if s == segment and tokens[i] != "[CLS]"]
        ax.text(sum(at) / len(at), -0.75, f"segment {name}", ha="center", fontsize=9.5, color=GREY_INK)
    _box(ax, (n - 1) / 2, 1.2, n - 0.1, 0.7, "BERT encoder", COLORS["model"])
    draw_tokens(ax, [""] * n, y=2.3, height=0.45, colors=[COLORS["special"]] + [COLORS["neutral"]] * (n - 1))
    ax.text(-0.55, 2.3, "$h_{[CLS]}$", ha="right", va="center", fontsize=10)
    _arrow(ax, (0, 2.55), (0, 3.05))
    _box(ax, 0, 3.35, 3.2, 0.55, "pooler: linear + tanh", COLORS["model"], fontsize=9.5)
    _arrow(ax, (0, 3.65), (0, 4.1))
    _box(ax, 0, 4.4, 3.2, 0.55, "linear → 2 classes, softmax", COLORS["target"], fontsize=9.5)
    for k, (task, classes) in enumerate(questions):
        ax.text(1.9, 4.62 - 0.45 * k, f"{task}: {classes}", va="center", fontsize=10)
    ax.text(n - 0.5, 2.75, "the other positions' vectors: used by masked LM only", ha="right", va="center",
            fontsize=9, color=GREY_INK)
    ax.set_xlim(-2.2, n + 0.2)
    ax.set_ylim(-1.1, 5.1)
    ax.set_title("The sentence-pair head reads the [CLS] vector alone", fontsize=12)
    return fig


def masking_comparison(chars: Sequence[str], word_ids: Sequence[int], by_char: Sequence[bool],
                       by_word: Sequence[bool]) -> Figure:
    """One sentence masked two ways: ``by_char`` and ``by_word`` say which characters are prediction
    targets. Targets are grey with the hidden character below; a bracket joins the characters of a word."""
    n = len(chars)
    fig, ax = plt.subplots(figsize=(n * 0.5 + 2.5, 3.6))
    diagram_axes(ax)
    for y, name, targets in ((1.9, "character masking", by_char), (0.0, "whole word masking", by_word)):
        colors = [COLORS["mask"] if t else COLORS["input"] for t in targets]
        draw_tokens(ax, ["?" if t else c for c, t in zip(chars, targets, strict=True)], y=y, colors=colors,
                    fontsize=11)
        for i, (c, t) in enumerate(zip(chars, targets, strict=True)):
            if t:
                ax.text(i, y - 0.62, c, ha="center", va="center", fontsize=9, color=COLORS["target"])
        ax.text(-0.7, y, name, ha="right", va="center", fontsize=10)
        start = 0
        for i in range(1, n + 1):  # a bracket over each word of two or more characters
            if i == n or word_ids[i] != word_ids[start]:
                if i - start > 1 and word_ids[start] >= 0:
                    ax.plot([start - 0.35, start - 0.35, i - 0.65, i - 0.65],
                            [y + 0.5, y + 0.6, y + 0.6, y + 0.5], color=GREY_INK, linewidth=1)
                start = i
    ax.set_xlim(-5.0, n)
    ax.set_ylim(-0.95, 2.7)
    ax.set_title("Character vs whole word masking (grey: a target, its hidden character below)", fontsize=11)
    return fig
