"""Crash-safe training checkpoints: atomic save, keep the last K and the best, exact resume.

Layout under ``<output_dir>/checkpoints``::

    step_00000420/            one complete checkpoint (accelerator.save_state files)
        trainer_state.json    the finishing marker: written last, inside the temp folder
    .tmp-step_00000480/       a save in progress (or killed): never read

A checkpoint is written by ``accelerator.save_state`` into a temporary folder next to the
target; the main process then writes ``trainer_state.json`` and renames the folder into
place with ``os.replace``. A folder without the marker is therefore never a half-written
checkpoint that ``--resume auto`` could pick.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from .training import write_json_atomic

MARKER = "trainer_state.json"
CHECKPOINT_DIR = "checkpoints"
_NAME = re.compile(r"^step_(\d{8})$")
CRASH_ENV = "REGNET_TUTORIAL_CRASH_AT"
"""Test-only fault injection: ``step:N`` SIGKILLs the run after optimizer step N,
``save:N`` SIGKILLs it in the middle of writing the checkpoint of step N."""


class ResumeError(FileNotFoundError):
    """``--resume`` points at something that is not a complete checkpoint."""


@dataclass
class TrainerState:
    """Where the loop stands: what a checkpoint must add to model/optimizer/RNG state to
    continue exactly. ``batches_done`` counts batches of ``epoch`` already consumed (per process)."""

    epoch: int = 0
    batches_done: int = 0
    global_step: int = 0
    best_top1: float = -1.0
    best_step: int = -1
    history: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainerState:
        known = {k: data[k] for k in cls.__dataclass_fields__ if k in data}
        return cls(**known)


def checkpoint_name(step: int) -> str:
    """``step_XXXXXXXX``: the folder name of the checkpoint after optimizer step ``step``."""
    return f"step_{step:08d}"


def is_complete(path: str | os.PathLike) -> bool:
    """Whether ``path`` is a checkpoint folder whose save finished (it holds the marker)."""
    return (Path(path) / MARKER).is_file()


def list_checkpoints(output_dir: str | os.PathLike) -> list[Path]:
    """Complete checkpoints under ``output_dir/checkpoints``, oldest first."""
    root = Path(output_dir) / CHECKPOINT_DIR
    if not root.is_dir():
        return []
    found = [p for p in root.iterdir() if _NAME.match(p.name) and p.is_dir() and is_complete(p)]
    return sorted(found, key=lambda p: int(_NAME.match(p.name).group(1)))


def read_trainer_state(path: str | os.PathLike) -> TrainerState:
    """The :class:`TrainerState` stored in a complete checkpoint folder."""
    with open(Path(path) / MARKER, encoding="utf-8") as f:
        return TrainerState.from_dict(json.load(f))


def resolve_resume(resume: str | None, output_dir: str | os.PathLike) -> Path | None:
    """The checkpoint folder ``--resume`` asks for: ``None``/``""`` -> none; ``"auto"`` -> the newest
    complete checkpoint in ``output_dir`` (``"latest"`` is a synonym) (``None`` when there is none yet, so a fresh run
    starts); a path -> that folder, which must exist and be complete."""
    if not resume:
        return None
    if resume in ("auto", "latest"):
        found = list_checkpoints(output_dir)
        return found[-1] if found else None
    path = Path(resume)
    if not path.exists():
        raise ResumeError(
            f"--resume {resume}: no such file or directory. Pass a checkpoint folder such as "
            f"{Path(output_dir) / CHECKPOINT_DIR / checkpoint_name(1000)}, or --resume auto to continue "
            "from the newest complete checkpoint of --output_dir."
        )
    if not path.is_dir() or not is_complete(path):
        others = list_checkpoints(path.parent.parent) if path.parent.name == CHECKPOINT_DIR else []
        hint = f" The newest complete one next to it is {others[-1]}." if others else ""
        raise ResumeError(
            f"--resume {resume}: not a complete checkpoint folder (no {MARKER}; a save that was "
            f"interrupted leaves such a folder).{hint} Use --resume auto to pick the newest complete one."
        )
    return path


def maybe_crash(point: str, step: int) -> None:
    """SIGKILL this process when :data:`CRASH_ENV` is ``f"{point}:{step}"`` (fault-injection tests)."""
    if os.environ.get(CRASH_ENV) == f"{point}:{step}":
        os.kill(os.getpid(), signal.SIGKILL)


def save_checkpoint(
    accelerator: Any, output_dir: str | os.PathLike, state: TrainerState, keep_last: int,
) -> Path:
    """Save model, optimizer, registered objects (scheduler, EMA), scaler and RNG states of every
    process plus ``state`` as ``checkpoints/step_XXXXXXXX``, atomically; then prune to the
    newest ``keep_last`` checkpoints plus the best one. All processes must call it."""
    root = Path(output_dir) / CHECKPOINT_DIR
    final = root / checkpoint_name(state.global_step)
    tmp = root / f".tmp-{final.name}"
    if accelerator.is_main_process:
        root.mkdir(parents=True, exist_ok=True)
        shutil.rmtree(tmp, ignore_errors=True)  # leftovers of a save that was killed
    accelerator.wait_for_everyone()
    accelerator.save_state(str(tmp))
    maybe_crash("save", state.global_step)
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        write_json_atomic(tmp / MARKER, state.to_dict())
        if final.exists():  # re-saving the same step after a resume
            trash = root / f".old-{final.name}"
            os.replace(final, trash)
            shutil.rmtree(trash)
        os.replace(tmp, final)
        _fsync_dir(root)
        prune_checkpoints(output_dir, keep_last, keep_step=state.best_step)
    accelerator.wait_for_everyone()
    return final


def prune_checkpoints(output_dir: str | os.PathLike, keep_last: int, keep_step: int = -1) -> list[Path]:
    """Delete all but the newest ``keep_last`` complete checkpoints, never the one of step
    ``keep_step`` (the best so far). Returns the deleted folders."""
    found = list_checkpoints(output_dir)
    keep = set(found[-keep_last:]) if keep_last > 0 else set()
    deleted = []
    for path in found:
        if path not in keep and int(_NAME.match(path.name).group(1)) != keep_step:
            shutil.rmtree(path)
            deleted.append(path)
    return deleted


def _fsync_dir(path: Path) -> None:
    """Make a rename in ``path`` durable (POSIX); a no-op where directories cannot be opened."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
