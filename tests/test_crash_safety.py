"""Crash safety of checkpoint saving, as a property (fast suite).

Whatever point a save fails at, including a re-save of a step that already has a complete
checkpoint: every checkpoint that was complete before the save is still listed, still loads, and
holds the tensors it was saved with; ``--resume auto`` picks the newest of them, never the folder
of the failed save; and the next save works. How the implementation achieves this (temporary
folders, renames, markers) is not looked at.

Two ways to fail a save, each tried at every point:

* a file write fails (``ENOSPC``): the k-th flush of a regular file (``os.fsync``) raises, for
  every k a successful save performs;
* the process dies in the middle of the save (the project's ``save:N`` fault-injection point),
  after the files written so far were left half-written: every file the save created or changed
  is truncated to half its length first.
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import torch
from accelerate import Accelerator
from torch import nn

from regnet_tutorial.train import checkpoints as ckpt

KEEP_LAST = 5  # larger than the number of saves here: nothing is pruned


class SimulatedCrash(BaseException):
    """The process 'died' (a BaseException, so that no `except Exception` in the save swallows it)."""


class Run:
    """A tiny model and SGD with momentum, prepared by Accelerate on the CPU."""

    def __init__(self, out: Path) -> None:
        self.out = out
        self.accelerator = Accelerator(cpu=True)
        torch.manual_seed(0)
        model = nn.Sequential(nn.Linear(6, 5), nn.BatchNorm1d(5), nn.Linear(5, 3))
        optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, nesterov=True)
        self.model, self.optimizer = self.accelerator.prepare(model, optimizer)
        self.saved: dict[int, dict[str, torch.Tensor]] = {}

    def train_step(self) -> None:
        self.model.train()
        self.optimizer.zero_grad()
        self.model(torch.randn(8, 6)).square().mean().backward()
        self.optimizer.step()

    def tensors(self) -> dict[str, torch.Tensor]:
        """Everything a resume must restore exactly: weights, BN statistics, momentum buffers."""
        out = {f"model.{k}": v.detach().clone() for k, v in self.model.state_dict().items()}
        for index, values in self.optimizer.state_dict()["state"].items():
            out.update({f"optim.{index}.{k}": v.clone() for k, v in values.items() if torch.is_tensor(v)})
        return out

    def save(self, step: int) -> Path:
        state = ckpt.TrainerState(epoch=step // 10, batches_done=step % 10, global_step=step)
        folder = ckpt.save_checkpoint(self.accelerator, self.out, state, KEEP_LAST,
                                      model=self.model, optimizer=self.optimizer)
        self.saved[step] = self.tensors()
        return folder

    def assert_holds(self, folder: Path, step: int) -> None:
        """``folder`` loads, and restores exactly the tensors saved at ``step``."""
        with torch.no_grad():  # scramble the live state first, so that a no-op load is seen
            for p in self.model.parameters():
                p.add_(1.0)
        state = ckpt.load_checkpoint(self.accelerator, folder, self.model, self.optimizer)
        assert state.global_step == step
        loaded, expected = self.tensors(), self.saved[step]
        assert loaded.keys() == expected.keys()
        differ = [k for k in expected if not torch.equal(loaded[k], expected[k])]
        assert not differ, f"{folder.name}: tensors differ from those saved at step {step}: {differ}"


def files_under(root: Path) -> dict[Path, tuple[int, int, int]]:
    return {p: (p.stat().st_ino, p.stat().st_size, p.stat().st_mtime_ns) for p in root.rglob("*") if p.is_file()}


@contextmanager
def failing_write(k: int) -> Iterator[None]:
    """The k-th flush of a regular file raises ENOSPC (a full disk)."""
    real = os.fsync
    calls = 0

    def fsync(fd: int) -> None:
        nonlocal calls
        if stat.S_ISREG(os.fstat(fd).st_mode):
            calls += 1
            if calls == k:
                raise OSError(errno.ENOSPC, "No space left on device (injected by the test)")
        real(fd)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(os, "fsync", fsync)
        yield


def count_file_flushes(action: Callable[[], object]) -> int:
    real = os.fsync
    calls = 0

    def fsync(fd: int) -> None:
        nonlocal calls
        calls += stat.S_ISREG(os.fstat(fd).st_mode)
        real(fd)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(os, "fsync", fsync)
        action()
    return calls


@contextmanager
def crash_mid_save(out: Path, step: int) -> Iterator[None]:
    """Die at the save's fault-injection point, leaving every file it wrote half-written."""
    before = files_under(out)

    def kill(pid: int, sig: int) -> None:
        for path, ident in files_under(out).items():
            if before.get(path) != ident:  # created or rewritten by this save
                data = path.read_bytes()
                path.write_bytes(data[: len(data) // 2])
        raise SimulatedCrash(f"killed with signal {sig}")

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv(ckpt.CRASH_ENV, f"save:{step}")
        mp.setattr(os, "kill", kill)
        yield


def prepare(tmp_path: Path) -> Run:
    """Complete checkpoints of steps 1 and 2, then one more training step (new weights)."""
    run = Run(tmp_path / "run")
    for step in (1, 2):
        run.train_step()
        run.save(step)
    run.train_step()
    return run


def assert_safe_after_failure(run: Run, failed_step: int) -> None:
    listed = ckpt.list_checkpoints(run.out)
    assert [p.name for p in listed] == [ckpt.checkpoint_name(1), ckpt.checkpoint_name(2)], (
        f"after a failed save of step {failed_step} the complete checkpoints are {[p.name for p in listed]}"
    )
    chosen = ckpt.resolve_resume("auto", run.out)
    assert chosen == listed[-1] and ckpt.is_complete(chosen)
    for folder, step in zip(listed, (1, 2)):
        run.assert_holds(folder, step)
    # The next save succeeds and becomes the one to resume from.
    run.train_step()
    retried = run.save(failed_step)
    assert ckpt.resolve_resume("auto", run.out) == retried
    run.assert_holds(retried, failed_step)


def test_the_run_fixture_saves_and_loads(tmp_path: Path) -> None:
    run = prepare(tmp_path)
    assert run.saved[1].keys() == run.saved[2].keys() and any(k.startswith("optim.") for k in run.saved[2])
    assert not all(torch.equal(run.saved[1][k], run.saved[2][k]) for k in run.saved[1])
    assert_safe_after_failure(run, 3)


@pytest.mark.parametrize("resave", [False, True], ids=["new step", "re-save of an existing step"])
def test_a_failed_write_at_any_point_loses_nothing(tmp_path: Path, resave: bool) -> None:
    counting = prepare(tmp_path / "count")
    flushes = count_file_flushes(lambda: counting.save(2 if resave else 3))
    assert flushes >= 1, "a save should flush its files to disk"
    for k in range(1, flushes + 1):
        run = prepare(tmp_path / f"fail_at_{k}")
        step = 2 if resave else 3
        with failing_write(k), pytest.raises(OSError, match="No space left"):
            run.save(step)
        assert_safe_after_failure(run, step)


@pytest.mark.parametrize("resave", [False, True], ids=["new step", "re-save of an existing step"])
def test_a_crash_mid_save_loses_nothing(tmp_path: Path, resave: bool) -> None:
    run = prepare(tmp_path)
    step = 2 if resave else 3
    with crash_mid_save(run.out, step), pytest.raises(SimulatedCrash):
        run.save(step)
    assert_safe_after_failure(run, step)
