"""The files a training run leaves, read as a teammate or a checker would: readable by the group
(the umask is obeyed, not mkstemp's 0600), byte-identical for identical runs, and holding the
values really used (final.json's precision, the loss between logged steps, a progress line per epoch)."""

from __future__ import annotations

import csv
import hashlib
import json
import os
import stat
import subprocess
import sys

import pytest
from _train_helpers import EVALUATE, REPO, cpu_env, train_cmd

from regnet_tutorial.train import checkpoints as ckpt
from regnet_tutorial.train.synthetic import make_tiny_dataset
from regnet_tutorial.train.tracking import read_metrics_csv

pytestmark = pytest.mark.slow

RUN = ["epochs=2", "batch_size=4", "precise_bn_samples=0", "checkpoint_every_steps=3"]  # 8 steps, 4 per epoch


def run_with_umask(cmd, umask=0o022, **env):
    """``cmd`` in the repository root under ``umask`` (as a shell's ``umask 022`` would set it)."""
    return subprocess.run(cmd, cwd=REPO, env=cpu_env(**env), capture_output=True, text=True, timeout=300,
                          preexec_fn=lambda: os.umask(umask))


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("run_files")
    data = make_tiny_dataset(root / "data", num_classes=2, train_per_class=8, val_per_class=4, image_size=40)
    done = {}
    for name, extra in (("b", ["log_every=2"]), ("c", ["log_every=2"]), ("every_step", ["log_every=1"])):
        result = run_with_umask(train_cmd(data, root / name, *RUN, *extra))
        assert result.returncode == 0, result.stderr[-3000:]
        done[name] = result
    # Killed after step 5, then resumed: metrics.csv and run.json are rewritten by the resume.
    killed = run_with_umask(train_cmd(data, root / "resumed", *RUN, "log_every=2"),
                            REGNET_TUTORIAL_CRASH_AT="step:5")
    assert killed.returncode != 0
    resumed = run_with_umask(train_cmd(data, root / "resumed", *RUN, "log_every=2", "--resume", "auto"))
    assert resumed.returncode == 0 and "resumed from" in resumed.stdout, resumed.stderr[-3000:]
    evaluated = run_with_umask([sys.executable, str(EVALUATE), "--checkpoint", str(root / "resumed"),
                                "--data", str(data), "--num_workers", "0",
                                "--output_json", str(root / "resumed" / "eval.json")])
    assert evaluated.returncode == 0, evaluated.stderr[-3000:]
    return root, done


def sha256(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_every_file_is_readable_by_group_and_others_under_umask_022(runs):
    root, _ = runs
    out = root / "resumed"
    files = [p for p in out.rglob("*") if p.is_file() and "logs/train" not in p.as_posix()]  # TensorBoard's own
    names = {p.relative_to(out).as_posix() for p in files}
    newest = ckpt.list_checkpoints(out)[-1].relative_to(out).as_posix()
    for expected in ("model.safetensors", "config.yaml", "run.json", "final.json", "logs/metrics.csv", "eval.json",
                     f"{newest}/model.safetensors", f"{newest}/optimizer.safetensors", f"{newest}/optimizer.json",
                     f"{newest}/rng_state_0.safetensors", f"{newest}/{ckpt.RUN_CONFIG}", f"{newest}/{ckpt.MARKER}"):
        assert expected in names, expected
    modes = {p.relative_to(out).as_posix(): oct(stat.S_IMODE(p.stat().st_mode)) for p in files}
    assert {name for name, mode in modes.items() if mode != "0o644"} == set(), modes
    folders = {p.relative_to(out).as_posix(): oct(stat.S_IMODE(p.stat().st_mode)) for p in out.rglob("*") if p.is_dir()}
    assert set(folders.values()) == {"0o755"}, folders


def test_identical_runs_write_byte_identical_weights(runs):
    """What `sha256sum` would check: the tensors and the header (metadata included), byte for byte."""
    root, _ = runs
    assert sha256(root / "b" / "model.safetensors") == sha256(root / "c" / "model.safetensors")
    # log_every changes what is logged, not the training; a killed and resumed run ends the same too.
    assert sha256(root / "b" / "model.safetensors") == sha256(root / "every_step" / "model.safetensors")
    assert sha256(root / "b" / "model.safetensors") == sha256(root / "resumed" / "model.safetensors")


def test_loss_max_shows_every_step_between_logged_lines(runs):
    """With log_every=2, train/loss_max at a logged step is the largest loss of the steps since the
    previous line: checked against the every-step losses of the same run logged with log_every=1."""
    root, _ = runs
    every = dict(read_metrics_csv(root / "every_step" / "logs" / "metrics.csv")["train/loss"])
    assert sorted(every) == list(range(8))
    for name in ("b", "resumed"):
        logged = read_metrics_csv(root / name / "logs" / "metrics.csv")
        maxima = dict(logged["train/loss_max"])
        assert sorted(maxima) == [0, 2, 4, 6]
        for step, value in maxima.items():
            window = [every[s] for s in range(max(0, step - 1), step + 1)]  # steps (previous line, step]
            assert value == max(window), (step, value, window)
        assert dict(logged["train/loss"]) == {s: every[s] for s in maxima}


def test_final_json_records_the_precision_really_used(runs):
    root, _ = runs
    final = json.loads((root / "b" / "final.json").read_text())
    run = json.loads((root / "b" / "run.json").read_text())
    assert final["config"]["mixed_precision"] == run["mixed_precision"] == final["mixed_precision"] == "no"
    assert "mixed_precision: 'no'" in (root / "b" / "config.yaml").read_text()


def test_a_progress_line_at_every_epoch_end_when_progress_every_exceeds_an_epoch(runs):
    _, done = runs
    lines = [line for line in done["b"].stdout.splitlines() if line.startswith("step ")]  # --progress_every 100
    assert [line.split()[1] for line in lines] == ["4/8", "8/8"]


def test_metrics_rows_are_not_duplicated_by_the_resume(runs):
    root, _ = runs
    with open(root / "resumed" / "logs" / "metrics.csv", newline="") as f:
        rows = [(r["step"], r["name"]) for r in csv.DictReader(f)]
    assert len(rows) == len(set(rows))
    assert (root / "resumed" / "logs" / "metrics.csv").read_text() == (root / "b" / "logs" / "metrics.csv").read_text()
