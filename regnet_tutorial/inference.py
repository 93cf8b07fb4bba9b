"""Inference-time rewrites of a network: fold each batch norm into the convolution before it.

In eval mode a batch norm is a fixed affine map per channel ``c``:
``y_c = gamma_c * (x_c - mu_c) / sqrt(sigma2_c + eps) + beta_c``. When ``x = W * u + b`` is a
convolution, the two compose into one convolution with the scaled weights
``W'_c = s_c * W_c`` and the bias ``b'_c = s_c * (b_c - mu_c) + beta_c``, where
``s_c = gamma_c / sqrt(sigma2_c + eps)``. The folded network computes the same function with
one kernel and one pass over memory fewer per pair; every X/Y block has three or four pairs.

When it helps is measured in ``benchmarks/`` (results in ``benchmarks/results/``, discussed in
chapter 07 and the README): on a CPU, folded *and* in channels-last layout is the fastest eager
inference, at every batch size and more at a large one. The folded bias is added inside the
convolution kernel, so each pair saves a pass over its output. On a GPU in eager mode, folding
saves a kernel launch and a pass over memory per pair, most at small batch sizes;
``torch.compile`` fuses BN into the convolution by itself.
Folding is for inference only: the folded model has no BN to train.
"""

from __future__ import annotations

import copy

import torch
from torch import nn

FOLDABLE_NORMS: tuple[type[nn.Module], ...] = (nn.BatchNorm2d,)
"""Exact norm types that are folded; subclasses (e.g. timm's BatchNormAct2d, which also applies
an activation) are left alone, since replacing them would drop what they add."""


def fold_conv_bn(conv: nn.Conv2d, bn: nn.BatchNorm2d) -> nn.Conv2d:
    """A new convolution (with bias) computing ``bn(conv(x))`` with ``bn`` in eval mode."""
    if bn.running_mean is None or bn.running_var is None:
        raise ValueError(
            "cannot fold a BatchNorm2d without running statistics (track_running_stats=False): "
            "it normalises with batch statistics even in eval mode; leave it unfolded."
        )
    if bn.num_features != conv.out_channels:
        raise ValueError(
            f"BatchNorm2d has {bn.num_features} channels but the conv before it outputs "
            f"{conv.out_channels}; they are not a conv+BN pair."
        )
    with torch.no_grad():
        std = torch.sqrt(bn.running_var.double() + bn.eps)
        gamma = bn.weight.double() if bn.weight is not None else torch.ones_like(std)
        beta = bn.bias.double() if bn.bias is not None else torch.zeros_like(std)
        scale = gamma / std
        bias = conv.bias.double() if conv.bias is not None else torch.zeros_like(std)
        fused = nn.Conv2d(
            conv.in_channels, conv.out_channels, conv.kernel_size, stride=conv.stride,
            padding=conv.padding, dilation=conv.dilation, groups=conv.groups, bias=True,
            padding_mode=conv.padding_mode, device=conv.weight.device, dtype=conv.weight.dtype,
        )
        # Computed in float64 and rounded once, so folding adds no error beyond one rounding.
        weight = conv.weight.double() * scale.reshape(-1, 1, 1, 1)
        fused.weight.copy_(weight.to(conv.weight.dtype))
        fused.bias.copy_(((bias - bn.running_mean.double()) * scale + beta).to(conv.weight.dtype))
    if conv.weight.is_contiguous(memory_format=torch.channels_last) and not conv.weight.is_contiguous():
        fused.to(memory_format=torch.channels_last)
    return fused


def _fold_in_sequential(seq: nn.Sequential) -> int:
    """Fold every Conv2d immediately followed by a foldable BN among ``seq``'s children."""
    names = list(seq._modules)
    folded = 0
    for first, second in zip(names, names[1:]):
        conv, bn = seq._modules[first], seq._modules[second]
        if (
            type(conv) is nn.Conv2d and type(bn) in FOLDABLE_NORMS
            and bn.running_var is not None and bn.num_features == conv.out_channels
        ):
            seq._modules[first] = fold_conv_bn(conv, bn)
            seq._modules[second] = nn.Identity()
            folded += 1
    return folded


def fuse_for_inference(model: nn.Module) -> nn.Module:
    """A folded copy of ``model`` for inference; ``model`` itself is left untouched.

    Returns a deep copy in eval mode, with gradients off, in which every ``Conv2d`` followed
    directly by a ``BatchNorm2d`` inside an ``nn.Sequential`` (our ``ConvBN``, torchvision's
    ``Conv2dNormActivation``) is replaced by one biased ``Conv2d`` and an ``nn.Identity``. It
    gives the same logits as ``model.eval()`` up to float rounding (checked for every
    registered model in ``tests/test_inference.py``). Works before ``.to(memory_format=
    torch.channels_last)`` and before ``torch.compile``; fold first, then convert or compile.

    Raises ``ValueError`` if the model has no conv+BN pair to fold (so a wrong argument, such
    as an already folded model, does not pass silently).
    """
    fused = copy.deepcopy(model).eval()
    folded = sum(_fold_in_sequential(m) for m in list(fused.modules()) if isinstance(m, nn.Sequential))
    if folded == 0:
        raise ValueError(
            f"fuse_for_inference found no Conv2d followed by BatchNorm2d in {type(model).__name__} "
            "(already folded, or a layout it does not know); pass an unfolded model."
        )
    fused.requires_grad_(False)
    return fused


def count_batchnorms(model: nn.Module) -> int:
    """The number of ``BatchNorm2d`` modules left in ``model`` (0 after full folding)."""
    return sum(isinstance(m, nn.BatchNorm2d) for m in model.modules())
