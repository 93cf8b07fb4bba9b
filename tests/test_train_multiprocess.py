"""A real 2-process run of scripts/train.py (two gloo CPU processes under `accelerate launch`),
and the learning rate of every optimizer step for 1 and 2 processes at the same total batch."""

from __future__ import annotations

import hashlib
import json
import math

import pytest
import torch
from _train_helpers import REPO, TINY_OVERRIDES, TRAIN, launch_one_process, launch_two_cpu_processes, run, train_cmd
from safetensors.torch import load_file

from regnet_tutorial.models import create_model
from regnet_tutorial.train import checkpoints as ckpt
from regnet_tutorial.train.schedule import mmcls_lr
from regnet_tutorial.train.synthetic import make_tiny_dataset
from regnet_tutorial.train.tracking import read_metrics_csv

pytestmark = pytest.mark.slow

TOTAL_BATCH = 16
# 128 images: 8 optimizer steps per epoch; mmcls (warmup per step, cosine per epoch) shows that the
# loop follows the configured schedule rather than the helpers' per_step.
RUN = ["epochs=2", "keep_last=1", "schedule=mmcls"]


@pytest.fixture(scope="module")
def data(tiny_dataset):
    return tiny_dataset(num_classes=4, train_per_class=32, val_per_class=10, image_size=40)


@pytest.fixture(scope="module")
def two_process_run(data, tmp_path_factory):
    out = tmp_path_factory.mktemp("two_processes")
    result = launch_two_cpu_processes(
        [str(TRAIN), "--config", "configs/regnetx_200mf.yaml", "--data", str(data), "--output_dir", str(out),
         *TINY_OVERRIDES, *RUN, f"batch_size={TOTAL_BATCH // 2}"],
        timeout=300,
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-4000:]
    return out, result


@pytest.fixture(scope="module")
def one_process_run(data, tmp_path_factory):
    out = tmp_path_factory.mktemp("one_process")
    result = run(train_cmd(data, out, *RUN, f"batch_size={TOTAL_BATCH}"))
    assert result.returncode == 0, result.stderr[-3000:]
    return out


def test_two_processes_ran_and_learned(two_process_run):
    out, result = two_process_run
    meta = json.loads((out / "run.json").read_text())
    assert meta["num_processes"] == 2  # written by the run itself from accelerator.num_processes
    assert meta["mixed_precision"] == "no" and meta["device"].startswith("cpu")
    assert meta["recipe"]["total_batch"] == TOTAL_BATCH
    # the environment it ran in: the lock file's hash, and the installed versions that differ from it
    assert meta["lock_sha256"] == hashlib.sha256((REPO / "requirements.lock").read_bytes()).hexdigest()
    assert isinstance(meta["lock_differs"], dict)
    assert "8 per process x 2 process(es)" in result.stdout
    final = json.loads((out / "final.json").read_text())
    history = final["history"]
    assert [h["epoch"] for h in history] == [1, 2]
    assert history[-1]["train_loss"] < history[0]["train_loss"]
    assert history[-1]["train_loss"] < math.log(4)  # below the loss of guessing among 4 classes
    assert history[-1]["val_top1"] > 25.0 + 15.0  # chance is 25% for 4 balanced classes
    assert history[-1]["val_count"] == 40  # every val image counted once over both processes


def test_two_process_run_wrote_checkpoints_logs_and_weights(two_process_run):
    out, _ = two_process_run
    checkpoints = ckpt.list_checkpoints(out)
    assert checkpoints and checkpoints[-1].name == "step_00000016"
    newest = checkpoints[-1]
    for name in ("model.safetensors", "optimizer.safetensors", "optimizer.json", "rng_state_0.safetensors",
                 "rng_state_1.safetensors", ckpt.RUN_CONFIG, ckpt.MARKER):
        assert (newest / name).is_file(), name  # one RNG state per process
    series = read_metrics_csv(out / "logs" / "metrics.csv")
    assert len(series["train/loss"]) == 16
    assert list((out / "logs" / "train").glob("events.out.tfevents.*")), "no TensorBoard event file"
    weights = load_file(out / "model.safetensors")
    expected = create_model("regnetx_200mf", num_classes=4).state_dict()
    assert {k: tuple(v.shape) for k, v in weights.items()} == {k: tuple(v.shape) for k, v in expected.items()}
    assert (out / "config.yaml").is_file()


def _logged_lrs(out):
    return read_metrics_csv(out / "logs" / "metrics.csv")["train/lr"]


@pytest.mark.parametrize("which", ["one_process_run", "two_process_run"])
def test_lr_of_every_step_follows_the_recipe(which, request):
    run_dir = request.getfixturevalue(which)
    out = run_dir[0] if isinstance(run_dir, tuple) else run_dir
    logged = _logged_lrs(out)
    total, warmup = 16, 8  # 2 epochs x 128 // 16 steps, 1 warmup epoch
    peak = 0.4 * TOTAL_BATCH / 128  # lr_per_128 x total batch / 128
    assert [s for s, _ in logged] == list(range(total))
    for step, lr in logged:
        assert lr == pytest.approx(mmcls_lr(step, 8, 2, 1, peak, 0.1), rel=1e-12, abs=1e-15)
    assert logged[0][1] == pytest.approx(0.1 * peak)
    assert logged[warmup - 1][1] == pytest.approx(peak * 0.1 + 0.9 * peak * 7 / 8)
    assert [lr for _, lr in logged[warmup:]] == pytest.approx([0.5 * peak] * 8)  # cos(pi / 2) epoch


def test_one_and_two_processes_log_the_same_schedule(one_process_run, two_process_run):
    assert _logged_lrs(one_process_run) == _logged_lrs(two_process_run[0])


def test_the_launchers_bf16_reaches_the_run(data, two_process_run, tmp_path):
    """`accelerate launch --mixed_precision bf16 scripts/train.py ...` trains in bf16: run.json says so,
    and the weights differ from the same run's in fp32 (the launcher's "no")."""
    out = tmp_path / "bf16"
    result = launch_two_cpu_processes(
        [str(TRAIN), "--config", "configs/regnetx_200mf.yaml", "--data", str(data), "--output_dir", str(out),
         *TINY_OVERRIDES, *RUN, f"batch_size={TOTAL_BATCH // 2}"], timeout=300, mixed_precision="bf16")
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-4000:]
    assert json.loads((out / "run.json").read_text())["mixed_precision"] == "bf16"
    assert json.loads((out / "final.json").read_text())["mixed_precision"] == "bf16"
    assert "mixed_precision: bf16" in (out / "config.yaml").read_text()  # what was used, not null
    bf16, fp32 = load_file(out / "model.safetensors"), load_file(two_process_run[0] / "model.safetensors")
    assert any(not torch.equal(bf16[k], fp32[k]) for k in fp32 if fp32[k].is_floating_point())


def test_a_project_error_under_the_launcher_is_one_line(tmp_path):
    """A missing data folder with 2 processes: one `error:` line (main process only), exit status 2 of
    the workers, no traceback from the script (the launcher adds its own report of the failed workers)."""
    result = launch_two_cpu_processes(
        [str(TRAIN), "--config", "configs/regnetx_200mf.yaml", "--data", str(tmp_path / "missing"),
         "--output_dir", str(tmp_path / "out"), *TINY_OVERRIDES], timeout=120)
    output = result.stdout + result.stderr
    errors = [line for line in output.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, output[-3000:]
    assert f"Data folder {tmp_path / 'missing'} does not exist" in errors[0]
    assert result.returncode != 0 and "exitcode  : 2" in output
    assert "train.py\", line" not in output and "regnet_tutorial/" not in output.replace(errors[0], "")


def test_a_corrupt_image_read_by_rank_1_is_named_by_rank_1(tmp_path):
    """The bad file is in rank 1's share of the validation set: rank 1 names it in one line prefixed with
    its rank; rank 0 stops without gloo's "Connection closed by peer" traceback; under -q the launcher
    adds only its short report of the failed processes."""
    data = make_tiny_dataset(tmp_path / "data", num_classes=2, train_per_class=8, val_per_class=10, image_size=40)
    # Evaluation is not shuffled and Accelerate deals whole batches round-robin: with batches of 8,
    # rank 0 reads validation images 0-7 and 16-19, rank 1 images 8-15.
    bad = sorted((data / "val").rglob("*.JPEG"))[9]
    bad.write_bytes(b"not a jpeg")
    result = launch_two_cpu_processes(
        [str(TRAIN), "--config", "configs/regnetx_200mf.yaml", "--data", str(data), "--output_dir",
         str(tmp_path / "out"), *TINY_OVERRIDES, "epochs=2", "batch_size=4", "eval_batch_size=8",
         "precise_bn_samples=0"], timeout=300, quiet=True)
    output = result.stdout + result.stderr
    errors = [line for line in output.splitlines() if line.startswith("error:")]
    assert errors == [errors[0]] and errors[0].startswith(f"error: [rank 1] Cannot decode image {bad}:"), output[-4000:]
    assert "Connection closed by peer" not in output and "Traceback" not in output, output[-4000:]
    assert "exitcode  : 2" in output  # the launcher's report names rank 1's status


def test_multi_gpu_without_a_gpu_or_accelerate_use_cpu_is_refused_before_any_write(tmp_path):
    """Each process would see a one-process run and act as main: the launch is refused in one line and
    the output folder is never created, so no two runs can mix in it."""
    data = make_tiny_dataset(tmp_path / "data", num_classes=2, train_per_class=8, val_per_class=2, image_size=40)
    out = tmp_path / "out"
    result = launch_two_cpu_processes(
        [str(TRAIN), "--config", "configs/regnetx_200mf.yaml", "--data", str(data), "--output_dir", str(out),
         *TINY_OVERRIDES, "epochs=2", "batch_size=4"], timeout=180, quiet=True, use_cpu=False)
    output = result.stdout + result.stderr
    errors = [line for line in output.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, output[-4000:]
    assert "The launcher started 2 processes (WORLD_SIZE=2" in errors[0] and "Accelerate sees 1" in errors[0]
    assert "ACCELERATE_USE_CPU=1" in errors[0]
    assert not out.exists()


def test_quiet_launcher_leaves_the_one_error_line(tmp_path):
    """`accelerate launch -q scripts/train.py ...` with bad input prints exactly the script's line."""
    result = launch_one_process([str(TRAIN), "--config", "configs/regnetx_200mf.yaml", "--data",
                                 str(tmp_path / "missing"), "--output_dir", str(tmp_path / "out"), *TINY_OVERRIDES])
    lines = (result.stdout + result.stderr).strip().splitlines()
    assert result.returncode != 0
    assert len(lines) == 1 and lines[0].startswith(f"error: Data folder {tmp_path / 'missing'} does not exist"), lines
