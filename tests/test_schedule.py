"""The learning-rate schedule: linear warmup then half-cosine, per optimizer step, checked
against the paper's formula written out here and against PyTorch's own schedulers."""

from __future__ import annotations

import dataclasses
import io
import math

import numpy as np
import pytest
import torch
from torch.optim.lr_scheduler import CosineAnnealingLR, LinearLR, SequentialLR

from regnet_tutorial.recipe import ResolvedRecipe, TrainConfig, resolve_recipe
from regnet_tutorial.schedule import build_scheduler, lr_at


def paper_lr(steps: np.ndarray, total: int, warmup: int, peak: float, factor: float) -> np.ndarray:
    """Warmup: a straight line from factor * peak (step 0) to peak (step W);
    then peak * 0.5 * (1 + cos(pi * t / T)) with t counted from the end of warmup."""
    line = np.interp(steps, [0, warmup], [factor * peak, peak]) if warmup else np.full(len(steps), peak)
    t, big_t = steps - warmup, total - warmup
    cosine = peak * 0.5 * (1 + np.cos(np.pi * t / big_t))
    return np.where(steps < warmup, line, cosine)


def torch_reference_lrs(total: int, warmup: int, peak: float, factor: float) -> list[float]:
    """The same schedule from PyTorch's LinearLR + CosineAnnealingLR, one value per step."""
    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=peak)
    cosine = CosineAnnealingLR(opt, T_max=total - warmup, eta_min=0.0)
    sched = SequentialLR(opt, [LinearLR(opt, factor, 1.0, total_iters=warmup), cosine], milestones=[warmup])
    lrs = []
    for _ in range(total):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    return lrs


def scheduler_lrs(resolved: ResolvedRecipe, factor: float) -> list[float]:
    """The lr the optimizer sees at each of the run's optimizer steps, plus the final value."""
    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=resolved.lr, momentum=0.9)
    sched = build_scheduler(opt, resolved, factor)
    lrs = []
    for _ in range(resolved.total_steps):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    return lrs + [opt.param_groups[0]["lr"]]


@pytest.mark.parametrize(("total", "warmup", "factor"), [(100, 10, 0.1), (37, 0, 0.1), (12, 5, 0.5)])
def test_lr_at_is_the_papers_schedule(total: int, warmup: int, factor: float) -> None:
    steps = np.arange(total + 1)
    ours = np.array([lr_at(int(s), total, warmup, 0.8, factor) for s in steps])
    np.testing.assert_allclose(ours, paper_lr(steps, total, warmup, 0.8, factor), rtol=1e-12, atol=1e-15)
    if warmup:
        np.testing.assert_allclose(ours[:total], torch_reference_lrs(total, warmup, 0.8, factor), rtol=1e-9, atol=1e-12)
    assert ours[0] == pytest.approx(0.8 * (factor if warmup else 1.0))
    assert ours[warmup] == pytest.approx(0.8)
    assert ours[total] == 0.0 and ours[total - 1] > 0  # ends at exactly 0, after the last step
    assert np.all(np.diff(ours[warmup:]) < 0)


@pytest.mark.parametrize(
    ("num_processes", "batch_size", "grad_accum_steps"), [(1, 64, 1), (2, 32, 1), (1, 32, 2)]
)
def test_scheduler_follows_lr_at_for_the_same_total_batch(num_processes: int, batch_size: int,
                                                          grad_accum_steps: int) -> None:
    cfg = TrainConfig(batch_size=batch_size, grad_accum_steps=grad_accum_steps, epochs=6, warmup_epochs=2)
    resolved = resolve_recipe(cfg, num_processes=num_processes, dataset_size=1000)
    assert (resolved.total_batch, resolved.steps_per_epoch, resolved.total_steps) == (64, 15, 90)
    lrs = scheduler_lrs(resolved, cfg.warmup_factor)
    expected = paper_lr(np.arange(91), 90, 30, 0.05, 0.1)  # lr = 0.1 x 64 / 128
    np.testing.assert_allclose(lrs, expected, rtol=1e-12, atol=1e-15)
    assert lrs == [lr_at(s, 90, 30, resolved.lr, 0.1) for s in range(91)]
    assert lrs[-1] == 0.0


def test_more_processes_with_the_same_per_process_batch_halve_the_steps() -> None:
    cfg = TrainConfig(batch_size=32, epochs=6, warmup_epochs=2)
    one, two = (resolve_recipe(cfg, n, dataset_size=1024) for n in (1, 2))
    assert (one.total_steps, two.total_steps) == (192, 96) and two.lr == 2 * one.lr
    lrs_one, lrs_two = scheduler_lrs(one, 0.1), scheduler_lrs(two, 0.1)
    # The same curve in units of "fraction of training": step 2k on one process ~ step k on two.
    np.testing.assert_allclose(np.array(lrs_one[::2]) / one.lr, np.array(lrs_two) / two.lr, rtol=1e-12, atol=1e-15)


def test_scheduler_state_survives_a_checkpoint_round_trip() -> None:
    resolved = ResolvedRecipe(total_batch=128, lr=0.1, steps_per_epoch=10, total_steps=50, warmup_steps=10,
                              num_processes=1, grad_accum_steps=1)
    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.1)
    sched = build_scheduler(opt, resolved, 0.1)
    for _ in range(23):
        opt.step()
        sched.step()
    buffer = io.BytesIO()
    torch.save(sched.state_dict(), buffer)
    buffer.seek(0)
    state = torch.load(buffer, weights_only=True)  # plain numbers only: safe to load
    opt2 = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.1)
    sched2 = build_scheduler(opt2, dataclasses.replace(resolved), 0.1)
    sched2.load_state_dict(state)
    opt2.param_groups[0]["lr"] = sched2.get_last_lr()[0]
    assert opt2.param_groups[0]["lr"] == pytest.approx(lr_at(23, 50, 10, 0.1))
    opt2.step()
    sched2.step()
    assert opt2.param_groups[0]["lr"] == pytest.approx(lr_at(24, 50, 10, 0.1))


def test_bad_schedules_are_rejected_with_the_reason() -> None:
    with pytest.raises(ValueError, match=r"warmup_steps=10 is invalid: it must be in \[0, total_steps=10\)"):
        lr_at(0, 10, 10, 0.1)
    with pytest.raises(ValueError, match=r"step=11 is outside the schedule \[0, total_steps=10\]"):
        lr_at(11, 10, 2, 0.1)
    resolved = ResolvedRecipe(128, 0.1, 10, 50, 10, 1, 1)
    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.4)
    with pytest.raises(ValueError, match=r"lr=0.4, but the resolved recipe's peak lr is 0.1"):
        build_scheduler(opt, resolved, 0.1)
    assert math.isclose(lr_at(5, 10, 0, 1.0), 0.5)
    assert lr_at(0, 10, 4, 1.0, warmup_factor=0.0) == 0.0 and lr_at(2, 10, 4, 1.0, warmup_factor=0.0) == 0.5
