"""The AnyNet module: structure, shapes, initialisation, registry errors."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from regnet_tutorial import AnyNet, DesignSpaceError, StageSpec, create_model, get_card, list_models
from regnet_tutorial.blocks import ResBottleneckBlock

TINY = StageSpec(
    depths=(1, 2), widths=(16, 32), group_widths=(8, 8), bottleneck_multipliers=(1.0, 1.0),
    strides=(2, 2), se_ratio=0.25, stem_width=8,
)


def test_forward_shapes_and_output_stride() -> None:
    model = create_model("regnety_200mf", num_classes=10, in_channels=1).eval()
    x = torch.randn(2, 1, 64, 96)
    assert model(x).shape == (2, 10)
    features = model.forward_features(x)
    assert features.shape == (2, get_card("regnety_200mf").stages().widths[-1], 2, 3)  # stride 32


def test_module_names_follow_the_figure() -> None:
    model = create_model("regnety_200mf")
    names = dict(model.named_modules())
    for name in [
        "stem.conv", "stem.bn", "stages.s1.b1.proj.conv", "stages.s1.b1.f.a.conv",
        "stages.s1.b1.f.b.conv", "stages.s1.b1.f.se.squeeze", "stages.s1.b1.f.se.excite",
        "stages.s1.b1.f.c.bn", "stages.s4.b7.f.c.conv", "head.fc",
    ]:
        assert name in names, name
    assert "stages.s4.b8" not in names
    assert "stages.s2.b1.f.se" not in dict(create_model("regnetx_200mf").named_modules())


def test_block_structure_matches_the_x_block() -> None:
    spec = get_card("regnetx_200mf").stages()
    model = AnyNet(spec)
    b = model.stages.s3.b1
    assert b.f.a.conv.kernel_size == (1, 1) and b.f.c.conv.kernel_size == (1, 1)
    assert b.f.b.conv.kernel_size == (3, 3) and b.f.b.conv.stride == (2, 2)  # the 3x3 carries the stride
    assert b.f.b.conv.groups == spec.widths[2] // spec.group_widths[2]
    assert b.proj is not None and b.proj.conv.stride == (2, 2)
    assert model.stages.s3.b2.proj is None  # same width, stride 1: identity shortcut
    assert not any(m.bias is not None for m in model.modules() if isinstance(m, nn.Conv2d))


def test_se_width_is_a_quarter_of_the_block_input() -> None:
    model = create_model("regnety_200mf")
    spec = get_card("regnety_200mf").stages()
    w_in = [spec.stem_width, *spec.widths[:-1]]
    for i in range(4):
        first = getattr(model.stages, f"s{i + 1}").b1
        assert first.f.se.squeeze.out_channels == round(0.25 * w_in[i])
        if spec.depths[i] > 1:
            assert getattr(model.stages, f"s{i + 1}").b2.f.se.squeeze.out_channels == round(0.25 * spec.widths[i])


def test_pycls_initialisation() -> None:
    torch.manual_seed(0)
    model = create_model("regnetx_1_6gf")
    conv = model.stages.s4.b1.f.a.conv  # large enough for a tight statistical check
    fan_out = conv.kernel_size[0] * conv.kernel_size[1] * conv.out_channels
    assert conv.weight.std().item() == pytest.approx(math.sqrt(2 / fan_out), rel=0.02)
    assert model.head.fc.weight.std().item() == pytest.approx(0.01, rel=0.02)
    assert torch.all(model.head.fc.bias == 0)
    bn = model.stages.s1.b1.f.c.bn
    assert torch.all(bn.weight == 1) and torch.all(bn.bias == 0)


def test_zero_init_last_bn_makes_blocks_identities() -> None:
    model = AnyNet(TINY, num_classes=3, zero_init_last_bn=True).eval()
    for m in model.modules():
        if isinstance(m, ResBottleneckBlock):
            assert torch.all(m.f.c.bn.weight == 0)
    block = model.stages.s2.b2  # identity shortcut
    x = torch.randn(1, 32, 4, 4)  # signed, so that the block's final ReLU shows
    assert (x < 0).any()
    assert torch.equal(block(x), x.clamp(min=0))  # relu(x + 0): the residual branch adds nothing


def test_block_output_passes_through_the_final_relu() -> None:
    """relu(shortcut(x) + f(x)) (paper, Figure 4): on signed input with random BN statistics the
    sum has negative entries, which the block must clip; the stem and branch ReLUs cannot hide it."""
    torch.manual_seed(0)
    block = ResBottleneckBlock(16, 16, stride=1, group_width=8, se_ratio=0.25).eval()
    for m in block.modules():
        if isinstance(m, nn.BatchNorm2d):
            nn.init.normal_(m.weight)
            nn.init.normal_(m.bias)
    x = torch.randn(2, 16, 5, 5)
    with torch.no_grad():
        out = block(x)
        pre = x + block.f(x)  # identity shortcut: computed independently of forward()
    assert (pre < 0).any()
    assert torch.equal(out, pre.clamp(min=0))


@pytest.mark.parametrize("w_out, stride", [(16, 1), (24, 2)])  # identity and projection shortcut
def test_in_place_residual_sum_trains_like_the_written_out_formula(w_out: int, stride: int) -> None:
    """forward() adds and clips in place in f(x)'s output; in training mode the output and every
    gradient must equal those of relu(proj(x) + f(x)) evaluated out of place on the same block."""
    torch.manual_seed(0)
    block = ResBottleneckBlock(16, w_out, stride=stride, group_width=8, se_ratio=0.25).train()
    x = torch.randn(3, 16, 6, 6, requires_grad=True)
    x_before = x.detach().clone()
    grad_out = torch.randn(3, w_out, 6 // stride, 6 // stride)

    def grads(fn) -> list[torch.Tensor]:
        block.zero_grad(set_to_none=True)
        x.grad = None
        out = fn(x)
        out.backward(grad_out)
        return [out.detach(), x.grad.clone()] + [p.grad.clone() for p in block.parameters()]

    def written_out(inp: torch.Tensor) -> torch.Tensor:
        shortcut = inp if block.proj is None else block.proj(inp)
        return torch.relu(shortcut + block.f(inp))

    for ours, ref in zip(grads(block), grads(written_out), strict=True):
        torch.testing.assert_close(ours, ref, rtol=1e-6, atol=1e-6)
    assert torch.equal(x.detach(), x_before)  # the block's input itself is never modified


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"num_classes": 0}, "num_classes=0"),
    ({"in_channels": -1}, "in_channels=-1"),
])
def test_invalid_model_arguments(kwargs: dict, match: str) -> None:
    with pytest.raises(DesignSpaceError, match=match):
        AnyNet(TINY, **kwargs)


def test_unknown_model_name_suggests() -> None:
    with pytest.raises(KeyError, match="Unknown model 'regnetx_300mf'.*list_models"):
        create_model("regnetx_300mf")


def test_names_and_patterns() -> None:
    assert get_card("RegNetX-1.6GF").name == "regnetx_1_6gf"
    assert list_models("regnety_*_tv")[-1] == "regnety_128gf_tv"
    assert all(get_card(n).rounding == "torchvision" for n in list_models("*_tv"))


def test_the_flop_regime_in_the_name_is_the_counted_flops() -> None:
    from regnet_tutorial.complexity import model_complexity
    from regnet_tutorial.models import MODEL_CARDS, regime_gigaflops

    assert get_card("regnetx_400mf").gigaflops == 0.4 and get_card("regnety_1_6gf_tv").gigaflops == 1.6
    assert get_card("regnety_128gf_tv").gigaflops == 128.0
    for card in MODEL_CARDS.values():  # the name rounds the analytic count (within 6% for every model)
        assert model_complexity(card.stages()).flops / 1e9 == pytest.approx(card.gigaflops, rel=0.06), card.name
    with pytest.raises(ValueError, match="names no flop regime"):
        regime_gigaflops("RegNetX")


def test_stem_stride_one_is_the_small_skeleton() -> None:
    """The small skeleton (stem stride 1) keeps 2 x 2 pixels after four stride-2 stages at 28 px, where the
    ImageNet stem leaves one; it sees a 28 px image as the ImageNet stem sees a 56 px one (same maps after
    the stem), so its stages' outputs match that network's shape for shape."""
    small = create_model("regnetx_200mf", 10, stem_stride=1).eval()
    imagenet = create_model("regnetx_200mf", 10).eval()
    assert small.stem.conv.stride == (1, 1) and imagenet.stem.conv.stride == (2, 2)
    with torch.no_grad():
        assert small.forward_features(torch.zeros(1, 3, 28, 28)).shape == (1, 368, 2, 2)
        assert imagenet.forward_features(torch.zeros(1, 3, 28, 28)).shape == (1, 368, 1, 1)
        assert imagenet.forward_features(torch.zeros(1, 3, 56, 56)).shape == (1, 368, 2, 2)
    assert sum(p.numel() for p in small.parameters()) == sum(p.numel() for p in imagenet.parameters())
