"""Plots for the course: a font that has Chinese characters, one light style, and shared drawings.

Matplotlib's default font (DejaVu Sans) has no Chinese glyphs: a label such as 自监督学习 comes out
as empty boxes and a "Glyph ... missing from font(s)" warning. :func:`use_cjk_font` registers
Noto Sans CJK, which the ``noto-cjk-sans-otc`` package ships as an OpenType collection (.ttc), and
puts its Simplified Chinese face first. Importing this module does that, so ``import
bertlab.plotting`` is all a notebook needs before it plots Chinese text; the course's pages also
call :func:`use_course_style` for one look across all of their figures.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib as mpl
from matplotlib import font_manager
from matplotlib.axes import Axes
from matplotlib.patches import FancyBboxPatch

# The Simplified Chinese face of the collection; the .ttc also holds JP, KR, TC and HK faces.
CJK_FAMILY = "Noto Sans CJK SC"

# One colour per meaning, used the same way on every page of the course.
COLORS = {
    "input": "#4C72B0",  # what the model sees
    "target": "#DD8452",  # what it must predict (the label made from the data itself)
    "mask": "#8C8C8C",  # a hidden ([MASK]) position
    "special": "#55A868",  # [CLS], [SEP] and other special tokens
    "model": "#8172B3",
    "human": "#C44E52",
    "neutral": "#DADADA",
}
# Colour cycle of the lines and bars (colour-blind safe, readable on white).
CYCLE = ["#4C72B0", "#DD8452", "#55A868", "#C44E52", "#8172B3", "#937860", "#DA8BC3", "#8C8C8C"]

_registered: str | None = None


def cjk_font_path() -> Path:
    """The Noto Sans CJK .ttc file inside the ``noto-cjk-sans-otc`` package."""
    try:
        import noto_cjk_sans_otc
    except ImportError:
        raise ValueError(
            "Plotting Chinese text needs the font package noto-cjk-sans-otc: pip install noto-cjk-sans-otc "
            "(or pip install 'bertlab[course]')."
        ) from None
    path = Path(str(noto_cjk_sans_otc.FONT_PATH))
    if not path.is_file():
        raise ValueError(f"noto-cjk-sans-otc is installed but its font file {path} is missing; reinstall the package.")
    return path


def use_cjk_font() -> str:
    """Register Noto Sans CJK with matplotlib and make it the first sans-serif font; returns its family name.

    DejaVu Sans stays in the list behind it, as a fallback for any symbol the CJK font lacks.
    ``axes.unicode_minus`` is switched off because the CJK font has no U+2212 minus sign. Safe to call
    again: the font file is only added once.
    """
    global _registered
    if _registered is None:
        font_manager.fontManager.addfont(str(cjk_font_path()))
        names = {f.name for f in font_manager.fontManager.ttflist}
        if CJK_FAMILY not in names:
            raise ValueError(f"{cjk_font_path()} did not provide the font family {CJK_FAMILY!r}; reinstall it.")
        _registered = CJK_FAMILY
    rest = [f for f in mpl.rcParams["font.sans-serif"] if f != CJK_FAMILY]
    mpl.rcParams["font.family"] = "sans-serif"
    mpl.rcParams["font.sans-serif"] = [CJK_FAMILY, *rest]
    mpl.rcParams["axes.unicode_minus"] = False
    return _registered


def use_course_style() -> None:
    """The course's light style: white background, light grid, no top/right spines, readable sizes."""
    use_cjk_font()
    mpl.rcParams.update({
        "figure.figsize": (7.0, 3.8),
        "figure.dpi": 110,
        "savefig.dpi": 110,
        "figure.facecolor": "white",
        "axes.facecolor": "white",
        "savefig.facecolor": "white",
        "axes.edgecolor": "#444444",
        "axes.labelcolor": "#222222",
        "axes.titlesize": 12.5,
        "axes.titleweight": "normal",  # the .ttc has the Regular weight only: no bold
        "axes.labelsize": 10.5,
        "axes.grid": True,
        "grid.color": "#E5E5E5",
        "grid.linewidth": 0.8,
        "axes.axisbelow": True,
        "axes.spines.top": False,
        "axes.spines.right": False,
        "axes.prop_cycle": mpl.cycler(color=CYCLE),
        "xtick.color": "#333333",
        "ytick.color": "#333333",
        "legend.frameon": False,
        "lines.linewidth": 2.0,
        "lines.markersize": 6,
    })


def draw_tokens(
    ax: Axes,
    tokens: Sequence[str],
    *,
    y: float = 0.0,
    colors: Sequence[str] | None = None,
    text_colors: Sequence[str] | None = None,
    width: float = 0.9,
    height: float = 0.8,
    fontsize: float = 13,
) -> list[tuple[float, float]]:
    """Draw ``tokens`` as a row of rounded boxes centred on x = 0, 1, 2, ... at height ``y``.

    Returns the (x, y) centre of each box, so that arrows and labels can be placed on them.
    Axis limits are not touched: set them (or call ``ax.autoscale_view()``) once everything is drawn.
    """
    n = len(tokens)
    if colors is not None and len(colors) != n:
        raise ValueError(f"colors has {len(colors)} entries but there are {n} tokens; give one colour per token.")
    if text_colors is not None and len(text_colors) != n:
        raise ValueError(f"text_colors has {len(text_colors)} entries but there are {n} tokens.")
    centres = []
    for i, token in enumerate(tokens):
        face = colors[i] if colors is not None else COLORS["neutral"]
        ink = text_colors[i] if text_colors is not None else ("white" if face != COLORS["neutral"] else "#222222")
        box = FancyBboxPatch(
            (i - width / 2, y - height / 2), width, height,
            boxstyle="round,pad=0.02,rounding_size=0.12", facecolor=face, edgecolor="white", linewidth=1.5,
        )
        ax.add_patch(box)
        ax.text(i, y, token, ha="center", va="center", fontsize=fontsize, color=ink)
        centres.append((float(i), float(y)))
    ax.update_datalim([(-width / 2, y - height / 2), (n - 1 + width / 2, y + height / 2)])
    return centres


def token_colors(tokens: Sequence[str], segments: Sequence[int] | None = None) -> list[str]:
    """The course's colour of each token box: special tokens green, the others blue (segment A, the default)
    or orange (segment B)."""
    from .tokenizer import SPECIAL_TOKENS  # imported here: it loads transformers, which plotting alone does not need

    segments = segments if segments is not None else [0] * len(tokens)
    return [COLORS["special"] if t in SPECIAL_TOKENS else (COLORS["input"] if s == 0 else COLORS["target"])
            for t, s in zip(tokens, segments, strict=True)]


def diagram_axes(ax: Axes) -> Axes:
    """Turn an axes into a blank canvas for a diagram: no grid, ticks or frame; equal x and y scales."""
    ax.set_axis_off()
    ax.set_aspect("equal")
    return ax


def human_readable(n: float) -> str:
    """A parameter count as people write it: 94M, 1.5B, 1.6T."""
    for factor, suffix in ((1e12, "T"), (1e9, "B"), (1e6, "M"), (1e3, "K")):
        if abs(n) >= factor:
            value = n / factor
            return f"{value:.0f}{suffix}" if value >= 100 or value == int(value) else f"{value:.3g}{suffix}"
    return f"{n:.0f}"


use_cjk_font()
