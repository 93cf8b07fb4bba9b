"""Averaging the weights and the BatchNorm statistics: the exponential moving average of the
weights (EMA) and precise BatchNorm statistics (pycls ``compute_precise_bn_stats``)."""

from __future__ import annotations

import itertools
from collections.abc import Iterable
from typing import Any

import torch
from torch import nn
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn


def build_ema(model: nn.Module, decay: float) -> AveragedModel:
    """An exponential moving average of ``model``'s parameters and buffers:
    ``ema = decay * ema + (1 - decay) * weights`` after every optimizer step."""
    if not 0.0 < decay < 1.0:
        raise ValueError(f"ema_decay={decay!r} must lie in (0, 1), e.g. 0.9999; use 0 to switch EMA off.")
    return AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(decay), use_buffers=True)


@torch.no_grad()
def precise_bn(model: nn.Module, batches: Iterable[Any], num_batches: int, accelerator: Any = None) -> int:
    """Recompute every BatchNorm's running mean and variance as the plain average over
    ``num_batches`` training batches (pycls ``compute_precise_bn_stats``), averaged over all
    processes when ``accelerator`` is given. Returns the number of batches used.

    The model is left in the train/eval mode it was in.
    """
    bns = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    if not bns or num_batches <= 0:
        return 0
    momenta = {bn: bn.momentum for bn in bns}
    for bn in bns:
        bn.reset_running_stats()
        bn.momentum = None  # cumulative moving average = plain mean over the batches
    was_training = model.training
    model.train()
    used = 0
    for batch in itertools.islice(batches, num_batches):
        images = batch[0] if isinstance(batch, (list, tuple)) else batch
        model(images)
        used += 1
    for bn in bns:
        bn.momentum = momenta[bn]
        if accelerator is not None and accelerator.num_processes > 1:
            bn.running_mean.copy_(accelerator.reduce(bn.running_mean, reduction="mean"))
            bn.running_var.copy_(accelerator.reduce(bn.running_var, reduction="mean"))
    model.train(was_training)
    return used
