"""What an interval lets the text claim: a population trend and the verdict it supports.

The paper reads design spaces from populations: in the good models of a space it *observes* a
pattern (widths rise, widths follow a line), turns it into a *hypothesis* and *tests* it with an
EDF. On a sweep of ``n`` models the observation becomes a population trend, the least-squares
slope of the error ``e`` against a quantity ``x`` of each model (the depth ``d``, the width
multiplier ``w_m``, ``e_fit``), with a percentile bootstrap interval over models. A difference
or a slope is then read as a *direction* only when its 95% interval excludes 0; otherwise the
data cannot tell. :func:`verdict` is that rule, in words the chapters print.
"""

from __future__ import annotations

from collections.abc import Sequence
from math import ceil
from statistics import NormalDist
from typing import NamedTuple

import numpy as np

CANNOT_TELL = "cannot tell"
"""The verdict of an interval that contains 0."""


class Slope(NamedTuple):
    """The least-squares slope of error on ``x`` (points of error per unit of ``x``) and its interval."""

    estimate: float
    low: float
    high: float


def verdict(low: float, high: float, lower: str, higher: str, p_value: float | None = None,
            alpha: float = 0.05) -> str:
    """``lower`` if the interval ``[low, high]`` lies below 0, ``higher`` if above, else "cannot tell".

    For a difference "second minus first" of mean errors, ``verdict(d.low, d.high, "better",
    "worse")`` says whether the second space is better; for a slope of error on ``x``,
    ``verdict(low, high, "falls", "rises")`` says how the error moves as ``x`` grows. Given the
    ``p_value`` of a test of "no difference", a direction also needs ``p_value < alpha``: with few
    models a percentile bootstrap interval is a little too narrow, and the two must agree.
    """
    if not low <= high:
        raise ValueError(f"an interval needs low <= high, got [{low}, {high}]")
    if p_value is not None and not p_value < alpha:
        return CANNOT_TELL
    return lower if high < 0 else higher if low > 0 else CANNOT_TELL


def models_to_resolve(
    sd_a: float, sd_b: float, difference: float, confidence: float = 0.95, power: float = 0.8,
) -> int:
    """How many models per space a comparison of mean errors needs to find a true ``difference``
    (in points) with probability ``power``, its ``confidence`` interval then excluding 0:
    ``n = (z_(1 - alpha/2) + z_power)^2 (sd_a^2 + sd_b^2) / difference^2``, rounded up, for spaces
    whose errors spread by ``sd_a`` and ``sd_b`` (the normal approximation of the difference of means).

    A pair the data "cannot tell" apart reads from it what a larger sweep would resolve."""
    if difference == 0 or not (sd_a >= 0 and sd_b >= 0) or not 0 < confidence < 1 or not 0 < power < 1:
        raise ValueError("models_to_resolve needs a nonzero difference, SDs >= 0, and confidence and power in "
                         "(0, 1): no number of models resolves a difference of 0")
    z = NormalDist().inv_cdf(1 - (1 - confidence) / 2) + NormalDist().inv_cdf(power)
    return max(2, ceil(z * z * (sd_a**2 + sd_b**2) / difference**2))


def slope_ci(
    x: Sequence[float], e: Sequence[float], repeats: int = 2000, seed: int = 0, confidence: float = 0.95,
) -> Slope:
    """The least-squares slope of ``e`` on ``x`` over the models, with a percentile bootstrap interval.

    Each of ``repeats`` resamples draws the ``n`` models (pairs ``(x_i, e_i)``) with replacement and
    refits the line; resamples in which ``x`` does not vary have no slope and are skipped. The
    interval resamples models, not training runs: it does not know how noisy one model's error is,
    which is why the chapters print one run's test-retest reliability beside it.
    """
    xs, es = np.asarray(x, dtype=np.float64), np.asarray(e, dtype=np.float64)
    if xs.ndim != 1 or xs.shape != es.shape or xs.size < 3:
        raise ValueError(f"slope_ci needs two equal-length sequences of at least 3 values, got {xs.shape} "
                         f"and {es.shape}")
    if not (np.all(np.isfinite(xs)) and np.all(np.isfinite(es))):
        raise ValueError("slope_ci needs finite values; drop the models whose x or error is missing")
    if np.ptp(xs) == 0:
        raise ValueError("slope_ci: x takes one value only, so the error has no slope against it")
    i = np.random.default_rng(seed).integers(0, xs.size, (repeats, xs.size))
    bx, be = xs[i], es[i]
    dx = bx - bx.mean(axis=1, keepdims=True)
    sxx = (dx * dx).sum(axis=1)
    keep = sxx > 0
    boot = (dx * (be - be.mean(axis=1, keepdims=True))).sum(axis=1)[keep] / sxx[keep]
    tail = (1 - confidence) / 2
    low, high = np.quantile(boot, [tail, 1 - tail])
    dx0 = xs - xs.mean()
    return Slope(float((dx0 * (es - es.mean())).sum() / (dx0 * dx0).sum()), float(low), float(high))
