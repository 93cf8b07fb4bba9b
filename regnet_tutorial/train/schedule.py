"""The learning-rate schedules: linear warmup, then a half-period cosine to zero, three ways.

All three warm up for ``warmup_epochs`` from ``warmup_factor x peak`` and then follow
``0.5 * (1 + cos(pi * t))``; they differ in *when* the rate changes. Counted in optimizer steps,
step ``s`` (0-based) of epoch ``e = s // S`` (``S`` steps per epoch, ``E`` epochs, ``W`` warmup
epochs, ``f`` the warmup factor) trains with:

``"pycls"`` -- the paper's code (pycls ``optim.get_epoch_lr``), the default. The rate is set
    once at the start of each epoch::

        peak * 0.5 * (1 + cos(pi * e / E)) * (f * (1 - e / W) + e / W  if e < W  else 1)

``"mmcls"`` -- mmclassification's RegNet configs (mmcv ``CosineAnnealingLrUpdaterHook`` with
    ``by_epoch=True``, ``warmup="linear"``, ``warmup_by_epoch=True``, ``warmup_ratio=f``), which
    trained the seed table's checkpoints. The cosine is set per epoch, the warmup per step::

        peak * 0.5 * (1 + cos(pi * e / E)) * (1 - (1 - s / (W S)) * (1 - f)  if s < W S  else 1)

``"per_step"`` -- ours: warmup and cosine both move every step, the cosine counted from the
    end of the warmup (:func:`lr_at`)::

        s <  W S:  peak * (f + (1 - f) * s / (W S))
        s >= W S:  peak * 0.5 * (1 + cos(pi * (s - W S) / (T - W S)))      T = E S

Goyal et al. (2017) introduced the linear scaling of the rate with the batch and the gradual
warmup; the cosine decay is Loshchilov and Hutter's (2017). In the middle of training the
per-step cosine sits several percent above the per-epoch ones (8% at epoch 50 of 100), because
it starts after the warmup. Every schedule reaches 0 at ``s = T``, the state *after* the last step.

``python -m regnet_tutorial.train schedule CONFIG --steps-per-epoch N`` prints the rate of every
optimizer step of a recipe as CSV (``step,epoch,lr``).

Using it with Accelerate
------------------------
Do **not** pass the scheduler to ``accelerator.prepare``. The prepared wrapper steps it
``num_processes`` times per optimizer step (Accelerate assumes a schedule written for one
process) and skips steps whose fp16 gradients overflowed, so our step-counted schedule
would run ``num_processes`` times too fast and end off zero. Instead:

* call ``scheduler.step()`` yourself exactly once per optimizer step, i.e. whenever
  ``accelerator.sync_gradients`` is true after ``optimizer.step()`` (skipped fp16 steps
  included, so the schedule stays aligned with the step counter);
* ``accelerator.register_for_checkpointing(scheduler)`` so that ``save_state`` /
  ``load_state`` store and restore its position.
"""

from __future__ import annotations

import math
import typing
from dataclasses import dataclass

import torch
from torch.optim.lr_scheduler import LambdaLR

from .recipe import PAPER_NUM_GPUS, ResolvedRecipe, ScheduleName, load_config, resolve_recipe

SCHEDULES: tuple[str, ...] = typing.get_args(ScheduleName)
"""The schedule names, as the config key ``schedule`` accepts them."""


def _check_steps(step: int, total_steps: int, warmup_steps: int, warmup_factor: float) -> None:
    if total_steps < 1:
        raise ValueError(f"total_steps={total_steps} is invalid: it must be >= 1.")
    if not 0 <= warmup_steps < total_steps:
        raise ValueError(
            f"warmup_steps={warmup_steps} is invalid: it must be in [0, total_steps={total_steps}) "
            "so that the cosine part has at least one step."
        )
    if not 0 <= warmup_factor <= 1:
        raise ValueError(f"warmup_factor={warmup_factor} is invalid: it must be in [0, 1].")
    if not 0 <= step <= total_steps:
        raise ValueError(
            f"step={step} is outside the schedule [0, total_steps={total_steps}]; "
            "resolve the recipe again if the run was made longer."
        )


def lr_at(
    step: int, total_steps: int, warmup_steps: int, peak_lr: float, warmup_factor: float = 0.1
) -> float:
    """The ``"per_step"`` rate of optimizer step ``step`` (0-based); ``lr_at(total_steps) == 0``."""
    _check_steps(step, total_steps, warmup_steps, warmup_factor)
    if step < warmup_steps:
        return peak_lr * (warmup_factor + (1 - warmup_factor) * step / warmup_steps)
    progress = (step - warmup_steps) / (total_steps - warmup_steps)
    return peak_lr * 0.5 * (1 + math.cos(math.pi * progress))


def epoch_cosine(epoch: int, epochs: int) -> float:
    """The per-epoch half cosine of pycls and mmcv: ``0.5 * (1 + cos(pi * epoch / epochs))``."""
    return 0.5 * (1 + math.cos(math.pi * epoch / epochs))


def pycls_lr(step: int, steps_per_epoch: int, epochs: int, warmup_epochs: int, peak_lr: float,
             warmup_factor: float = 0.1) -> float:
    """The ``"pycls"`` rate of optimizer step ``step``: fixed within an epoch (pycls ``get_epoch_lr``)."""
    _check_epochs(step, steps_per_epoch, epochs, warmup_epochs, warmup_factor)
    epoch = step // steps_per_epoch
    lr = peak_lr * epoch_cosine(epoch, epochs)
    if epoch < warmup_epochs:
        alpha = epoch / warmup_epochs
        lr *= warmup_factor * (1 - alpha) + alpha
    return lr


def mmcls_lr(step: int, steps_per_epoch: int, epochs: int, warmup_epochs: int, peak_lr: float,
             warmup_factor: float = 0.1) -> float:
    """The ``"mmcls"`` rate of optimizer step ``step``: the epoch's cosine, times a linear
    warmup that moves every step (mmcv's linear warmup over the per-epoch ``regular_lr``)."""
    _check_epochs(step, steps_per_epoch, epochs, warmup_epochs, warmup_factor)
    lr = peak_lr * epoch_cosine(step // steps_per_epoch, epochs)
    warmup_steps = warmup_epochs * steps_per_epoch
    if step < warmup_steps:
        lr *= 1 - (1 - step / warmup_steps) * (1 - warmup_factor)
    return lr


def _check_epochs(step: int, steps_per_epoch: int, epochs: int, warmup_epochs: int, warmup_factor: float) -> None:
    if steps_per_epoch < 1 or epochs < 1:
        raise ValueError(f"steps_per_epoch={steps_per_epoch} and epochs={epochs} are invalid: both must be >= 1.")
    _check_steps(step, steps_per_epoch * epochs, warmup_epochs * steps_per_epoch, warmup_factor)


def schedule_lr(schedule: str, step: int, steps_per_epoch: int, epochs: int, warmup_epochs: int,
                peak_lr: float, warmup_factor: float = 0.1) -> float:
    """The rate of optimizer step ``step`` under the named ``schedule`` (one of :data:`SCHEDULES`)."""
    check_schedule(schedule)
    if schedule == "per_step":
        total = steps_per_epoch * epochs
        return lr_at(step, total, warmup_epochs * steps_per_epoch, peak_lr, warmup_factor)
    fn = pycls_lr if schedule == "pycls" else mmcls_lr
    return fn(step, steps_per_epoch, epochs, warmup_epochs, peak_lr, warmup_factor)


def check_schedule(schedule: str) -> None:
    """Raise a one-line ``ValueError`` naming the choices if ``schedule`` is not a known name."""
    if schedule not in SCHEDULES:
        raise ValueError(f"schedule={schedule!r} is invalid: it must be one of {', '.join(SCHEDULES)}.")


@dataclass(frozen=True)
class WarmupCosine:
    """``schedule_lr / peak_lr`` as a callable object, so ``LambdaLR.state_dict()`` records it.

    ``total_steps`` and ``warmup_steps`` must be whole multiples of ``steps_per_epoch``
    (``steps_per_epoch=None`` means one epoch of ``total_steps``, for ``"per_step"`` only).
    """

    total_steps: int
    warmup_steps: int
    warmup_factor: float = 0.1
    schedule: str = "per_step"
    steps_per_epoch: int | None = None

    def __post_init__(self) -> None:
        check_schedule(self.schedule)
        _check_steps(0, self.total_steps, self.warmup_steps, self.warmup_factor)
        if self.schedule != "per_step":
            spe = self.steps_per_epoch
            if spe is None or spe < 1 or self.total_steps % spe or self.warmup_steps % spe:
                raise ValueError(
                    f"schedule={self.schedule!r} sets the lr per epoch: total_steps={self.total_steps} and "
                    f"warmup_steps={self.warmup_steps} must be multiples of steps_per_epoch={spe}."
                )

    def __call__(self, step: int) -> float:
        if self.schedule == "per_step":
            return lr_at(step, self.total_steps, self.warmup_steps, 1.0, self.warmup_factor)
        spe = typing.cast(int, self.steps_per_epoch)
        return schedule_lr(self.schedule, step, spe, self.total_steps // spe, self.warmup_steps // spe,
                           1.0, self.warmup_factor)


def build_scheduler(
    optimizer: torch.optim.Optimizer, resolved: ResolvedRecipe, warmup_factor: float,
    schedule: str | None = None,
) -> LambdaLR:
    """A ``LambdaLR`` that gives ``optimizer`` the rate of each optimizer step under ``schedule``
    (default: the recipe's, ``resolved.schedule``).

    The optimizer must have been created with ``lr=resolved.lr``. Step the scheduler once per
    optimizer step and keep it out of ``accelerator.prepare`` (see the module docstring).
    """
    for i, group in enumerate(optimizer.param_groups):
        base = group.get("initial_lr", group["lr"])
        if not math.isclose(base, resolved.lr, rel_tol=1e-9):
            raise ValueError(
                f"Optimizer param group {i} has lr={base}, but the resolved recipe's peak lr is "
                f"{resolved.lr}; create the optimizer with lr=resolved.lr."
            )
    name = resolved.schedule if schedule is None else schedule
    return LambdaLR(optimizer, WarmupCosine(resolved.total_steps, resolved.warmup_steps, warmup_factor,
                                            name, resolved.steps_per_epoch))


def schedule_csv(config: str | None, steps_per_epoch: int, overrides: typing.Sequence[str] = (),
                 num_processes: int = PAPER_NUM_GPUS) -> str:
    """``step,epoch,lr`` for every optimizer step of the recipe ``config`` (a YAML path, or
    ``None`` for the defaults) with ``steps_per_epoch`` steps per epoch on ``num_processes``
    processes (the peak lr scales with the total batch)."""
    cfg = load_config(config, overrides)
    total_batch = cfg.batch_size * num_processes * cfg.grad_accum_steps
    resolved = resolve_recipe(cfg, num_processes=num_processes, dataset_size=steps_per_epoch * total_batch)
    rows = ["step,epoch,lr"]
    for step in range(resolved.total_steps):
        lr = schedule_lr(cfg.schedule, step, resolved.steps_per_epoch, cfg.epochs, cfg.warmup_epochs,
                         resolved.lr, cfg.warmup_factor)
        rows.append(f"{step},{step // resolved.steps_per_epoch},{lr:.10g}")
    return "\n".join(rows) + "\n"
