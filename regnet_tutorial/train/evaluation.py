"""Evaluation: top-1 / top-5 accuracy and mean cross-entropy over a whole validation set.

The paper reports top-1 error on the 50,000 ImageNet validation images (single 224 crop).
With several processes the distributed sampler pads the last batch with repeated samples
so every process gets the same number; ``accelerator.gather_for_metrics`` drops them again,
so every image is counted exactly once.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from accelerate import Accelerator
from torch import nn
from torch.utils.data import DataLoader
from torchmetrics.classification import MulticlassAccuracy
from tqdm import tqdm

from ..errors import check_int


@torch.no_grad()
def evaluate(
    model: nn.Module,
    loader: DataLoader,
    accelerator: Accelerator,
    num_classes: int,
    show_progress: bool = True,
) -> dict[str, Any]:
    """Top-1 and top-5 accuracy (percent, over samples) and mean cross-entropy of ``model``
    on ``loader``, with ``count`` the number of samples evaluated.

    ``loader`` yields ``(images, targets)`` and is expected to be prepared by ``accelerator``.
    For fewer than 5 classes, ``top5`` is top-``num_classes`` accuracy, i.e. 100.
    """
    check_int("num_classes", num_classes, 2)
    device = accelerator.device
    # The inputs are already gathered from every process: no second sync inside torchmetrics.
    top1 = MulticlassAccuracy(num_classes, top_k=1, average="micro", sync_on_compute=False).to(device)
    top5 = MulticlassAccuracy(
        num_classes, top_k=min(5, num_classes), average="micro", sync_on_compute=False
    ).to(device)
    loss_sum = torch.zeros((), dtype=torch.float64, device=device)
    count = 0
    was_training = model.training
    model.eval()
    try:
        progress = tqdm(loader, desc="eval", leave=False,
                        disable=not (show_progress and accelerator.is_main_process))
        for images, targets in progress:
            logits = model(images)
            logits, targets = accelerator.gather_for_metrics((logits, targets))
            logits = logits.float()
            if logits.ndim != 2 or logits.shape[1] != num_classes:
                raise ValueError(
                    f"The model returned logits of shape {tuple(logits.shape)}, expected "
                    f"(batch, {num_classes}); check num_classes against the model's classifier."
                )
            top1.update(logits, targets)
            top5.update(logits, targets)
            loss_sum += F.cross_entropy(logits, targets, reduction="sum").double()
            count += targets.numel()
    finally:
        model.train(was_training)
    if count == 0:
        raise ValueError("The evaluation loader yielded no samples; check the validation split.")
    return {
        "top1": 100.0 * top1.compute().item(),
        "top5": 100.0 * top5.compute().item(),
        "loss": loss_sum.item() / count,
        "count": count,
    }
