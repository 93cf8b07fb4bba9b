"""Checkpoint folders (atomic save, pruning, resume resolution) and the small training helpers."""

from __future__ import annotations

import json
import pickle
import random
import re
import shutil
import subprocess
import sys

import numpy as np
import pytest
import torch
from _train_helpers import write_malicious_pickle
from accelerate import Accelerator
from torch import nn

from regnet_tutorial.train import checkpoints as ckpt
from regnet_tutorial.train.averaging import build_ema, precise_bn
from regnet_tutorial.train.loaders import SeededAugmentation, random_subset
from regnet_tutorial.train.rundir import RunLock, check_writable
from regnet_tutorial.train.tracking import CsvTracker, read_metrics_csv, truncate_metrics_csv
from regnet_tutorial.util.atomic import write_json_atomic
from regnet_tutorial.util.cli import CliError
from regnet_tutorial.util.progress import ProgressLines
from regnet_tutorial.weights.files import CheckpointFormatError, save_safetensors


def _fake_checkpoint(out, step, complete=True):
    folder = out / ckpt.CHECKPOINT_DIR / ckpt.checkpoint_name(step)
    folder.mkdir(parents=True)
    save_safetensors({"w": torch.zeros(1)}, folder / ckpt.MODEL_FILE)
    save_safetensors({}, folder / ckpt.OPTIMIZER_TENSORS)
    write_json_atomic(folder / ckpt.OPTIMIZER_JSON, {"param_groups": [], "state": {}})
    write_json_atomic(folder / ckpt.RUN_CONFIG, {})
    ckpt._save_rng_state(folder / ckpt.rng_file(0))
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


def _tiny_run(tmp_path, step=7):
    """A saved checkpoint of a small model, optimizer (with momentum) and EMA after one step."""
    accelerator = Accelerator(cpu=True)
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4), nn.Linear(4, 2))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, nesterov=True, weight_decay=1e-4)
    model, optimizer = accelerator.prepare(model, optimizer)
    ema = build_ema(model, 0.9)
    model(torch.randn(4, 3)).sum().backward()
    optimizer.step()
    ema.update_parameters(model)
    state = ckpt.TrainerState(epoch=1, batches_done=3, global_step=step, best_top1=50.0, best_step=step,
                              loss_sums=[1.25], loss_batches=3)
    folder = ckpt.save_checkpoint(accelerator, tmp_path, state, 2, model, optimizer, ema,
                                  {"settings": {"lr_per_128": 0.1}, "config_changes": []})
    return accelerator, model, optimizer, ema, state, folder


def test_save_checkpoint_round_trip_is_exact_and_pickle_free(tmp_path):
    accelerator, model, optimizer, ema, state, folder = _tiny_run(tmp_path)
    assert folder.name == "step_00000007" and ckpt.is_complete(folder)
    assert not list((tmp_path / ckpt.CHECKPOINT_DIR).glob(".tmp-*"))
    assert {p.suffix for p in folder.iterdir()} == {".safetensors", ".json"}  # no pickle anywhere
    assert ckpt.read_trainer_state(folder) == state
    saved = {k: v.clone() for k, v in model.state_dict().items()}
    saved_opt = optimizer.state_dict()
    saved_ema = {k: v.clone() for k, v in ema.state_dict().items()}
    with torch.no_grad():
        for t in [*model.parameters(), *ema.parameters()]:
            t.add_(1.0)
    optimizer.state.clear()
    loaded = ckpt.load_checkpoint(accelerator, folder, model, optimizer, ema)
    assert loaded == state
    assert all(torch.equal(saved[k], v) for k, v in model.state_dict().items())
    assert all(torch.equal(saved_ema[k], v) for k, v in ema.state_dict().items())
    opt = optimizer.state_dict()
    assert opt["param_groups"] == saved_opt["param_groups"]
    assert all(torch.equal(opt["state"][i]["momentum_buffer"], saved_opt["state"][i]["momentum_buffer"])
               for i in saved_opt["state"])
    # Saving the same step again (after a resume) replaces the folder atomically.
    assert ckpt.save_checkpoint(accelerator, tmp_path, state, 2, model, optimizer, ema, {}) == folder


def test_random_states_are_restored(tmp_path):
    accelerator = Accelerator(cpu=True)
    torch.manual_seed(5)
    random.seed(5)
    np.random.seed(5)
    ckpt.save_checkpoint(accelerator, tmp_path, ckpt.TrainerState(global_step=1), 2)
    after_save = (torch.rand(2), random.random(), np.random.rand())
    torch.manual_seed(99), random.seed(99), np.random.seed(99)
    ckpt._load_rng_state(tmp_path / ckpt.CHECKPOINT_DIR / "step_00000001" / ckpt.rng_file(0))
    again = (torch.rand(2), random.random(), np.random.rand())
    assert torch.equal(after_save[0], again[0]) and after_save[1:] == again[1:]


def test_restore_schedule_gives_the_uninterrupted_rates_bitwise():
    from regnet_tutorial.train.recipe import load_config, resolve_recipe
    from regnet_tutorial.train.schedule import build_scheduler

    resolved = resolve_recipe(load_config(None, ["epochs=4", "warmup_epochs=1"]), 1, 128 * 10)
    params = [nn.Parameter(torch.zeros(1))]

    def fresh():
        opt = torch.optim.SGD(params, lr=resolved.lr, momentum=0.9)
        return opt, build_scheduler(opt, resolved, 0.1)

    opt, sched = fresh()
    rates = []
    for _ in range(resolved.total_steps):
        rates.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    for step in (0, 7, 10, 23, 39):
        opt2, sched2 = fresh()
        ckpt.restore_schedule(sched2, opt2, step, resolved.lr, {"momentum": 0.9})
        got = []
        for _ in range(step, resolved.total_steps):
            got.append(opt2.param_groups[0]["lr"])
            opt2.step()
            sched2.step()
        assert got == rates[step:], step  # exact float equality
    # An allowed change of the peak rate takes effect (the loaded param groups held the old one).
    opt3, sched3 = fresh()
    ckpt.restore_schedule(sched3, opt3, 20, 2 * resolved.lr, {"momentum": 0.5})
    assert opt3.param_groups[0]["lr"] == pytest.approx(2 * rates[20])
    assert opt3.param_groups[0]["momentum"] == 0.5


def test_truncated_newest_checkpoint_falls_back_with_a_warning_naming_it(tmp_path):
    *_, older = _tiny_run(tmp_path, step=3)
    accelerator, model, optimizer, ema, state, newest = _tiny_run(tmp_path, step=6)
    weights = newest / ckpt.MODEL_FILE
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    with pytest.warns(UserWarning, match=re.escape(str(weights))):
        assert ckpt.resolve_resume("auto", tmp_path, ema=True) == older
    with pytest.raises(ckpt.ResumeError, match=re.escape(str(weights))):
        ckpt.resolve_resume(str(newest), tmp_path, ema=True)  # an explicit path is not replaced


def test_a_checkpoint_in_the_old_pickle_format_is_refused_with_a_reason(tmp_path):
    folder = _fake_checkpoint(tmp_path, 4)
    (folder / ckpt.RUN_CONFIG).unlink()
    torch.save({"state": {}, "param_groups": []}, folder / "optimizer.bin")  # Accelerate's save_state layout
    with pytest.raises(ckpt.ResumeError, match="older scripts/train.py .* unpickling can run code"):
        ckpt.resolve_resume(str(folder), tmp_path)


def test_changed_settings_are_refused_naming_old_and_new(tmp_path):
    old = {"lr_per_128": 0.4, "epochs": 3, "num_workers": 0, "data": "/a", "num_processes": 1}
    new = {**old, "lr_per_128": 0.9, "num_workers": 4, "data": "/b"}
    with pytest.raises(ckpt.ResumeError, match=r"lr_per_128 0\.4 -> 0\.9.*--allow_config_change") as err:
        ckpt.check_resume_settings(old, new, allow_change=False, checkpoint=tmp_path)
    assert "num_workers" not in str(err.value) and "data" not in str(err.value)  # neutral keys
    assert ckpt.check_resume_settings(old, new, True, tmp_path) == {"lr_per_128": [0.4, 0.9]}
    assert ckpt.check_resume_settings(old, {**old, "num_processes": 2}, True, tmp_path) == {"num_processes": [1, 2]}


MARKER_FILE = "pwned"


@pytest.mark.parametrize("as_torch_zip", [False, True])
def test_a_malicious_pickle_in_a_checkpoint_never_runs(tmp_path, as_torch_zip):
    accelerator, model, optimizer, ema, state, good = _tiny_run(tmp_path / "run")
    marker = tmp_path / MARKER_FILE
    # Every file a resume reads, and every name Accelerate's load_state would unpickle.
    names = [p.name for p in good.iterdir()] + [
        "custom_checkpoint_0.pkl", "custom_checkpoint_1.pkl", "random_states_0.pkl", "optimizer.bin",
        "scheduler.bin", "sampler.bin", "scaler.pt", "pytorch_model.bin"]
    for name in names:
        folder = tmp_path / "bad" / name / ckpt.CHECKPOINT_DIR / good.name
        shutil.copytree(good, folder)
        write_malicious_pickle(folder / name, marker, as_torch_zip)
        out = folder.parent.parent
        try:
            found = ckpt.resolve_resume("auto", out, ema=True, warn=False)
            if found is not None:
                ckpt.load_checkpoint(accelerator, found, model, optimizer, ema)
        except (ckpt.ResumeError, CheckpointFormatError):
            pass  # refused: fine
        assert not marker.exists(), f"unpickling {name} ran code"
    write_malicious_pickle(tmp_path / "control.pkl", marker, as_torch_zip)  # the payload does work when unpickled
    if as_torch_zip:
        torch.load(tmp_path / "control.pkl", weights_only=False)
    else:
        pickle.loads((tmp_path / "control.pkl").read_bytes())
    assert marker.exists()


def test_truncate_metrics_csv_keeps_what_the_checkpoint_holds(tmp_path):
    tracker = CsvTracker("run", tmp_path)
    for step in range(6):
        tracker.log({"train/loss": float(step)}, step=step)
        if step == 3:
            tracker.log({"epoch/train_loss": 9.0}, step=4)
    tracker.finish()
    path = tmp_path / "metrics.csv"
    assert truncate_metrics_csv(path, 4, keep_epoch_rows_at_step=True) == 2
    assert read_metrics_csv(path) == {"train/loss": [(s, float(s)) for s in range(4)], "epoch/train_loss": [(4, 9.0)]}
    assert truncate_metrics_csv(path, 4, keep_epoch_rows_at_step=False) == 1
    assert "epoch/train_loss" not in read_metrics_csv(path)


def test_run_lock_refuses_a_second_run_naming_the_first(tmp_path):
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; from regnet_tutorial.train.rundir import RunLock; "
         f"RunLock({str(tmp_path)!r}).acquire(); print('locked', flush=True); time.sleep(60)"],
        stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(CliError, match=f"in use by another run \\(pid {holder.pid} on host "):
            RunLock(tmp_path).acquire()
    finally:
        holder.kill()
        holder.wait()
    with RunLock(tmp_path):  # the kernel dropped the dead holder's lock
        pass


def test_unwritable_output_dir_is_one_clear_error(tmp_path):
    blocker = tmp_path / "a_file"
    blocker.write_text("x")
    with pytest.raises(CliError, match="output_dir .*a_file/run is not writable"):
        check_writable(blocker / "run")
    assert check_writable(tmp_path / "new" / "run").is_dir()


def test_progress_lines_name_step_loss_rate_and_eta():
    progress = ProgressLines(total_steps=100, start_step=0, every=10, images_per_step=32)
    assert [s for s in range(1, 31) if progress.due(s)] == [10, 20, 30]
    line = progress.line(10, 1, 5, 1.23456)
    assert re.fullmatch(r"step 10/100  epoch 1/5  loss 1\.2346  [\d.]+ img/s  ETA \d+:\d\d:\d\d", line), line


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
