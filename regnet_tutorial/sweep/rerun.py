"""Re-train one line of a results file with its recorded settings: the sweep's own check that a
committed error is reproducible (``python -m regnet_tutorial.sweep rerun RESULTS.jsonl --line K``).

Every line records its architecture, its sweep seed (which fixes the training and test subsets),
its model seed (which fixes the initialisation and the batch order) and its training settings, so
re-running it on the same kind of machine gives the same error, and elsewhere an error within
the measured seed noise (the CPU kernel set changes the last digits of every step).
"""

from __future__ import annotations

import json
import os
from dataclasses import fields
from typing import Any

import torch

from .images import load_dataset
from .plan import SweepError, TrainSettings
from .runner import result_record, run_meta, train_sample
from .spaces import REGNET_KEYS, SAMPLE_KEYS, spec_from_sample


def read_line(path: str | os.PathLike, line: int) -> dict[str, Any]:
    """The record on line ``line`` (1-based, as ``sed -n Kp`` counts) of a results file."""
    try:
        with open(path, encoding="utf-8") as f:
            lines = [text for text in f.read().splitlines() if text.strip()]
    except OSError as e:
        raise SweepError(f"cannot read {path}: {e.strerror}; give a sweep results file (JSON lines)") from None
    if not 1 <= line <= len(lines):
        raise SweepError(f"--line {line} is out of range: {path} has {len(lines)} lines (1 to {len(lines)})")
    try:
        record = json.loads(lines[line - 1])
    except json.JSONDecodeError:
        raise SweepError(f"{path} line {line} is not JSON: give a sweep results file") from None
    if not isinstance(record, dict) or not {"settings", "model_seed", "seed", "space"} <= record.keys():
        raise SweepError(f"{path} line {line} is not a sweep result (no settings or model_seed); "
                         "give a file written by `sweep run`")
    return record


def settings_of(record: dict[str, Any]) -> TrainSettings:
    """The :class:`TrainSettings` a line was trained with (keys it predates keep their defaults,
    which were the behaviour before they existed)."""
    names = {f.name for f in fields(TrainSettings)}
    return TrainSettings(**{k: v for k, v in record["settings"].items() if k in names})


def rerun(
    path: str | os.PathLike, line: int, data_dir: str | None = None, download: bool = False, cpu: bool = False,
) -> dict[str, Any]:
    """Re-train line ``line`` of ``path`` and return a new record in the same format."""
    record = read_line(path, line)
    settings = settings_of(record)
    resolution = record["settings"].get("image_resolution")
    train = load_dataset(settings.dataset, "train", data_dir, download, settings.train_images, record["seed"],
                         resolution)
    val = load_dataset(settings.dataset, "val", data_dir, download, settings.val_images, record["seed"], resolution)
    device = torch.device("cuda" if torch.cuda.is_available() and not cpu else "cpu")
    result = train_sample(record, spec_from_sample, settings, record["model_seed"], train, val, device)
    sample = {k: record[k] for k in (*SAMPLE_KEYS, *REGNET_KEYS) if k in record}
    return result_record(sample, result, record.get("replicate", 0), record["model_seed"], record["settings"],
                         run_meta(device))

