"""The paper's learning-rate schedule: linear warmup, then a half-period cosine to zero.

Counted in optimizer steps. Step ``s`` (``0 <= s < total_steps``) trains with
``lr_at(s)``::

    s <  W:  peak * (f + (1 - f) * s / W)                       linear warmup from f * peak
    s >= W:  peak * 0.5 * (1 + cos(pi * (s - W) / (T - W)))     half-period cosine

with ``W = warmup_steps``, ``T = total_steps``, ``f = warmup_factor``. The cosine reaches
exactly 0 at ``s = T``, the state *after* the last optimizer step: every one of the ``T``
steps trains with a non-zero rate (none is wasted at lr 0), and the scheduler reads 0
once training is over. pycls evaluates the same formula once per epoch; we evaluate it
every step, which is smoother and, for 100 epochs, indistinguishable in accuracy.

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
from dataclasses import dataclass

import torch
from torch.optim.lr_scheduler import LambdaLR

from .recipe import ResolvedRecipe


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
    """The learning rate of optimizer step ``step`` (0-based); ``lr_at(total_steps) == 0``."""
    _check_steps(step, total_steps, warmup_steps, warmup_factor)
    if step < warmup_steps:
        return peak_lr * (warmup_factor + (1 - warmup_factor) * step / warmup_steps)
    progress = (step - warmup_steps) / (total_steps - warmup_steps)
    return peak_lr * 0.5 * (1 + math.cos(math.pi * progress))


@dataclass(frozen=True)
class WarmupCosine:
    """``lr_at / peak_lr`` as a callable object, so ``LambdaLR.state_dict()`` records it."""

    total_steps: int
    warmup_steps: int
    warmup_factor: float = 0.1

    def __post_init__(self) -> None:
        _check_steps(0, self.total_steps, self.warmup_steps, self.warmup_factor)

    def __call__(self, step: int) -> float:
        return lr_at(step, self.total_steps, self.warmup_steps, 1.0, self.warmup_factor)


def build_scheduler(
    optimizer: torch.optim.Optimizer, resolved: ResolvedRecipe, warmup_factor: float
) -> LambdaLR:
    """A ``LambdaLR`` that gives ``optimizer`` the rate :func:`lr_at` of each optimizer step.

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
    return LambdaLR(optimizer, WarmupCosine(resolved.total_steps, resolved.warmup_steps, warmup_factor))
