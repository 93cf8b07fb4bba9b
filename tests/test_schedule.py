"""The learning-rate schedules: ``per_step`` (ours) checked against the formula written out here
and PyTorch's own schedulers; ``pycls`` and ``mmcls`` checked against a step-by-step replay of
what the reference code does (pycls's trainer sets ``get_epoch_lr`` at each epoch start; mmcv's
``LrUpdaterHook`` sets the epoch's cosine before each epoch and a linear warmup before each
iteration), at every epoch boundary and at every step inside the warmup."""

from __future__ import annotations

import dataclasses
import io
import math

import numpy as np
import pytest
import torch
from torch.optim.lr_scheduler import CosineAnnealingLR, LinearLR, SequentialLR

from regnet_tutorial.train.__main__ import main as train_main
from regnet_tutorial.train.recipe import ConfigError, ResolvedRecipe, TrainConfig, load_config, resolve_recipe
from regnet_tutorial.train.schedule import SCHEDULES, build_scheduler, lr_at, mmcls_lr, pycls_lr, schedule_lr


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
    cfg = TrainConfig(batch_size=batch_size, grad_accum_steps=grad_accum_steps, epochs=6, warmup_epochs=2,
                      schedule="per_step")
    resolved = resolve_recipe(cfg, num_processes=num_processes, dataset_size=1000)
    assert (resolved.total_batch, resolved.steps_per_epoch, resolved.total_steps) == (64, 15, 90)
    lrs = scheduler_lrs(resolved, cfg.warmup_factor)
    expected = paper_lr(np.arange(91), 90, 30, 0.05, 0.1)  # lr = 0.1 x 64 / 128
    np.testing.assert_allclose(lrs, expected, rtol=1e-12, atol=1e-15)
    assert lrs == [lr_at(s, 90, 30, resolved.lr, 0.1) for s in range(91)]
    assert lrs[-1] == 0.0


def test_more_processes_with_the_same_per_process_batch_halve_the_steps() -> None:
    cfg = TrainConfig(batch_size=32, epochs=6, warmup_epochs=2, schedule="per_step")
    one, two = (resolve_recipe(cfg, n, dataset_size=1024) for n in (1, 2))
    assert (one.total_steps, two.total_steps) == (192, 96) and two.lr == 2 * one.lr
    lrs_one, lrs_two = scheduler_lrs(one, 0.1), scheduler_lrs(two, 0.1)
    # The same curve in units of "fraction of training": step 2k on one process ~ step k on two.
    np.testing.assert_allclose(np.array(lrs_one[::2]) / one.lr, np.array(lrs_two) / two.lr, rtol=1e-12, atol=1e-15)


def test_scheduler_state_survives_a_checkpoint_round_trip() -> None:
    resolved = ResolvedRecipe(total_batch=128, lr=0.1, steps_per_epoch=10, total_steps=50, warmup_steps=10,
                              num_processes=1, grad_accum_steps=1, schedule="per_step")
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


# --- the reference schedules, replayed the way the reference code runs them ------------------

def pycls_replay(epochs: int, steps_per_epoch: int, warmup_epochs: int, base_lr: float, factor: float) -> list[float]:
    """pycls ``train_epoch``: at the start of epoch e the lr is set to ``get_epoch_lr(e)`` =
    ``lr_fun_cos(e) * BASE_LR`` (MIN_LR = 0), times ``WARMUP_FACTOR * (1 - a) + a`` with
    ``a = e / WARMUP_EPOCHS`` while ``e < WARMUP_EPOCHS``; it stays fixed for the whole epoch."""
    lrs = []
    for epoch in range(epochs):
        lr = base_lr * 0.5 * (1.0 + np.cos(np.pi * epoch / epochs))
        if epoch < warmup_epochs:
            a = epoch / warmup_epochs
            lr *= factor * (1.0 - a) + a
        lrs += [float(lr)] * steps_per_epoch
    return lrs


def mmcls_replay(epochs: int, steps_per_epoch: int, warmup_epochs: int, base_lr: float, ratio: float) -> list[float]:
    """mmcv ``CosineAnnealingLrUpdaterHook(min_lr=0, by_epoch=True, warmup='linear',
    warmup_iters=W, warmup_ratio=r, warmup_by_epoch=True)`` under an epoch-based runner:
    ``before_train_epoch`` sets ``regular_lr = annealing_cos(base, 0, epoch / max_epochs)``;
    ``before_train_iter`` (global iteration i) sets ``regular_lr * (1 - k)`` with
    ``k = (1 - i / warmup_iters) * (1 - r)`` while ``i < warmup_iters``, ``regular_lr`` at
    ``i == warmup_iters`` and leaves the lr alone after that."""
    warmup_iters = warmup_epochs * steps_per_epoch
    current, lrs, i = None, [], 0
    for epoch in range(epochs):
        regular = 0.0 + 0.5 * (base_lr - 0.0) * (np.cos(np.pi * epoch / epochs) + 1)  # annealing_cos
        current = regular
        for _ in range(steps_per_epoch):
            if i < warmup_iters:
                k = (1 - i / warmup_iters) * (1 - ratio)
                current = regular * (1 - k)
            elif i == warmup_iters:
                current = regular
            lrs.append(float(current))
            i += 1
    return lrs


REFERENCE_CASES = [(100, 7, 5, 0.8, 0.1), (10, 3, 2, 0.4, 0.25), (6, 1, 1, 0.1, 0.1), (8, 4, 0, 0.2, 0.1)]


@pytest.mark.parametrize(("epochs", "spe", "warmup", "peak", "factor"), REFERENCE_CASES)
def test_pycls_schedule_is_pycls_get_epoch_lr(epochs: int, spe: int, warmup: int, peak: float, factor: float) -> None:
    expected = pycls_replay(epochs, spe, warmup, peak, factor)
    ours = [pycls_lr(s, spe, epochs, warmup, peak, factor) for s in range(epochs * spe)]
    np.testing.assert_allclose(ours, expected, rtol=1e-12, atol=1e-15)
    for epoch in range(epochs):  # every epoch boundary, by hand: the value of the whole epoch
        cos = 0.5 * (1 + math.cos(math.pi * epoch / epochs))
        warm = factor + (1 - factor) * epoch / warmup if epoch < warmup else 1.0
        assert ours[epoch * spe] == pytest.approx(peak * cos * warm, rel=1e-12)
        assert ours[epoch * spe: (epoch + 1) * spe] == [ours[epoch * spe]] * spe  # constant within the epoch
    assert ours[0] == pytest.approx(peak * (factor if warmup else 1.0))
    assert pycls_lr(epochs * spe, spe, epochs, warmup, peak, factor) == pytest.approx(0.0, abs=1e-15)


@pytest.mark.parametrize(("epochs", "spe", "warmup", "peak", "factor"), REFERENCE_CASES)
def test_mmcls_schedule_is_mmcv_cosine_with_linear_warmup(epochs: int, spe: int, warmup: int, peak: float,
                                                          factor: float) -> None:
    expected = mmcls_replay(epochs, spe, warmup, peak, factor)
    ours = [mmcls_lr(s, spe, epochs, warmup, peak, factor) for s in range(epochs * spe)]
    np.testing.assert_allclose(ours, expected, rtol=1e-12, atol=1e-15)
    for s in range(warmup * spe):  # every step inside the warmup moves
        epoch_value = peak * 0.5 * (1 + math.cos(math.pi * (s // spe) / epochs))
        assert ours[s] == pytest.approx(epoch_value * (factor + (1 - factor) * s / (warmup * spe)), rel=1e-12)
    for epoch in range(warmup, epochs):  # after it, constant within each epoch
        assert ours[epoch * spe: (epoch + 1) * spe] == [ours[epoch * spe]] * spe
    assert ours[0] == pytest.approx(peak * (factor if warmup else 1.0))


def test_the_three_schedules_differ_mid_training_by_several_percent() -> None:
    """100 epochs, 5 warmup: the per-epoch cosines start at step 0, ours after the warmup."""
    spe, mid = 100, 50 * 100
    values = {name: schedule_lr(name, mid, spe, 100, 5, 1.0, 0.1) for name in SCHEDULES}
    assert values["pycls"] == values["mmcls"] == pytest.approx(0.5)
    assert values["per_step"] == pytest.approx(0.5 * (1 + math.cos(math.pi * 45 / 95)))
    assert 0.03 < values["per_step"] / values["pycls"] - 1 < 0.10  # ours is ~8% higher at epoch 50


@pytest.mark.parametrize("name", ["pycls", "mmcls", "per_step"])
def test_build_scheduler_follows_the_configured_schedule(name: str) -> None:
    cfg = TrainConfig(batch_size=16, epochs=4, warmup_epochs=1, schedule=name)
    resolved = resolve_recipe(cfg, num_processes=2, dataset_size=32 * 5)
    assert resolved.schedule == name and (resolved.steps_per_epoch, resolved.total_steps) == (5, 20)
    lrs = scheduler_lrs(resolved, cfg.warmup_factor)
    expected = [schedule_lr(name, s, 5, 4, 1, resolved.lr, 0.1) for s in range(20)]
    np.testing.assert_allclose(lrs[:20], expected, rtol=1e-12, atol=1e-15)
    assert lrs[20] == pytest.approx(0.0, abs=1e-15)


def test_schedule_key_defaults_and_errors(tmp_path) -> None:
    assert TrainConfig().schedule == "pycls"  # the paper's code
    assert load_config("configs/regnetx_400mf.yaml").schedule == "mmcls"  # in the seed table
    assert load_config("configs/regnety_400mf.yaml").schedule == "pycls"  # not in it
    with pytest.raises(ConfigError, match=r"^schedule='cosine' is invalid: schedule must be one of "
                                          r"'pycls', 'mmcls', 'per_step' \(got str\)\.$"):
        load_config(None, ["schedule=cosine"])


def test_cli_prints_every_step_as_csv(capsys) -> None:
    assert train_main(["schedule", "configs/regnetx_400mf.yaml", "--steps-per-epoch", "3", "--set", "epochs=4",
                 "--set", "warmup_epochs=2"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "step,epoch,lr" and len(lines) == 1 + 12
    rows = [line.split(",") for line in lines[1:]]
    assert [int(r[0]) for r in rows] == list(range(12)) and [int(r[1]) for r in rows] == [s // 3 for s in range(12)]
    peak = 0.1 * 8 * 128 / 128  # 8 processes x 128 images, lr 0.1 per 128
    np.testing.assert_allclose([float(r[2]) for r in rows], mmcls_replay(4, 3, 2, peak, 0.1), rtol=1e-9)
    with pytest.raises(SystemExit):
        train_main(["schedule", "configs/regnetx_400mf.yaml", "--steps-per-epoch", "3", "--set", "schedule=cosine"])
    assert "schedule='cosine' is invalid" in capsys.readouterr().err
