"""Our models are torchvision's and timm's RegNets: same parameters, same outputs.

Each reference model is built by the library itself with random weights (nothing is
downloaded), its batch-norm statistics and affine parameters are randomised too (so a
key that lands on the wrong, same-shaped BN would change the output), its state dict
is converted into our layout and loaded strictly, and both networks see the same input.

Cost on a 2-core CPU: building the 6.4GF-32GF models (random initialisation of up to
145M parameters) takes 2-7 s each, so those cases are marked slow; the forward passes
use 64x64 inputs, where even RegNetY-32GF is fast. Our side is built on the meta device
and receives the converted tensors by assignment, which skips a second initialisation.
"""

from __future__ import annotations

import pytest
import timm
import torch
import torchvision
import torchvision.models.regnet as tv_regnet
from _models import randomise_batchnorm
from torch import nn
from torchvision.models import get_model_weights

from regnet_tutorial import MODEL_CARDS, create_model
from regnet_tutorial.weights.convert import (
    CheckpointMismatchError,
    convert_state_dict,
    load_state_dict_strict,
)

TV_MODELS = {card.torchvision: name for name, card in MODEL_CARDS.items() if name.endswith("_tv")}
TIMM_MODELS = {card.timm: name for name, card in MODEL_CARDS.items() if card.timm is not None}


def _cases(mapping: dict[str, str]) -> list:
    return [
        pytest.param(ref, ours, id=ref, marks=[pytest.mark.slow] if MODEL_CARDS[ours].gigaflops > 4 else [])
        for ref, ours in mapping.items()
    ]


def count_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def assert_same_network(reference: nn.Module, ours_name: str, source: str) -> None:
    """Parameter counts agree and the converted weights reproduce ``reference``'s outputs."""
    generator = torch.Generator().manual_seed(0)
    randomise_batchnorm(reference, generator)
    reference.eval()
    with torch.device("meta"):  # shapes only; the converted tensors are assigned below
        ours = create_model(ours_name)
    assert count_params(ours) == count_params(reference)
    load_state_dict_strict(ours, convert_state_dict(reference.state_dict(), source), assign=True)
    assert all(t.device.type == "cpu" for t in [*ours.parameters(), *ours.buffers()])
    ours.eval()
    x = torch.randn(2, 3, 64, 64, generator=generator)
    with torch.no_grad():
        expected, got = reference(x), ours(x)
    assert expected.shape == got.shape == (2, 1000)
    assert expected.std() > 1e-2  # a live network, not one that outputs a constant
    # The same operations in the same order: the outputs agree to float32 rounding
    # (measured: exactly 0), well inside the bound of 1e-5.
    assert (got - expected).abs().max().item() <= 1e-5


# RegNetY-128GF (645M parameters, 2.6 GB) is too big to build here: its shapes are
# checked on the meta device in test_torchvision_regnet_y_128gf_parameter_count.
@pytest.mark.parametrize(("builder", "ours"), _cases({k: v for k, v in TV_MODELS.items() if k != "regnet_y_128gf"}))
def test_torchvision_model_is_ours(builder: str, ours: str) -> None:
    torch.manual_seed(0)
    reference = getattr(torchvision.models, builder)()
    assert count_params(reference) == get_model_weights(builder).DEFAULT.meta["num_params"]
    assert_same_network(reference, ours, "torchvision")


def test_all_torchvision_builders_are_covered() -> None:
    builders = {n for n in torchvision.models.list_models(module=torchvision.models) if n.startswith("regnet_")}
    assert builders == set(TV_MODELS)
    assert len(builders) == 15


def _torchvision_on_meta(builder: str, monkeypatch: pytest.MonkeyPatch) -> nn.Module:
    """torchvision's model built on the meta device (shapes, no memory).

    torchvision computes the stage widths with real tensor arithmetic, so only the
    network's construction, not the whole builder, can run under ``torch.device("meta")``.
    """
    real = tv_regnet.RegNet

    def on_meta(*args, **kwargs):
        with torch.device("meta"):
            return real(*args, **kwargs)

    monkeypatch.setattr(tv_regnet, "RegNet", on_meta)
    return getattr(torchvision.models, builder)()


def test_torchvision_regnet_y_128gf_parameter_count(monkeypatch: pytest.MonkeyPatch) -> None:
    reference = _torchvision_on_meta("regnet_y_128gf", monkeypatch)
    with torch.device("meta"):
        ours = create_model("regnety_128gf_tv")
    published = get_model_weights("regnet_y_128gf").DEFAULT.meta["num_params"]  # 644,812,894
    assert count_params(reference) == count_params(ours) == published
    assert {k: v.shape for k, v in convert_state_dict(reference.state_dict(), "torchvision").items()} == {
        k: v.shape for k, v in ours.state_dict().items()
    }


@pytest.mark.parametrize(
    ("builder", "pycls_name"),
    [("regnet_x_400mf", "regnetx_400mf"), ("regnet_y_800mf", "regnety_800mf"), ("regnet_y_8gf", "regnety_8_0gf")],
)
def test_torchvision_weights_do_not_fit_the_pycls_rounding(
    builder: str, pycls_name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The three models whose widths the two rounding rules round differently."""
    state_dict = convert_state_dict(_torchvision_on_meta(builder, monkeypatch).state_dict(), "torchvision")
    with torch.device("meta"):
        model = create_model(pycls_name)
    with pytest.raises(CheckpointMismatchError) as err:
        load_state_dict_strict(model, state_dict, model_name=pycls_name)
    message = str(err.value)
    assert f"The checkpoint matches {pycls_name}_tv" in message
    assert "torchvision rounding rule" in message
    assert err.value.mismatched and not err.value.missing and not err.value.unexpected
    assert err.value.matches == [f"{pycls_name}_tv"]


@pytest.mark.parametrize(("timm_name", "ours"), _cases(TIMM_MODELS))
def test_timm_model_is_ours(timm_name: str, ours: str) -> None:
    torch.manual_seed(0)
    assert_same_network(timm.create_model(timm_name, pretrained=False), ours, "timm")


def test_every_pycls_model_has_a_timm_counterpart() -> None:
    assert len(TIMM_MODELS) == 24
    assert set(TIMM_MODELS) <= set(timm.list_models("regnet[xy]_*"))
