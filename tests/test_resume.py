"""Exact resume: a run killed with SIGKILL (mid-epoch, or while saving a checkpoint) and resumed
with ``--resume auto`` ends with weights bitwise equal to an uninterrupted run."""

from __future__ import annotations

import csv
import json
import re
import shutil
import signal
import sys

import pytest
import torch
from _train_helpers import cpu_env, run, train_cmd, write_malicious_pickle
from safetensors.torch import load_file

from regnet_tutorial.train import checkpoints as ckpt

pytestmark = pytest.mark.slow

# 64 images, batch 8: 8 optimizer steps per epoch, 16 in all. Checkpoints every 3 steps and at
# epoch ends; EMA and precise BN on, so their state must survive the restart too.
RUN = ["epochs=2", "batch_size=8", "checkpoint_every_steps=3", "ema_decay=0.9",
       "precise_bn_samples=8", "keep_last=2"]


@pytest.fixture(scope="module")
def data(tiny_dataset):
    return tiny_dataset(num_classes=4, train_per_class=16, val_per_class=4, image_size=40)


@pytest.fixture(scope="module")
def reference(data, tmp_path_factory):
    out = tmp_path_factory.mktemp("uninterrupted")
    result = run(train_cmd(data, out, *RUN, "--progress_every", "4"))
    assert result.returncode == 0, result.stderr[-3000:]
    (out / "stdout.txt").write_text(result.stdout)
    return out


def test_progress_lines_when_the_output_is_not_a_terminal(reference):
    stdout = (reference / "stdout.txt").read_text()
    lines = [line for line in stdout.splitlines() if line.startswith("step ")]
    assert [line.split()[1] for line in lines] == ["4/16", "8/16", "12/16", "16/16"]
    assert re.fullmatch(r"step 8/16  epoch 1/2  loss \d+\.\d{4}  [\d.]+ img/s  ETA \d+:\d\d:\d\d", lines[1])


def metrics_rows(out):
    with open(out / "logs" / "metrics.csv", newline="") as f:
        return [(row["step"], row["name"], row["value"]) for row in csv.DictReader(f)]


def crashed_at_step_11(data, out):
    crashed = run(train_cmd(data, out, *RUN), env=cpu_env(REGNET_TUTORIAL_CRASH_AT="step:11"))
    assert killed(crashed), crashed.stderr[-2000:]
    return out


def assert_bitwise_equal(a_path, b_path):
    a, b = load_file(a_path), load_file(b_path)
    assert a.keys() == b.keys()
    different = [k for k in a if not torch.equal(a[k], b[k])]
    assert not different, f"{len(different)} tensors differ, e.g. {different[:3]}"


def killed(result):
    return result.returncode in (-signal.SIGKILL, 128 + signal.SIGKILL)


def test_sigkill_mid_epoch_then_resume_is_bitwise_exact(data, reference, tmp_path):
    out = tmp_path / "run"
    crashed = run(train_cmd(data, out, *RUN), env=cpu_env(REGNET_TUTORIAL_CRASH_AT="step:11"))
    assert killed(crashed), crashed.stderr[-2000:]
    assert not (out / "model.safetensors").exists()
    newest = ckpt.resolve_resume("auto", out)
    assert newest.name == "step_00000009"
    state = ckpt.read_trainer_state(newest)
    assert (state.epoch, state.batches_done, state.global_step) == (1, 1, 9)  # inside epoch 2

    resumed = run(train_cmd(data, out, *RUN, "--resume", "auto"))
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "resumed from" in resumed.stdout
    assert_bitwise_equal(reference / "model.safetensors", out / "model.safetensors")
    assert_bitwise_equal(reference / "model_ema.safetensors", out / "model_ema.safetensors")
    # The logs equal the uninterrupted run's: no step twice, and epoch 2's loss is over the whole epoch.
    rows = metrics_rows(out)
    assert len(rows) == len(set((step, name) for step, name, _ in rows))
    assert rows == metrics_rows(reference)
    history = [json.loads((o / "final.json").read_text())["history"] for o in (out, reference)]
    assert history[0] == history[1]


def test_sigkill_while_saving_keeps_previous_checkpoint(data, reference, tmp_path):
    out = tmp_path / "run"
    crashed = run(train_cmd(data, out, *RUN), env=cpu_env(REGNET_TUTORIAL_CRASH_AT="save:15"))
    assert killed(crashed), crashed.stderr[-2000:]
    partial = out / "checkpoints" / ".tmp-step_00000015"
    assert (partial / "model.safetensors").is_file() and not ckpt.is_complete(partial)
    with pytest.raises(ckpt.ResumeError, match="not a complete checkpoint"):
        ckpt.resolve_resume(str(partial), out)

    previous = ckpt.resolve_resume("auto", out)
    assert previous.name == "step_00000012"
    weights = load_file(previous / "model.safetensors")  # the previous checkpoint still loads
    assert "head.fc.weight" in weights and ckpt.read_trainer_state(previous).global_step == 12

    resumed = run(train_cmd(data, out, *RUN, "--resume", "auto"))
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert_bitwise_equal(reference / "model.safetensors", out / "model.safetensors")
    assert not partial.exists()  # the resumed run redid that save and renamed it into place
    assert ckpt.list_checkpoints(out)[-1].name == "step_00000016"


def test_resume_path_that_does_not_exist_is_a_clear_error(data, tmp_path):
    missing = tmp_path / "no_such_checkpoint"
    result = run(train_cmd(data, tmp_path / "run", "epochs=2", "batch_size=8", "--resume", str(missing)))
    assert result.returncode != 0
    assert "no such file or directory" in result.stderr and "--resume auto" in result.stderr
    assert str(missing) in result.stderr


def test_truncated_newest_checkpoint_falls_back_with_a_warning(data, reference, tmp_path):
    out = crashed_at_step_11(data, tmp_path / "run")
    newest = ckpt.list_checkpoints(out)[-1]
    assert newest.name == "step_00000009"
    damaged = newest / "model.safetensors"
    damaged.write_bytes(damaged.read_bytes()[:1000])
    resumed = run(train_cmd(data, out, *RUN, "--resume", "auto"))
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert f"Skipping damaged checkpoint {newest}" in resumed.stderr and str(damaged) in resumed.stderr
    assert "resumed from" in resumed.stdout and "step_00000008 at step 8" in resumed.stdout
    assert_bitwise_equal(reference / "model.safetensors", out / "model.safetensors")


def test_a_changed_lr_is_refused_and_an_allowed_change_is_recorded(data, tmp_path):
    out = crashed_at_step_11(data, tmp_path / "run")
    original_config = (out / "config.yaml").read_text()
    refused = run(train_cmd(data, out, *RUN, "lr_per_128=0.9", "--resume", "auto"))
    assert refused.returncode == 2
    assert refused.stderr.strip().count("\n") == 0 and refused.stderr.startswith("error: ")
    assert "lr_per_128 0.4 -> 0.9" in refused.stderr and "--allow_config_change" in refused.stderr
    allowed = run(train_cmd(data, out, *RUN, "lr_per_128=0.9", "--resume", "auto", "--allow_config_change"))
    assert allowed.returncode == 0, allowed.stderr[-3000:]
    change = [{"step": 9, "changes": {"lr_per_128": [0.4, 0.9]}}]
    assert json.loads((out / "run.json").read_text())["config_changes"] == change
    final = json.loads((out / "final.json").read_text())
    assert final["config_changes"] == change and final["config"]["lr_per_128"] == 0.9
    assert (out / "config.yaml").read_text() == original_config  # the original is never overwritten
    assert json.loads((ckpt.list_checkpoints(out)[-1] / ckpt.RUN_CONFIG).read_text())["config_changes"] == change


def test_a_malicious_pickle_in_the_checkpoint_does_not_run_on_resume(data, reference, tmp_path):
    out = crashed_at_step_11(data, tmp_path / "run")
    marker = tmp_path / "pwned"
    newest = ckpt.list_checkpoints(out)[-1]
    for name in ("custom_checkpoint_0.pkl", "random_states_0.pkl", "optimizer.bin", "scheduler.bin", "sampler.bin"):
        write_malicious_pickle(newest / name, marker, as_torch_zip=True)  # the files Accelerate's load_state unpickles
    resumed = run(train_cmd(data, out, *RUN, "--resume", "auto"))
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert not marker.exists()
    assert_bitwise_equal(reference / "model.safetensors", out / "model.safetensors")


def test_a_corrupt_val_image_loses_no_completed_epoch(data, reference, tmp_path):
    copy = tmp_path / "data"
    shutil.copytree(data, copy)
    image = sorted((copy / "val").rglob("*.JPEG"))[0]
    good = image.read_bytes()
    image.write_bytes(good[:200])  # truncated JPEG
    out = tmp_path / "run"
    failed = run(train_cmd(copy, out, *RUN))
    assert failed.returncode == 2, failed.stderr[-3000:]
    assert failed.stderr.startswith("error: Cannot decode image") and str(image) in failed.stderr
    assert "Traceback" not in failed.stderr
    state = ckpt.read_trainer_state(ckpt.list_checkpoints(out)[-1])
    assert (state.epoch, state.global_step, state.eval_pending) == (1, 8, True)  # epoch 1's training kept
    image.write_bytes(good)
    resumed = run(train_cmd(copy, out, *RUN, "--resume", "auto"))
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert_bitwise_equal(reference / "model.safetensors", out / "model.safetensors")
    assert metrics_rows(out) == metrics_rows(reference)


def test_ctrl_c_saves_a_checkpoint_so_the_epoch_is_not_lost(data, reference, tmp_path):
    """SIGINT after step 5 of the 8-step first epoch, with no periodic checkpoints: the run saves the
    step it reached, exits with 130 and one note; resumed, it ends bitwise as the uninterrupted run
    (checkpoint_every_steps changes no result, so the reference's 3 is no difference)."""
    out = tmp_path / "run"
    no_periodic = [*RUN[:2], "checkpoint_every_steps=0", *RUN[3:]]
    interrupted = run(train_cmd(data, out, *no_periodic), env=cpu_env(REGNET_TUTORIAL_CRASH_AT="interrupt:5"))
    assert interrupted.returncode == 130, interrupted.stderr[-3000:]
    assert interrupted.stderr.strip().splitlines()[-1] == "interrupted" and "Traceback" not in interrupted.stderr
    assert [c.name for c in ckpt.list_checkpoints(out)] == ["step_00000005"]
    state = ckpt.read_trainer_state(ckpt.list_checkpoints(out)[-1])
    assert (state.epoch, state.batches_done, state.global_step) == (0, 5, 5)
    resumed = run(train_cmd(data, out, *no_periodic, "--resume", "auto"))
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert_bitwise_equal(reference / "model.safetensors", out / "model.safetensors")
    assert_bitwise_equal(reference / "model_ema.safetensors", out / "model_ema.safetensors")
    assert metrics_rows(out) == metrics_rows(reference)


FULL_DISK = """
import errno, os, runpy, sys
from pathlib import Path
{patch}
sys.argv = sys.argv[1:]
runpy.run_path(sys.argv[0], run_name="__main__")
"""
WRITE_FAILS = """
real = Path.write_bytes
def write_bytes(self, data):  # the disk fills up while the checkpoint of step 6 is written
    if ".tmp-step_00000006" in str(self):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    return real(self, data)
Path.write_bytes = write_bytes
"""
SAFETENSORS_FAILS = """
from safetensors import SafetensorError
import regnet_tutorial.weights.files as files
real = files.safetensors_bytes
calls = []
def serialise(*args, **kwargs):  # the safetensors writer fails in the checkpoint of step 6
    calls.append(1)
    if len(calls) > 4:  # step 3's rng state, model, optimizer, EMA
        raise SafetensorError("Error while serializing: IoError(No space left on device)")
    return real(*args, **kwargs)
files.safetensors_bytes = serialise
"""


@pytest.mark.parametrize("patch", [WRITE_FAILS, SAFETENSORS_FAILS], ids=["OSError", "SafetensorError"])
def test_a_disk_filling_during_a_save_is_one_line_and_the_previous_checkpoint_resumes(
        data, reference, tmp_path, patch):
    out = tmp_path / "run"
    failed = run([sys.executable, "-c", FULL_DISK.format(patch=patch), *train_cmd(data, out, *RUN)[1:]])
    assert failed.returncode == 2, failed.stderr[-3000:]
    lines = failed.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(
        f"error: Saving checkpoint step_00000006 in {out / 'checkpoints'} failed ("), failed.stderr[-3000:]
    assert "No space left on device" in lines[0] and "continue with --resume auto" in lines[0]
    assert ckpt.resolve_resume("auto", out).name == "step_00000003"  # intact, and picked
    resumed = run(train_cmd(data, out, *RUN, "--resume", "auto"))  # the suggestion, applied
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert_bitwise_equal(reference / "model.safetensors", out / "model.safetensors")
