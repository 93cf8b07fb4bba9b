"""Design points that land exactly on a rounding tie (x.5), checked against pycls, timm and torchvision.

The RegNet generator rounds three times (paper, Section 3.3): the exponent ``s_j`` to an integer,
the width ``w0 * wm ** k`` to a multiple of 8, and the bottleneck width to a multiple of the group
width. The published models never hit an exact tie, so a rule that rounds half *up* where the
references round half to *even* would build every published network and still be wrong. Each
design point below is chosen so that one rounding lands on x.5 with exactly representable
numbers (``wm = 4``, ``u_j = 2 w0`` gives ``s_j = log 2 / log 4 = 0.5``).

The references, each written here from the formula its code documents:

* pycls ``generate_regnet`` / ``quantize_float`` / ``adjust_ws_gs_comp``: ``np.round`` and Python's
  ``round`` (both half to even) for all three roundings;
* timm ``models/regnet.py``: the same, in float32 ``torch.round`` (half to even); its ``*_tv``
  variants use ``make_divisible`` for the group step;
* torchvision ``BlockParams.from_init_params``: ``torch.round`` for the first two, and
  ``_make_divisible(v, g) = max(g, int(v + g / 2) // g * g)`` plus ``g`` if that shrank ``v`` by
  more than 10% (half up) for the group step.

The installed timm and torchvision functions are compared too.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import timm.models.regnet as timm_regnet
import torch
from torchvision.models.regnet import BlockParams

from regnet_tutorial.design_space import (
    RegNetParams,
    block_exponents,
    generate_stages,
    make_compatible,
    quantized_widths,
)

# --- independent reference implementations ---------------------------------------------------

def pycls_block_widths(p: RegNetParams, q: int = 8) -> list[int]:
    """pycls: u = w0 + wa j; k = np.round(log(u / w0) / log(wm)); w = np.round(w0 wm^k / q) q."""
    u = np.arange(p.depth) * p.wa + p.w0
    k = np.round(np.log(u / p.w0) / np.log(p.wm))
    return (np.round(p.w0 * np.power(p.wm, k) / q) * q).astype(int).tolist()


def torchvision_block_widths(p: RegNetParams, q: int = 8) -> list[int]:
    """torchvision: the same formula in float32 (torch's default dtype), torch.round half to even."""
    u = (np.arange(p.depth) * np.float32(p.wa) + np.float32(p.w0)).astype(np.float32)
    k = np.round(np.log(u / np.float32(p.w0)) / np.float32(math.log(p.wm))).astype(np.float32)
    return (np.round(np.float32(p.w0) * np.power(np.float32(p.wm), k) / q) * q).astype(int).tolist()


def stages_of(block_widths: list[int]) -> tuple[list[int], list[int]]:
    """(depths, widths): runs of equal block width."""
    runs = [(w, len(list(g))) for w, g in itertools.groupby(block_widths)]
    return [d for _, d in runs], [w for w, _ in runs]


def pycls_round_to_group(w_b: int, g: int) -> int:
    """pycls ``quantize_float(w_b, g) = int(round(w_b / g) * g)``: half to even."""
    return int(round(w_b / g) * g)


def torchvision_round_to_group(w_b: int, g: int) -> int:
    """torchvision ``_make_divisible``: half up, never below g, never shrinking by more than 10%."""
    new = max(g, int(w_b + g / 2) // g * g)
    return new + g if new < 0.9 * w_b else new


def reference_stages(p: RegNetParams, rule: str) -> tuple[list[int], list[int], list[int]]:
    """(depths, widths, group widths) by the reference formulas above (b = 1)."""
    widths_fn = pycls_block_widths if rule == "pycls" else torchvision_block_widths
    depths, widths = stages_of(widths_fn(p))
    groups = [min(p.group_width, w) for w in widths]
    round_fn = pycls_round_to_group if rule == "pycls" else torchvision_round_to_group
    return depths, [round_fn(w, g) for w, g in zip(widths, groups)], groups


def timm_stages(p: RegNetParams, min_ratio: float) -> tuple[list[int], list[int], list[int]]:
    """timm's own functions: ``generate_regnet`` then ``adjust_widths_groups_comp``."""
    widths, _, _ = timm_regnet.generate_regnet(p.wa, p.w0, p.wm, p.depth, p.group_width)
    depths, stage_widths = stages_of(widths)
    w, g = timm_regnet.adjust_widths_groups_comp(
        stage_widths, [1.0] * len(depths), [p.group_width] * len(depths), min_ratio
    )
    return depths, list(w), list(g)


def torchvision_stages(p: RegNetParams) -> tuple[list[int], list[int], list[int]]:
    bp = BlockParams.from_init_params(depth=p.depth, w_0=p.w0, w_a=p.wa, w_m=p.wm, group_width=p.group_width)
    return list(bp.depths), list(bp.widths), list(bp.group_widths)


def ours(p: RegNetParams, rule: str) -> tuple[list[int], list[int], list[int]]:
    spec = generate_stages(p, rounding=rule)  # type: ignore[arg-type]
    return list(spec.depths), list(spec.widths), list(spec.group_widths)


# --- the tie points ---------------------------------------------------------------------------

# s_j = log(u_j / w0) / log(4) for u_j / w0 = 1..8: 0, 0.5, 0.79, 1, 1.16, 1.29, 1.40, 1.5.
EXPONENT_TIE = RegNetParams(depth=8, w0=8, wa=8.0, wm=4.0, group_width=8)
# u_1 / w0 = 32: s_1 = 2.5 exactly.
EXPONENT_TIE_2_5 = RegNetParams(depth=2, w0=8, wa=248.0, wm=4.0, group_width=8)
# k = 1 for block 1 (s_1 = 0.76); w0 * wm = 20, and 20 / 8 = 2.5.
WIDTH_TIE = RegNetParams(depth=2, w0=8, wa=8.0, wm=2.5, group_width=8)
# k = 1 (s_1 = 0.85); 16 * 2.25 = 36, and 36 / 8 = 4.5.
WIDTH_TIE_4_5 = RegNetParams(depth=2, w0=16, wa=16.0, wm=2.25, group_width=8)
# Stage widths 40 and 72 (s_1 = log 1.8 / log 1.8 = 1), group width 16: 40 / 16 = 2.5, 72 / 16 = 4.5.
GROUP_TIE = RegNetParams(depth=2, w0=40, wa=32.0, wm=1.8, group_width=16)
# Stage width 56, group width 16: 3.5, a tie that half to even rounds *up*, like half up.
GROUP_TIE_ODD = RegNetParams(depth=1, w0=56, wa=0.0, wm=2.0, group_width=16)

POINTS = {
    "exponent 0.5 and 1.5": EXPONENT_TIE,
    "exponent 2.5": EXPONENT_TIE_2_5,
    "width 2.5 x 8": WIDTH_TIE,
    "width 4.5 x 8": WIDTH_TIE_4_5,
    "group 2.5 and 4.5 x 16": GROUP_TIE,
    "group 3.5 x 16": GROUP_TIE_ODD,
}


def test_the_points_really_are_ties() -> None:
    """The exponents and quotients are exactly x.5 in float64 (ours, pycls) and float32 (torch)."""
    assert block_exponents(EXPONENT_TIE)[1] == 0.5 and block_exponents(EXPONENT_TIE)[7] == 1.5
    assert block_exponents(EXPONENT_TIE_2_5)[1] == 2.5
    u32 = torch.arange(8) * 8.0 + 8  # torchvision's and timm's float32 arithmetic
    assert (torch.log(u32 / 8) / math.log(4))[[1, 7]].tolist() == [0.5, 1.5]
    assert 8 * 2.5 / 8 == 2.5 and 16 * 2.25 / 8 == 4.5 and 40 * 1.8 == 72.0


def test_exponent_tie_rounds_half_to_even() -> None:
    """s = 0.5 -> 0 and s = 2.5 -> 2 (half to even); a half-up rule would give 1 and 3."""
    assert quantized_widths(EXPONENT_TIE) == [8, 8, 32, 32, 32, 32, 32, 128]
    assert quantized_widths(EXPONENT_TIE_2_5) == [8, 128]
    assert generate_stages(EXPONENT_TIE).depths == (2, 5, 1)


def test_width_tie_rounds_half_to_even() -> None:
    """20 / 8 = 2.5 -> 16 and 36 / 8 = 4.5 -> 32; half up would give 24 and 40."""
    assert quantized_widths(WIDTH_TIE) == [8, 16]
    assert quantized_widths(WIDTH_TIE_4_5) == [16, 32]


def test_group_tie_differs_between_the_rules() -> None:
    """pycls: 2.5 -> 2 groups, 4.5 -> 4 (half to even); torchvision: 3 and 5 (half up)."""
    assert generate_stages(GROUP_TIE, "pycls").widths == (32, 64)
    assert generate_stages(GROUP_TIE, "torchvision").widths == (48, 80)
    assert generate_stages(GROUP_TIE_ODD, "pycls").widths == (64,)
    assert generate_stages(GROUP_TIE_ODD, "torchvision").widths == (64,)


@pytest.mark.parametrize("point", POINTS.values(), ids=POINTS.keys())
def test_block_widths_match_the_reference_formulas(point: RegNetParams) -> None:
    assert quantized_widths(point) == pycls_block_widths(point) == torchvision_block_widths(point)


@pytest.mark.parametrize("point", POINTS.values(), ids=POINTS.keys())
def test_pycls_rule_matches_pycls_and_timm(point: RegNetParams) -> None:
    assert ours(point, "pycls") == reference_stages(point, "pycls") == timm_stages(point, min_ratio=0.0)


@pytest.mark.parametrize("point", POINTS.values(), ids=POINTS.keys())
def test_torchvision_rule_matches_torchvision_and_timm_tv(point: RegNetParams) -> None:
    expected = reference_stages(point, "torchvision")
    assert ours(point, "torchvision") == expected == torchvision_stages(point) == timm_stages(point, min_ratio=0.9)


@pytest.mark.parametrize(("w_b", "g"), [(20, 8), (40, 16), (56, 16), (72, 16), (60, 24), (84, 24), (12, 8), (10, 8)])
def test_group_rounding_ties_against_both_references(w_b: int, g: int) -> None:
    """make_compatible alone on exact ties (w_b / g = n + 0.5) and near the 10% guard."""
    assert make_compatible([w_b], [1.0], [g], "pycls") == ([pycls_round_to_group(w_b, g)], [g])
    assert make_compatible([w_b], [1.0], [g], "torchvision") == ([torchvision_round_to_group(w_b, g)], [g])
    assert timm_regnet.adjust_widths_groups_comp([w_b], [1.0], [g], 0.0) == ([pycls_round_to_group(w_b, g)], [g])
    assert BlockParams._adjust_widths_groups_compatibilty([w_b], [1.0], [g]) == (
        [torchvision_round_to_group(w_b, g)], [g]
    )
