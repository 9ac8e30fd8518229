"""bertlab.plotting: Chinese text really renders (no missing glyphs, no blank boxes), and the shared helpers."""

import warnings

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from bertlab import plotting  # noqa: E402


def render(text: str) -> tuple[np.ndarray, list[str]]:
    """Draw ``text`` alone on a small white figure; return the grey image and the warnings drawing it raised."""
    fig = plt.figure(figsize=(3, 1), dpi=100)
    fig.text(0.5, 0.5, text, ha="center", va="center", fontsize=28)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fig.canvas.draw()
    image = np.asarray(fig.canvas.buffer_rgba())[..., :3].mean(axis=-1)
    plt.close(fig)
    return image, [str(w.message) for w in caught]


def ink(image: np.ndarray) -> int:
    return int((image < 128).sum())  # dark pixels on the white background


@pytest.fixture
def cjk():
    with matplotlib.rc_context():
        plotting.use_cjk_font()
        yield


def test_chinese_renders_with_the_cjk_font(cjk):
    blank, _ = render("")
    image, caught = render("自监督学习")
    assert not [m for m in caught if "missing from font" in m], caught
    assert ink(blank) == 0
    assert ink(image) > 400, "the Chinese characters left (almost) no ink: blank glyphs?"


def test_different_characters_give_different_glyphs(cjk):
    # A font without these characters draws the same empty box for each of them; real glyphs differ.
    a, _ = render("自")
    b, _ = render("学")
    assert np.abs(a - b).mean() > 2.0


def test_the_checks_above_catch_a_font_without_chinese():
    # Control: with only DejaVu Sans the same checks must fail, or they would prove nothing.
    with matplotlib.rc_context({"font.family": "sans-serif", "font.sans-serif": ["DejaVu Sans"]}):
        a, caught = render("自")
        b, _ = render("学")
    assert any("missing from font" in m for m in caught), caught
    assert np.abs(a - b).mean() < 0.5  # both are the same "missing glyph" box


def test_use_cjk_font_is_idempotent_and_sets_the_minus_sign(cjk):
    assert plotting.use_cjk_font() == plotting.CJK_FAMILY == "Noto Sans CJK SC"
    families = matplotlib.rcParams["font.sans-serif"]
    assert families[0] == plotting.CJK_FAMILY and families.count(plotting.CJK_FAMILY) == 1
    assert matplotlib.rcParams["axes.unicode_minus"] is False
    assert plotting.cjk_font_path().suffix == ".ttc"
    _, caught = render("−1 与 -1")  # U+2212 comes from the DejaVu fallback, ASCII minus from the CJK font
    assert not [m for m in caught if "missing from font" in m], caught


def test_course_style_keeps_the_cjk_font_and_is_light():
    with matplotlib.rc_context():
        plotting.use_course_style()
        assert matplotlib.rcParams["font.sans-serif"][0] == plotting.CJK_FAMILY
        assert matplotlib.colors.to_hex(matplotlib.rcParams["axes.facecolor"]) == "#ffffff"
        assert matplotlib.rcParams["axes.spines.top"] is False


def test_draw_tokens_places_one_box_per_token(cjk):
    fig, ax = plt.subplots()
    centres = plotting.draw_tokens(ax, ["[CLS]", "台", "湾"], y=2.0, colors=["#55A868", "#4C72B0", "#DD8452"])
    assert centres == [(0.0, 2.0), (1.0, 2.0), (2.0, 2.0)]
    assert len(ax.patches) == 3 and [t.get_text() for t in ax.texts] == ["[CLS]", "台", "湾"]
    with pytest.raises(ValueError, match="one colour per token"):
        plotting.draw_tokens(ax, ["a", "b"], colors=["red"])
    plt.close(fig)


@pytest.mark.parametrize(
    "n, text",
    [(94e6, "94M"), (340e6, "340M"), (1542e6, "1.54B"), (8.3e9, "8.3B"), (11e9, "11B"), (1.571e12, "1.57T")],
)
def test_human_readable_counts(n, text):
    assert plotting.human_readable(n) == text


def test_token_colors_mark_special_tokens_and_the_two_segments():
    from bertlab.plotting import COLORS, token_colors

    assert token_colors(["[CLS]", "春", "[SEP]", "花", "[SEP]"], [0, 0, 0, 1, 1]) == [
        COLORS["special"], COLORS["input"], COLORS["special"], COLORS["target"], COLORS["special"]]
    assert token_colors(["台", "[MASK]"]) == [COLORS["input"], COLORS["special"]]
    with pytest.raises(ValueError):
        token_colors(["台", "湾"], [0])
