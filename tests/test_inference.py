"""Folding BN into the convolution before it: same logits, original untouched, every model.

The reference is the unfolded network itself in eval mode, with every BN given random scale,
shift and running statistics (at initialisation BN is the identity map, so folding it would
prove nothing). Models above 1.6GF are marked slow: building them dominates the cost.
"""

from __future__ import annotations

import pytest
import torch
import torchvision
from _models import randomise_batchnorm
from torch import nn

from regnet_tutorial import create_model, fuse_for_inference, list_models
from regnet_tutorial.inference import count_batchnorms, fold_conv_bn

RESOLUTION, BATCH = 64, 2
FAST = {"regnetx_200mf", "regnety_200mf", "regnetx_400mf_tv", "regnety_400mf", "regnety_1_6gf_tv"}


def relative_error(a: torch.Tensor, b: torch.Tensor) -> float:
    return ((a - b).abs().max() / b.abs().max()).item()


def images(seed: int = 1) -> torch.Tensor:
    return torch.randn(BATCH, 3, RESOLUTION, RESOLUTION, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize(
    "name",
    [pytest.param(n, marks=[] if n in FAST else [pytest.mark.slow]) for n in list_models()],
)
def test_folded_model_gives_the_same_logits(name: str) -> None:
    model = randomise_batchnorm(create_model(name)).train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    fused = fuse_for_inference(model)
    assert count_batchnorms(fused) == 0 and count_batchnorms(model) > 0
    # The original is untouched: same mode, same tensors (running stats included).
    assert model.training
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert not fused.training
    with torch.no_grad():
        assert relative_error(fused(images()), model.eval()(images())) < 1e-5


def test_fold_conv_bn_matches_the_formula_by_hand() -> None:
    """One channel: conv weight 2, BN (gamma 3, beta 1, mu 0.5, var 4 - eps) -> w' = 3, b' = 0.25."""
    conv = nn.Conv2d(1, 1, 1, bias=False)
    bn = nn.BatchNorm2d(1).eval()
    with torch.no_grad():
        conv.weight.fill_(2.0)
        bn.weight.fill_(3.0)
        bn.bias.fill_(1.0)
        bn.running_mean.fill_(0.5)
        bn.running_var.fill_(4.0 - bn.eps)
    folded = fold_conv_bn(conv, bn)
    assert folded.weight.item() == pytest.approx(3.0) and folded.bias.item() == pytest.approx(0.25)
    x = torch.tensor([[[[1.0, -2.0]]]])
    assert torch.allclose(folded(x), bn(conv(x)))


def test_torchvision_regnet_folds_too_and_a_folded_model_is_refused() -> None:
    """torchvision's Conv2dNormActivation is a Sequential (conv, BN, ReLU), so it folds; a model
    without a plain conv+BN pair is refused with a clear error instead of returned unchanged."""
    tv = randomise_batchnorm(torchvision.models.regnet_y_400mf()).eval()
    fused = fuse_for_inference(tv)
    assert count_batchnorms(fused) == 0
    with torch.no_grad():
        assert relative_error(fused(images()), tv(images())) < 1e-5
    with pytest.raises(ValueError, match="no Conv2d followed by BatchNorm2d"):
        fuse_for_inference(fused)


def test_batchnorm_without_running_stats_is_refused() -> None:
    with pytest.raises(ValueError, match="track_running_stats"):
        fold_conv_bn(nn.Conv2d(3, 4, 1), nn.BatchNorm2d(4, track_running_stats=False))


def test_folded_model_works_in_channels_last() -> None:
    model = randomise_batchnorm(create_model("regnety_200mf")).eval()
    fused = fuse_for_inference(model).to(memory_format=torch.channels_last)
    x = images().to(memory_format=torch.channels_last)
    with torch.no_grad():
        assert relative_error(fused(x), model(images())) < 1e-5


@pytest.mark.slow  # torch.compile: ~6 s
def test_folded_model_traces_under_torch_compile() -> None:
    """Dynamo + AOTAutograd (backend "aot_eager": the graph capture, no C++ code generation,
    a few seconds); the inductor backend is exercised in the slow test below."""
    model = randomise_batchnorm(create_model("regnetx_200mf", num_classes=10)).eval()
    compiled = torch.compile(fuse_for_inference(model), backend="aot_eager")
    with torch.no_grad():
        assert relative_error(compiled(images()), model(images())) < 1e-5


@pytest.mark.slow
def test_folded_model_under_inductor() -> None:
    """The default backend generates and compiles C++ (about a minute on a 2-core CPU)."""
    model = randomise_batchnorm(create_model("regnetx_200mf", num_classes=10)).eval()
    compiled = torch.compile(fuse_for_inference(model))
    with torch.no_grad():
        assert relative_error(compiled(images()), model(images())) < 1e-5
