"""Every published RegNetX/RegNetY model as data, and ``create_model`` / ``list_models``.

The 24 pycls models (paper, Appendix Table; pycls ``configs/dds_baselines``) use the
``"pycls"`` rounding rule. torchvision publishes 15 of them (8 RegNetY, 7 RegNetX,
among them RegNetY-128GF which pycls does not have); their ``*_tv`` variants here use
the ``"torchvision"`` rounding rule, so they match torchvision's modules exactly.
"""

from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from .design_space import RegNetParams, RoundingRule, StageSpec, generate_stages
from .errors import RegNetTutorialError

if TYPE_CHECKING:
    from .anynet import AnyNet

SE_RATIO = 0.25
"""The RegNetY squeeze-and-excitation ratio (paper, Section 5)."""


class UnknownModelError(RegNetTutorialError, KeyError):
    """A model name that is not registered; the message names some that are."""


@dataclass(frozen=True)
class ModelCard:
    """A named model: its design-space point, rounding rule and counterparts elsewhere.

    ``torchvision`` and ``timm`` name the builder of the same architecture in those
    libraries, when they have one (``None`` otherwise).
    """

    name: str
    display_name: str
    params: RegNetParams
    rounding: RoundingRule
    torchvision: str | None = None
    timm: str | None = None

    @property
    def family(self) -> str:
        return "RegNetY" if self.params.se_ratio > 0 else "RegNetX"

    @property
    def gigaflops(self) -> float:
        """The flop regime the name gives, in GF: ``"RegNetX-400MF"`` -> 0.4, ``"RegNetY-1.6GF (tv)"`` -> 1.6."""
        return regime_gigaflops(self.display_name)

    def stages(self) -> StageSpec:
        """The per-stage spec of this model under its rounding rule."""
        return generate_stages(self.params, self.rounding)


# (display name, depth, w0, wa, wm, group width, torchvision builder) for each pycls model.
_PYCLS_X = [
    ("RegNetX-200MF", 13, 24, 36.44, 2.49, 8, None),
    ("RegNetX-400MF", 22, 24, 24.48, 2.54, 16, "regnet_x_400mf"),
    ("RegNetX-600MF", 16, 48, 36.97, 2.24, 24, None),
    ("RegNetX-800MF", 16, 56, 35.73, 2.28, 16, "regnet_x_800mf"),
    ("RegNetX-1.6GF", 18, 80, 34.01, 2.25, 24, "regnet_x_1_6gf"),
    ("RegNetX-3.2GF", 25, 88, 26.31, 2.25, 48, "regnet_x_3_2gf"),
    ("RegNetX-4.0GF", 23, 96, 38.65, 2.43, 40, None),
    ("RegNetX-6.4GF", 17, 184, 60.83, 2.07, 56, None),
    ("RegNetX-8.0GF", 23, 80, 49.56, 2.88, 120, "regnet_x_8gf"),
    ("RegNetX-12GF", 19, 168, 73.36, 2.37, 112, None),
    ("RegNetX-16GF", 22, 216, 55.59, 2.1, 128, "regnet_x_16gf"),
    ("RegNetX-32GF", 23, 320, 69.86, 2.0, 168, "regnet_x_32gf"),
]
_PYCLS_Y = [
    ("RegNetY-200MF", 13, 24, 36.44, 2.49, 8, None),
    ("RegNetY-400MF", 16, 48, 27.89, 2.09, 8, "regnet_y_400mf"),
    ("RegNetY-600MF", 15, 48, 32.54, 2.32, 16, None),
    ("RegNetY-800MF", 14, 56, 38.84, 2.4, 16, "regnet_y_800mf"),
    ("RegNetY-1.6GF", 27, 48, 20.71, 2.65, 24, "regnet_y_1_6gf"),
    ("RegNetY-3.2GF", 21, 80, 42.63, 2.66, 24, "regnet_y_3_2gf"),
    ("RegNetY-4.0GF", 22, 96, 31.41, 2.24, 64, None),
    ("RegNetY-6.4GF", 25, 112, 33.22, 2.27, 72, None),
    ("RegNetY-8.0GF", 17, 192, 76.82, 2.19, 56, "regnet_y_8gf"),
    ("RegNetY-12GF", 19, 168, 73.36, 2.37, 112, None),
    ("RegNetY-16GF", 18, 200, 106.23, 2.48, 112, "regnet_y_16gf"),
    ("RegNetY-32GF", 20, 232, 115.89, 2.53, 232, "regnet_y_32gf"),
]
# torchvision-only: RegNetY-128GF (the SWAG/SEER-scale model), not in pycls.
_TV_ONLY = [("RegNetY-128GF", 27, 456, 160.83, 2.52, 264, "regnet_y_128gf")]


def _slug(display_name: str) -> str:
    """``"RegNetX-1.6GF"`` -> ``"regnetx_1_6gf"``."""
    return re.sub(r"[-.]", "_", display_name.lower())


def regime_gigaflops(display_name: str) -> float:
    """The flop regime in a display name, in GF: ``"RegNetX-400MF"`` -> 0.4."""
    match = re.search(r"-([\d.]+)(MF|GF)\b", display_name)
    if match is None:
        raise ValueError(f"{display_name!r} names no flop regime such as 400MF or 1.6GF")
    return float(match.group(1)) / (1000 if match.group(2) == "MF" else 1)


def _timm_name(display_name: str) -> str:
    """``"RegNetX-1.6GF"`` -> ``"regnetx_016"`` (timm counts flops in units of 100MF)."""
    family = display_name.lower().split("-")[0]
    return f"{family}_{round(regime_gigaflops(display_name) * 10):03d}"


def _build_cards() -> dict[str, ModelCard]:
    cards: dict[str, ModelCard] = {}
    rows = [(r, 0.0) for r in _PYCLS_X] + [(r, SE_RATIO) for r in _PYCLS_Y]
    for (display, d, w0, wa, wm, g, tv), se in rows:
        params = RegNetParams(depth=d, w0=w0, wa=wa, wm=wm, group_width=g, se_ratio=se)
        slug = _slug(display)
        cards[slug] = ModelCard(slug, display, params, "pycls", tv, _timm_name(display))
        if tv is not None:
            cards[slug + "_tv"] = ModelCard(slug + "_tv", display + " (tv)", params, "torchvision", tv)
    for display, d, w0, wa, wm, g, tv in _TV_ONLY:
        params = RegNetParams(depth=d, w0=w0, wa=wa, wm=wm, group_width=g, se_ratio=SE_RATIO)
        slug = _slug(display) + "_tv"
        cards[slug] = ModelCard(slug, display + " (tv)", params, "torchvision", tv)
    return cards


MODEL_CARDS: dict[str, ModelCard] = _build_cards()


def list_models(pattern: str = "*") -> list[str]:
    """Names of the registered models matching the shell-style ``pattern`` (e.g. ``"regnety_*_tv"``)."""
    return [name for name in MODEL_CARDS if fnmatch.fnmatchcase(name, pattern)]


def get_card(name: str) -> ModelCard:
    """The :class:`ModelCard` for ``name``; also accepts display names such as ``"RegNetX-400MF"``."""
    key = name if name in MODEL_CARDS else _slug(name)
    if key not in MODEL_CARDS:
        close = [n for n in MODEL_CARDS if n.split("_")[0] == key.split("_")[0]][:6]
        raise UnknownModelError(
            f"Unknown model {name!r}. Known models: list_models() gives all {len(MODEL_CARDS)}; "
            f"for example {close or list(MODEL_CARDS)[:6]}."
        )
    return MODEL_CARDS[key]


def create_model(
    name: str,
    num_classes: int = 1000,
    in_channels: int = 3,
    zero_init_last_bn: bool = False,
    stem_stride: int | None = None,
) -> AnyNet:
    """Build the named RegNet with random pycls-style initialisation; ``stem_stride=1`` gives the small
    skeleton for 28-32 px inputs (default: the card's 2). Published weights: the public
    ``regnet_tutorial.create_model(name, weights="mmcls")`` (:mod:`regnet_tutorial.weights.pretrained`)."""
    from .anynet import AnyNet  # torch is imported when a network is built, not with the registry

    spec = get_card(name).stages()
    if stem_stride is not None:
        spec = replace(spec, stem_stride=stem_stride)
    return AnyNet(spec, num_classes, in_channels, zero_init_last_bn)
