"""The statistics drawn on every EDF and printed beside every claim, against closed forms and
simulations whose truth is known."""

from __future__ import annotations

import math

import numpy as np
import pytest

from regnet_tutorial.sweep.analysis import (
    compare,
    complexity_weights,
    controlled_difference,
    dkw_epsilon,
    edf,
    edf_band,
    weighted_edf,
)


def test_dkw_band_closed_form_and_coverage():
    assert dkw_epsilon(100) == pytest.approx(math.sqrt(math.log(40) / 200))
    rng = np.random.default_rng(0)
    grid = np.linspace(0, 1, 201)
    covered = 0
    for _ in range(400):
        u = rng.uniform(size=50)  # true CDF F(e) = e on [0, 1]
        f = edf(u, grid)
        covered += np.max(np.abs(f - grid)) <= dkw_epsilon(50)
    assert covered / 400 >= 0.95  # the band is conservative: it covers at least 95% of the time
    x, f, lo, hi = edf_band(u)
    assert np.all(lo <= f) and np.all(f <= hi) and lo.min() >= 0 and hi.max() <= 1


def test_compare_interval_matches_the_normal_approximation_and_p_detects_a_shift():
    rng = np.random.default_rng(1)
    a, b = rng.normal(30, 2, 400), rng.normal(29, 2, 400)
    d = compare(a, b, repeats=4000)
    se = math.sqrt(a.var(ddof=1) / a.size + b.var(ddof=1) / b.size)
    assert d.estimate == pytest.approx(a.mean() - b.mean())
    assert d.low == pytest.approx(d.estimate - 1.96 * se, abs=0.05)
    assert d.high == pytest.approx(d.estimate + 1.96 * se, abs=0.05)
    assert d.p_value < 0.001
    same = compare(rng.normal(30, 2, 100), rng.normal(30, 2, 100), repeats=2000)
    assert same.low < 0 < same.high and same.p_value > 0.01
    assert "CI" in str(d) and "permutation p" in str(d)


def test_normalized_edf_removes_a_difference_that_is_only_complexity():
    """Two spaces with the same error-vs-params law, one holding larger models: the raw EDFs
    differ, the complexity-normalized ones agree, and the controlled difference is ~0."""
    rng = np.random.default_rng(2)
    pa, pb = rng.uniform(4.0, 5.0, 3000), rng.uniform(4.5, 5.5, 3000)  # log10 params
    law = lambda logp: 40 - 5 * logp  # noqa: E731 - the same for both spaces
    ea, eb = law(pa) + rng.normal(0, 0.5, pa.size), law(pb) + rng.normal(0, 0.5, pb.size)
    grid = np.linspace(10, 25, 31)
    assert np.max(np.abs(edf(ea, grid) - edf(eb, grid))) > 0.3
    wa, wb = complexity_weights([pa, pb], bins=10)
    assert wa.sum() == pytest.approx(1) and wb.sum() == pytest.approx(1)
    assert np.all(wa[pa < 4.4] == 0) and np.all(wa[pa > 4.6] > 0)  # bins space b lacks carry no weight
    assert np.max(np.abs(weighted_edf(ea, wa, grid) - weighted_edf(eb, wb, grid))) < 0.06
    d = controlled_difference(ea, 10**pa, eb, 10**pb, repeats=300)
    assert abs(d.estimate) < 0.1 and d.high - d.low < 0.2  # ~0, within a tight interval
    shifted = controlled_difference(ea + 1.0, 10**pa, eb, 10**pb, repeats=300)
    assert shifted.estimate == pytest.approx(1.0, abs=0.1) and shifted.p_value < 0.01


def test_weighted_edf_with_equal_weights_is_the_edf():
    rng = np.random.default_rng(3)
    e = rng.normal(20, 3, 57)
    grid = np.linspace(10, 30, 41)
    np.testing.assert_allclose(weighted_edf(e, np.ones_like(e), grid), edf(e, grid))
