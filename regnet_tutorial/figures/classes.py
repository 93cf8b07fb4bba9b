"""Figures of a classification data set and of a classifier's results, labelled with class
names: a grid of sample images, and the confusion matrix.

Built like :mod:`regnet_tutorial.figures.style`: a fixed style and matplotlib's object-oriented
``Figure`` (a notebook shows a returned figure by ending a cell with it).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from matplotlib.figure import Figure

from .style import FIGURE_WIDTH, use_tutorial_style


def sample_grid_figure(
    images: Sequence[object], targets: Sequence[int], class_names: Sequence[str], ncols: int = 4
) -> Figure:
    """A grid of images (``H x W x 3`` or ``3 x H x W`` arrays or tensors, values in [0, 1]), each
    titled with its class name, ``ncols`` per row, pixels drawn as squares (no smoothing) and
    large enough on a phone to show the augmentation's noise."""
    use_tutorial_style()
    nrows = (len(images) + ncols - 1) // ncols
    cell = FIGURE_WIDTH / ncols
    fig = Figure(figsize=(FIGURE_WIDTH, (cell + 0.25) * nrows), layout="constrained")
    axes = np.atleast_1d(fig.subplots(nrows, ncols, squeeze=False)).ravel()
    for ax in axes:
        ax.axis("off")
    for ax, image, target in zip(axes, images, targets, strict=False):  # axes may outnumber images
        pixels = np.asarray(image, dtype=np.float32)
        if pixels.ndim == 3 and pixels.shape[0] in (1, 3) and pixels.shape[-1] not in (1, 3):
            pixels = pixels.transpose(1, 2, 0)
        ax.imshow(np.clip(pixels, 0, 1), interpolation="nearest")
        ax.set_title(class_names[int(target)])
    return fig


def confusion_figure(matrix: object, class_names: Sequence[str], title: str = "") -> Figure:
    """The confusion matrix (rows: true class, columns: predicted class) with each count written in
    its cell and the classes named on both axes."""
    use_tutorial_style()
    counts = np.asarray(matrix)
    n = len(class_names)
    if counts.shape != (n, n):
        raise ValueError(f"the matrix is {counts.shape}, but there are {n} class names: pass one name per class")
    fig = Figure(figsize=(min(FIGURE_WIDTH, 1.4 + 0.8 * n), min(FIGURE_WIDTH, 1.4 + 0.8 * n)), layout="constrained")
    ax = fig.subplots()
    ax.imshow(counts, cmap="Blues")
    ax.grid(False)
    for i in range(n):
        for j in range(n):
            dark = counts[i, j] > counts.max() / 2
            ax.text(j, i, f"{counts[i, j]:g}", ha="center", va="center", color="white" if dark else "black")
    ax.set_xticks(range(n), class_names, rotation=30, ha="right")
    ax.set_yticks(range(n), class_names)
    ax.set(xlabel="predicted class", ylabel="true class")
    if title:
        ax.set_title(title)
    return fig
