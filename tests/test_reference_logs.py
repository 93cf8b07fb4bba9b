"""Reading an mmcls log.json (written here in mmcv's TextLoggerHook format) and a run's
metrics.csv, and finding where the curves part."""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib
import pytest
import torch
from _weights_server import FileServer

from regnet_tutorial.weights.download import MIRROR_ENV
from regnet_tutorial.weights.reference_logs import (
    LogFormatError,
    format_partings,
    plot_curves,
    read_mmcls_log,
    read_run_metrics,
    where_curves_part,
)

matplotlib.use("Agg")

ITERS, INTERVAL = 300, 100  # iterations per epoch, log_config.interval
LOSSES = {1: [6.9, 6.5, 6.1], 2: [5.0, 4.6, 4.2], 3: [3.9, 3.7, 3.5]}
LRS = {1: [0.1, 0.2, 0.3], 2: [0.4, 0.4, 0.4], 3: [0.2, 0.1, 0.0]}
TOP1 = {1: 10.0, 2: 30.0, 3: 45.5}


def mmcls_log_lines() -> list[str]:
    lines = [json.dumps({"env_info": "sys.platform: linux\nPython: 3.8", "config": "model = dict(...)", "seed": 0,
                         "exp_name": "regnetx-400mf_8xb128_in1k.py"})]
    for epoch in (1, 2, 3):
        for k, (loss, lr) in enumerate(zip(LOSSES[epoch], LRS[epoch], strict=True), start=1):
            lines.append(json.dumps({"mode": "train", "epoch": epoch, "iter": k * INTERVAL, "lr": lr,
                                     "memory": 3800, "data_time": 0.1, "loss": loss, "time": 0.35}))
        lines.append(json.dumps({"mode": "val", "epoch": epoch, "iter": ITERS, "lr": LRS[epoch][-1],
                                 "accuracy_top-1": TOP1[epoch], "accuracy_top-5": TOP1[epoch] + 20}))
    return lines


def write_run(path: Path, loss_shift: float = 0.0, top1_shift: dict[int, float] | None = None) -> Path:
    """A metrics.csv as scripts/train.py's CsvTracker writes it: train/* per logged step, epoch/* at epoch ends."""
    rows = ["step,name,value"]
    for epoch in (1, 2, 3):
        for k in range(3):
            step = (epoch - 1) * 3 + k
            rows += [f"{step},train/loss,{LOSSES[epoch][k] + loss_shift!r}", f"{step},train/lr,{LRS[epoch][k]!r}"]
        end = epoch * 3
        top1 = TOP1[epoch] + (top1_shift or {}).get(epoch, 0.0)
        rows += [f"{end},epoch/epoch,{epoch}", f"{end},epoch/train_loss,1.0", f"{end},epoch/val_top1,{top1!r}"]
    path.write_text("\n".join(rows) + "\n")
    return path


def test_mmcls_log_is_reduced_to_epoch_means(tmp_path: Path) -> None:
    log = tmp_path / "20211208_143316.log.json"
    log.write_text("\n".join(mmcls_log_lines()) + "\n")
    curves = read_mmcls_log(log)
    assert curves.series("loss") == ([1, 2, 3], pytest.approx([6.5, 4.6, 3.7]))
    assert curves.series("lr") == ([1, 2, 3], pytest.approx([0.2, 0.4, 0.1]))
    assert curves.values["top1"] == TOP1 and curves.values["top5"] == {e: v + 20 for e, v in TOP1.items()}


def test_identical_runs_never_part_and_a_diverging_one_is_located(tmp_path: Path) -> None:
    reference = read_mmcls_log(_log(tmp_path))
    same = read_run_metrics(write_run(tmp_path / "same.csv"))
    assert same.values["loss"] == pytest.approx(reference.values["loss"])
    assert all(p.first_apart is None and p.common_epochs == 3 for p in where_curves_part(same, reference))

    apart = read_run_metrics(write_run(tmp_path / "apart.csv", top1_shift={2: -0.5, 3: -3.0}))
    partings = {p.metric: p for p in where_curves_part(apart, reference)}
    assert partings["top1"].first_apart == 3 and partings["top1"].widest_gap == pytest.approx(3.0)
    assert (partings["top1"].ours_there, partings["top1"].reference_there) == (42.5, 45.5)
    assert partings["loss"].first_apart is None
    table = format_partings(list(partings.values()), "ours", "mmcls")
    assert "| top1 | 3 | 3 | 42.5 | 45.5 | 3.00 (3) |" in table
    figure = plot_curves(apart, reference)
    assert [ax.get_title() for ax in figure.axes] == [
        "training loss (epoch mean)", "learning rate (epoch mean)", "val top-1 (%)"]
    assert all(len(ax.lines) == 2 for ax in figure.axes)


def test_a_log_is_read_from_a_url_with_the_download_rules(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))
    monkeypatch.setattr(torch.hub, "_hub_dir", None)
    url = "https://download.openmmlab.com/mmclassification/v0/regnet/regnetx-400mf_8xb128_in1k_20211208_143316.log.json"
    with FileServer() as server:
        server.files[url.split(".com", 1)[1]] = ("\n".join(mmcls_log_lines()) + "\n").encode()
        monkeypatch.setenv(MIRROR_ENV, server.base)
        curves = read_mmcls_log(url)
    assert curves.values["top1"] == TOP1


def test_bad_logs_name_the_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.log.json"
    bad.write_text(mmcls_log_lines()[0] + "\n{not json\n")
    with pytest.raises(LogFormatError, match=r"bad.log.json, line 2: not JSON"):
        read_mmcls_log(bad)
    meta_only = tmp_path / "meta.log.json"
    meta_only.write_text(mmcls_log_lines()[0] + "\n")
    with pytest.raises(LogFormatError, match="no train or val records"):
        read_mmcls_log(meta_only)


def _log(tmp_path: Path) -> Path:
    log = tmp_path / "ref.log.json"
    log.write_text("\n".join(mmcls_log_lines()) + "\n")
    return log


def test_a_run_written_in_mmcls_format_reads_back_the_same(tmp_path: Path) -> None:
    from regnet_tutorial.weights.reference_logs import mmcls_log_lines

    run = write_run(tmp_path / "metrics.csv", loss_shift=0.25)
    lines = mmcls_log_lines(run, "tiny")
    assert json.loads(lines[1]) == {"mode": "train", "epoch": 1, "iter": 1, "loss": 7.15, "lr": 0.1}
    assert json.loads(lines[4]) == {"mode": "val", "epoch": 1, "iter": 3, "accuracy_top-1": 10.0}
    log = tmp_path / "run.log.json"
    log.write_text("\n".join(lines) + "\n")
    again, direct = read_mmcls_log(log), read_run_metrics(run)
    for metric in ("loss", "lr", "top1"):
        assert again.values[metric] == pytest.approx(direct.values[metric])
