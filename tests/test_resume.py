"""Exact resume: a run killed with SIGKILL (mid-epoch, or while saving a checkpoint) and resumed
with ``--resume auto`` ends with weights bitwise equal to an uninterrupted run."""

from __future__ import annotations

import signal

import pytest
import torch
from safetensors.torch import load_file

from regnet_tutorial import checkpointing as ckpt
from regnet_tutorial.tiny_dataset import make_tiny_dataset

from _train_helpers import cpu_env, run, train_cmd

pytestmark = pytest.mark.slow

# 64 images, batch 8: 8 optimizer steps per epoch, 16 in all. Checkpoints every 3 steps and at
# epoch ends; EMA and precise BN on, so their state must survive the restart too.
RUN = ["epochs=2", "batch_size=8", "checkpoint_every_steps=3", "ema_decay=0.9",
       "precise_bn_batches=1", "keep_last=2"]


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return make_tiny_dataset(tmp_path_factory.mktemp("resume_data"), num_classes=4, train_per_class=16,
                             val_per_class=4, image_size=40)


@pytest.fixture(scope="module")
def reference(data, tmp_path_factory):
    out = tmp_path_factory.mktemp("uninterrupted")
    result = run(train_cmd(data, out, *RUN))
    assert result.returncode == 0, result.stderr[-3000:]
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
