"""Figures and tables for the tutorial notebooks, so that notebook cells stay short.

Every figure uses :func:`use_tutorial_style` (a fixed matplotlib style), so a re-run draws
the same picture on any machine. Figures are built with matplotlib's object-oriented API
(``Figure``, not ``pyplot``): a figure in pyplot's global list is shown twice when nbval
re-runs a notebook (ipykernel 7), once in the stored run, so the outputs would differ.
A notebook shows a returned figure by ending the cell with it.

Figures must be readable on a phone: the book shows an image at its natural width or, when
that is wider, scaled down to the text column (358 CSS px on a 390 px phone). In a notebook,
:func:`use_tutorial_style` makes every figure a PNG drawn at twice its CSS size (sharp on HiDPI
screens) that records the smallest font size drawn in it, so that a test can check the
size of the smallest text on a phone (:func:`phone_text_px`) from the stored output alone.
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from unittest import mock

import matplotlib as mpl
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import RendererAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from ..design_space import RegNetParams, generate_stages, linear_widths, quantized_widths

STAGE_ORDER = ("stem", "s1", "s2", "s3", "s4", "head")
"""The order in which per-stage breakdowns are drawn (paper, Figure 3, left to right)."""

PHONE_COLUMN_PX = 358
"""The width of the book's text column on a 390 px wide phone, in CSS px."""
MIN_TEXT_PX = 8.0
"""The smallest text a figure may show on that phone, in CSS px."""
FIGURE_WIDTH = 5.5
"""The width of a figure, in inches: 11 pt ticks and 10 pt legends stay at 8 CSS px or more on a
phone (:func:`phone_text_px`), and at 100 dpi the figure fits the 780 px desktop column unscaled."""
SMALLEST_FONT_KEY = "Smallest font (pt)"
"""The PNG text chunk in which a notebook figure records the smallest font size drawn in it."""

_STYLE = {
    "figure.dpi": 100,
    "figure.figsize": (FIGURE_WIDTH, 3.6),
    "font.size": 11,
    "axes.titlesize": 11,
    "axes.labelsize": 11,
    "xtick.labelsize": 10,
    "ytick.labelsize": 10,
    "legend.fontsize": 10,
    "legend.title_fontsize": 10,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "legend.frameon": False,
    "savefig.bbox": "tight",
    "svg.hashsalt": "regnet-tutorial",
}


def use_tutorial_style() -> None:
    """Reset matplotlib to its defaults plus the tutorial's fixed settings; in IPython, also
    show every figure as a 2x PNG that records its smallest font (:func:`figure_png`)."""
    mpl.rcdefaults()
    mpl.rcParams.update(_STYLE)
    _show_figures_as_2x_png()


def _show_figures_as_2x_png() -> None:
    try:
        from IPython import get_ipython
    except ImportError:  # matplotlib without IPython: nothing to display
        return
    shell = get_ipython()
    if shell is not None:
        formatters = shell.display_formatter.formatters
        formatters["image/png"].for_type(Figure, figure_png)
        for other in ("image/svg+xml", "application/pdf", "image/jpeg"):  # one image per figure
            formatters[other].pop(Figure, None)


def panels(nrows: int = 1, height: float = 2.6, **subplots: object) -> tuple[Figure, list[Axes]]:
    """A new figure in the tutorial's style, :data:`FIGURE_WIDTH` wide, with ``nrows`` panels
    stacked (each ``height`` inches tall), for the figures a chapter draws itself; ``subplots``
    keywords (``sharex``...) go to :meth:`Figure.subplots`. Returns the figure and its axes."""
    use_tutorial_style()
    fig = Figure(figsize=(FIGURE_WIDTH, height * nrows), layout="constrained")
    axes = fig.subplots(nrows, 1, squeeze=False, **subplots)
    return fig, list(axes[:, 0])


def drawn_font_sizes(fig: Figure, **savefig: object) -> tuple[bytes, list[float]]:
    """Draw ``fig`` as a PNG (``savefig`` keywords passed on) and return the PNG and the font
    size, in points, of every non-blank text the renderer drew (tick labels, legends, mathtext)."""
    sizes: list[float] = []
    draw_text = RendererAgg.draw_text

    def recording(self, gc, x, y, s, prop, angle, ismath=False, mtext=None):
        if str(s).strip():
            sizes.append(float(prop.get_size_in_points()))
        return draw_text(self, gc, x, y, s, prop, angle, ismath=ismath, mtext=mtext)

    buffer = io.BytesIO()
    with mock.patch.object(RendererAgg, "draw_text", recording):
        fig.savefig(buffer, format="png", **savefig)
    return buffer.getvalue(), sizes


def figure_png(fig: Figure) -> tuple[bytes, dict[str, dict[str, int]]]:
    """The IPython PNG form of ``fig``: drawn at twice ``figure.dpi`` and shown at half its pixel
    size (sharp on HiDPI screens), with the smallest font size drawn recorded in the PNG's text
    chunk :data:`SMALLEST_FONT_KEY`. Returns ``(png, metadata)`` as IPython formatters do."""
    dpi = 2 * fig.dpi
    png, sizes = drawn_font_sizes(fig, dpi=dpi, bbox_inches="tight")
    # Draw again with the finding recorded in the file (same pixels: the drawing is deterministic).
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi, bbox_inches="tight",
                metadata={SMALLEST_FONT_KEY: f"{min(sizes, default=0.0):g}"})
    png = buffer.getvalue()
    width, height = int.from_bytes(png[16:20], "big"), int.from_bytes(png[20:24], "big")
    return png, {"width": width // 2, "height": height // 2}


def phone_text_px(font_pt: float, dpi: float, css_width: float, column: float = PHONE_COLUMN_PX) -> float:
    """The height in CSS px of ``font_pt`` text in an image drawn at ``dpi`` per CSS inch and shown
    ``css_width`` CSS px wide, once the page scales it down to fit ``column`` (never up)."""
    return font_pt / 72 * dpi * min(1.0, column / css_width)


def smallest_phone_text_px(fig: Figure) -> float:
    """:func:`phone_text_px` of the smallest text in ``fig`` as a notebook shows it."""
    png, metadata = figure_png(fig)
    sizes = drawn_font_sizes(fig, dpi=2 * fig.dpi, bbox_inches="tight")[1]
    return phone_text_px(min(sizes), fig.dpi, metadata["width"])


def plot_width_function(ax: Axes, params: RegNetParams, title: str = "") -> None:
    """Draw on ``ax`` the continuous widths ``u_j`` (Eq. 2) and the quantized widths ``w_j`` (Eq. 4,
    then the reference code's multiple of 8) of one design-space point, one point per block ``j``,
    with the stage boundaries shaded and each stage named above its blocks."""
    u = linear_widths(params)
    w = quantized_widths(params)
    j = list(range(params.depth))
    # u_j equals w0 * wm ** s_j, so the step curve is u_j with s_j snapped to an integer.
    ax.plot(j, u, "-", color="tab:blue", label=r"continuous $u_j = w_0 + w_a j$ (Eq. 2)")
    ax.step(j, w, where="mid", color="tab:orange", label=r"quantized $w_j$ (Eq. 4, multiple of 8)")
    ax.plot(j, w, "o", color="tab:orange", markersize=3)
    # Headroom above the curves, so that the stage names never sit on a marker.
    ax.set_ylim(0, 1.22 * max(max(u), max(w)))
    start = 0
    for stage, k in enumerate(generate_stages(params).depths):
        if stage % 2:
            ax.axvspan(start - 0.5, start + k - 0.5, color="0.9", zorder=0)
        ax.text(start + k / 2 - 0.5, 0.97, f"s{stage + 1}", ha="center", va="top", fontsize=10,
                transform=ax.get_xaxis_transform())
        start += k
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # j is a block index
    ax.set_title(title or f"d={params.depth}, w0={params.w0}, wa={params.wa}, wm={params.wm}")
    ax.set_xlabel("block index j")
    ax.set_ylabel("width (channels)")


def plot_width_functions(models: Mapping[str, RegNetParams], ncols: int = 1) -> Figure:
    """One :func:`plot_width_function` panel per named model, stacked (``ncols`` per row), with
    one legend above them all."""
    use_tutorial_style()
    n = len(models)
    nrows = (n + ncols - 1) // ncols
    fig = Figure(figsize=(FIGURE_WIDTH, 2.5 * nrows + 0.6), layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False)
    for ax, (name, params) in zip(axes.flat, models.items()):
        plot_width_function(ax, params, name)
    for ax in list(axes.flat)[n:]:
        ax.set_visible(False)
    fig.legend(*axes.flat[0].get_legend_handles_labels(), loc="outside upper center", ncols=1)
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
    fig = Figure(figsize=(FIGURE_WIDTH, 2.1 * len(quantities) + 0.6), layout="constrained")
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
    # The legend above the panels, where no bar can cover it.
    fig.legend(*axes[0].get_legend_handles_labels(), loc="outside upper center", ncols=max(1, min(n, 3)))
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

