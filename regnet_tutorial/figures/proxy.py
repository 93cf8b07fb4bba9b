"""The pilot's figure: how reliable one training run is, against the training budget."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from matplotlib.figure import Figure

from ..sweep.analysis import SHORT_NAMES
from .design_spaces import space_color
from .style import FIGURE_WIDTH, use_tutorial_style


def reliability_figure(
    summary: Mapping[str, object], spaces: Sequence[str], threshold: float = 0.7,
) -> Figure:
    """Test-retest Spearman of each space (two seeds, same models) against the images each model
    saw, with 95% bootstrap intervals, beside the threshold the choice rule asks for; the Spearman
    against the longest budget (validity) is drawn dashed. ``summary`` is
    :func:`regnet_tutorial.sweep.reliability.summarize`'s record."""
    use_tutorial_style()
    fig = Figure(figsize=(FIGURE_WIDTH, 3.8), layout="constrained")
    ax = fig.subplots()
    rows = summary["table"]
    seen = np.array([r["images_seen"] for r in rows], dtype=float)
    for i, space in enumerate(spaces):
        color = space_color(space, i)
        name = SHORT_NAMES.get(space, space)
        rho = np.array([r[f"retest_{space}"] for r in rows])
        ci = np.array([summary["retest_ci95"][r["budget"]].get(space, (np.nan, np.nan)) for r in rows])
        ax.errorbar(seen * (1 + 0.04 * (i - 0.5)), rho, yerr=[rho - ci[:, 0], ci[:, 1] - rho], marker="o",
                    capsize=3, color=color, label=f"{name}: seed vs seed")
        ax.plot(seen, [r[f"vs_longest_{space}"] for r in rows], linestyle="--", color=color,
                label=f"{name}: vs longest budget")
    ax.axhline(threshold, color="0.4", linewidth=0.8)
    ax.axhline(0, color="0.7", linewidth=0.6)
    ax.set_xscale("log")
    ax.set_xlabel("images seen per model (log scale)")
    ax.set_ylabel("Spearman correlation")
    ax.set_ylim(-1, 1.05)
    ax.legend(loc="lower right")
    return fig


def retest_figure(pairs: Mapping[str, tuple[Sequence[float], Sequence[float]]], threshold: float = 0.7) -> Figure:
    """Two seeds of the same models, space by space. Top: the test-retest Spearman of each space
    with its 95% bootstrap interval (models resampled), beside the ``threshold``. Bottom: every
    model's two errors, each centred on its space's median, on a shared scale: points on the
    diagonal are models whose seeds agree, and the spread along it is how far the models differ.
    A run that failed (more than 10 robust SDs from its space's median, :func:`off_frame`) would
    shrink the bulk to a dot: it is drawn on the frame's edge as an open circle.
    ``pairs`` maps a space key to (errors of replicate 0, errors of replicate 1), model by model."""
    from ..sweep.reliability import spearman, spearman_ci

    use_tutorial_style()
    fig = Figure(figsize=(FIGURE_WIDTH, 7.0), layout="constrained")
    top, bottom = fig.subplots(2, 1, height_ratios=[1, 1.3])
    names = list(pairs)
    centred = {}
    for k, space in enumerate(names):
        a, b = (np.asarray(v, dtype=np.float64) for v in pairs[space])
        rho, (lo, hi) = spearman(a, b), spearman_ci(a, b)
        top.errorbar([rho], [k], xerr=[[rho - lo], [hi - rho]], marker="o", capsize=3, color=space_color(space, k))
        centre = np.median(np.concatenate([a, b]))
        centred[space] = np.stack([a - centre, b - centre], axis=1)
    limit = off_frame(np.concatenate(list(centred.values())))
    for k, (space, xy) in enumerate(centred.items()):
        color = space_color(space, k)
        inside = (np.abs(xy) <= limit).all(axis=1)
        bottom.scatter(*xy[inside].T, s=14, color=color, alpha=0.8, label=SHORT_NAMES.get(space, space))
        if not inside.all():
            edge = np.clip(xy[~inside], -limit, limit)
            bottom.scatter(*edge.T, s=40, facecolors="none", edgecolors=color, linewidths=1.2, clip_on=False)
    top.axvline(threshold, color="0.4", linewidth=0.8)
    top.axvline(0, color="0.7", linewidth=0.6)
    top.set_yticks(range(len(names)), [SHORT_NAMES.get(s, s) for s in names])
    top.invert_yaxis()
    top.set_xlim(-1.05, 1.05)
    top.set_xlabel("Spearman, seed 1 vs seed 2 (95% CI)")
    bottom.plot([-limit, limit], [-limit, limit], color="0.5", linewidth=0.8)
    bottom.set(xlim=(-limit, limit), ylim=(-limit, limit), aspect="equal",
               xlabel="seed 1 error - space median (points)", ylabel="seed 2 - median")
    bottom.legend(loc="upper left", fontsize="small", ncols=2)
    return fig


def off_frame(centred: np.ndarray, robust_sds: float = 10.0) -> float:
    """The half-width of the frame for errors centred on their space's median: 1.1 times the
    largest value within ``robust_sds`` robust SDs (1.4826 times the median absolute value) of 0.
    Values beyond it, failed runs, are drawn on the edge."""
    values = np.abs(np.asarray(centred, dtype=np.float64)).ravel()
    scale = 1.4826 * np.median(values)
    return 1.1 * float(values[values <= robust_sds * scale].max()) if scale > 0 else 1.1 * float(values.max())
