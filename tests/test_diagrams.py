"""The structure diagrams (bertlab.diagrams) draw what they are given."""

from __future__ import annotations

import math

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402

from bertlab import diagrams  # noqa: E402


def texts(fig) -> list[str]:
    return [t.get_text() for ax in fig.axes for t in ax.texts] + [ax.get_title() for ax in fig.axes]


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def test_the_encoder_stack_draws_the_first_and_last_layer_and_counts_the_rest():
    fig = diagrams.encoder_stack(["[CLS]", "台", "湾", "[SEP]"], num_layers=6, hidden_size=384)
    shown = texts(fig)
    assert "layer 1" in shown and "layer 6" in shown and "layer 2" not in shown
    assert any("4 more layers" in t for t in shown)
    assert "4 vectors of 384 numbers" in shown and "4 tokens in" in shown
    one = texts(diagrams.encoder_stack(["[CLS]", "[SEP]"], num_layers=1, hidden_size=8))
    assert one.count("layer 1") == 1 and not any("more layers" in t for t in one)


def test_the_mlm_head_scores_the_target_even_when_it_is_not_among_the_candidates():
    fig = diagrams.mlm_head(["[CLS]", "台", "[MASK]", "[SEP]"], 2, [("湾", 0.5), ("北", 0.2)], "学",
                            vocab_size=100, hidden_size=16)
    bars = fig.axes[1]
    assert [t.get_text() for t in bars.get_yticklabels()] == ["湾", "北", "学"]
    assert bars.get_title() == "cross-entropy = −log p(学)"  # p unknown: no number is made up
    fig = diagrams.mlm_head(["[MASK]"], 0, [("湾", 0.5), ("学", 0.25)], "学", vocab_size=100, hidden_size=16)
    assert fig.axes[1].get_title().endswith(f"= {-math.log(0.25):.2f}")


def test_masking_comparison_shows_the_hidden_characters_of_the_targets_only():
    chars, words = list("为我们祖国"), [0, 1, 1, 2, 2]
    fig = diagrams.masking_comparison(chars, words, [False, False, True, False, False],
                                      [False, False, False, True, True])
    hidden = [t.get_text() for t in fig.axes[0].texts if t.get_fontsize() == 9]
    assert hidden == ["们", "祖", "国"]
    with pytest.raises(ValueError):
        diagrams.masking_comparison(chars, words, [True], [True])


def test_the_pair_head_names_both_segments_and_both_questions():
    tokens, segments = ["[CLS]", "春", "[SEP]", "花", "[SEP]"], [0, 0, 0, 1, 1]
    shown = texts(diagrams.pair_head(tokens, segments, [("NSP", "next?"), ("SOP", "order?")]))
    assert {"segment A", "segment B", "NSP: next?", "SOP: order?"} <= set(shown)
