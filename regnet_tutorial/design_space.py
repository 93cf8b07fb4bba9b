"""The RegNet design space: from six numbers to a four-stage network (paper, Section 3.3).

A RegNet is described by a :class:`RegNetParams` (depth ``d``, initial width ``w0``,
slope ``wa``, width multiplier ``wm``, group width ``g``, bottleneck multiplier and the
squeeze-and-excitation ratio). :func:`generate_stages` turns it into a
:class:`StageSpec`: per-stage depths, widths, group widths and strides, ready for
:class:`regnet_tutorial.anynet.AnyNet`.

The paper's equations, in the order it gives them::

    u_j = w0 + wa * j                    for 0 <= j < d           (Eq. 2)
    s_j = log(u_j / w0) / log(wm)        i.e. u_j = w0 * wm ** s_j (Eq. 3)
    w_j = w0 * wm ** round(s_j)                                    (Eq. 4)

Stages are runs of equal ``w_j``. Two further roundings come from the paper's reference
code (pycls ``generate_regnet`` and ``adjust_ws_gs_comp``), not from its equations: each
``w_j`` is rounded to a multiple of 8 (:data:`QUANTUM`), and the group width is made
compatible with the inner width ``w_in`` (``g <- min(g, w_in)``, ``w_in`` rounded to a
multiple of ``g``). That last step is where public codebases disagree; see :data:`ROUNDING_RULES`.

**Bottleneck.** The paper's bottleneck *ratio* ``b`` gives a block of width ``w`` the inner
width ``w / b``. The package, like pycls (``bot_mul``), stores the *multiplier* ``1 / b``
(:attr:`RegNetParams.bottleneck_multiplier`), so the inner width is ``w * multiplier``. Every
published RegNet has ``b = 1``, where the two agree.

**Stage count.** The paper keeps exactly four stages: its design spaces discard
configurations whose widths quantize to another number of stages. :func:`generate_stages`,
like pycls, builds any configuration with one to four stages (fewer stages just means a
shallower network, useful for small skeletons); the samplers of :mod:`regnet_tutorial.sweep`
apply the paper's four-stage filter.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from numbers import Real
from typing import Any, Literal

from .errors import RegNetTutorialError, is_int

QUANTUM = 8
"""Block widths are multiples of 8 (the ``q`` of the paper's code, pycls; not in the paper's Eq. 4)."""

MAX_STAGES = 4
"""The AnyNet skeleton has four stages (paper, Figure 3); the paper's spaces keep exactly four."""

RoundingRule = Literal["pycls", "torchvision"]
ROUNDING_RULES: dict[str, str] = {
    "pycls": "round half to even everywhere, as the paper's code (pycls) and timm do",
    "torchvision": (
        "group-compatibility rounding rounds half up and never shrinks a width by more "
        "than 10% (torchvision's _make_divisible); three published models change"
    ),
}


class DesignSpaceError(RegNetTutorialError, ValueError):
    """An invalid design-space parameter: the message names it, its value and the allowed range."""


def _check_real(name: str, value: object, allowed: str, ok: bool, hint: str = "") -> None:
    if not ok:
        fix = f" {hint}" if hint else ""
        raise DesignSpaceError(f"{name}={value!r} is invalid: {name} must be {allowed}.{fix}")


def _is_real(x: object) -> bool:
    return isinstance(x, Real) and not isinstance(x, bool) and math.isfinite(float(x))


@dataclass(frozen=True)
class RegNetParams:
    """One point of the RegNet design space (paper, Section 3.3 and Table 1 of the appendix).

    Attributes:
        depth: ``d``, the total number of blocks, at least 1.
        w0: initial width, a positive multiple of 8.
        wa: slope of the linear width function, ``>= 0``.
        wm: width multiplier between stages, ``> 1``.
        group_width: ``g``, channels per group of the 3x3 convolution, ``>= 1``.
        bottleneck_multiplier: the inner (bottleneck) width is ``w * bottleneck_multiplier``;
            it is ``1 / b`` for the paper's bottleneck ratio ``b`` (inner width ``w / b``), as
            pycls's ``bot_mul``; ``1`` for every published RegNet; ``> 0``.
        se_ratio: squeeze-and-excitation ratio relative to the block's input width,
            ``0`` for RegNetX (no SE), ``0.25`` for RegNetY.
    """

    depth: int
    w0: int
    wa: float
    wm: float
    group_width: int
    bottleneck_multiplier: float = 1.0
    se_ratio: float = 0.0

    def __post_init__(self) -> None:
        _check_real("depth", self.depth, "an integer >= 1", is_int(self.depth) and self.depth >= 1)
        _check_real(
            "w0", self.w0, f"a positive integer multiple of {QUANTUM}",
            is_int(self.w0) and self.w0 > 0 and self.w0 % QUANTUM == 0,
            hint=f"Try w0={max(QUANTUM, QUANTUM * round(float(self.w0) / QUANTUM))}."
            if _is_real(self.w0) else "",
        )
        _check_real("wa", self.wa, "a finite number >= 0", _is_real(self.wa) and self.wa >= 0)
        _check_real(
            "wm", self.wm, "a finite number > 1 (the paper samples 1.5 <= wm <= 3)",
            _is_real(self.wm) and self.wm > 1,
        )
        _check_real(
            "group_width", self.group_width, "an integer >= 1",
            is_int(self.group_width) and self.group_width >= 1,
        )
        b = self.bottleneck_multiplier
        _check_real("bottleneck_multiplier", b, "a finite number > 0", _is_real(b) and b > 0)
        _check_real(
            "bottleneck_multiplier", b, "an integer when it is > 1 (so that w = w*b / b stays whole)",
            b <= 1 or float(b).is_integer(),
        )
        _check_real(
            "se_ratio", self.se_ratio, "a number with 0 <= se_ratio <= 1 (0 disables SE)",
            _is_real(self.se_ratio) and 0 <= self.se_ratio <= 1,
        )


@dataclass(frozen=True)
class StageSpec:
    """The per-stage description of an AnyNet: what the paper's Figure 3 draws.

    All tuples have one entry per stage. ``stem_width`` is the stem's output width and
    ``stem_stride`` the stride of its 3x3 convolution: 2 in the paper's ImageNet skeleton; 1 in
    the small-image skeleton for 28-32 px inputs (:mod:`regnet_tutorial.sweep.spaces`), a
    deviation from the paper that keeps small images from shrinking to nothing.
    """

    depths: tuple[int, ...]
    widths: tuple[int, ...]
    group_widths: tuple[int, ...]
    bottleneck_multipliers: tuple[float, ...]
    strides: tuple[int, ...]
    se_ratio: float = 0.0
    stem_width: int = 32
    stem_stride: int = 2

    def __post_init__(self) -> None:
        _check_real("stem_stride", self.stem_stride, "1 or 2", self.stem_stride in (1, 2))
        n = len(self.depths)
        fields = ("widths", "group_widths", "bottleneck_multipliers", "strides")
        if not 1 <= n <= MAX_STAGES:
            raise DesignSpaceError(
                f"depths has {n} stages: the AnyNet skeleton allows 1 to {MAX_STAGES} stages."
            )
        for name in fields:
            if len(getattr(self, name)) != n:
                raise DesignSpaceError(
                    f"{name} has {len(getattr(self, name))} entries but depths has {n}: "
                    "give one value per stage."
                )
        for i, (d, w, g, b, s) in enumerate(
            zip(self.depths, self.widths, self.group_widths, self.bottleneck_multipliers, self.strides)
        ):
            _check_real(f"depths[{i}]", d, "an integer >= 1", is_int(d) and d >= 1)
            _check_real(f"widths[{i}]", w, "an integer >= 1", is_int(w) and w >= 1)
            _check_real(f"strides[{i}]", s, "1 or 2", s in (1, 2))
            wb = w * b
            _check_real(
                f"group_widths[{i}]", g, f"an integer >= 1 that divides the bottleneck width {wb:g}",
                is_int(g) and g >= 1 and float(wb).is_integer() and int(wb) % g == 0,
                hint="Pass the spec through make_compatible() first.",
            )

    @property
    def num_stages(self) -> int:
        return len(self.depths)

    @property
    def depth(self) -> int:
        return sum(self.depths)


def linear_widths(params: RegNetParams) -> list[float]:
    """The continuous per-block widths ``u_j = w0 + wa * j`` (Eq. 2)."""
    return _linear_widths(params.depth, params.w0, params.wa)


def block_exponents(params: RegNetParams) -> list[float]:
    """The continuous exponents ``s_j = log(u_j / w0) / log(wm)`` (Eq. 3)."""
    return _block_exponents(linear_widths(params), params.w0, params.wm)


def quantized_widths(params: RegNetParams) -> list[int]:
    """Per-block widths ``w0 * wm ** round(s_j)`` (the paper's Eq. 4), then rounded to a
    multiple of 8 (:data:`QUANTUM`; this second rounding is the reference code's, not Eq. 4).

    Both rounding steps round half to even (Python's ``round``, NumPy's and PyTorch's
    ``round`` agree), which is what pycls, timm and torchvision all do here.
    """
    return regnet_block_widths(params.depth, params.w0, params.wa, params.wm)


def regnet_block_widths(depth: int, w0: int, wa: float, wm: float) -> list[int]:
    """:func:`quantized_widths` of plain numbers, *unchecked*: for callers whose values are
    valid by construction (the samplers evaluate tens of thousands of draws)."""
    exponents = _block_exponents(_linear_widths(depth, w0, wa), w0, wm)
    return [int(quantized_width(s, w0, wm)) for s in exponents]


# Eqs. 2-4 for one block, written once. They take plain numbers or, with ``log=np.log`` and
# ``rnd=np.round``, NumPy arrays (the width fit of chapter 04 evaluates them on whole grids).

def linear_width(j: Any, w0: Any, wa: Any) -> Any:
    """``u_j = w0 + wa * j``, the continuous width of block ``j`` (Eq. 2)."""
    return w0 + wa * j  # Eq. 2


def block_exponent(u: Any, w0: Any, wm: Any, log: Callable[[Any], Any] = math.log) -> Any:
    """``s_j = log(u_j / w0) / log(wm)`` (Eq. 3)."""
    return log(u / w0) / log(wm)  # Eq. 3


def quantized_width(s: Any, w0: Any, wm: Any, rnd: Callable[[Any], Any] = round) -> Any:
    """``w0 * wm ** round(s_j)`` (Eq. 4), rounded to a multiple of :data:`QUANTUM` (the reference code's step)."""
    return rnd(w0 * wm ** rnd(s) / QUANTUM) * QUANTUM  # Eq. 4


def _linear_widths(depth: int, w0: float, wa: float) -> list[float]:
    return [linear_width(j, w0, wa) for j in range(depth)]


def _block_exponents(u: list[float], w0: float, wm: float) -> list[float]:
    return [block_exponent(u_j, w0, wm) for u_j in u]


def group_stages(block_widths: Sequence[int]) -> tuple[list[int], list[int]]:
    """Per-block widths -> per-stage ``(depths, widths)``: a stage is a run of equal widths."""
    depths: list[int] = []
    widths: list[int] = []
    for w in block_widths:
        if widths and widths[-1] == w:
            depths[-1] += 1
        else:
            widths.append(w)
            depths.append(1)
    return depths, widths


def _round_to_multiple(value: float, divisor: int, rule: RoundingRule) -> int:
    """Round ``value`` to a multiple of ``divisor`` (never below ``divisor``) by ``rule``."""
    if rule == "pycls":
        return max(divisor, int(round(value / divisor)) * divisor)
    if rule == "torchvision":
        rounded = max(divisor, int(value + divisor / 2) // divisor * divisor)
        if rounded < 0.9 * value:  # never shrink by more than 10%
            rounded += divisor
        return rounded
    raise DesignSpaceError(
        f"rounding={rule!r} is invalid: rounding must be one of {sorted(ROUNDING_RULES)}."
    )


def make_compatible(
    widths: list[int], bottleneck_multipliers: list[float], group_widths: list[int],
    rounding: RoundingRule = "pycls",
) -> tuple[list[int], list[int]]:
    """Make group widths and bottleneck widths compatible; returns ``(widths, group_widths)``.

    For each stage, with ``m`` its bottleneck multiplier and ``w_in = w*m`` its inner width:
    ``g <- min(g, w_in)``, then ``w_in`` is rounded to a multiple of ``g`` (by ``rounding``)
    and ``w`` recomputed as ``w_in / m``.
    """
    new_widths, new_groups = [], []
    for w, b, g in zip(widths, bottleneck_multipliers, group_widths):
        w_b = max(1, int(w * b))
        g = min(g, w_b)
        multiple = math.lcm(g, int(b)) if b > 1 else g
        w_b = _round_to_multiple(w_b, multiple, rounding)
        new_widths.append(int(w_b / b))
        new_groups.append(g)
    return new_widths, new_groups


def generate_stages(params: RegNetParams, rounding: RoundingRule = "pycls") -> StageSpec:
    """Turn a RegNet configuration into its per-stage :class:`StageSpec` (paper, Section 3.3)."""
    if rounding not in ROUNDING_RULES:
        raise DesignSpaceError(
            f"rounding={rounding!r} is invalid: rounding must be one of {sorted(ROUNDING_RULES)}."
        )
    depths, widths = group_stages(quantized_widths(params))
    if len(widths) > MAX_STAGES:
        raise DesignSpaceError(
            f"{params} yields {len(widths)} stages (widths {widths}) but the AnyNet skeleton "
            f"allows at most {MAX_STAGES}: lower wa or raise wm so that fewer distinct widths appear."
        )
    n = len(widths)
    bs = [params.bottleneck_multiplier] * n
    widths, groups = make_compatible(widths, bs, [params.group_width] * n, rounding)
    return StageSpec(
        depths=tuple(depths), widths=tuple(widths), group_widths=tuple(groups),
        bottleneck_multipliers=tuple(bs), strides=(2,) * n, se_ratio=params.se_ratio,
    )
