"""The pieces of the AnyNet skeleton (paper, Figure 3 and Figure 4): stem, X/Y block, head.

Module names follow the figure so that a reader can map a state-dict key to it:
``stem.conv``; a block's ``proj`` shortcut and its residual branch ``f`` with
``f.a`` (1x1), ``f.b`` (3x3 group conv), ``f.se`` (Y only) and ``f.c`` (1x1); ``head.fc``.
"""

from __future__ import annotations

import torch
from torch import nn


class ConvBN(nn.Sequential):
    """A bias-free convolution followed by batch norm (``conv``, ``bn``)."""

    def __init__(
        self, w_in: int, w_out: int, kernel_size: int, stride: int = 1, groups: int = 1
    ) -> None:
        super().__init__()
        self.conv = nn.Conv2d(
            w_in, w_out, kernel_size, stride=stride, padding=kernel_size // 2, groups=groups, bias=False
        )
        self.bn = nn.BatchNorm2d(w_out)


class ConvBNReLU(ConvBN):
    """:class:`ConvBN` followed by ReLU (``conv``, ``bn``, ``relu``)."""

    def __init__(
        self, w_in: int, w_out: int, kernel_size: int, stride: int = 1, groups: int = 1
    ) -> None:
        super().__init__(w_in, w_out, kernel_size, stride, groups)
        self.relu = nn.ReLU(inplace=True)


class Stem(ConvBNReLU):
    """The stem: a 3x3 stride-2 convolution to ``w_out`` (32) channels, BN, ReLU.

    ``stride=1`` gives the small-image skeleton's stem (a deviation from the paper).
    """

    def __init__(self, w_in: int = 3, w_out: int = 32, stride: int = 2) -> None:
        super().__init__(w_in, w_out, kernel_size=3, stride=stride)


class SqueezeExcitation(nn.Module):
    """Squeeze-and-excitation (Hu et al., 2018): scale each channel by a learned gate.

    ``squeeze`` reduces ``width`` channels to ``w_se``; ``excite`` restores them.
    """

    def __init__(self, width: int, w_se: int) -> None:
        super().__init__()
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.squeeze = nn.Conv2d(width, w_se, kernel_size=1, bias=True)
        self.relu = nn.ReLU(inplace=True)
        self.excite = nn.Conv2d(w_se, width, kernel_size=1, bias=True)
        self.gate = nn.Sigmoid()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = self.gate(self.excite(self.relu(self.squeeze(self.pool(x)))))
        return x * s


class BottleneckBranch(nn.Sequential):
    """The residual branch ``f`` of the X and Y blocks: 1x1, 3x3 group conv (stride), [SE], 1x1."""

    def __init__(
        self, w_in: int, w_out: int, stride: int, group_width: int,
        bottleneck_multiplier: float, se_ratio: float,
    ) -> None:
        super().__init__()
        w_b = int(round(w_out * bottleneck_multiplier))
        self.a = ConvBNReLU(w_in, w_b, kernel_size=1)
        self.b = ConvBNReLU(w_b, w_b, kernel_size=3, stride=stride, groups=w_b // group_width)
        if se_ratio > 0:
            # The squeeze width is relative to the block's *input* width, as in the paper's code.
            self.se = SqueezeExcitation(w_b, int(round(w_in * se_ratio)))
        self.c = ConvBN(w_b, w_out, kernel_size=1)


class ResBottleneckBlock(nn.Module):
    """The X block (``se_ratio == 0``) and the Y block (``se_ratio > 0``), paper Figure 4.

    ``relu(proj(x) + f(x))``, where ``proj`` is a 1x1 conv + BN when the width or the
    resolution changes and the identity otherwise. The sum and the ReLU are computed in place
    in ``f(x)``'s output, as torchvision's ResNet does, so each block allocates one activation
    fewer than ``relu(proj(x) + f(x))`` written out; BN's backward needs its input, not its
    output, so autograd allows it (chapter 07 measures the effect).
    """

    def __init__(
        self, w_in: int, w_out: int, stride: int, group_width: int,
        bottleneck_multiplier: float = 1.0, se_ratio: float = 0.0,
    ) -> None:
        super().__init__()
        if w_in != w_out or stride != 1:
            self.proj = ConvBN(w_in, w_out, kernel_size=1, stride=stride)
        else:
            self.proj = None
        self.f = BottleneckBranch(w_in, w_out, stride, group_width, bottleneck_multiplier, se_ratio)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.f(x)
        out += x if self.proj is None else self.proj(x)
        return self.relu(out)


class Stage(nn.Sequential):
    """A stage: ``depth`` blocks ``b1 .. bd`` of equal width; the first carries the stride."""

    def __init__(
        self, w_in: int, w_out: int, depth: int, stride: int, group_width: int,
        bottleneck_multiplier: float, se_ratio: float,
    ) -> None:
        super().__init__()
        for i in range(depth):
            block = ResBottleneckBlock(
                w_in if i == 0 else w_out, w_out, stride if i == 0 else 1,
                group_width, bottleneck_multiplier, se_ratio,
            )
            self.add_module(f"b{i + 1}", block)


class Head(nn.Module):
    """The head: global average pooling and a fully connected classifier ``fc``."""

    def __init__(self, w_in: int, num_classes: int) -> None:
        super().__init__()
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(w_in, num_classes, bias=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.flatten(self.pool(x), 1))
