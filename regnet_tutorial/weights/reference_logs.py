"""Published training logs beside ours: read an mmcls ``log.json``, compare it with a run's metrics.csv.

mmclassification 0.x (through mmcv's ``TextLoggerHook``) writes ``<timestamp>.log.json``: one
JSON object per line. The first line holds the run's metadata (``env_info``, ``config``,
``seed``, ...) and no ``mode``; after it, every ``log_config.interval`` iterations a training
record::

    {"mode": "train", "epoch": 1, "iter": 100, "lr": 0.04, "memory": 3800, "data_time": 0.1,
     "loss": 6.87, "time": 0.35}

and after each evaluation a validation record::

    {"mode": "val", "epoch": 1, "iter": 1252, "lr": 0.4, "accuracy_top-1": 12.5, "accuracy_top-5": 31.2}

Both are reduced to one value per epoch (1-based, as both libraries count): the mean of the
epoch's logged training losses and learning rates, and the epoch's validation top-1/top-5. A
run of ``scripts/train.py`` is reduced the same way from its ``logs/metrics.csv`` (per-step
``train/loss`` and ``train/lr`` rows, and ``epoch/val_top1`` rows at the end of each epoch).
The seed README links such a log for every mmcls-trained RegNet
(:attr:`~regnet_tutorial.weights.registry.PublishedWeights.log_url`); a URL is fetched with
the same rules as weights (:func:`regnet_tutorial.weights.download.fetch`).
"""

from __future__ import annotations

import json
import math
import os
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import RegNetTutorialError

METRICS = ("loss", "lr", "top1")
"""The curves compared, in plot order."""

PART_THRESHOLDS = {"loss": ("relative", 0.05), "lr": ("relative", 0.01), "top1": ("absolute", 1.0)}
"""Where two curves count as parted: training loss 5% apart, learning rate 1% apart, top-1 1 point apart."""


class LogFormatError(RegNetTutorialError, ValueError):
    """A log file that is not in the expected format; the message names the file and line."""


@dataclass
class Curves:
    """One run's per-epoch curves: ``{metric: {epoch: value}}`` with metrics ``loss``, ``lr``, ``top1``, ``top5``."""

    label: str
    values: dict[str, dict[int, float]] = field(default_factory=dict)

    def series(self, metric: str) -> tuple[list[int], list[float]]:
        """(epochs, values) of ``metric``, by epoch."""
        points = sorted(self.values.get(metric, {}).items())
        return [e for e, _ in points], [v for _, v in points]


def _mean_by_epoch(samples: dict[int, list[float]]) -> dict[int, float]:
    return {epoch: sum(v) / len(v) for epoch, v in sorted(samples.items()) if v}


def parse_mmcls_log(lines: list[str], label: str = "mmcls", where: str = "log.json") -> Curves:
    """Per-epoch curves from the lines of an mmcls ``log.json``."""
    train: dict[str, dict[int, list[float]]] = {"loss": defaultdict(list), "lr": defaultdict(list)}
    val: dict[str, dict[int, float]] = {"top1": {}, "top5": {}}
    records = 0
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as err:
            raise LogFormatError(f"{where}, line {number}: not JSON ({err.msg}); expected one JSON object per line "
                                 "(an mmcls/mmcv *.log.json).") from None
        if not isinstance(record, dict) or "mode" not in record:
            continue  # the metadata line
        if "epoch" not in record:
            raise LogFormatError(f"{where}, line {number}: a {record['mode']!r} record without 'epoch'; "
                                 "only epoch-based mmcls logs are read.")
        epoch, records = int(record["epoch"]), records + 1
        if record["mode"] == "train":
            for key in ("loss", "lr"):
                if isinstance(record.get(key), (int, float)):
                    train[key][epoch].append(float(record[key]))
        elif record["mode"] == "val":
            for key, name in (("accuracy_top-1", "top1"), ("accuracy_top-5", "top5")):
                if isinstance(record.get(key), (int, float)):
                    val[name][epoch] = float(record[key])
    if records == 0:
        raise LogFormatError(f"{where}: no train or val records (lines with a 'mode' key); is it an mmcls log.json?")
    return Curves(label, {"loss": _mean_by_epoch(train["loss"]), "lr": _mean_by_epoch(train["lr"]), **val})


def read_mmcls_log(path_or_url: str | os.PathLike, label: str | None = None, progress: bool = False) -> Curves:
    """Per-epoch curves of an mmcls ``log.json``, from a file or a URL (downloaded into the torch hub cache)."""
    text = str(path_or_url)
    if text.startswith(("http://", "https://")):
        from .download import fetch

        path = fetch(text, progress=progress)
    else:
        path = Path(path_or_url)
        if not path.is_file():
            raise LogFormatError(f"No log file at {path}.")
    lines = path.read_text(encoding="utf-8").splitlines()
    return parse_mmcls_log(lines, label or path.name, str(path))


def read_run_metrics(metrics_csv: str | os.PathLike, label: str = "this run") -> Curves:
    """Per-epoch curves of a ``scripts/train.py`` run from its ``logs/metrics.csv``.

    A per-step row at step ``s`` belongs to the epoch whose last step is the first epoch-row step above ``s``.
    """
    from ..train.tracking import read_metrics_csv

    series = read_metrics_csv(metrics_csv)
    if "epoch/epoch" not in series:
        raise LogFormatError(f"{metrics_csv}: no epoch/epoch rows; is it the logs/metrics.csv of scripts/train.py?")
    ends = [(step, int(epoch)) for step, epoch in series["epoch/epoch"]]

    def epoch_of(step: int) -> int | None:
        return next((epoch for end, epoch in ends if step < end), None)

    values: dict[str, dict[int, float]] = {}
    for metric, name in (("loss", "train/loss"), ("lr", "train/lr")):
        samples: dict[int, list[float]] = defaultdict(list)
        for step, value in series.get(name, []):
            epoch = epoch_of(step)
            if epoch is not None:
                samples[epoch].append(value)
        values[metric] = _mean_by_epoch(samples)
    for metric in ("top1", "top5"):
        by_step = dict(series.get(f"epoch/val_{metric}", []))
        values[metric] = {epoch: by_step[end] for end, epoch in ends if end in by_step}
    return Curves(label, values)


def mmcls_log_lines(metrics_csv: str | os.PathLike, exp_name: str) -> list[str]:
    """A ``scripts/train.py`` run's ``logs/metrics.csv`` as the lines of an mmcls ``log.json``:
    a metadata line, one train record per logged step and one val record per epoch. mmcls's own
    log tools then read our runs, and :func:`read_mmcls_log` gives the same curves as
    :func:`read_run_metrics`."""
    from ..train.tracking import read_metrics_csv

    series = read_metrics_csv(metrics_csv)
    if "epoch/epoch" not in series:
        raise LogFormatError(f"{metrics_csv}: no epoch/epoch rows; is it the logs/metrics.csv of scripts/train.py?")
    loss, lr = dict(series.get("train/loss", [])), dict(series.get("train/lr", []))
    top1, top5 = dict(series.get("epoch/val_top1", [])), dict(series.get("epoch/val_top5", []))
    lines = [json.dumps({"exp_name": exp_name, "written_by": "regnet_tutorial.weights.reference_logs"})]
    start = 0
    for end, epoch in ((step, int(e)) for step, e in series["epoch/epoch"]):
        for step in sorted(s for s in loss if start <= s < end):
            record = {"mode": "train", "epoch": epoch, "iter": step - start + 1, "loss": loss[step]}
            lines.append(json.dumps({**record, **({"lr": lr[step]} if step in lr else {})}))
        if end in top1:
            record = {"mode": "val", "epoch": epoch, "iter": end - start, "accuracy_top-1": top1[end]}
            lines.append(json.dumps({**record, **({"accuracy_top-5": top5[end]} if end in top5 else {})}))
        start = end
    return lines


@dataclass(frozen=True)
class Parting:
    """Where one metric's two curves part: the first epoch beyond the threshold, and the widest gap."""

    metric: str
    common_epochs: int
    first_apart: int | None
    ours_there: float | None
    reference_there: float | None
    widest_epoch: int | None
    widest_gap: float | None


def _gap(metric: str, ours: float, reference: float) -> float:
    kind, _ = PART_THRESHOLDS[metric]
    if kind == "absolute":
        return abs(ours - reference)
    return abs(ours - reference) / max(abs(reference), 1e-12)


def where_curves_part(ours: Curves, reference: Curves) -> list[Parting]:
    """For each of :data:`METRICS`, the first common epoch where the curves are further apart than
    :data:`PART_THRESHOLDS` says, and the epoch of the widest gap (relative for loss and lr)."""
    result = []
    for metric in METRICS:
        a, b = ours.values.get(metric, {}), reference.values.get(metric, {})
        common = sorted(set(a) & set(b))
        gaps = {e: _gap(metric, a[e], b[e]) for e in common}
        _, threshold = PART_THRESHOLDS[metric]
        first = next((e for e in common if gaps[e] > threshold), None)
        widest = max(common, key=lambda e: gaps[e]) if common else None
        result.append(Parting(metric, len(common), first, a.get(first) if first else None,
                              b.get(first) if first else None, widest, gaps[widest] if widest else None))
    return result


def format_partings(partings: list[Parting], ours: str, reference: str) -> str:
    """The partings as a Markdown table."""

    def number(x: float | None) -> str:
        return "-" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.4g}"

    lines = [f"| metric | common epochs | first epoch apart | {ours} there | {reference} there | widest gap (epoch) |",
             "|:--|--:|--:|--:|--:|--:|"]
    for p in partings:
        kind, threshold = PART_THRESHOLDS[p.metric]
        if p.widest_gap is None:
            gap = "-"
        else:
            gap = f"{p.widest_gap:.1%}" if kind == "relative" else f"{p.widest_gap:.2f}"
            gap += f" ({p.widest_epoch})"
        first = "none" if p.first_apart is None else str(p.first_apart)
        lines.append(f"| {p.metric} | {p.common_epochs} | {first} | {number(p.ours_there)} | "
                     f"{number(p.reference_there)} | {gap} |")
    lines.append("")
    lines.append("Apart: " + ", ".join(
        f"{m} {'by more than ' + (f'{t:.0%}' if k == 'relative' else f'{t:g} point')}"
        for m, (k, t) in PART_THRESHOLDS.items()) + ".")
    return "\n".join(lines) + "\n"


def plot_curves(ours: Curves, reference: Curves):  # -> matplotlib.figure.Figure
    """Training loss, learning rate and top-1 against epoch, ``ours`` beside ``reference``
    (a figure outside pyplot's global list: end a notebook cell with it to show it)."""
    from ..figures.style import panels

    titles = {"loss": "training loss (epoch mean)", "lr": "learning rate (epoch mean)", "top1": "val top-1 (%)"}
    fig, axes = panels(3, height=2.4)  # stacked: readable on a phone
    for ax, metric in zip(axes, METRICS, strict=True):
        for curves, style in ((reference, "--"), (ours, "-")):
            epochs, values = curves.series(metric)
            if epochs:
                ax.plot(epochs, values, style, marker="o", markersize=3, label=curves.label)
        ax.set(title=titles[metric], xlabel="epoch")
        ax.grid(alpha=0.3)
    axes[0].legend()
    return fig
