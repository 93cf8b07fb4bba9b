"""Complexity of a network: flops, parameters and activations (paper, Section 2 and 3).

The paper compares models by three numbers, all computed here from the
:class:`~regnet_tutorial.design_space.StageSpec` alone, without building a network:

* **flops**: multiply-adds of every convolution and of the classifier, plus one add per
  output element for layers with a bias. Batch norm, ReLU, pooling and the SE channel
  scaling are free, as the paper's code (pycls) counts them.
* **params**: convolution and classifier weights and biases, and each batch norm's
  scale and shift (``2 * C``; running statistics are buffers, not parameters).
* **acts**: the number of output elements of every convolution and of the classifier,
  which the paper finds can predict GPU run time better than flops (Section 4, Figure 12 top).

The functions below follow the network from its smallest piece to the whole: one
layer type each, then the block, stage, stem, head and model. :func:`band_flops` is the flops
count alone in closed form, for the samplers' band check on every candidate; the tests hold it
equal to :func:`model_complexity`.
"""

from __future__ import annotations

from dataclasses import dataclass

from .design_space import StageSpec
from .errors import check_int
from .models import get_card


@dataclass(frozen=True)
class Complexity:
    """Multiply-adds (``flops``), parameters (``params``) and activations (``acts``)."""

    flops: int = 0
    params: int = 0
    acts: int = 0

    def __add__(self, other: Complexity) -> Complexity:
        if not isinstance(other, Complexity):
            return NotImplemented
        return Complexity(
            self.flops + other.flops, self.params + other.params, self.acts + other.acts
        )


def conv_output_size(size: int, stride: int) -> int:
    """Side of a conv's output for a ``size x size`` input (``padding = kernel // 2``)."""
    return (size - 1) // stride + 1


def conv(
    size: int, w_in: int, w_out: int, kernel: int, stride: int = 1, groups: int = 1,
    bias: bool = False,
) -> tuple[Complexity, int]:
    """A ``kernel x kernel`` convolution on a ``size x size`` map; returns its cost and output side."""
    out = conv_output_size(size, stride)
    positions = out * out
    weights = kernel * kernel * (w_in // groups) * w_out
    biases = w_out if bias else 0
    cx = Complexity(
        flops=(weights + biases) * positions, params=weights + biases, acts=w_out * positions
    )
    return cx, out


def batch_norm(width: int) -> Complexity:
    """Batch norm over ``width`` channels: a scale and a shift per channel, no flops counted."""
    return Complexity(params=2 * width)


def conv_bn(
    size: int, w_in: int, w_out: int, kernel: int, stride: int = 1, groups: int = 1
) -> tuple[Complexity, int]:
    """A bias-free convolution followed by batch norm (ReLU is free)."""
    cx, out = conv(size, w_in, w_out, kernel, stride, groups)
    return cx + batch_norm(w_out), out


def linear(w_in: int, w_out: int) -> Complexity:
    """A fully connected layer with bias, applied to one pooled vector."""
    return Complexity(flops=w_in * w_out + w_out, params=w_in * w_out + w_out, acts=w_out)


def squeeze_excitation(width: int, w_se: int) -> Complexity:
    """SE: two 1x1 convolutions with bias on the globally pooled ``1 x 1`` map."""
    squeeze, _ = conv(1, width, w_se, 1, bias=True)
    excite, _ = conv(1, w_se, width, 1, bias=True)
    return squeeze + excite


def bottleneck_branch(
    size: int, w_in: int, w_out: int, stride: int, group_width: int,
    bottleneck_multiplier: float, se_ratio: float,
) -> tuple[Complexity, int]:
    """The residual branch ``f``: 1x1, 3x3 group conv (with the stride), optional SE, 1x1."""
    w_b = int(round(w_out * bottleneck_multiplier))
    a, size_a = conv_bn(size, w_in, w_b, 1)
    b, size_b = conv_bn(size_a, w_b, w_b, 3, stride, groups=w_b // group_width)
    se = squeeze_excitation(w_b, int(round(w_in * se_ratio))) if se_ratio > 0 else Complexity()
    c, size_c = conv_bn(size_b, w_b, w_out, 1)
    return a + b + se + c, size_c


def res_bottleneck_block(
    size: int, w_in: int, w_out: int, stride: int, group_width: int,
    bottleneck_multiplier: float, se_ratio: float,
) -> tuple[Complexity, int]:
    """An X/Y block: the branch ``f`` plus a 1x1 projection when width or resolution changes."""
    cx, out = bottleneck_branch(
        size, w_in, w_out, stride, group_width, bottleneck_multiplier, se_ratio
    )
    if w_in != w_out or stride != 1:
        proj, _ = conv_bn(size, w_in, w_out, 1, stride)
        cx = cx + proj
    return cx, out


def stage(
    size: int, w_in: int, w_out: int, depth: int, stride: int, group_width: int,
    bottleneck_multiplier: float, se_ratio: float,
) -> tuple[Complexity, int]:
    """``depth`` blocks of width ``w_out``; only the first changes width and resolution."""
    total, size = res_bottleneck_block(size, w_in, w_out, stride, group_width, bottleneck_multiplier, se_ratio)
    if depth > 1:  # the other d - 1 blocks are identical: count one, multiply
        rest, size = res_bottleneck_block(size, w_out, w_out, 1, group_width, bottleneck_multiplier, se_ratio)
        total = total + Complexity(rest.flops * (depth - 1), rest.params * (depth - 1), rest.acts * (depth - 1))
    return total, size


def stem(size: int, w_in: int, w_out: int, stride: int = 2) -> tuple[Complexity, int]:
    """The stem: a 3x3 convolution with batch norm, stride 2 (1 in the small-image skeleton)."""
    return conv_bn(size, w_in, w_out, 3, stride=stride)


def head(w_in: int, num_classes: int) -> Complexity:
    """The head: global average pooling (free) and the classifier."""
    return linear(w_in, num_classes)


def _as_spec(spec_or_name: StageSpec | str) -> StageSpec:
    if isinstance(spec_or_name, StageSpec):
        return spec_or_name
    if isinstance(spec_or_name, str):
        return get_card(spec_or_name).stages()
    raise TypeError(
        f"expected a StageSpec or a model name such as 'regnetx_400mf', got {type(spec_or_name).__name__}."
    )


def stage_complexity(
    spec: StageSpec | str, resolution: int = 224, num_classes: int = 1000, in_channels: int = 3
) -> dict[str, Complexity]:
    """Complexity of each part of the network: ``"stem"``, ``"s1"`` .. ``"sN"`` and ``"head"``.

    ``spec`` is a :class:`StageSpec` or a registered model name; the input is a
    ``resolution x resolution`` image with ``in_channels`` channels.
    """
    for name, value in (
        ("resolution", resolution), ("num_classes", num_classes), ("in_channels", in_channels)
    ):
        check_int(name, value)
    spec = _as_spec(spec)
    parts: dict[str, Complexity] = {}
    parts["stem"], size = stem(resolution, in_channels, spec.stem_width, spec.stem_stride)
    w_in = spec.stem_width
    for i in range(spec.num_stages):
        parts[f"s{i + 1}"], size = stage(
            size, w_in, spec.widths[i], spec.depths[i], spec.strides[i], spec.group_widths[i],
            spec.bottleneck_multipliers[i], spec.se_ratio,
        )
        w_in = spec.widths[i]
    parts["head"] = head(w_in, num_classes)
    return parts


def model_complexity(
    spec_or_name: StageSpec | str, resolution: int = 224, num_classes: int = 1000,
    in_channels: int = 3,
) -> Complexity:
    """Total complexity of the network for a ``resolution x resolution`` input."""
    parts = stage_complexity(spec_or_name, resolution, num_classes, in_channels)
    total = Complexity()
    for cx in parts.values():
        total = total + cx
    return total


def band_flops(
    depths: list[int], widths: list[int], group_widths: list[int], bottleneck_multipliers: list[float],
    strides: list[int], se_ratio: float, stem_width: int, stem_stride: int,
    resolution: int, num_classes: int, in_channels: int,
) -> int:
    """The flops alone of :func:`model_complexity`, in closed form.

    The same conventions (a conv costs ``k * k * (w_in / groups) * w_out`` multiply-adds per
    output position, plus one add per output element when it has a bias; the classifier has a
    bias), summed per stage as the first block plus ``d - 1`` times the repeated one, without
    building a :class:`StageSpec` or any :class:`Complexity`: the sampler's band check on every
    candidate. Arguments as the fields of :class:`StageSpec`; each group width must divide its
    inner width (after :func:`make_compatible`).
    """
    size = (resolution - 1) // stem_stride + 1
    flops = 9 * in_channels * stem_width * size * size  # stem: 3x3 conv
    w_in = stem_width
    for d, w, g, m, s in zip(depths, widths, group_widths, bottleneck_multipliers, strides):
        w_b = int(round(w * m))
        conv3 = 9 * (w_b // (w_b // g)) * w_b  # 3x3 group conv: (w_b / groups) inputs per output
        out = (size - 1) // s + 1
        first = w_in * w_b * size * size + (conv3 + w_b * w) * out * out  # 1x1, 3x3 (strided), 1x1
        if w_in != w or s != 1:
            first += w_in * w * out * out  # 1x1 strided projection
        rest = (2 * w * w_b + conv3) * out * out
        if se_ratio > 0:  # two 1x1 convs with bias on the pooled 1x1 map
            w_se = int(round(w_in * se_ratio))
            first += 2 * w_b * w_se + w_se + w_b
            w_se = int(round(w * se_ratio))
            rest += 2 * w_b * w_se + w_se + w_b
        flops += first + (d - 1) * rest
        size, w_in = out, w
    return flops + w_in * num_classes + num_classes  # head: the classifier with bias
