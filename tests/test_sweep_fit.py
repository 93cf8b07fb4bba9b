"""The quantized-linear fit (paper, Section 3.3): it recovers RegNet settings from their widths."""

from __future__ import annotations

import math

import numpy as np
import pytest

from regnet_tutorial import RegNetParams, get_card, quantized_widths
from regnet_tutorial.sweep.fit import block_widths, e_fit, fit_linear, predicted_widths


def test_e_fit_by_hand() -> None:
    # Predicted [8, 8, 32] for observed [8, 16, 16]: (0 + log 2 + log 2) / 3.
    assert math.isclose(float(e_fit([8, 16, 16], [8, 8, 32])), 2 * math.log(2) / 3)
    assert float(e_fit([8, 16], [8, 16])) == 0.0


def test_predicted_widths_match_the_design_space_generator() -> None:
    for name in ("regnetx_200mf", "regnetx_3_2gf", "regnety_16gf"):
        p = get_card(name).params
        assert predicted_widths(p.depth, p.w0, p.wa, p.wm).tolist() == quantized_widths(p)


@pytest.mark.parametrize(
    "params",
    [get_card(n).params for n in ("regnetx_200mf", "regnetx_800mf", "regnety_4_0gf")]
    + [RegNetParams(30, 16, 7.3, 2.9, 8), RegNetParams(9, 64, 120.0, 1.6, 8)],
    ids=["x200mf", "x800mf", "y4gf", "d30", "d9"],
)
def test_fit_recovers_a_known_regnet(params: RegNetParams) -> None:
    observed = quantized_widths(params)
    fit = fit_linear(observed)
    assert fit.e_fit == 0.0
    assert list(fit.predicted) == observed
    # An equivalent setting: the design-space generator gives the same widths from it.
    assert quantized_widths(RegNetParams(len(observed), fit.w0, fit.wa, fit.wm, 8)) == observed
    assert fit.w0 == params.w0  # w_0 is the first block's width
    assert abs(fit.wm - params.wm) < 0.15


def test_fit_of_non_linear_widths_is_positive_and_not_worse_than_a_known_setting() -> None:
    observed = block_widths([1, 1, 4, 2], [8, 256, 32, 1024])
    fit = fit_linear(observed)
    assert fit.e_fit > 0.1
    assert fit.e_fit <= float(e_fit(observed, predicted_widths(8, 8, 100.0, 2.0))) + 1e-12
    assert math.isclose(fit.e_fit, float(np.mean(np.abs(np.log(np.array(fit.predicted) / observed)))))


def test_block_widths_and_bad_input() -> None:
    assert block_widths([2, 1], [24, 56]) == [24, 24, 56]
    with pytest.raises(ValueError, match="per-block widths"):
        fit_linear([])
