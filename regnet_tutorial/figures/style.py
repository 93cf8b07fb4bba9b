"""Figures and tables for the tutorial notebooks, so that notebook cells stay short.

Every figure uses :func:`use_tutorial_style` (a fixed matplotlib style), so a re-run draws
the same picture on any machine. Figures are built with matplotlib's object-oriented API
(``Figure``, not ``pyplot``): a figure in pyplot's global list is shown twice when nbval
re-runs a notebook (ipykernel 7), once in the stored run, so the outputs would differ.
A notebook shows a returned figure by ending the cell with it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import matplotlib as mpl
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from ..design_space import RegNetParams, generate_stages, linear_widths, quantized_widths

STAGE_ORDER = ("stem", "s1", "s2", "s3", "s4", "head")
"""The order in which per-stage breakdowns are drawn (paper, Figure 3, left to right)."""

_STYLE = {
    "figure.dpi": 80,
    "figure.figsize": (9.0, 5.0),
    "font.size": 10,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "legend.frameon": False,
    "savefig.bbox": "tight",
    "svg.hashsalt": "regnet-tutorial",
}


def use_tutorial_style() -> None:
    """Reset matplotlib to its defaults plus the tutorial's fixed settings."""
    mpl.rcdefaults()
    mpl.rcParams.update(_STYLE)


def new_figure(
    nrows: int = 1, ncols: int = 1, figsize: tuple[float, float] = (9.0, 5.0), **subplots: Any,
) -> tuple[Figure, Any]:
    """A figure in the tutorial style, outside pyplot's global list, and its axes
    (``Figure.subplots(nrows, ncols, **subplots)``). A notebook shows it by ending the cell with
    the figure, or with ``IPython.display.display(fig)`` mid-cell."""
    use_tutorial_style()
    fig = Figure(figsize=figsize, layout="tight")
    return fig, fig.subplots(nrows, ncols, **subplots)


def plot_width_function(ax: Axes, params: RegNetParams, title: str = "") -> None:
    """Draw on ``ax`` the continuous widths ``u_j`` (Eq. 2) and the quantized widths ``w_j`` (Eq. 4,
    then the reference code's multiple of 8) of one design-space point, one point per block ``j``,
    with the stage boundaries shaded."""
    u = linear_widths(params)
    w = quantized_widths(params)
    j = list(range(params.depth))
    # u_j equals w0 * wm ** s_j, so the step curve is u_j with s_j snapped to an integer.
    ax.plot(j, u, "-", color="tab:blue", label=r"continuous $u_j = w_0 + w_a j$ (Eq. 2)")
    ax.step(j, w, where="mid", color="tab:orange", label=r"quantized $w_j$ (Eq. 4, multiple of 8)")
    ax.plot(j, w, "o", color="tab:orange", markersize=3)
    start = 0
    for stage, k in enumerate(generate_stages(params).depths):
        if stage % 2:
            ax.axvspan(start - 0.5, start + k - 0.5, color="0.9", zorder=0)
        ax.text(start + k / 2 - 0.5, 0.97, f"s{stage + 1}", ha="center", va="top", fontsize=8,
                transform=ax.get_xaxis_transform())
        start += k
    ax.set_title(title or f"d={params.depth}, w0={params.w0}, wa={params.wa}, wm={params.wm}")
    ax.set_xlabel("block index j")
    ax.set_ylabel("width (channels)")


def plot_width_functions(models: Mapping[str, RegNetParams], ncols: int = 2) -> Figure:
    """A grid with one :func:`plot_width_function` panel per named model."""
    use_tutorial_style()
    n = len(models)
    nrows = (n + ncols - 1) // ncols
    fig = Figure(figsize=(4.8 * ncols, 3.4 * nrows), layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False)
    for ax, (name, params) in zip(axes.flat, models.items()):
        plot_width_function(ax, params, name)
    for ax in list(axes.flat)[n:]:
        ax.set_visible(False)
    axes.flat[0].legend(loc="lower right", fontsize=8)
    return fig


def plot_stage_breakdown(
    breakdowns: Mapping[str, Mapping[str, object]],
    quantities: Sequence[tuple[str, str, float]] = (
        ("flops", "multiply-adds (M)", 1e6), ("params", "parameters (M)", 1e6),
        ("acts", "activations (M)", 1e6),
    ),
) -> Figure:
    """Grouped bars, one group per part of the network (stem, s1..s4, head), one bar per model.

    ``breakdowns`` maps a model name to ``{part: obj}`` where ``obj`` has the attributes named
    in ``quantities`` (``(attribute, axis label, divisor)``), e.g. the output of
    :func:`regnet_tutorial.complexity.stage_complexity`.
    """
    use_tutorial_style()
    # One panel per row, so that the figure keeps readable labels at the width of a page.
    fig = Figure(figsize=(7.5, 2.3 * len(quantities) + 0.4), layout="constrained")
    axes = fig.subplots(len(quantities), 1, sharex=True)
    axes = [axes] if len(quantities) == 1 else list(axes)
    n = len(breakdowns)
    width = 0.8 / max(n, 1)
    for ax, (attr, label, scale) in zip(axes, quantities):
        for i, (name, parts) in enumerate(breakdowns.items()):
            keys = [k for k in STAGE_ORDER if k in parts]
            xs = [STAGE_ORDER.index(k) + (i - (n - 1) / 2) * width for k in keys]
            ax.bar(xs, [getattr(parts[k], attr) / scale for k in keys], width, label=name)
        ax.set_xticks(range(len(STAGE_ORDER)), STAGE_ORDER)
        ax.set_ylabel(label)
    axes[0].legend(fontsize=9, ncols=max(1, min(n, 3)), loc="upper left")
    return fig


class Table:
    """A table of ``rows`` under ``columns``, held as a pandas DataFrame (``.frame``).

    Notebooks and the book show it as an HTML ``<table>`` without the DataFrame's row numbers;
    its plain-text form (what nbval compares, and ``print``) is the DataFrame's ``to_string``.
    """

    def __init__(self, rows: Sequence[Sequence[object]], columns: Sequence[str]) -> None:
        self.frame = pd.DataFrame([[_cell(v) if isinstance(v, (tuple, list)) else v for v in row]
                                   for row in rows], columns=list(columns))

    def _repr_html_(self) -> str:
        return self.frame.to_html(index=False, border=0)

    def __repr__(self) -> str:
        return self.frame.to_string(index=False)


def format_table(rows: Sequence[Sequence[object]], headers: Sequence[str]) -> str:
    """A fixed-width plain-text table (columns left-aligned for text, right-aligned for numbers)."""
    cells = [[str(h) for h in headers]] + [[_cell(v) for v in row] for row in rows]
    numeric = [all(_is_number(row[c]) for row in rows) if rows else False for c in range(len(headers))]
    widths = [max(len(r[c]) for r in cells) for c in range(len(headers))]

    def line(r: list[str]) -> str:
        return "  ".join(
            (v.rjust(w) if num else v.ljust(w)) for v, w, num in zip(r, widths, numeric)
        ).rstrip()

    rule = "  ".join("-" * w for w in widths)
    return "\n".join([line(cells[0]), rule] + [line(r) for r in cells[1:]])


def _cell(value: object) -> str:
    if isinstance(value, (tuple, list)):
        return " ".join(str(v) for v in value)
    return str(value)


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)

