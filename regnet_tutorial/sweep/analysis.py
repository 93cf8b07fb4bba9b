"""Comparing design spaces by distributions (paper, Section 2, Figure 2 and Section 3.2, Figure 5).

**Error EDF.** A design space is judged by the errors of the n models sampled from it, through
the empirical distribution function::

    F(e) = (1/n) * sum_i 1[e_i < e]

the fraction of models with error below ``e``. A space whose EDF lies to the left (more good
models) is better. Each curve's legend reads ``[name] n | min | mean``, as pycls's sweep plots
label them (``pycls/sweep/plotting.py``, the paper's code; not the paper's own figures).

**Empirical bootstrap** (Section 3.2). To find the best value of one parameter (e.g. the depth)
with a confidence interval: sample 25% of the models with replacement, keep the best (lowest
error) model, record its parameter value; repeat 10^4 times; the 2.5th and 97.5th percentiles
of the recorded values are the 95% interval, their median the most likely best value.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from .spaces import check_space_names


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
    """An EDF's legend entry as pycls's sweep plots write it: ``"[name] n | min | mean"``, errors to
    one decimal."""
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
    "regnetx": "RegNetX", "regnetx_constrained_nolimits": "RegNetX constr., no limits",
    "regnetx_constrained": "RegNetX constrained",
}
"""The names of the EDF legends (``[A]``, ``[B]``, ..., ``[RegNetX]``), in the paper's order."""


def first_runs(records: Sequence[dict], models_per_space: int, replicate: int = 0) -> list[dict]:
    """The runs of ``replicate`` of the first ``models_per_space`` models (indices ``0 ..
    models_per_space - 1``) of every space in ``records``: a fixed snapshot of a results file that
    is still growing, so that what a chapter prints does not move as lines are appended.

    Raises ``ValueError`` naming the space if the file does not hold them all yet."""
    spaces = list(dict.fromkeys(r["space"] for r in records))
    chosen = [r for r in records if r.get("replicate", 0) == replicate and r["index"] < models_per_space]
    for space in spaces:
        have = sum(r["space"] == space for r in chosen)
        if have < models_per_space:
            raise ValueError(f"{space} has {have} of its first {models_per_space} models at replicate {replicate}: "
                             "let the sweep run further or read fewer models")
    return chosen


def seed_pairs(records: Sequence[dict], models_per_space: int) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Two seeds of the same models: for every space, the errors of its first ``models_per_space``
    models at replicate 0 and at replicate 1, aligned by model index (the input of a test-retest
    correlation). Raises like :func:`first_runs` if either replicate is not there yet."""
    runs = [first_runs(records, models_per_space, replicate=k) for k in (0, 1)]
    pairs = {}
    for space in dict.fromkeys(r["space"] for r in runs[1]):
        by_index = [{r["index"]: r["top1_error"] for r in run if r["space"] == space} for run in runs]
        pairs[space] = tuple(np.array([seed[i] for i in range(models_per_space)]) for seed in by_index)
    return pairs


def group_by_space(records: Sequence[dict], metric: str = "top1_error") -> dict[str, list[dict]]:
    """Result records grouped by ``space`` (in the paper's order, A to RegNetX constrained), each
    group sorted by its ``index``; records without a finite ``metric`` are left out. Lines written
    under the old space keys raise (:func:`~regnet_tutorial.sweep.spaces.check_space_names`)."""
    for number, record in enumerate(records, start=1):
        check_space_names(record, f"record {number}")
    groups: dict[str, list[dict]] = {}
    for space in SHORT_NAMES:
        rows = [r for r in records if r.get("space") == space and np.isfinite(r.get(metric, np.nan))]
        if rows:
            groups[space] = sorted(rows, key=lambda r: r["index"])
    return groups


# ---------------------------------------------------------------- noise on every curve and claim


def dkw_epsilon(n: int, confidence: float = 0.95) -> float:
    """Half-width of the Dvoretzky-Kiefer-Wolfowitz band: with probability ``confidence`` the true
    error CDF lies within ``+-eps`` of the EDF of ``n`` models everywhere,
    ``eps = sqrt(ln(2 / alpha) / (2 n))`` with ``alpha = 1 - confidence`` (Massart's constant)."""
    if n < 1 or not 0 < confidence < 1:
        raise ValueError("n must be >= 1 and confidence in (0, 1).")
    return float(np.sqrt(np.log(2 / (1 - confidence)) / (2 * n)))


def edf_band(
    errors: Sequence[float], confidence: float = 0.95,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The EDF step curve with its DKW band: ``(x, F, lower, upper)``, the band clipped to [0, 1]."""
    x, f = edf_curve(errors)
    eps = dkw_epsilon(x.size, confidence)
    return x, f, np.clip(f - eps, 0, 1), np.clip(f + eps, 0, 1)


@dataclass(frozen=True)
class Difference:
    """``statistic(a) - statistic(b)`` with a bootstrap interval and a permutation p-value."""

    estimate: float
    low: float
    high: float
    p_value: float
    confidence: float

    def __str__(self) -> str:
        return (f"{self.estimate:+.2f} points [{self.low:+.2f}, {self.high:+.2f}] "
                f"({self.confidence:.0%} CI), permutation p = {self.p_value:.3g}")


def compare(
    a: Sequence[float], b: Sequence[float], statistic: str = "mean", confidence: float = 0.95,
    repeats: int = 10_000, seed: int = 0,
) -> Difference:
    """How much space ``a``'s errors exceed space ``b``'s: the difference of means (or medians),
    a percentile bootstrap interval (each space resampled on its own), and a two-sided
    permutation test of "same distribution" (labels shuffled ``repeats`` times)."""
    x, y = _errors(a), _errors(b)
    stat = {"mean": np.mean, "median": np.median}[statistic]
    rng = np.random.default_rng(seed)
    estimate = float(stat(x) - stat(y))
    boot = stat(x[rng.integers(0, x.size, (repeats, x.size))], axis=1) - \
        stat(y[rng.integers(0, y.size, (repeats, y.size))], axis=1)
    tail = (1 - confidence) / 2
    low, high = np.quantile(boot, [tail, 1 - tail])
    pooled = np.concatenate([x, y])
    perm = rng.permuted(np.broadcast_to(pooled, (repeats, pooled.size)), axis=1)
    null = stat(perm[:, : x.size], axis=1) - stat(perm[:, x.size:], axis=1)
    p = (1 + np.sum(np.abs(null) >= abs(estimate) - 1e-12)) / (repeats + 1)
    return Difference(estimate, float(low), float(high), float(p), confidence)


def complexity_weights(values: Sequence[Sequence[float]], bins: int = 8) -> list[np.ndarray]:
    """Weights that give every space the same distribution of a complexity measure (the
    *normalized* EDF of Radosavovic et al., 2019, "On Network Design Spaces for Visual Recognition").

    ``values`` holds one array per space (e.g. log parameters). The pooled range is cut into
    ``bins`` equal bins; a model's weight is ``1 / (k * m_s(bin))``, with ``m_s`` the models of
    its space in its bin and ``k`` the bins every space occupies, so each space puts weight
    ``1 / k`` in each shared bin; models in a bin some space lacks get weight 0.
    """
    arrays = [np.asarray(v, dtype=np.float64) for v in values]
    pooled = np.concatenate(arrays)
    edges = np.linspace(pooled.min(), pooled.max(), bins + 1)
    which = [np.clip(np.searchsorted(edges, v, side="right") - 1, 0, bins - 1) for v in arrays]
    counts = np.stack([np.bincount(w, minlength=bins) for w in which])
    shared = np.all(counts > 0, axis=0)
    k = int(shared.sum())
    if k == 0:
        raise ValueError("the spaces share no complexity bin: they cannot be normalized against each other.")
    return [np.where(shared[w], 1.0 / (k * np.maximum(c[w], 1)), 0.0) for w, c in zip(which, counts, strict=True)]


def weighted_edf(errors: Sequence[float], weights: Sequence[float], e: float | Sequence[float]) -> np.ndarray:
    """``F(e) = sum_i w_i 1[e_i < e] / sum_i w_i``: the EDF with model weights (normalized EDF)."""
    errs, w = _errors(errors), np.asarray(weights, dtype=np.float64)
    order = np.argsort(errs)
    cum = np.concatenate([[0.0], np.cumsum(w[order])]) / w.sum()
    return cum[np.searchsorted(errs[order], np.asarray(e, dtype=np.float64), side="left")]


def controlled_difference(
    errors_a: Sequence[float], params_a: Sequence[float], errors_b: Sequence[float], params_b: Sequence[float],
    confidence: float = 0.95, repeats: int = 2000, seed: int = 0,
) -> Difference:
    """Space ``a`` against ``b`` at equal parameters: the coefficient of "is in a" in the least-squares
    fit ``error = c0 + c1 * [in a] + c2 * log10(params)``, with a bootstrap interval (models resampled
    within each space) and a permutation p-value (space labels shuffled, the fit redone)."""
    ea, eb = _errors(errors_a), _errors(errors_b)
    pa, pb = np.log10(np.asarray(params_a, dtype=np.float64)), np.log10(np.asarray(params_b, dtype=np.float64))
    if pa.shape != ea.shape or pb.shape != eb.shape:
        raise ValueError("give one parameter count per model in each space.")

    def fit(e: np.ndarray, label: np.ndarray, logp: np.ndarray) -> float:
        design = np.column_stack([np.ones_like(e), label, logp])
        return float(np.linalg.lstsq(design, e, rcond=None)[0][1])

    e = np.concatenate([ea, eb])
    label = np.concatenate([np.ones(ea.size), np.zeros(eb.size)])
    logp = np.concatenate([pa, pb])
    estimate = fit(e, label, logp)
    rng = np.random.default_rng(seed)
    boot, null = [], []
    for _ in range(repeats):
        i = rng.integers(0, ea.size, ea.size)
        j = ea.size + rng.integers(0, eb.size, eb.size)
        idx = np.concatenate([i, j])
        boot.append(fit(e[idx], label, logp[idx]))
        null.append(fit(e, rng.permutation(label), logp))
    tail = (1 - confidence) / 2
    low, high = np.quantile(boot, [tail, 1 - tail])
    p = (1 + np.sum(np.abs(null) >= abs(estimate) - 1e-12)) / (repeats + 1)
    return Difference(estimate, float(low), float(high), float(p), confidence)
