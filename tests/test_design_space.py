"""The design space against the paper's equations, two other implementations and bad input."""

from __future__ import annotations

import math

import pytest
import timm
import torch
from torchvision.models.regnet import BlockParams

from regnet_tutorial import DesignSpaceError, RegNetParams, StageSpec, generate_stages, get_card, list_models
from regnet_tutorial.design_space import (
    MAX_STAGES,
    block_exponents,
    linear_widths,
    make_compatible,
    quantized_widths,
)

PYCLS_MODELS = [n for n in list_models() if not n.endswith("_tv")]
TV_MODELS = list_models("*_tv")


def test_registry_has_every_published_model() -> None:
    assert len(PYCLS_MODELS) == 24  # 12 RegNetX + 12 RegNetY, 200MF to 32GF
    assert len(TV_MODELS) == 15  # torchvision's builders: 7 RegNetX + 8 RegNetY
    assert {get_card(n).family for n in PYCLS_MODELS} == {"RegNetX", "RegNetY"}


def test_equations_step_by_step() -> None:
    """Eq. 2-4 evaluated by hand for RegNetX-200MF (d=13, w0=24, wa=36.44, wm=2.49)."""
    p = get_card("regnetx_200mf").params
    u = linear_widths(p)
    assert u[0] == 24 and u[12] == pytest.approx(24 + 12 * 36.44)
    s = block_exponents(p)
    assert s[1] == pytest.approx(math.log((24 + 36.44) / 24) / math.log(2.49))
    w = quantized_widths(p)
    assert all(x % 8 == 0 for x in w)
    assert w == sorted(w)  # widths never decrease along the network
    spec = generate_stages(p)
    # The paper's RegNetX-200MF: depths (1, 1, 4, 7), widths (24, 56, 152, 368), g=8.
    assert spec.depths == (1, 1, 4, 7)
    assert spec.widths == (24, 56, 152, 368)
    assert spec.group_widths == (8, 8, 8, 8)
    assert spec.strides == (2, 2, 2, 2)


@pytest.mark.parametrize("name", TV_MODELS)
def test_torchvision_rule_matches_torchvision(name: str) -> None:
    """Our ``torchvision`` rule reproduces torchvision's own generator, stage by stage."""
    card = get_card(name)
    p = card.params
    tv = BlockParams.from_init_params(
        depth=p.depth, w_0=p.w0, w_a=p.wa, w_m=p.wm, group_width=p.group_width,
        se_ratio=p.se_ratio or None,
    )
    spec = card.stages()
    assert list(spec.depths) == list(tv.depths)
    assert list(spec.widths) == list(tv.widths)
    assert list(spec.group_widths) == list(tv.group_widths)


@pytest.mark.parametrize("name", PYCLS_MODELS)
def test_pycls_rule_matches_timm(name: str) -> None:
    """Our ``pycls`` rule gives the stages of timm's models (timm follows the paper's code)."""
    card = get_card(name)
    with torch.device("meta"):
        model = timm.create_model(card.timm)
    depths, widths, groups = [], [], []
    for i in range(1, 5):
        stage = getattr(model, f"s{i}")
        blocks = list(stage.children())
        depths.append(len(blocks))
        conv2 = blocks[0].conv2.conv
        widths.append(blocks[0].conv3.conv.out_channels)
        groups.append(conv2.out_channels // conv2.groups)
    spec = card.stages()
    assert (list(spec.depths), list(spec.widths), list(spec.group_widths)) == (depths, widths, groups)


def test_the_rules_differ_on_exactly_three_published_models() -> None:
    differ = sorted(
        get_card(n).display_name for n in TV_MODELS
        if n[:-3] in PYCLS_MODELS and get_card(n).stages() != get_card(n[:-3]).stages()
    )
    assert differ == ["RegNetX-400MF (tv)", "RegNetY-8.0GF (tv)", "RegNetY-800MF (tv)"]


@pytest.mark.parametrize(
    ("w_b", "g", "pycls", "torchvision"),
    [
        (20, 8, 16, 24),  # a tie: half to even (2.5 -> 2) vs half up (2.5 -> 3)
        (36, 24, 48, 48),  # 1.5 rounds up under both rules
        (60, 24, 48, 72),  # 2.5: even rounds down to 48, half up gives 72
        (10, 8, 8, 16),  # 10 -> 8 shrinks by 20%: torchvision's guard adds a group
        (5, 8, 5, 5),  # g is capped at w*b first, so one group of 5
    ],
)
def test_rounding_rules_on_ties(w_b: int, g: int, pycls: int, torchvision: int) -> None:
    assert make_compatible([w_b], [1.0], [g], "pycls")[0] == [pycls]
    assert make_compatible([w_b], [1.0], [g], "torchvision")[0] == [torchvision]


@pytest.mark.parametrize("w_b", range(8, 400, 4))
@pytest.mark.parametrize("g", [8, 16, 24, 40, 56, 112])
def test_torchvision_rule_never_shrinks_more_than_ten_percent(w_b: int, g: int) -> None:
    widths, groups = make_compatible([w_b], [1.0], [g], "torchvision")
    assert widths[0] >= 0.9 * w_b and widths[0] % groups[0] == 0
    pycls_widths, _ = make_compatible([w_b], [1.0], [g], "pycls")
    assert abs(pycls_widths[0] - w_b) <= groups[0] / 2  # pycls: nearest multiple


def test_group_width_is_capped_at_bottleneck_width() -> None:
    widths, groups = make_compatible([24], [0.5], [64], "pycls")
    assert groups == [12] and widths == [24]


@pytest.mark.parametrize(
    ("kwargs", "words"),
    [
        ({"w0": 0}, ["w0=0", "multiple of 8"]),
        ({"w0": -8}, ["w0=-8", "positive"]),
        ({"w0": 20}, ["w0=20", "multiple of 8", "Try w0=16"]),
        ({"wa": -1.0}, ["wa=-1.0", ">= 0"]),
        ({"wm": 1.0}, ["wm=1.0", "> 1"]),
        ({"wm": 0.5}, ["wm=0.5", "> 1"]),
        ({"depth": 0}, ["depth=0", ">= 1"]),
        ({"depth": 2.5}, ["depth=2.5", "integer"]),
        ({"group_width": 0}, ["group_width=0", ">= 1"]),
        ({"bottleneck_multiplier": 0}, ["bottleneck_multiplier=0", "> 0"]),
        ({"bottleneck_multiplier": -1.0}, ["bottleneck_multiplier=-1.0", "> 0"]),
        ({"bottleneck_multiplier": 1.5}, ["bottleneck_multiplier=1.5", "integer"]),
        ({"se_ratio": -0.25}, ["se_ratio=-0.25", "0 <= se_ratio <= 1"]),
        ({"wa": float("nan")}, ["wa=nan", "finite"]),
    ],
)
def test_invalid_parameters_name_the_problem(kwargs: dict, words: list[str]) -> None:
    base = {"depth": 13, "w0": 24, "wa": 36.44, "wm": 2.49, "group_width": 8}
    with pytest.raises(DesignSpaceError) as info:
        RegNetParams(**{**base, **kwargs})
    assert isinstance(info.value, ValueError)
    for word in words:
        assert word in str(info.value)


def test_too_many_stages_is_refused() -> None:
    params = RegNetParams(depth=30, w0=8, wa=100.0, wm=1.5, group_width=8)
    with pytest.raises(DesignSpaceError, match=rf"stages .* at most {MAX_STAGES}"):
        generate_stages(params)


def test_unknown_rounding_rule() -> None:
    with pytest.raises(DesignSpaceError, match="rounding='nearest'.*pycls.*torchvision"):
        generate_stages(get_card("regnetx_200mf").params, rounding="nearest")  # type: ignore[arg-type]


def test_stage_spec_checks_lengths_and_groups() -> None:
    with pytest.raises(DesignSpaceError, match="widths has 1 entries but depths has 2"):
        StageSpec(depths=(1, 1), widths=(32,), group_widths=(8, 8), bottleneck_multipliers=(1, 1), strides=(2, 2))
    with pytest.raises(DesignSpaceError, match=r"group_widths\[0\]=12.*divides.*make_compatible"):
        StageSpec(depths=(1,), widths=(32,), group_widths=(12,), bottleneck_multipliers=(1.0,), strides=(2,))
    with pytest.raises(DesignSpaceError, match="1 to 4 stages"):
        StageSpec(depths=(1,) * 5, widths=(8,) * 5, group_widths=(8,) * 5, bottleneck_multipliers=(1,) * 5,
                  strides=(2,) * 5)


def test_params_are_frozen() -> None:
    p = get_card("regnety_200mf").params
    with pytest.raises(AttributeError):
        p.w0 = 32  # type: ignore[misc]
