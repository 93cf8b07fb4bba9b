"""The AnyNet network (paper, Figure 3): stem, four stages of X/Y blocks, head."""

from __future__ import annotations

import math

import torch
from torch import nn

from .blocks import Head, ResBottleneckBlock, Stage, Stem
from .design_space import DesignSpaceError, StageSpec
from .errors import check_int


class AnyNet(nn.Module):
    """A network of the AnyNet design space, built from an explicit :class:`StageSpec`.

    Layout: ``stem`` -> ``stages.s1 .. stages.sN`` (blocks ``b1 .. bd``) -> ``head``.

    Args:
        spec: per-stage depths, widths, group widths, bottleneck multipliers and strides.
        num_classes: outputs of the classifier.
        in_channels: channels of the input image.
        zero_init_last_bn: start each block's last BN at zero so every residual block
            begins as the identity (Goyal et al., 2017); off in the paper's recipe.
    """

    def __init__(
        self, spec: StageSpec, num_classes: int = 1000, in_channels: int = 3,
        zero_init_last_bn: bool = False,
    ) -> None:
        super().__init__()
        for name, value in (("num_classes", num_classes), ("in_channels", in_channels)):
            check_int(name, value, 1, DesignSpaceError)
        self.spec = spec
        self.stem = Stem(in_channels, spec.stem_width, spec.stem_stride)
        self.stages = nn.Sequential()
        w_in = spec.stem_width
        for i in range(spec.num_stages):
            stage = Stage(
                w_in, spec.widths[i], spec.depths[i], spec.strides[i], spec.group_widths[i],
                spec.bottleneck_multipliers[i], spec.se_ratio,
            )
            self.stages.add_module(f"s{i + 1}", stage)
            w_in = spec.widths[i]
        self.head = Head(w_in, num_classes)
        init_weights(self, zero_init_last_bn)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """The last stage's feature map, before pooling."""
        return self.stages(self.stem(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.forward_features(x))


def init_weights(model: nn.Module, zero_init_last_bn: bool = False) -> None:
    """pycls-style initialisation (He et al., 2015, fan-out mode).

    Convolutions: normal with std ``sqrt(2 / (k * k * C_out))`` and zero bias; BN:
    weight 1, bias 0; the classifier: normal with std 0.01, zero bias. With
    ``zero_init_last_bn`` the BN closing each residual branch (``f.c.bn``) starts at 0.
    """
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            fan_out = m.kernel_size[0] * m.kernel_size[1] * m.out_channels
            nn.init.normal_(m.weight, mean=0.0, std=math.sqrt(2.0 / fan_out))
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, mean=0.0, std=0.01)
            nn.init.zeros_(m.bias)
    if zero_init_last_bn:
        for m in model.modules():
            if isinstance(m, ResBottleneckBlock):
                nn.init.zeros_(m.f.c.bn.weight)
