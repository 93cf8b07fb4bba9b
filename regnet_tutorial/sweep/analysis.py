"""Comparing design spaces by distributions (paper, Section 2, Figure 2 and Section 3.2, Figure 5).

**Error EDF.** A design space is judged by the errors of the n models sampled from it, through
the empirical distribution function::

    F(e) = (1/n) * sum_i 1[e_i < e]

the fraction of models with error below ``e``. A space whose EDF lies to the left (more good
models) is better. The paper's legends summarise each curve as ``[name] n | min | mean``.

**Empirical bootstrap** (Section 3.2). To find the best value of one parameter (e.g. the depth)
with a confidence interval: sample 25% of the models with replacement, keep the best (lowest
error) model, record its parameter value; repeat 10^4 times; the 2.5th and 97.5th percentiles
of the recorded values are the 95% interval, their median the most likely best value.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


def _errors(errors: Sequence[float]) -> np.ndarray:
    e = np.asarray(errors, dtype=np.float64)
    if e.ndim != 1 or e.size == 0 or not np.all(np.isfinite(e)):
        raise ValueError("errors must be a non-empty sequence of finite numbers (one per model).")
    return e


def edf(errors: Sequence[float], e: float | Sequence[float]) -> np.ndarray:
    """``F(e) = (1/n) * sum_i 1[e_i < e]`` at each ``e`` (a scalar gives a 0-d array)."""
    errs = np.sort(_errors(errors))
    # searchsorted with side="left" counts the e_i strictly below e.
    return np.searchsorted(errs, np.asarray(e, dtype=np.float64), side="left") / errs.size


def edf_curve(errors: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    """The EDF as a step curve ``(x, F)``: it jumps by ``1/n`` just after each sorted error."""
    errs = np.sort(_errors(errors))
    n = errs.size
    return errs, np.arange(1, n + 1) / n


def edf_label(name: str, errors: Sequence[float]) -> str:
    """The paper's legend entry: ``"[name] n | min | mean"``, errors to one decimal."""
    e = _errors(errors)
    return f"[{name}] {e.size} | {e.min():.1f} | {e.mean():.1f}"


@dataclass(frozen=True)
class BootstrapResult:
    """The best value of a parameter: most likely (median) and its confidence interval."""

    best: float
    low: float
    high: float
    confidence: float
    draws: np.ndarray  # the parameter value of the best model in each resample


def bootstrap_best(
    values: Sequence[float], errors: Sequence[float], fraction: float = 0.25, repeats: int = 10_000,
    confidence: float = 0.95, seed: int = 0,
) -> BootstrapResult:
    """The paper's empirical bootstrap of the best model's parameter value.

    Each of ``repeats`` resamples draws ``max(1, round(fraction * n))`` models with replacement
    and records ``values`` of its lowest-error model (the first of equal errors).
    """
    e = _errors(errors)
    v = np.asarray(values, dtype=np.float64)
    if v.shape != e.shape:
        raise ValueError(f"values has {v.size} entries but errors has {e.size}: give one value per model.")
    if not 0 < fraction <= 1 or not 0 < confidence < 1 or repeats < 1:
        raise ValueError("fraction must be in (0, 1], confidence in (0, 1) and repeats >= 1.")
    m = max(1, int(round(fraction * e.size)))
    idx = np.random.default_rng(seed).integers(0, e.size, size=(repeats, m))
    best = idx[np.arange(repeats), np.argmin(e[idx], axis=1)]
    draws = v[best]
    tail = (1 - confidence) / 2
    low, median, high = np.quantile(draws, [tail, 0.5, 1 - tail], method="inverted_cdf")
    return BootstrapResult(float(median), float(low), float(high), confidence, draws)


SHORT_NAMES: dict[str, str] = {
    "anynetx_a": "A", "anynetx_b": "B", "anynetx_c": "C", "anynetx_d": "D", "anynetx_e": "E",
    "regnet": "RegNet", "regnetx": "RegNetX",
}
"""The names of the paper's EDF legends (``[A]``, ``[B]``, ...)."""


def group_by_space(records: Sequence[dict], metric: str = "top1_error") -> dict[str, list[dict]]:
    """Result records grouped by ``space`` (in the paper's order, A to RegNetX), each group sorted
    by its ``index``; records without a finite ``metric`` are left out."""
    groups: dict[str, list[dict]] = {}
    for space in SHORT_NAMES:
        rows = [r for r in records if r.get("space") == space and np.isfinite(r.get(metric, np.nan))]
        if rows:
            groups[space] = sorted(rows, key=lambda r: r["index"])
    return groups
