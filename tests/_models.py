"""Shared helpers for the tests that compare networks."""

from __future__ import annotations

import torch
from torch import nn


def randomise_batchnorm(model: nn.Module, generator: torch.Generator | None = None) -> nn.Module:
    """Give every BN its own random scale, shift and running statistics (so that a wrong or
    missing BN shows in the outputs); ``generator`` defaults to one seeded with 0. Returns ``model``."""
    g = generator if generator is not None else torch.Generator().manual_seed(0)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                n = m.num_features
                m.weight.copy_(torch.rand(n, generator=g) + 0.5)
                m.bias.copy_(torch.randn(n, generator=g) * 0.1)
                m.running_mean.copy_(torch.randn(n, generator=g) * 0.1)
                m.running_var.copy_(torch.rand(n, generator=g) + 0.5)
    return model
