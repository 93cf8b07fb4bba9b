"""Evaluation metrics against a NumPy computation on the same logits (single process; the
multi-process version lives with the training-loop tests)."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest
import torch
from accelerate import Accelerator
from accelerate.state import AcceleratorState, GradientState
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from regnet_tutorial.train.evaluation import evaluate


@pytest.fixture
def accelerator() -> Iterator[Accelerator]:
    # Accelerate keeps its state in process-wide singletons; start and leave them clean so
    # tests with other settings can share this pytest worker (as Accelerate's own tests do).
    AcceleratorState._reset_state(reset_partial_state=True)
    GradientState._reset_state()
    yield Accelerator(cpu=True)
    AcceleratorState._reset_state(reset_partial_state=True)
    GradientState._reset_state()


class LookupModel(nn.Module):
    """Returns fixed logits for each sample index: evaluation of known predictions."""

    def __init__(self, logits: torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("table", logits)

    def forward(self, index: torch.Tensor) -> torch.Tensor:
        return self.table[index]


def numpy_metrics(logits: np.ndarray, targets: np.ndarray, k: int = 5) -> tuple[float, float, float]:
    order = np.argsort(-logits, axis=1)
    top1 = 100 * np.mean(order[:, 0] == targets)
    topk = 100 * np.mean([t in row[:k] for row, t in zip(order, targets)])
    shifted = logits - logits.max(axis=1, keepdims=True)
    log_probs = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    loss = -np.mean(log_probs[np.arange(len(targets)), targets])
    return top1, topk, loss


@pytest.mark.parametrize(("num_samples", "num_classes", "batch_size"), [(103, 10, 10), (37, 3, 8)])
def test_metrics_match_numpy_and_count_every_sample_once(
    accelerator: Accelerator, num_samples: int, num_classes: int, batch_size: int
) -> None:
    rng = np.random.default_rng(num_samples)
    logits = rng.normal(size=(num_samples, num_classes)).astype(np.float32)
    targets = rng.integers(0, num_classes, size=num_samples)
    # Nudge the first samples' targets to the top so top-1 is neither 0 nor 100 by chance alone.
    nudged = np.arange(num_samples // 3)
    logits[nudged, targets[nudged]] += 5
    model = LookupModel(torch.from_numpy(logits)).train()
    dataset = TensorDataset(torch.arange(num_samples), torch.from_numpy(targets))
    model, loader = accelerator.prepare(model, DataLoader(dataset, batch_size=batch_size))
    result = evaluate(model, loader, accelerator, num_classes=num_classes, show_progress=False)
    top1, top5, loss = numpy_metrics(logits, targets, k=min(5, num_classes))
    assert result["count"] == num_samples  # the batch size does not divide it
    assert result["top1"] == pytest.approx(top1, abs=1e-4)
    assert result["top5"] == pytest.approx(top5, abs=1e-4)
    assert result["loss"] == pytest.approx(loss, rel=1e-5)
    assert 0 < result["top1"] < 100 and result["top1"] <= result["top5"]
    assert model.training  # evaluate() puts the model back in the mode it found


def test_wrong_num_classes_is_reported(accelerator: Accelerator) -> None:
    model = LookupModel(torch.zeros(4, 7))
    loader = DataLoader(TensorDataset(torch.arange(4), torch.zeros(4, dtype=torch.long)), batch_size=2)
    with pytest.raises(ValueError, match=r"logits of shape \(2, 7\), expected \(batch, 10\)"):
        evaluate(model, loader, accelerator, num_classes=10, show_progress=False)
