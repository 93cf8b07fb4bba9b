"""Analytic complexity (flops, params, acts) against two independent references.

1. The built network, measured: ``torch.utils.flop_counter.FlopCounterMode`` counts each
   multiply-add of a conv or matmul as 2 flops and ignores bias adds, so the paper's count
   is ``FlopCounterMode / 2 + bias adds``; bias adds, activations and parameters are
   collected from the modules themselves (forward hooks, ``parameters()``). Networks are
   built on the meta device: shapes only, no memory, no arithmetic.
2. A one-block network counted by hand from first principles.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from regnet_tutorial import AnyNet, StageSpec, create_model, get_card, list_models
from regnet_tutorial.complexity import Complexity, model_complexity, stage_complexity

PARTS = ("stem", "s1", "s2", "s3", "s4", "head")


def _submodule_name(part: str) -> str:
    return f"stages.{part}" if part.startswith("s") and part != "stem" else part


def _part_of(module_name: str) -> str:
    """``"stages.s2.b1.f.a.conv"`` -> ``"s2"``, ``"stem.conv"`` -> ``"stem"``."""
    parts = module_name.split(".")
    return parts[1] if parts[0] == "stages" else parts[0]


def _without_batch_norm(model: AnyNet) -> AnyNet:
    """``model`` with each BatchNorm2d replaced by the identity, in place.

    BN costs no flops and no activations in the paper's count, and on the meta device its
    shape checks take half the time of a forward pass.
    """
    for name, module in list(model.named_modules()):
        if isinstance(module, nn.BatchNorm2d):
            parent, _, child = name.rpartition(".")
            setattr(model.get_submodule(parent), child, nn.Identity())
    return model


def _flops_and_acts(model: AnyNet, resolution: int, in_channels: int) -> dict[str, tuple[int, int]]:
    """Per part: FlopCounterMode / 2 + bias adds, and the output numels of convs and linears."""
    names = {m: n for n, m in model.named_modules()}
    bias_adds: dict[str, int] = {}
    acts: dict[str, int] = {}

    def record(module: nn.Module, _inputs: object, output: torch.Tensor) -> None:
        part = _part_of(names[module])
        acts[part] = acts.get(part, 0) + output.numel()
        if module.bias is not None:
            positions = output.numel() // output.shape[1]  # batch 1: output pixels per channel
            bias_adds[part] = bias_adds.get(part, 0) + module.bias.numel() * positions

    hooks = [
        m.register_forward_hook(record) for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))
    ]
    counter = FlopCounterMode(display=False)
    with torch.no_grad(), counter:
        model(torch.empty(1, in_channels, resolution, resolution, device="meta"))
    for h in hooks:
        h.remove()
    counts = counter.get_flop_counts()
    measured = {}
    for part in acts:
        flop_counter = sum(counts[f"AnyNet.{_submodule_name(part)}"].values())
        assert flop_counter % 2 == 0  # FlopCounterMode counts 2 per multiply-add
        measured[part] = (flop_counter // 2 + bias_adds.get(part, 0), acts[part])
    return measured


def measure(
    name: str | StageSpec, resolutions: tuple[int, ...], num_classes: int = 1000, in_channels: int = 3
) -> tuple[int, dict[int, dict[str, Complexity]]]:
    """Build ``name`` (or a spec) on the meta device; its parameter count and per-part complexity
    at each resolution."""
    with torch.device("meta"):
        if isinstance(name, StageSpec):
            model = AnyNet(name, num_classes=num_classes, in_channels=in_channels).eval()
        else:
            model = create_model(name, num_classes=num_classes, in_channels=in_channels).eval()
    total_params = sum(p.numel() for p in model.parameters())
    params = {
        part: sum(p.numel() for p in model.get_submodule(_submodule_name(part)).parameters())
        for part in PARTS if _submodule_name(part) in dict(model.named_modules())
    }
    model = _without_batch_norm(model)
    per_resolution = {}
    for r in resolutions:
        flops_acts = _flops_and_acts(model, r, in_channels)
        assert flops_acts.keys() == params.keys()
        per_resolution[r] = {p: Complexity(f, params[p], a) for p, (f, a) in flops_acts.items()}
    return total_params, per_resolution


# Models above 4GF only in the full suite (`make test`): each takes seconds on the meta device.
EVERY_MODEL = [pytest.param(n, marks=[pytest.mark.slow] if get_card(n).gigaflops > 4 else []) for n in list_models()]


@pytest.mark.parametrize("name", EVERY_MODEL)
def test_matches_the_built_network_for_every_model(name: str) -> None:
    resolutions = (224, 193)  # 193: odd, and not a multiple of the output stride 32
    total_params, measured = measure(name, resolutions)
    for r in resolutions:
        ours = stage_complexity(name, r)
        assert ours == measured[r], (name, r)
        total = model_complexity(name, r)
        assert total.params == total_params
        assert total == sum(ours.values(), Complexity())


@pytest.mark.parametrize(
    ("name", "resolution", "num_classes", "in_channels"),
    [("regnetx_200mf", 225, 10, 1), ("regnety_400mf", 17, 37, 4), ("regnety_200mf", 1, 1000, 3)],
)
def test_other_inputs_and_classifiers(name: str, resolution: int, num_classes: int, in_channels: int) -> None:
    total_params, measured = measure(name, (resolution,), num_classes, in_channels)
    ours = stage_complexity(name, resolution, num_classes, in_channels)
    assert ours == measured[resolution]
    assert sum(cx.params for cx in ours.values()) == total_params


SMALL_SKELETON_SPECS = [
    # The small-image skeleton (stem stride 1) with 1 to 4 stages, mixed b and g.
    StageSpec((2,), (48,), (16,), (1.0,), (2,), stem_stride=1),
    StageSpec((1, 3), (24, 64), (4, 8), (0.5, 1.0), (2, 2), stem_stride=1),
    StageSpec((1, 2, 4, 1), (16, 48, 96, 256), (2, 8, 24, 32), (0.25, 1.0, 0.5, 1.0), (2, 2, 2, 2),
              se_ratio=0.25, stem_width=16, stem_stride=1),
]


@pytest.mark.parametrize("spec", SMALL_SKELETON_SPECS, ids=["1stage", "2stages", "4stages"])
@pytest.mark.parametrize(("resolution", "in_channels"), [(28, 1), (32, 3)])
def test_small_skeleton_matches_the_built_network(spec: StageSpec, resolution: int, in_channels: int) -> None:
    total_params, measured = measure(spec, (resolution,), 10, in_channels)
    ours = stage_complexity(spec, resolution, 10, in_channels)
    assert ours == measured[resolution]
    assert sum(cx.params for cx in ours.values()) == total_params
    # Stride 1 in the stem keeps the full 28 x 28 map: its output has resolution**2 * width elements.
    assert ours["stem"].acts == resolution**2 * spec.stem_width


def test_parts_are_stem_stages_head_and_add_up() -> None:
    parts = stage_complexity("regnety_800mf")
    assert tuple(parts) == PARTS
    total = model_complexity("regnety_800mf")
    assert total.flops == sum(p.flops for p in parts.values())
    assert total.params == sum(p.params for p in parts.values())
    assert total.acts == sum(p.acts for p in parts.values())
    three_stages = StageSpec((1, 1, 2), (16, 32, 64), (8, 8, 8), (1.0, 1.0, 1.0), (2, 2, 2))
    assert tuple(stage_complexity(three_stages)) == ("stem", "s1", "s2", "s3", "head")


def test_one_block_network_counted_by_hand() -> None:
    # stem 3->8 (stride 2), one Y block 8->16 (stride 2, group width 8, SE 0.25), head -> 10.
    spec = StageSpec(
        depths=(1,), widths=(16,), group_widths=(8,), bottleneck_multipliers=(1.0,),
        strides=(2,), se_ratio=0.25, stem_width=8,
    )
    r = 32
    s, t = r // 2, r // 4  # 32 -> 16 after the stem, 16 -> 8 in the block's 3x3 and shortcut
    bn = lambda c: 2 * c  # noqa: E731  (scale and shift)
    stem = Complexity(flops=3 * 3 * 3 * 8 * s * s, params=3 * 3 * 3 * 8 + bn(8), acts=8 * s * s)
    a = Complexity(8 * 16 * s * s, 8 * 16 + bn(16), 16 * s * s)  # 1x1 at 16x16
    b = Complexity(3 * 3 * 8 * 16 * t * t, 3 * 3 * 8 * 16 + bn(16), 16 * t * t)  # 2 groups of 8
    w_se = 2  # a quarter of the block's input width 8
    se = Complexity(16 * w_se + w_se + w_se * 16 + 16, 16 * w_se + w_se + w_se * 16 + 16, w_se + 16)
    c = Complexity(16 * 16 * t * t, 16 * 16 + bn(16), 16 * t * t)
    proj = Complexity(8 * 16 * t * t, 8 * 16 + bn(16), 16 * t * t)
    head = Complexity(16 * 10 + 10, 16 * 10 + 10, 10)
    parts = stage_complexity(spec, resolution=r, num_classes=10, in_channels=3)
    assert parts == {"stem": stem, "s1": a + b + se + c + proj, "head": head}
    assert model_complexity(spec, r, 10, 3) == stem + a + b + se + c + proj + head


def test_name_and_spec_give_the_same_count() -> None:
    assert model_complexity("regnetx_1_6gf") == model_complexity(get_card("regnetx_1_6gf").stages())
    assert model_complexity("RegNetX-1.6GF") == model_complexity("regnetx_1_6gf")
    # The two rounding rules differ for RegNetX-400MF, so their counts must too.
    assert model_complexity("regnetx_400mf") != model_complexity("regnetx_400mf_tv")


def test_flops_grow_with_the_number_of_pixels() -> None:
    # Away from the head, every conv's cost scales with output pixels: 2x side ~ 4x flops.
    small, large = model_complexity("regnetx_3_2gf", 224), model_complexity("regnetx_3_2gf", 448)
    assert 3.9 < large.flops / small.flops < 4.0
    assert large.params == small.params


@pytest.mark.parametrize("bad", [0, -224, 2.5, True, "224"])
def test_bad_resolution_is_named(bad: object) -> None:
    with pytest.raises(ValueError, match="resolution"):
        model_complexity("regnetx_200mf", resolution=bad)  # type: ignore[arg-type]


def test_bad_model_arguments_are_named() -> None:
    with pytest.raises(ValueError, match="num_classes"):
        model_complexity("regnetx_200mf", num_classes=0)
    with pytest.raises(ValueError, match="in_channels"):
        model_complexity("regnetx_200mf", in_channels=-1)
    with pytest.raises(KeyError, match="list_models"):
        model_complexity("regnetz_400mf")
    with pytest.raises(TypeError, match="StageSpec or a model name"):
        model_complexity(42)  # type: ignore[arg-type]
