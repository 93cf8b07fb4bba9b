"""What a training run records: a CSV tracker for Accelerate, the metrics CSV (read, truncate on
resume), progress lines for logs, a throughput meter and the run metadata written with each run."""

from __future__ import annotations

import csv
import io
import json
import os
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from accelerate.tracking import GeneralTracker

from ..util.atomic import write_text_atomic
from ..util.env import environment_info, git_commit, lock_status

# --- logging ------------------------------------------------------------------------------------

class CsvTracker(GeneralTracker):
    """An Accelerate tracker that appends every logged value to ``<logging_dir>/metrics.csv`` as
    rows ``step,name,value`` (long format: new metric names never change the header)."""

    name = "csv"
    requires_logging_directory = True
    main_process_only = True

    def __init__(self, run_name: str, logging_dir: str | os.PathLike) -> None:
        super().__init__()
        self.run_name = run_name
        self.path = Path(logging_dir) / "metrics.csv"
        self._file = None

    def start(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        is_new = not self.path.exists() or self.path.stat().st_size == 0
        self._file = open(self.path, "a", newline="", encoding="utf-8")  # noqa: SIM115 - closed in finish()
        if is_new:
            csv.writer(self._file).writerow(["step", "name", "value"])
            self._file.flush()

    @property
    def tracker(self) -> Any:
        return self._file

    def store_init_configuration(self, values: dict) -> None:
        with open(self.path.parent / "hparams.json", "w", encoding="utf-8") as f:
            json.dump(values, f, indent=2, sort_keys=True, default=str)

    def log(self, values: dict, step: int | None = None, **kwargs: Any) -> None:
        if self._file is None:
            self.start()
        writer = csv.writer(self._file)
        for name, value in values.items():
            if isinstance(value, torch.Tensor):
                value = value.item()
            shown = repr(value) if isinstance(value, float) else value
            writer.writerow([step if step is not None else "", name, shown])
        self._file.flush()

    def finish(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


def read_metrics_csv(path: str | os.PathLike) -> dict[str, list[tuple[int, float]]]:
    """The rows a :class:`CsvTracker` wrote, as ``{name: [(step, value), ...]}`` in file order."""
    series: dict[str, list[tuple[int, float]]] = {}
    with open(path, newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            try:
                value = float(row["value"])
            except ValueError:
                continue
            step = int(row["step"]) if row["step"] else -1  # -1: logged without a step
            series.setdefault(row["name"], []).append((step, value))
    return series


def truncate_metrics_csv(path: str | os.PathLike, step: int, keep_epoch_rows_at_step: bool) -> int:
    """Drop the rows a resumed run will write again: every row logged at ``step`` or later, except
    the ``epoch/*`` rows at ``step`` itself when ``keep_epoch_rows_at_step`` (the checkpoint of
    ``step`` already holds that epoch's evaluation). Returns the number of rows dropped.

    Per-step rows are logged with the step count *before* the optimizer step, epoch rows with the
    count after the epoch's last step, so a checkpoint at step ``s`` holds exactly the rows with
    step ``< s`` plus the epoch rows at ``s``. Afterwards the file equals an uninterrupted run's.
    """
    path = Path(path)
    if not path.is_file():
        return 0
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f))
    if not rows:
        return 0
    header, body = rows[0], rows[1:]

    def keep(row: list[str]) -> bool:
        if not row or not row[0]:
            return True
        logged_at = int(row[0])
        return logged_at < step or (logged_at == step and keep_epoch_rows_at_step and row[1].startswith("epoch/"))

    kept = [row for row in body if keep(row)]
    lines = io.StringIO()
    csv.writer(lines).writerows([header, *kept])
    write_text_atomic(path, lines.getvalue())
    return len(body) - len(kept)


def flat_hparams(config: Mapping[str, Any]) -> dict[str, Any]:
    """``config`` with values TensorBoard's hparams accept (int, float, str, bool); others as text."""
    return {k: v if isinstance(v, (bool, int, float, str)) else str(v) for k, v in config.items()}


class ThroughputMeter:
    """Images per second over the images counted since the last :meth:`rate` call."""

    def __init__(self) -> None:
        self.images = 0
        self.start = time.perf_counter()

    def update(self, images: int) -> None:
        """Count ``images`` more images (over all processes)."""
        self.images += images

    def rate(self) -> float:
        """Images per second since the previous call (or construction), then restart the window."""
        now = time.perf_counter()
        value = self.images / max(now - self.start, 1e-9)
        self.images, self.start = 0, now
        return value


# --- run metadata and final export --------------------------------------------------------------

def run_metadata(accelerator: Any, extra: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """What produced a run: versions, the lock file's hash and any installed version that differs
    from it, git commit, processes, device, mixed precision."""
    meta = {
        "versions": environment_info(),
        **lock_status(),
        "git_commit": git_commit(),
        "num_processes": accelerator.num_processes,
        "distributed_type": str(accelerator.distributed_type),
        "device": str(accelerator.device),
        "mixed_precision": accelerator.mixed_precision,
    }
    meta.update(extra or {})
    return meta
