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
