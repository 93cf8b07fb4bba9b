"""The quantized-linear fit of a network's widths (paper, Section 3.3, Figure 9).

Given a model's per-block widths ``w_j`` (``j = 0 .. d-1``), the paper sets ``d`` to the
network's depth and grid-searches ``w0, wa, wm`` for the quantized linear function (Eq. 2-4)
whose predicted widths ``w_j^pred`` are closest, measuring closeness by the mean log-ratio::

    e_fit = (1/d) * sum_j | log(w_j^pred / w_j) |

``e_fit = 0`` means the widths are exactly those of a RegNet. The paper finds that the best
AnyNetX_E models have small ``e_fit``: good networks have (nearly) quantized linear widths.

The search: a coarse grid (``w0`` every multiple of 8 up to the widest block, ``wm`` and ``wa``
log-spaced), then a local refinement around the best few points with ever finer steps.
Predicted widths are computed exactly as :func:`regnet_tutorial.design_space.quantized_widths`
(round half to even, multiples of 8), so a RegNet's own widths are fitted with ``e_fit = 0``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from ..design_space import QUANTUM, block_exponent, linear_width, quantized_width

WM_RANGE = (1.05, 4.0)
"""Range of ``wm`` searched (the RegNet space samples 1.5-3; the fit looks a little wider)."""


@dataclass(frozen=True)
class LinearFit:
    """The best quantized linear function for a width sequence, and its ``e_fit``."""

    w0: int
    wa: float
    wm: float
    e_fit: float
    predicted: tuple[int, ...]


def block_widths(depths: Sequence[int], widths: Sequence[int]) -> list[int]:
    """Per-stage ``(depths, widths)`` -> the per-block widths ``w_j`` (stage i repeated d_i times)."""
    return [int(w) for d, w in zip(depths, widths) for _ in range(int(d))]


def predicted_widths(d: int, w0: np.ndarray, wa: np.ndarray, wm: np.ndarray) -> np.ndarray:
    """Quantized widths (Eqs. 2-4, :mod:`regnet_tutorial.design_space`) for broadcastable arrays
    ``w0, wa, wm``; the last axis is the block index ``j``."""
    w0, wa, wm = (np.asarray(x, dtype=np.float64)[..., None] for x in (w0, wa, wm))
    s = block_exponent(linear_width(np.arange(d, dtype=np.float64), w0, wa), w0, wm, log=np.log)
    return quantized_width(s, w0, wm, rnd=np.round)


def e_fit(observed: Sequence[int], predicted: Sequence[float] | np.ndarray) -> np.ndarray:
    """The mean absolute log-ratio of predicted to observed widths (over the last axis)."""
    obs = np.asarray(observed, dtype=np.float64)
    return np.mean(np.abs(np.log(np.asarray(predicted, dtype=np.float64) / obs)), axis=-1)


def _check(observed: Sequence[int]) -> np.ndarray:
    obs = np.asarray(observed, dtype=np.float64)
    if obs.ndim != 1 or obs.size == 0 or not np.all(obs > 0):
        raise ValueError("widths must be a non-empty sequence of positive per-block widths (one per block).")
    return obs


def fit_linear(observed: Sequence[int], coarse: int = 48, refine_top: int = 6, rounds: int = 5) -> LinearFit:
    """Grid-search ``(w0, wa, wm)`` minimising :func:`e_fit` for per-block widths ``observed``."""
    obs = _check(observed)
    d = obs.size
    w0s = np.arange(QUANTUM, max(QUANTUM, int(obs.max())) + 1, QUANTUM, dtype=np.float64)
    wms = np.geomspace(*WM_RANGE, coarse)
    was = np.concatenate([[0.0], np.geomspace(0.1, max(1.0, float(obs.max())), 2 * coarse)])
    wm_g, wa_g = np.meshgrid(wms, was, indexing="ij")
    candidates: list[tuple[float, float, float, float]] = []  # (e, w0, wa, wm)
    for w0 in w0s:
        errs = e_fit(obs, predicted_widths(d, w0, wa_g, wm_g))
        flat = np.argsort(errs, axis=None)[:refine_top]
        for f in flat:
            i, k = np.unravel_index(f, errs.shape)
            candidates.append((float(errs[i, k]), float(w0), float(wa_g[i, k]), float(wm_g[i, k])))
    candidates.sort()
    best = candidates[0]
    wm_step = np.log(wms[1] / wms[0])
    wa_step = np.log(was[2] / was[1])
    for e0, w0, wa, wm in candidates[:refine_top]:
        cur = (e0, w0, wa, wm)
        for r in range(rounds):
            scale = 2.0 ** -r
            local_wm = cur[3] * np.exp(np.linspace(-1, 1, 9) * wm_step * scale)
            local_wm = local_wm[local_wm > 1.0]
            local_wa = np.concatenate([[0.0], max(cur[2], 0.1) * np.exp(np.linspace(-1, 1, 9) * wa_step * scale)])
            local_w0 = np.array([v for v in (cur[1] - QUANTUM, cur[1], cur[1] + QUANTUM) if v >= QUANTUM])
            w0_g, wm_l, wa_l = np.meshgrid(local_w0, local_wm, local_wa, indexing="ij")
            errs = e_fit(obs, predicted_widths(d, w0_g, wa_l, wm_l))
            i = np.unravel_index(np.argmin(errs), errs.shape)
            if errs[i] < cur[0]:
                cur = (float(errs[i]), float(w0_g[i]), float(wa_l[i]), float(wm_l[i]))
        best = min(best, cur)
    e, w0, wa, wm = best
    pred = predicted_widths(d, w0, wa, wm)
    return LinearFit(int(w0), wa, wm, float(e_fit(obs, pred)), tuple(int(p) for p in pred))


def sample_e_fits(samples: Sequence[Mapping[str, Sequence[int]]]) -> np.ndarray:
    """The ``e_fit`` of each sampled model (a results line or a sample with ``depths`` and ``widths``)."""
    return np.array([fit_linear(block_widths(s["depths"], s["widths"])).e_fit for s in samples])
