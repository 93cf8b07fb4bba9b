"""The chapters' trend and verdict helpers against analytic cases: a slope on data of known slope
and noise (its least-squares value, its standard error and the coverage of its interval over
simulated datasets), the verdict of differences whose interval is known in closed form, the
reliability lookup of the pilot and the e_fit of sampled models."""

from __future__ import annotations

import math

import numpy as np
import pytest

from regnet_tutorial import get_card, quantized_widths
from regnet_tutorial.design_space import group_stages
from regnet_tutorial.sweep.analysis import compare
from regnet_tutorial.sweep.fit import sample_e_fits
from regnet_tutorial.sweep.reliability import ReliabilityError, Retest, retest_near
from regnet_tutorial.sweep.verdicts import CANNOT_TELL, Slope, models_to_resolve, slope_ci, verdict


def test_verdict_reads_the_side_of_zero() -> None:
    assert verdict(-2.0, -0.1, "better", "worse") == "better"
    assert verdict(0.1, 2.0, "better", "worse") == "worse"
    assert verdict(-1.0, 1.0, "better", "worse") == CANNOT_TELL == "cannot tell"
    # An interval that touches 0 does not exclude it.
    assert verdict(0.0, 1.0, "falls", "rises") == verdict(-1.0, 0.0, "falls", "rises") == "cannot tell"
    with pytest.raises(ValueError, match="low <= high"):
        verdict(1.0, -1.0, "falls", "rises")
    # With a test's p-value, a direction needs both: the interval off 0 and p below alpha.
    assert verdict(-2.0, -0.1, "better", "worse", p_value=0.01) == "better"
    assert verdict(-2.0, -0.1, "better", "worse", p_value=0.05) == CANNOT_TELL
    assert verdict(-1.0, 1.0, "better", "worse", p_value=0.001) == CANNOT_TELL
    assert verdict(0.1, 2.0, "better", "worse", p_value=0.08, alpha=0.1) == "worse"


@pytest.mark.parametrize(("shift", "expected"), [(-1.0, "better"), (0.0, "cannot tell"), (1.0, "worse")])
def test_verdict_of_a_difference_whose_interval_is_known(shift: float, expected: str) -> None:
    """Two samples of n = 400 with SD exactly 1 (standardised): the difference of means has the
    normal-theory interval shift +- 1.96 * sqrt(2 / n) = shift +- 0.139, so a shift of 1 point is a
    direction and a shift of 0 cannot be told from noise. The bootstrap interval of ``compare``
    agrees with it to a few hundredths, and the verdict follows."""
    rng = np.random.default_rng(7)
    z = [(v - v.mean()) / v.std() for v in rng.standard_normal((2, 400))]
    first, second = 50 + z[0], 50 + shift + z[1]
    half = 1.959964 * math.sqrt(2 / 400)
    d = compare(second, first, seed=1)
    assert d.estimate == pytest.approx(shift, abs=1e-9)
    assert d.low == pytest.approx(shift - half, abs=0.02) and d.high == pytest.approx(shift + half, abs=0.02)
    assert verdict(shift - half, shift + half, "better", "worse") == expected
    assert verdict(d.low, d.high, "better", "worse") == expected


def test_slope_is_the_least_squares_slope() -> None:
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 10, 60)
    e = 40 - 1.5 * x + rng.normal(0, 2, 60)
    s = slope_ci(x, e, seed=3)
    assert isinstance(s, Slope) and s.low < s.estimate < s.high
    assert s.estimate == pytest.approx(np.polyfit(x, e, 1)[0], rel=1e-12)  # numpy's own fit
    # The slope of a noiseless line is that line's, in every resample.
    exact = slope_ci(x, 3.0 + 0.25 * x)
    assert exact.estimate == pytest.approx(0.25) and exact.low == pytest.approx(0.25)
    assert exact.high == pytest.approx(0.25)
    # Same seed, same interval; the tuple unpacks as the chapters use it.
    estimate, low, high = slope_ci(x, e, seed=3)
    assert (estimate, low, high) == tuple(s)


def test_slope_interval_matches_the_analytic_standard_error() -> None:
    """The slope's classical standard error is s / sqrt(S_xx), s the residual SD (n - 2 degrees of
    freedom); the bootstrap interval's width is close to 2 * 1.96 of it (the pairs bootstrap of
    200 models varies by about 10%), and the estimate lies within 3 of them of the true slope."""
    rng = np.random.default_rng(1)
    n, sigma = 200, 3.0
    x = rng.uniform(1, 5, n)
    e = 60 + 2.0 * x + rng.normal(0, sigma, n)
    s = slope_ci(x, e, repeats=4000)
    sxx = ((x - x.mean()) ** 2).sum()
    residual = e - np.polyval(np.polyfit(x, e, 1), x)
    se = math.sqrt((residual**2).sum() / (n - 2) / sxx)
    assert (s.high - s.low) / (2 * 1.959964 * se) == pytest.approx(1.0, abs=0.15)
    assert abs(s.estimate - 2.0) < 3 * sigma / math.sqrt(sxx)


def test_slope_interval_covers_the_true_slope_about_95_percent_of_the_time() -> None:
    """Over 300 simulated datasets of 40 models with slope -0.8 and normal noise, the 95% interval
    holds the true slope in 95% of them; a percentile bootstrap of n = 40 under-covers a little, and
    300 datasets leave a binomial SD of 1.3 points, so 0.89-0.99 is asked."""
    rng = np.random.default_rng(2)
    held = 0
    for k in range(300):
        x = rng.integers(1, 5, 40).astype(float)  # a count, as the chapters' "rising w_i steps"
        e = 55 - 0.8 * x + rng.normal(0, 4, 40)
        s = slope_ci(x, e, repeats=1000, seed=k)
        held += s.low <= -0.8 <= s.high
    assert 0.89 <= held / 300 <= 0.99


def test_slope_bad_input_is_named() -> None:
    with pytest.raises(ValueError, match="equal-length"):
        slope_ci([1, 2, 3], [1, 2])
    with pytest.raises(ValueError, match="one value"):
        slope_ci([2, 2, 2, 2], [1, 2, 3, 4])
    with pytest.raises(ValueError, match="finite"):
        slope_ci([1, 2, float("nan")], [1, 2, 3])


SUMMARY = {
    "table": [
        {"budget": "1k x 1", "images_seen": 1000, "retest_regnetx": 0.59, "retest_anynetx_e": 0.49},
        {"budget": "3k x 1", "images_seen": 3000, "retest_regnetx": 0.61, "retest_anynetx_e": 0.45},
        {"budget": "15k x 1", "images_seen": 15000, "retest_regnetx": 0.84, "retest_anynetx_e": 0.60},
    ],
    "retest_ci95": {
        "1k x 1": {"regnetx": [-0.10, 0.92], "anynetx_e": [-0.40, 0.96]},
        "3k x 1": {"regnetx": [-0.11, 0.96], "anynetx_e": [-0.38, 0.87]},
        "15k x 1": {"regnetx": [0.44, 1.00], "anynetx_e": [-0.15, 0.94]},
    },
}


def test_retest_near_takes_the_nearest_budget() -> None:
    assert retest_near(SUMMARY, 1000, "regnetx") == Retest("1k x 1", 1000, 0.59, -0.10, 0.92)
    assert retest_near(SUMMARY, 2000, "anynetx_e").budget == "1k x 1"  # a tie: the cheaper budget
    assert retest_near(SUMMARY, 10_000, "anynetx_e") == Retest("15k x 1", 15000, 0.60, -0.15, 0.94)
    assert retest_near(SUMMARY, 10**6, "regnetx").budget == "15k x 1"
    with pytest.raises(ReliabilityError, match="did not measure space 'anynetx_a'"):
        retest_near(SUMMARY, 1000, "anynetx_a")
    with pytest.raises(ReliabilityError, match="no budget"):
        retest_near({"table": [], "retest_ci95": {}}, 1000, "regnetx")


def test_sample_e_fits_is_zero_on_a_regnet_and_positive_off_the_line() -> None:
    # RegNetX-400MF's widths from Eq. 2-4 (before the group-width adjustment): on the line.
    depths, widths = group_stages(quantized_widths(get_card("regnetx_400mf").params))
    on_line = {"depths": depths, "widths": widths}
    # Equal widths at every stage but one far-off step cannot lie on one quantized line.
    off_line = {"depths": [1, 1, 4, 2], "widths": [64, 24, 64, 16]}
    fits = sample_e_fits([on_line, off_line])
    assert fits.shape == (2,) and fits[0] == 0.0 and fits[1] > 0.1


def test_models_to_resolve_by_the_formula_and_by_simulation() -> None:
    """SDs of 1 and a difference of 1 SD need (1.960 + 0.842)^2 * 2 = 15.7, so 16 models per space;
    half the difference needs four times as many. Simulated: at the returned n the 95% normal
    interval of the difference of means excludes 0 in about 80% of 4,000 datasets (the power asked)."""
    assert models_to_resolve(1.0, 1.0, 1.0) == 16 == math.ceil((1.959964 + 0.841621) ** 2 * 2)
    assert models_to_resolve(1.0, 1.0, -0.5) == math.ceil((1.959964 + 0.841621) ** 2 * 2 * 4)
    sd_a, sd_b, delta = 2.0, 1.0, 0.7
    n = models_to_resolve(sd_a, sd_b, delta)
    rng = np.random.default_rng(11)
    a = rng.normal(0.0, sd_a, (4000, n))
    b = rng.normal(delta, sd_b, (4000, n))
    se = np.sqrt(a.var(axis=1, ddof=1) / n + b.var(axis=1, ddof=1) / n)
    found = np.abs(b.mean(axis=1) - a.mean(axis=1)) > 1.959964 * se
    assert found.mean() == pytest.approx(0.8, abs=0.025)
    with pytest.raises(ValueError, match="difference of 0"):
        models_to_resolve(1.0, 1.0, 0.0)
