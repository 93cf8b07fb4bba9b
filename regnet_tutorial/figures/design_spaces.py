"""Figures of design-space analysis: error EDFs, bootstrap trends, error against complexity.

Built like :mod:`regnet_tutorial.figures.style`: a fixed style and matplotlib's object-oriented
``Figure`` (a notebook shows a returned figure by ending a cell with it).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, NullFormatter

from ..sweep.analysis import SHORT_NAMES, BootstrapResult, bootstrap_best, edf_band, edf_label
from .style import FIGURE_WIDTH, use_tutorial_style

COMPLEXITY_AXES: tuple[tuple[str, str, float], ...] = (
    ("flops", "flops (M multiply-adds)", 1e6), ("params", "params (M)", 1e6), ("acts", "activations (M)", 1e6),
)


def space_color(name: str, position: int) -> str:
    """A fixed colour per space (``"A"`` .. ``"RegNetX constrained"`` or its key), so that a space
    keeps its colour across panels; other names take the ``position``-th colour of the cycle."""
    order = list(SHORT_NAMES.values())
    keys = list(SHORT_NAMES)
    if name in order:
        return f"C{order.index(name)}"
    if name in keys:
        return f"C{keys.index(name)}"
    return f"C{position % 10}"


def plot_edfs(
    ax: Axes, errors_by_space: Mapping[str, Sequence[float]], xlabel: str = "error (%)",
    chance: float | None = None, band: bool = True,
) -> None:
    """Draw one error EDF per space on ``ax``, each labelled ``[name] n | min | mean`` (as pycls's sweep
    plots label them), with its 95% DKW band shaded (``band``: where two bands overlap, the data cannot tell the curves
    apart there) and, given ``chance`` (the error of guessing, in %), a dashed line there."""
    for i, (name, errors) in enumerate(errors_by_space.items()):
        x, f, low, high = edf_band(errors)
        color = space_color(name, i)
        # Start at F = 0 just left of the smallest error, so each curve is a full staircase.
        xs = np.concatenate([[x[0]], x])
        ax.step(xs, np.concatenate([[0.0], f]), where="post", label=edf_label(name, errors), color=color)
        if band:
            ax.fill_between(xs, np.concatenate([[0.0], low]), np.concatenate([[high[0] - f[0]], high]),
                            step="post", color=color, alpha=0.15, linewidth=0)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("cumulative prob.")
    ax.set_ylim(0, 1)
    if chance is not None:
        ax.axvline(chance, color="0.4", linestyle="--", linewidth=1, label="chance")
    ax.legend(loc="lower right", title="n | min | mean")


def edf_figure(
    errors_by_space: Mapping[str, Sequence[float]], title: str = "", chance: float | None = None
) -> Figure:
    """One axis with the EDFs of several spaces (and the chance line, given ``chance``)."""
    use_tutorial_style()
    fig = Figure(figsize=(FIGURE_WIDTH, 3.8), layout="constrained")
    ax = fig.subplots()
    plot_edfs(ax, errors_by_space, chance=chance)
    if title:
        ax.set_title(title)
    return fig


def edf_panels_figure(
    panels: Sequence[Mapping[str, Sequence[float]]], titles: Sequence[str] = (), ncols: int = 1
) -> Figure:
    """One EDF axis per panel (e.g. one per refinement step, as the paper's Figures 5-7),
    stacked, sharing the error axis so that curves can be compared across panels."""
    use_tutorial_style()
    nrows = (len(panels) + ncols - 1) // ncols
    fig = Figure(figsize=(FIGURE_WIDTH, 3.0 * nrows), layout="constrained")
    axes = np.atleast_1d(fig.subplots(nrows, ncols, sharex=True, squeeze=False)).ravel()
    for i, (ax, errors_by_space) in enumerate(zip(axes, panels)):
        plot_edfs(ax, errors_by_space)
        if i < len(titles):
            ax.set_title(titles[i])
    for ax in axes[len(panels):]:
        ax.set_visible(False)
    return fig


def plot_bootstrap(
    ax: Axes, values: Sequence[float], errors: Sequence[float], name: str, result: BootstrapResult | None = None,
    log: bool = False,
) -> BootstrapResult:
    """Error against one parameter, with the bootstrap's 95% band (shaded) and most likely best
    value (black line), as in the paper's Figure 5; returns the bootstrap result."""
    result = result or bootstrap_best(values, errors)
    ax.scatter(values, errors, s=8, alpha=0.6, color="tab:blue")
    ax.axvspan(result.low, result.high, color="tab:blue", alpha=0.15, lw=0)
    ax.axvline(result.best, color="black", lw=1)
    if log:
        ax.set_xscale("log", base=2)  # the values are powers of two: a tick at each
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))  # 8, 16, 32, not 2^3
        ax.xaxis.set_minor_formatter(NullFormatter())
    ax.set_xlabel(name)
    ax.set_ylabel("error (%)")
    ax.set_title(f"{name}: best {result.best:.3g} [{result.low:.3g}, {result.high:.3g}]")
    return result


def bootstrap_figure(
    columns: Mapping[str, Sequence[float]], errors: Sequence[float], log: Sequence[str] = ()
) -> Figure:
    """One :func:`plot_bootstrap` panel per named parameter column, stacked."""
    use_tutorial_style()
    n = len(columns)
    fig = Figure(figsize=(FIGURE_WIDTH, 2.5 * n), layout="constrained")
    axes = np.atleast_1d(fig.subplots(n, 1, sharey=True))
    for ax, (name, values) in zip(axes, columns.items()):
        plot_bootstrap(ax, values, errors, name, log=name in log)
    return fig


def complexity_scatter_figure(
    samples_by_space: Mapping[str, Sequence[Mapping[str, float]]], errors_by_space: Mapping[str, Sequence[float]],
    quantities: Sequence[tuple[str, str, float]] = COMPLEXITY_AXES,
) -> Figure:
    """Error against flops, params and activations, one colour per space, one panel per
    quantity, stacked, with one legend above them."""
    use_tutorial_style()
    fig = Figure(figsize=(FIGURE_WIDTH, 2.5 * len(quantities) + 0.5), layout="constrained")
    axes = np.atleast_1d(fig.subplots(len(quantities), 1, sharey=True))
    for ax, (key, label, scale) in zip(axes, quantities):
        for i, (name, samples) in enumerate(samples_by_space.items()):
            ax.scatter([s[key] / scale for s in samples], errors_by_space[name], s=8, alpha=0.6, label=name,
                       color=space_color(name, i))
        ax.set_xlabel(label)
        ax.set_ylabel("error (%)")
    fig.legend(*axes[0].get_legend_handles_labels(), loc="outside upper center", ncols=min(5, len(samples_by_space)))
    return fig


def complexity_histogram_figure(
    samples: Sequence[Mapping[str, float]], quantities: Sequence[tuple[str, str, float]] = COMPLEXITY_AXES,
    bins: int = 20,
) -> Figure:
    """Histograms of the samples' flops, params and activations, stacked."""
    use_tutorial_style()
    fig = Figure(figsize=(FIGURE_WIDTH, 2.2 * len(quantities)), layout="constrained")
    axes = np.atleast_1d(fig.subplots(len(quantities), 1))
    for ax, (key, label, scale) in zip(axes, quantities):
        ax.hist([s[key] / scale for s in samples], bins=bins, color="tab:blue", alpha=0.8)
        ax.set_xlabel(label)
        ax.set_ylabel("models")
    return fig
