"""The reproduce command end to end: a tiny ImageFolder, random-weight checkpoints served by a
real HTTP server on 127.0.0.1, the published columns from the registry, resume after SIGKILL.

The served checkpoints' classifiers rank classes 0, 1, 2 first on every image (large biases),
so on a 3-class folder with equal class sizes top-1 is 100/3 % and top-5 is 100 %, whatever
the rest of the random weights do.
"""

from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from _weights_server import FileServer, upstream_checkpoint
from test_weights_download import publish

from regnet_tutorial.train.loaders import DataError
from regnet_tutorial.train.synthetic import make_tiny_dataset
from regnet_tutorial.weights import registry
from regnet_tutorial.weights.reproduce import COLUMNS, imagenet_val, main, reproduce

FAVOUR = {0: 100.0, 1: 99.0, 2: 98.0}
PYCLS_MODELS = ("regnetx_200mf", "regnety_200mf", "regnetx_400mf")


@pytest.fixture
def tiny_val(tmp_path: Path) -> Path:
    return make_tiny_dataset(tmp_path / "tiny", num_classes=3, train_per_class=1, val_per_class=4) / "val"


def read_csv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def test_the_table_has_the_published_columns_and_the_measured_accuracy(
    served: FileServer, monkeypatch: pytest.MonkeyPatch, tiny_val: Path, tmp_path: Path
) -> None:
    for source, model, tag in (("mmcls", "regnetx_400mf", "in1k"), ("mmcls", "regnetx_400mf", "from_pycls")):
        data, _ = upstream_checkpoint(source, model, seed=len(tag), head_bias=FAVOUR)
        publish(served, monkeypatch, source, model, tag, data)
    out = tmp_path / "out"
    rows = reproduce(["--data", str(tiny_val), "--source", "mmcls", "--models", "regnetx_400mf",
                      "--out", str(out), "--num-workers", "0", "--batch-size", "5"])
    assert [r["weights"] for r in rows] == ["mmcls.in1k:regnetx_400mf", "mmcls.from_pycls:regnetx_400mf"]
    readme = {(r.display_name, r.converted_from_pycls): r for r in registry.mmcls_table()}
    for row, converted in zip(read_csv(out / "reproduce.csv"), (False, True), strict=True):
        published = readme[("RegNetX-400MF", converted)]
        assert (float(row["published_top1"]), float(row["published_top5"])) == (published.top1, published.top5)
        assert float(row["measured_top1"]) == pytest.approx(100 / 3, abs=0.01)
        assert float(row["measured_top5"]) == 100.0 and row["images"] == "12"
        assert float(row["delta_top1"]) == pytest.approx(100 / 3 - published.top1, abs=0.011)
        assert "|Δ top-1| > 0.3" in row["flag"] and "3 classes, not ImageNet's 1000" in row["flag"]
        assert row["transform"].startswith("mmcls: short side 256 (opencv bilinear, uint8), centre crop 224")
    markdown = (out / "reproduce.md").read_text()
    assert "| mmcls.in1k:regnetx_400mf | 72.56 | 33.33 | -39.23 | 90.78 | 100.00 | +9.22 |" in markdown
    assert "flagged where |Δ| > 0.3" in markdown


@pytest.mark.slow
def test_resume_after_sigkill_keeps_finished_rows(
    served: FileServer, monkeypatch: pytest.MonkeyPatch, tiny_val: Path, tmp_path: Path, capsys
) -> None:
    for seed, model in enumerate(PYCLS_MODELS):
        data, _ = upstream_checkpoint("pycls", model, seed=seed, head_bias=FAVOUR)
        publish(served, monkeypatch, "pycls", model, "in1k", data)  # pycls names carry no checksum
    out = tmp_path / "out"
    argv = ["--data", str(tiny_val), "--source", "pycls", "--models", ",".join(PYCLS_MODELS),
            "--out", str(out), "--num-workers", "0", "--batch-size", "6"]
    process = subprocess.Popen([sys.executable, "-m", "regnet_tutorial.weights.reproduce", *argv],
                               env=os.environ.copy(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and process.poll() is None:
        if (out / "reproduce.csv").exists() and read_csv(out / "reproduce.csv"):
            break
        time.sleep(0.02)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    before = read_csv(out / "reproduce.csv")
    assert 1 <= len(before) < len(PYCLS_MODELS), "the run must be killed between two rows"
    assert list(before[0]) == list(COLUMNS)

    rows = reproduce(argv)
    printed = capsys.readouterr().out
    assert f"keeping {len(before)} finished row(s)" in printed
    for kept in before:
        assert f"{kept['weights']}: top-1" not in printed, "a finished row must not be evaluated again"
    after = read_csv(out / "reproduce.csv")
    assert after[: len(before)] == before and len(after) == len(rows) == len(PYCLS_MODELS)
    for row in after:
        assert float(row["measured_top1"]) == pytest.approx(100 / 3, abs=0.01)
        assert row["published_top5"] == "" and row["delta_top5"] == ""
    # In registry order: X-200MF, X-400MF, Y-200MF.
    assert [float(r["published_top1"]) for r in after] == [68.9, 72.6, 70.3]
    assert not [p.name for p in out.iterdir() if p.name.endswith(".tmp")]


def test_bad_layouts_are_one_line_errors(tmp_path: Path, tiny_val: Path, capsys) -> None:
    flat = tmp_path / "flat"
    flat.mkdir()
    for i in range(2):
        (flat / f"ILSVRC2012_val_{i:08d}.JPEG").write_bytes(b"")
    with pytest.raises(DataError, match="no class folders.*ILSVRC2012_devkit_t12.tar.gz"):
        imagenet_val(flat, None)
    with pytest.raises(DataError, match="found neither class folders nor the archives"):
        imagenet_val(_empty(tmp_path), None)
    with pytest.raises(DataError, match="no such folder"):
        imagenet_val(tmp_path / "missing", None)
    archives = tmp_path / "archives"  # the official names, but not the official files
    archives.mkdir()
    for name in ("ILSVRC2012_devkit_t12.tar.gz", "ILSVRC2012_img_val.tar"):
        (archives / name).write_bytes(b"not an archive")
    with pytest.raises(DataError, match=r"--data .*archives: .*(scipy|MD5|corrupted)"):
        imagenet_val(archives, None)
    assert len(imagenet_val(tiny_val.parent, None)) == 12, "DATA/val/<wnid> is found too"
    with pytest.raises(SystemExit) as info:
        main(["--data", str(tmp_path / "missing"), "--source", "nope"])
    assert info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: --source nope: unknown") and "\n" not in err


def _empty(tmp_path: Path) -> Path:
    folder = tmp_path / "empty"
    folder.mkdir()
    return folder


@pytest.mark.slow
def test_under_accelerate_launch_with_two_processes(
    served: FileServer, monkeypatch: pytest.MonkeyPatch, tiny_val: Path, tmp_path: Path
) -> None:
    from _train_helpers import launch_two_cpu_processes

    data, _ = upstream_checkpoint("pycls", "regnetx_200mf", head_bias=FAVOUR)
    publish(served, monkeypatch, "pycls", "regnetx_200mf", "in1k", data)
    out = tmp_path / "out"
    done = launch_two_cpu_processes(["-m", "regnet_tutorial.weights", "reproduce", "--data", str(tiny_val),
                                     "--source", "pycls", "--models", "regnetx_200mf", "--out", str(out),
                                     "--num-workers", "0", "--batch-size", "5"])
    assert done.returncode == 0, done.stderr[-2000:]
    [row] = read_csv(out / "reproduce.csv")
    assert row["images"] == "12", "2 processes x 2 batches of 5 pad the 12 images; each must count once"
    assert float(row["measured_top1"]) == pytest.approx(100 / 3, abs=0.01)
    assert len(served.requests) == 1, "one process downloads, the other reads the cache"


@pytest.mark.parametrize(("argv", "word"), [
    (["list", "--source", "nope"], "--source"),
    (["reproduce", "--data", "x", "--batch-size", "0"], "--batch-size"),
    (["reproduce", "--data", "x", "--weights", "mmcls"], "expected SOURCE[.TAG]:MODEL"),
])
def test_the_weights_subcommands_fail_in_one_line(argv: list[str], word: str, capsys, tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    from regnet_tutorial.weights.__main__ import main as weights_main

    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as info:
        weights_main(argv)
    assert info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "\n" not in err and word in err, err
    assert not list(tmp_path.iterdir()), "nothing written"


def test_weights_list_prints_the_registry(capsys) -> None:
    from regnet_tutorial.weights.__main__ import main as weights_main

    assert weights_main(["list", "--source", "mmcls", "--model", "regnetx_400mf"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in lines] == ["mmcls.in1k:regnetx_400mf", "mmcls.from_pycls:regnetx_400mf"]
    assert "72.56" in lines[0] and "89bfc226" in lines[0]
