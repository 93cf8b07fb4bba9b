"""Diagrams of the paper's Figures 3 and 4, drawn with matplotlib from the package's own specs.

:func:`draw_anynet` draws the AnyNet skeleton (stem, body of four stages, head) and, for a
registered model, writes each stage's depth ``d_i``, width ``w_i`` and group width ``g_i``
as :func:`regnet_tutorial.design_space.generate_stages` computes them.
:func:`draw_blocks` draws the X block and the Y block (X plus squeeze-and-excitation) side
by side, with the paper's symbols: input width ``w_in``, output width ``w_out``, bottleneck
ratio ``b`` (inner width ``w_out / b``), group width ``g`` and stride ``s``.
"""

from __future__ import annotations

from matplotlib.figure import Figure
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch

from ..models import get_card
from .style import use_tutorial_style

_COLORS = {"stem": "#dbe9f6", "stage": "#fde9c9", "head": "#dff2dc", "conv": "#e8e8f4",
           "se": "#f8dada", "op": "#ffffff"}


def _box(ax, x: float, y: float, w: float, h: float, text: str, color: str, size: float = 10) -> None:
    ax.add_patch(FancyBboxPatch((x - w / 2, y - h / 2), w, h, boxstyle="round,pad=0.02,rounding_size=0.08",
                                facecolor=color, edgecolor="#333333", linewidth=1.0))
    ax.text(x, y, text, ha="center", va="center", fontsize=size)


def _arrow(ax, start: tuple[float, float], end: tuple[float, float], style: str = "-|>") -> None:
    ax.add_patch(FancyArrowPatch(start, end, arrowstyle=style, mutation_scale=12, color="#333333",
                                 linewidth=1.0, shrinkA=0, shrinkB=0))


def _blank(ax, xlim: tuple[float, float], ylim: tuple[float, float]) -> None:
    ax.set_xlim(*xlim)
    ax.set_ylim(*ylim)
    ax.set_aspect("equal")
    ax.axis("off")


def draw_anynet(model: str | None = "regnetx_400mf") -> Figure:
    """The AnyNet skeleton, left to right: input, stem, stages 1-4, head, output.

    With ``model`` (a registered name) each stage box also shows its ``d_i``, ``w_i`` and
    ``g_i`` from the model's :class:`~regnet_tutorial.design_space.StageSpec`.
    """
    use_tutorial_style()
    spec = get_card(model).stages() if model else None
    fig = Figure(figsize=(9.0, 3.4), layout="constrained")
    ax = fig.subplots()
    _blank(ax, (-0.2, 13.4), (-1.45, 2.1))
    ax.text(0.15, 0.0, "image\n224×224\n×3", ha="center", va="center", fontsize=8.5)
    _box(ax, 1.75, 0.0, 1.5, 1.6, "stem\n3×3 conv\nstride 2\n$w_0 = 32$", _COLORS["stem"], 9)
    _arrow(ax, (0.75, 0.0), (1.0, 0.0))
    resolutions = ["56×56", "28×28", "14×14", "7×7"]
    for i in range(4):
        x = 3.6 + 1.95 * i
        lines = [f"stage {i + 1}", f"$d_{i + 1}$ blocks, stride 2"]
        if spec is not None and i < spec.num_stages:
            lines.append(f"d={spec.depths[i]} w={spec.widths[i]}\ng={spec.group_widths[i]}")
        else:
            lines.append(f"$w_{i + 1}$, $b_{i + 1}$, $g_{i + 1}$")
        _box(ax, x, 0.0, 1.75, 1.6, "\n".join(lines), _COLORS["stage"], 8.5)
        _arrow(ax, (x - 1.95 + 0.875 if i else 2.5, 0.0), (x - 0.875, 0.0))
        ax.text(x, -1.05, resolutions[i], ha="center", va="center", fontsize=8.5, color="#555555")
    _box(ax, 11.75, 0.0, 1.5, 1.6, "head\navg pool\nFC → $n$\nclasses", _COLORS["head"], 9)
    _arrow(ax, (3.6 + 1.95 * 3 + 0.875, 0.0), (11.0, 0.0))
    ax.text(1.75, -1.05, "112×112", ha="center", va="center", fontsize=8.5, color="#555555")
    ax.annotate("", xy=(10.8, 1.3), xytext=(2.65, 1.3),
                arrowprops={"arrowstyle": "<->", "color": "#777777", "linewidth": 0.8})
    ax.text(6.7, 1.6, "body: four stages of X or Y blocks", ha="center", va="center", fontsize=9.5)
    title = f"AnyNet skeleton ({get_card(model).display_name})" if model else "AnyNet skeleton"
    ax.set_title(title, fontsize=11)
    return fig


def _block_column(ax, x: float, with_se: bool) -> None:
    top = 7.4
    ax.text(x, top + 0.55, "input, width $w_{in}$", ha="center", va="center", fontsize=9)
    layers = [("1×1 conv, $w_{in} → w_{out}/b$\nBN, ReLU", _COLORS["conv"]),
              ("3×3 group conv, $g$ channels/group\nstride $s$, BN, ReLU", _COLORS["conv"])]
    if with_se:
        layers.append(("squeeze-excite: avg pool,\nFC, ReLU, FC, sigmoid, scale", _COLORS["se"]))
    layers.append(("1×1 conv, $w_{out}/b → w_{out}$\nBN", _COLORS["conv"]))
    ys = [top - 1.25 - 1.35 * k for k in range(len(layers))]
    _arrow(ax, (x, top + 0.3), (x, ys[0] + 0.5))
    for k, (text, color) in enumerate(layers):
        _box(ax, x, ys[k], 3.7, 1.0, text, color, 8.5)
        if k:
            _arrow(ax, (x, ys[k - 1] - 0.5), (x, ys[k] + 0.5))
    plus_y = ys[-1] - 1.15
    ax.add_patch(FancyBboxPatch((x - 0.22, plus_y - 0.22), 0.44, 0.44, boxstyle="circle,pad=0",
                                facecolor="white", edgecolor="#333333"))
    ax.text(x, plus_y, "+", ha="center", va="center", fontsize=11)
    _arrow(ax, (x, ys[-1] - 0.5), (x, plus_y + 0.22))
    side = x + 2.75  # the shortcut
    ax.plot([x, side, side], [top + 0.3, top + 0.3, plus_y + 0.9], color="#333333", linewidth=1.0)
    _box(ax, side, plus_y + 1.95, 1.05, 1.7, "1×1 conv\nstride $s$\nBN\n(if shape\nchanges)", _COLORS["op"], 7.5)
    ax.plot([side, side], [top + 0.3, plus_y + 2.8], color="#333333", linewidth=1.0)
    _arrow(ax, (side, plus_y + 1.1), (side, plus_y))
    _arrow(ax, (side, plus_y), (x + 0.22, plus_y))
    ax.text(x, plus_y - 0.75, "ReLU → output, width $w_{out}$", ha="center", va="center", fontsize=9)
    _arrow(ax, (x, plus_y - 0.22), (x, plus_y - 0.5))


def draw_blocks() -> Figure:
    """The X block (left) and the Y block (right): residual bottleneck blocks with group
    convolution; Y adds squeeze-and-excitation after the 3×3 convolution (paper, Figure 4)."""
    use_tutorial_style()
    fig = Figure(figsize=(9.0, 5.6), layout="constrained")
    axes = fig.subplots(1, 2)
    for ax, with_se, title in zip(axes, (False, True), ("X block", "Y block = X block + SE")):
        _blank(ax, (-2.1, 3.5), (-0.4, 8.3))
        _block_column(ax, 0.0, with_se)
        ax.set_title(title, fontsize=11)
    return fig
