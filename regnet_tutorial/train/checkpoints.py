"""Crash-safe training checkpoints: atomic save, keep the last K and the best, exact and safe resume.

Layout under ``<output_dir>/checkpoints``::

    step_00000420/                  one complete checkpoint
        model.safetensors           the weights (of the unwrapped model)
        optimizer.safetensors       the optimizer's tensors (SGD momentum buffers) ...
        optimizer.json              ... and its param groups and other numbers
        ema.safetensors             the EMA of the weights (when ema_decay > 0)
        rng_state_<rank>.safetensors  each process's torch/CUDA random states (+ Python's and
                                    NumPy's, as JSON in the file's metadata)
        run_config.json             the config the checkpoint was trained with
        trainer_state.json          the finishing marker: written last, inside the temp folder
    .tmp-step_00000480/             a save in progress (or killed): never read

Nothing here is a pickle: resuming reads safetensors and JSON only, so a checkpoint folder can
never run code (Accelerate's ``save_state`` writes ``custom_checkpoint_*.pkl`` and loads it with
``weights_only=False``; we do not use it). The learning-rate scheduler has no file: its
position is the optimizer step count, ``global_step``, and its rates are recomputed from the
current config.

A checkpoint is written into a temporary folder next to the target; the main process then
writes ``trainer_state.json`` and renames the folder into place with ``os.replace``. A folder
without the marker is therefore never a half-written checkpoint that ``--resume auto`` could
pick; a complete folder whose files were damaged later (a truncated copy) is detected by
:func:`verify_checkpoint`, and ``--resume auto`` falls back to the next older one.
"""

from __future__ import annotations

import json
import os
import random
import re
import shutil
import signal
import warnings
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import SafetensorError, safe_open

from ..errors import RegNetTutorialError
from ..util.atomic import write_json_atomic
from ..weights.files import CheckpointFormatError, load_safetensors, save_safetensors

MARKER = "trainer_state.json"
CHECKPOINT_DIR = "checkpoints"
MODEL_FILE = "model.safetensors"
OPTIMIZER_TENSORS = "optimizer.safetensors"
OPTIMIZER_JSON = "optimizer.json"
EMA_FILE = "ema.safetensors"
RUN_CONFIG = "run_config.json"
_NAME = re.compile(r"^step_(\d{8})$")
CRASH_ENV = "REGNET_TUTORIAL_CRASH_AT"
"""Test-only fault injection: ``step:N`` SIGKILLs the run after optimizer step N,
``save:N`` SIGKILLs it in the middle of writing the checkpoint of step N, ``interrupt:N`` sends it
SIGINT (a Ctrl-C) after optimizer step N."""

RESULT_NEUTRAL_KEYS = frozenset({
    "data", "output_dir", "resume", "num_workers", "log_every", "keep_last", "checkpoint_every_steps",
})
"""Config keys a resumed run may change freely: where things are, how often to log or save,
how many loader workers (augmentation is seeded per sample, so workers do not change the
images). Every other key, the number of processes and the mixed precision change the result."""


class CheckpointSaveError(RegNetTutorialError, OSError):
    """A checkpoint could not be written (disk full, no permission); the earlier ones are intact."""


class ResumeError(RegNetTutorialError, FileNotFoundError):
    """``--resume`` points at something that is not a complete, readable checkpoint, or the
    run's settings differ from the checkpoint's."""


@dataclass
class TrainerState:
    """Where the loop stands: what a checkpoint must add to model/optimizer/RNG state to
    continue exactly. ``batches_done`` counts batches of ``epoch`` already consumed (per process);
    ``loss_sums`` (one per process) and ``loss_batches`` accumulate the epoch's training loss so
    far, so that a resumed epoch reports the mean over the whole epoch; ``loss_window_max`` (one
    per process) is the largest training loss since the last logged step, so that a resumed run
    logs the same ``train/loss_max``; ``eval_pending`` says the epoch ``epoch`` finished training
    but its evaluation has not run yet."""

    epoch: int = 0
    batches_done: int = 0
    global_step: int = 0
    best_top1: float = -1.0
    best_step: int = -1
    history: list[dict[str, Any]] = field(default_factory=list)
    loss_sums: list[float] = field(default_factory=list)
    loss_batches: int = 0
    loss_window_max: list[float] = field(default_factory=list)
    eval_pending: bool = False

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
    return TrainerState.from_dict(_read_json(Path(path) / MARKER))


def read_run_config(path: str | os.PathLike) -> dict[str, Any]:
    """The run settings stored with a checkpoint: ``config``, ``num_processes``, ``config_changes``."""
    return _read_json(Path(path) / RUN_CONFIG)


def _read_json(path: Path) -> Any:
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise CheckpointFormatError(f"{path} is not readable JSON ({err}); the checkpoint is damaged.") from err


def rng_file(rank: int) -> str:
    """The random-state file of process ``rank``."""
    return f"rng_state_{rank}.safetensors"


def verify_checkpoint(path: str | os.PathLike, num_processes: int = 1, ema: bool = False) -> None:
    """Read every file a resume reads (JSON, and every tensor of the safetensors files), so that a
    truncated or damaged checkpoint is found before anything is loaded. Raises
    :class:`CheckpointFormatError` naming the first bad file."""
    path = Path(path)
    if not (path / RUN_CONFIG).exists() and (path / "optimizer.bin").exists():
        raise CheckpointFormatError(
            f"{path} was written by an older scripts/train.py with Accelerate's save_state (pickle files), "
            "which is not loaded because unpickling can run code; start a new run in another --output_dir."
        )
    _read_json(path / MARKER)
    _read_json(path / RUN_CONFIG)
    _read_json(path / OPTIMIZER_JSON)
    tensors = [MODEL_FILE, OPTIMIZER_TENSORS, *(rng_file(r) for r in range(num_processes))]
    for name in tensors + ([EMA_FILE] if ema else []):
        load_safetensors(path / name)  # raises CheckpointFormatError naming the file
    for rank in range(num_processes):
        _rng_metadata(path / rng_file(rank))


def resolve_resume(
    resume: str | None, output_dir: str | os.PathLike, num_processes: int = 1, ema: bool = False,
    warn: bool = True,
) -> Path | None:
    """The checkpoint folder ``--resume`` asks for: ``None``/``""`` -> none; ``"auto"`` (or
    ``"latest"``) -> the newest complete checkpoint in ``output_dir`` whose files all read back
    (``None`` when there is none yet, so a fresh run starts); a damaged newer one is skipped with
    a warning that names its bad file. A path -> that folder, which must exist, be complete and
    read back."""
    if not resume:
        return None
    if resume in ("auto", "latest"):
        for candidate in reversed(list_checkpoints(output_dir)):
            try:
                verify_checkpoint(candidate, num_processes, ema)
                return candidate
            except CheckpointFormatError as err:
                if warn:
                    warnings.warn(f"Skipping damaged checkpoint {candidate}: {err} Falling back to an older one.",
                                  stacklevel=2)
        if list_checkpoints(output_dir):
            raise ResumeError(f"--resume {resume}: every checkpoint in {Path(output_dir) / CHECKPOINT_DIR} is "
                              "damaged (see the warnings above); start a new run in another --output_dir.")
        return None
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
    try:
        verify_checkpoint(path, num_processes, ema)
    except CheckpointFormatError as err:
        raise ResumeError(f"--resume {resume}: {err} Use --resume auto to fall back to an older checkpoint.") from err
    return path


def maybe_crash(point: str, step: int) -> None:
    """SIGKILL this process when :data:`CRASH_ENV` is ``f"{point}:{step}"``, or send it SIGINT when it
    is ``f"interrupt:{step}"`` at the ``"step"`` point (fault-injection tests)."""
    wanted = os.environ.get(CRASH_ENV)
    if wanted == f"{point}:{step}":
        os.kill(os.getpid(), signal.SIGKILL)
    if point == "step" and wanted == f"interrupt:{step}":
        os.kill(os.getpid(), signal.SIGINT)


# --- what a changed config means for a resume ----------------------------------------------------

def config_changes(old: Mapping[str, Any], new: Mapping[str, Any]) -> dict[str, list[Any]]:
    """``{key: [old, new]}`` for every setting that differs and changes the result (all but
    :data:`RESULT_NEUTRAL_KEYS`)."""
    keys = [k for k in {**old, **new} if k not in RESULT_NEUTRAL_KEYS]
    return {k: [old.get(k), new.get(k)] for k in keys if old.get(k) != new.get(k)}


def check_resume_settings(stored: Mapping[str, Any], current: Mapping[str, Any], allow_change: bool,
                          checkpoint: Path) -> dict[str, list[Any]]:
    """Compare the run settings stored in ``checkpoint`` with the current ones. Returns the changes
    (empty when none); raises :class:`ResumeError` naming them unless ``allow_change``."""
    changes = config_changes(stored, current)
    if changes and not allow_change:
        listed = ", ".join(f"{k} {a!r} -> {b!r}" for k, (a, b) in changes.items())
        raise ResumeError(
            f"--resume {checkpoint}: the run was trained with other settings, and resuming with these would "
            f"not give the run they describe: {listed}. Resume with the original values (they are in "
            f"{RUN_CONFIG} of the checkpoint and in the run's config.yaml), or pass --allow_config_change "
            "to continue with the new ones (the change is recorded in run.json and final.json)."
        )
    return changes


# --- save ----------------------------------------------------------------------------------------

def save_checkpoint(
    accelerator: Any, output_dir: str | os.PathLike, state: TrainerState, keep_last: int,
    model: torch.nn.Module | None = None, optimizer: Any = None, ema: torch.nn.Module | None = None,
    run_config: Mapping[str, Any] | None = None,
) -> Path:
    """Save ``model``, ``optimizer``, ``ema``, every process's random states, ``run_config`` and
    ``state`` as ``checkpoints/step_XXXXXXXX``, atomically, as safetensors and JSON; then prune
    to the newest ``keep_last`` checkpoints plus the best one. All processes must call it.

    A failed write (disk full) raises :class:`CheckpointSaveError`; the earlier checkpoints are
    intact, and the half-written one is a temporary folder that is never read."""
    try:
        return _save_checkpoint(accelerator, output_dir, state, keep_last, model, optimizer, ema, run_config)
    except OSError as err:  # WriteError included: one message that says what is safe
        root = Path(output_dir) / CHECKPOINT_DIR
        reason = getattr(err, "strerror", None) or " ".join(str(err).split())
        if str(root) in reason:  # a WriteError already names its file
            reason = reason.split(". Nothing was replaced")[0]
        raise CheckpointSaveError(
            f"Saving checkpoint {checkpoint_name(state.global_step)} in {root} failed ({reason}). The earlier "
            "checkpoints are intact: free space, then continue with --resume auto."
        ) from err


def _save_checkpoint(
    accelerator: Any, output_dir: str | os.PathLike, state: TrainerState, keep_last: int,
    model: torch.nn.Module | None, optimizer: Any, ema: torch.nn.Module | None,
    run_config: Mapping[str, Any] | None,
) -> Path:
    root = Path(output_dir) / CHECKPOINT_DIR
    final = root / checkpoint_name(state.global_step)
    tmp = root / f".tmp-{final.name}"
    if accelerator.is_main_process:
        root.mkdir(parents=True, exist_ok=True)
        shutil.rmtree(tmp, ignore_errors=True)  # leftovers of a save that was killed
        tmp.mkdir()
    accelerator.wait_for_everyone()
    _save_rng_state(tmp / rng_file(accelerator.process_index))
    if accelerator.is_main_process:
        if model is not None:
            save_safetensors(accelerator.unwrap_model(model, keep_torch_compile=False), tmp / MODEL_FILE)
        if optimizer is not None:
            _save_optimizer(optimizer, tmp, getattr(accelerator, "scaler", None))
        if ema is not None:
            save_safetensors(ema.state_dict(), tmp / EMA_FILE)
        write_json_atomic(tmp / RUN_CONFIG, dict(run_config or {}))
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


def _save_optimizer(optimizer: Any, folder: Path, scaler: Any = None) -> None:
    """An optimizer's state dict as tensors (safetensors) plus everything else (JSON), with the
    fp16 gradient scaler's few numbers."""
    state_dict = optimizer.state_dict()
    tensors, numbers = {}, {}
    for index, values in state_dict["state"].items():
        for name, value in values.items():
            if isinstance(value, torch.Tensor):
                tensors[f"{index}.{name}"] = value
            else:
                numbers[f"{index}.{name}"] = value
    save_safetensors(tensors, folder / OPTIMIZER_TENSORS)
    scaler_state = scaler.state_dict() if scaler is not None else None
    write_json_atomic(folder / OPTIMIZER_JSON,
                      {"param_groups": state_dict["param_groups"], "state": numbers, "scaler": scaler_state})


def _save_rng_state(path: Path) -> None:
    """This process's torch (and CUDA) random states as tensors; Python's and NumPy's as JSON metadata."""
    tensors = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        for i, cuda_state in enumerate(torch.cuda.get_rng_state_all()):
            tensors[f"cuda.{i}"] = cuda_state
    version, internal, gauss = random.getstate()
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    meta = {
        "python": json.dumps([version, list(internal), gauss]),
        "numpy": json.dumps([kind, keys.tolist(), int(pos), int(has_gauss), float(cached)]),
    }
    save_safetensors(tensors, path, meta)


# --- load ----------------------------------------------------------------------------------------

def load_checkpoint(
    accelerator: Any, path: str | os.PathLike, model: torch.nn.Module, optimizer: Any,
    ema: torch.nn.Module | None = None,
) -> TrainerState:
    """Restore ``model``, ``optimizer``, ``ema`` and this process's random states from ``path`` (a
    folder :func:`resolve_resume` accepted) and return its :class:`TrainerState`. Reads safetensors
    and JSON only."""
    path = Path(path)
    accelerator.unwrap_model(model, keep_torch_compile=False).load_state_dict(load_safetensors(path / MODEL_FILE))
    tensors = load_safetensors(path / OPTIMIZER_TENSORS)
    saved = _read_json(path / OPTIMIZER_JSON)
    state: dict[int, dict[str, Any]] = {}
    for key, value in [*tensors.items(), *saved["state"].items()]:
        index, name = key.split(".", 1)
        state.setdefault(int(index), {})[name] = value
    optimizer.load_state_dict({"state": state, "param_groups": saved["param_groups"]})
    scaler = getattr(accelerator, "scaler", None)
    if scaler is not None and saved.get("scaler"):
        scaler.load_state_dict(saved["scaler"])
    if ema is not None:
        ema.load_state_dict(load_safetensors(path / EMA_FILE))
    _load_rng_state(path / rng_file(accelerator.process_index))
    return read_trainer_state(path)


def _rng_metadata(path: Path) -> tuple[list[Any], list[Any]]:
    try:
        with safe_open(path, framework="pt") as f:
            meta = f.metadata() or {}
        return json.loads(meta["python"]), json.loads(meta["numpy"])
    except (SafetensorError, OSError, KeyError, ValueError) as err:
        raise CheckpointFormatError(f"{path} holds no readable random states ({err}); the checkpoint is damaged.") \
            from err


def _load_rng_state(path: Path) -> None:
    tensors = load_safetensors(path)
    (version, internal, gauss), (kind, keys, pos, has_gauss, cached) = _rng_metadata(path)
    random.setstate((version, tuple(internal), gauss))
    np.random.set_state((kind, np.asarray(keys, dtype=np.uint32), pos, has_gauss, cached))
    torch.set_rng_state(tensors["torch"])
    cuda = [tensors[f"cuda.{i}"] for i in range(len(tensors) - 1) if f"cuda.{i}" in tensors]
    if cuda and torch.cuda.is_available() and len(cuda) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(cuda)


def restore_schedule(scheduler: Any, optimizer: Any, step: int, peak_lr: float, hyperparams: Mapping[str, Any]) -> None:
    """Put a freshly built ``LambdaLR`` ``scheduler`` at optimizer step ``step``, with the current
    recipe's peak rate and SGD settings (``hyperparams``: momentum, nesterov, weight_decay) in every
    param group: the loaded param groups carry the values the checkpoint was trained with, and
    an allowed config change must take effect. With an unchanged config the rates are bitwise
    those of the uninterrupted run (the same ``base_lr * lambda(step)``)."""
    for group in optimizer.param_groups:
        group.update(hyperparams)
        group["initial_lr"] = peak_lr
    scheduler.base_lrs = [peak_lr for _ in optimizer.param_groups]
    scheduler.last_epoch = step
    scheduler._step_count = step + 1
    rates = [base * fn(step) for base, fn in zip(scheduler.base_lrs, scheduler.lr_lambdas)]
    for group, rate in zip(optimizer.param_groups, rates):
        group["lr"] = rate
    scheduler._last_lr = rates


# --- pruning -------------------------------------------------------------------------------------

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
