"""Diagrams of the paper's Figures 3 and 4, drawn with matplotlib from the package's own specs.

:func:`draw_anynet` draws the AnyNet skeleton (stem, body of four stages, head) and, for a
registered model, writes each stage's depth ``d_i``, width ``w_i`` and group width ``g_i``
as :func:`regnet_tutorial.design_space.generate_stages` computes them.
:func:`draw_blocks` draws the X block and the Y block (X plus squeeze-and-excitation) in one
diagram, with the paper's symbols: input width ``w_in``, output width ``w_out``, bottleneck
ratio ``b`` (inner width ``w_out / b``), group width ``g`` and stride ``s``.
"""

from __future__ import annotations

from matplotlib.figure import Figure
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch

from ..models import get_card
from .style import FIGURE_WIDTH, use_tutorial_style

_COLORS = {"stem": "#dbe9f6", "stage": "#fde9c9", "head": "#dff2dc", "conv": "#e8e8f4",
           "se": "#f8dada", "op": "#ffffff"}


def _box(ax, x: float, y: float, w: float, h: float, text: str, color: str, size: float = 10.5,
         dashed: bool = False) -> None:
    ax.add_patch(FancyBboxPatch((x - w / 2, y - h / 2), w, h, boxstyle="round,pad=0.02,rounding_size=0.08",
                                facecolor=color, edgecolor="#333333", linewidth=1.0,
                                linestyle="--" if dashed else "-"))
    ax.text(x, y, text, ha="center", va="center", fontsize=size)


def _arrow(ax, start: tuple[float, float], end: tuple[float, float], style: str = "-|>") -> None:
    ax.add_patch(FancyArrowPatch(start, end, arrowstyle=style, mutation_scale=12, color="#333333",
                                 linewidth=1.0, shrinkA=0, shrinkB=0))


def _blank(ax, xlim: tuple[float, float], ylim: tuple[float, float]) -> None:
    ax.set_xlim(*xlim)
    ax.set_ylim(*ylim)
    ax.axis("off")


def draw_anynet(model: str | None = "regnetx_400mf") -> Figure:
    """The AnyNet skeleton, top to bottom: input, stem, stages 1-4, head, output, with the
    resolution after each part on the right.

    With ``model`` (a registered name) each stage box also shows its ``d_i``, ``w_i`` and
    ``g_i`` from the model's :class:`~regnet_tutorial.design_space.StageSpec`.
    """
    use_tutorial_style()
    spec = get_card(model).stages() if model else None
    fig = Figure(figsize=(FIGURE_WIDTH, 6.0), layout="constrained")
    ax = fig.subplots()
    _blank(ax, (0.0, 10.0), (0.9, 10.9))
    x, w = 5.2, 6.4
    ax.text(x, 10.5, "image, 224×224×3", ha="center", va="center", fontsize=11)
    # The stem's 32 channels are fixed for every model: they are not the design parameter w0.
    rows = [("stem: 3×3 conv, stride 2\n32 channels, BN, ReLU", _COLORS["stem"], "112×112")]
    for i in range(4):
        if spec is not None and i < spec.num_stages:
            detail = (f"$d_{i + 1}$ = {spec.depths[i]}, $w_{i + 1}$ = {spec.widths[i]}, "
                      f"$g_{i + 1}$ = {spec.group_widths[i]}")
        else:
            detail = f"$d_{i + 1}$ blocks, $w_{i + 1}$, $b_{i + 1}$, $g_{i + 1}$"
        rows.append((f"stage {i + 1}: X or Y blocks, stride 2\n{detail}", _COLORS["stage"],
                     ["56×56", "28×28", "14×14", "7×7"][i]))
    rows.append(("head: average pool, FC\n→ $n$ classes", _COLORS["head"], "1×1"))
    y = 9.1
    _arrow(ax, (x, 10.2), (x, y + 0.55))
    for k, (text, color, resolution) in enumerate(rows):
        _box(ax, x, y, w, 1.1, text, color)
        ax.text(x + w / 2 + 0.25, y, resolution, ha="left", va="center", fontsize=10.5, color="#555555")
        if k + 1 < len(rows):
            _arrow(ax, (x, y - 0.55), (x, y - 1.5 + 0.55))
            y -= 1.5
    # The body: the four stages, bracketed on the left.
    top, bottom = 9.1 - 1.5 + 0.55, 9.1 - 1.5 * 4 - 0.55
    ax.plot([1.75, 1.55, 1.55, 1.75], [top, top, bottom, bottom], color="#777777", linewidth=1.0)
    ax.text(1.3, (top + bottom) / 2, "body", rotation=90, ha="center", va="center", fontsize=11)
    title = f"AnyNet skeleton ({get_card(model).display_name})" if model else "AnyNet skeleton"
    ax.set_title(title)
    return fig


def draw_blocks() -> Figure:
    """The X block and the Y block in one diagram (paper, Figure 4): a residual bottleneck block
    with group convolution; the Y block adds the dashed squeeze-and-excitation step after the
    3×3 convolution. Symbols: input width ``w_in``, output width ``w_out``, bottleneck ratio ``b``,
    group width ``g``, stride ``s``."""
    use_tutorial_style()
    fig = Figure(figsize=(FIGURE_WIDTH, 6.0), layout="constrained")
    ax = fig.subplots()
    _blank(ax, (0.0, 10.0), (0.5, 9.5))
    x, w, side = 3.9, 6.8, 8.6  # main path, box width, shortcut
    top = 9.1
    ax.text(x, top, "input, width $w_{in}$", ha="center", va="center", fontsize=11)
    layers = [("1×1 conv, $w_{in}$ → $w_{out}/b$, BN, ReLU", _COLORS["conv"], False),
              ("3×3 group conv, stride $s$, $g$ channels\nper group, BN, ReLU", _COLORS["conv"], False),
              ("Y block only: squeeze-excite (avg pool,\nFC, ReLU, FC, sigmoid, scale)", _COLORS["se"], True),
              ("1×1 conv, $w_{out}/b$ → $w_{out}$, BN", _COLORS["conv"], False)]
    ys = [7.7 - 1.5 * k for k in range(len(layers))]
    _arrow(ax, (x, top - 0.3), (x, ys[0] + 0.5))
    for k, (text, color, dashed) in enumerate(layers):
        _box(ax, x, ys[k], w, 1.0, text, color, dashed=dashed)
        if k:
            _arrow(ax, (x, ys[k - 1] - 0.5), (x, ys[k] + 0.5))
    plus_y = ys[-1] - 1.3
    ax.add_patch(FancyBboxPatch((x - 0.25, plus_y - 0.25), 0.5, 0.5, boxstyle="circle,pad=0",
                                facecolor="white", edgecolor="#333333"))
    ax.text(x, plus_y, "+", ha="center", va="center", fontsize=12)
    _arrow(ax, (x, ys[-1] - 0.5), (x, plus_y + 0.25))
    # The shortcut leaves the input, runs down the right side and joins at the sum; its
    # projection box sits on the line, which stops at the box's edges.
    box_y, box_h = ys[2], 2.6
    ax.plot([x + 1.5, side, side], [top, top, box_y + box_h / 2], color="#333333", linewidth=1.0)
    _box(ax, side, box_y, 2.1, box_h, "shortcut:\nidentity,\nor 1×1 conv\nstride $s$, BN\nif the shape\nchanges",
         _COLORS["op"], 10)
    ax.plot([side, side], [box_y - box_h / 2, plus_y], color="#333333", linewidth=1.0)
    _arrow(ax, (side, plus_y), (x + 0.25, plus_y))
    _arrow(ax, (x, plus_y - 0.25), (x, plus_y - 0.75))
    ax.text(x, plus_y - 1.0, "ReLU → output, width $w_{out}$", ha="center", va="center", fontsize=11)
    ax.set_title("X block, and Y block = X block + SE (dashed)")
    return fig
