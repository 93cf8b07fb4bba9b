"""Checkpoint folders (atomic save, pruning, resume resolution) and the small training helpers."""

from __future__ import annotations

import json

import pytest
import torch
from accelerate import Accelerator
from torch import nn

from regnet_tutorial import checkpointing as ckpt
from regnet_tutorial.training import (
    CsvTracker, SeededAugmentation, build_ema, precise_bn, random_subset, read_metrics_csv,
    write_json_atomic,
)


def _fake_checkpoint(out, step, complete=True):
    folder = out / ckpt.CHECKPOINT_DIR / ckpt.checkpoint_name(step)
    folder.mkdir(parents=True)
    (folder / "model.safetensors").write_bytes(b"x")
    if complete:
        (folder / ckpt.MARKER).write_text(json.dumps(ckpt.TrainerState(global_step=step).to_dict()))
    return folder


def test_resume_none_and_auto_without_checkpoints_start_fresh(tmp_path):
    assert ckpt.resolve_resume(None, tmp_path) is None
    assert ckpt.resolve_resume("auto", tmp_path) is None


def test_auto_picks_newest_complete_checkpoint_and_ignores_partial_ones(tmp_path):
    _fake_checkpoint(tmp_path, 5)
    newest = _fake_checkpoint(tmp_path, 12)
    _fake_checkpoint(tmp_path, 20, complete=False)  # e.g. copied by hand, marker missing
    (tmp_path / ckpt.CHECKPOINT_DIR / ".tmp-step_00000030").mkdir()  # a save that was killed
    assert ckpt.resolve_resume("auto", tmp_path) == newest
    assert ckpt.resolve_resume("latest", tmp_path) == newest  # TrainConfig's spelling
    assert [p.name for p in ckpt.list_checkpoints(tmp_path)] == ["step_00000005", "step_00000012"]


def test_resume_path_that_does_not_exist(tmp_path):
    with pytest.raises(ckpt.ResumeError, match="no such file or directory") as err:
        ckpt.resolve_resume(str(tmp_path / "nope"), tmp_path)
    assert "--resume auto" in str(err.value)


def test_resume_path_without_marker_names_the_newest_complete_one(tmp_path):
    good = _fake_checkpoint(tmp_path, 3)
    bad = _fake_checkpoint(tmp_path, 6, complete=False)
    with pytest.raises(ckpt.ResumeError, match="not a complete checkpoint") as err:
        ckpt.resolve_resume(str(bad), tmp_path)
    assert str(good) in str(err.value)


def test_prune_keeps_last_k_and_the_best(tmp_path):
    for step in (1, 2, 3, 4):
        _fake_checkpoint(tmp_path, step)
    deleted = ckpt.prune_checkpoints(tmp_path, keep_last=2, keep_step=1)
    assert [p.name for p in deleted] == ["step_00000002"]
    assert [p.name for p in ckpt.list_checkpoints(tmp_path)] == ["step_00000001", "step_00000003", "step_00000004"]


def test_save_checkpoint_round_trip_with_accelerate(tmp_path):
    accelerator = Accelerator(cpu=True)
    torch.manual_seed(0)
    model = nn.Linear(3, 2)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    model, optimizer = accelerator.prepare(model, optimizer)
    model(torch.randn(4, 3)).sum().backward()
    optimizer.step()
    state = ckpt.TrainerState(epoch=1, batches_done=3, global_step=7, best_top1=50.0, best_step=7)
    folder = ckpt.save_checkpoint(accelerator, tmp_path, state, keep_last=2)
    assert folder.name == "step_00000007" and ckpt.is_complete(folder)
    assert not list((tmp_path / ckpt.CHECKPOINT_DIR).glob(".tmp-*"))
    assert ckpt.read_trainer_state(folder) == state
    saved = {k: v.clone() for k, v in model.state_dict().items()}
    with torch.no_grad():
        model.weight.add_(1.0)
    accelerator.load_state(str(folder))
    assert all(torch.equal(saved[k], v) for k, v in model.state_dict().items())
    # Saving the same step again (after a resume) replaces the folder atomically.
    assert ckpt.save_checkpoint(accelerator, tmp_path, state, keep_last=2) == folder


def test_seeded_augmentation_is_a_function_of_seed_epoch_and_index():
    class Noise(torch.utils.data.Dataset):
        def __len__(self):
            return 10

        def __getitem__(self, i):
            return torch.rand(3)

    data = SeededAugmentation(Noise(), base_seed=1)
    first = [data[i] for i in range(10)]
    torch.manual_seed(123)  # the global state does not matter ...
    before = torch.get_rng_state()
    assert all(torch.equal(data[i], first[i]) for i in reversed(range(10)))  # ... nor the order
    assert torch.equal(torch.get_rng_state(), before)  # and is left untouched
    data.set_epoch(1)
    assert not torch.equal(data[0], first[0])
    assert not torch.equal(SeededAugmentation(Noise(), base_seed=2)[0], first[0])
    assert len(random_subset(data, 4, seed=0)) == 4


def test_precise_bn_equals_the_plain_average_of_batch_statistics():
    torch.manual_seed(0)
    bn = nn.BatchNorm2d(3)
    batches = [torch.randn(4, 3, 5, 5) * (i + 1) + i for i in range(3)]
    used = precise_bn(nn.Sequential(bn), iter(batches), num_batches=3)
    assert used == 3
    means = torch.stack([b.mean(dim=(0, 2, 3)) for b in batches])
    variances = torch.stack([b.transpose(0, 1).reshape(3, -1).var(dim=1, unbiased=True) for b in batches])
    torch.testing.assert_close(bn.running_mean, means.mean(0))
    torch.testing.assert_close(bn.running_var, variances.mean(0))
    assert bn.momentum == 0.1  # restored


def test_ema_follows_its_formula():
    model = nn.Linear(2, 1)
    ema = build_ema(model, decay=0.9)
    start = model.weight.detach().clone()
    with torch.no_grad():
        model.weight.add_(1.0)
    ema.update_parameters(model)  # the first update copies the weights
    with torch.no_grad():
        model.weight.add_(1.0)
    ema.update_parameters(model)
    torch.testing.assert_close(ema.module.weight, 0.9 * (start + 1) + 0.1 * (start + 2))
    with pytest.raises(ValueError, match="ema_decay"):
        build_ema(model, decay=1.0)


def test_csv_tracker_writes_long_format(tmp_path):
    tracker = CsvTracker("run", tmp_path)
    tracker.start()
    tracker.log({"train/loss": 1.5, "train/lr": 0.1}, step=0)
    tracker.log({"train/loss": torch.tensor(0.25)}, step=1)
    tracker.finish()
    assert read_metrics_csv(tmp_path / "metrics.csv") == {
        "train/loss": [(0, 1.5), (1, 0.25)], "train/lr": [(0, 0.1)],
    }


def test_write_json_atomic_leaves_no_temporary_file(tmp_path):
    path = write_json_atomic(tmp_path / "a" / "run.json", {"x": 1, "nan": float("nan")})
    assert json.loads(path.read_text())["x"] == 1
    assert [p.name for p in path.parent.iterdir()] == ["run.json"]
