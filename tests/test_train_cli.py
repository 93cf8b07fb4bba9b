"""scripts/train.py's entry point: bad input stops it early with one `error:` line and exit status 2,
the launcher's mixed precision is obeyed, one run per output folder, and --check_data."""

from __future__ import annotations

import os

import pytest
from _train_helpers import cpu_env, run, train_cmd

from regnet_tutorial.train.rundir import RunLock

pytestmark = pytest.mark.slow  # each test starts a Python process that imports torch (a few seconds)


@pytest.fixture(scope="module")
def data(tiny_dataset):
    return tiny_dataset(num_classes=2, train_per_class=8, val_per_class=2, image_size=40)


def one_error_line(result):
    assert result.returncode == 2, result.stdout[-2000:] + result.stderr[-2000:]
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr[-3000:]
    return lines[0]


def test_unknown_key_suggests_the_close_one(data, tmp_path):
    line = one_error_line(run(train_cmd(data, tmp_path / "run", "lr=0.1")))
    assert "Unknown config key 'lr'" in line and "Did you mean 'lr_per_128'?" in line


def test_script_precision_that_contradicts_the_launchers_is_refused(data, tmp_path):
    env = cpu_env(ACCELERATE_MIXED_PRECISION="bf16")  # what `accelerate launch --mixed_precision bf16` sets
    line = one_error_line(run(train_cmd(data, tmp_path / "run", "--mixed_precision", "no"), env=env))
    assert "mixed_precision=no" in line and "launcher's bf16" in line
    assert not (tmp_path / "run").exists()  # refused before anything was written


def test_unwritable_output_dir_is_found_before_the_data(tmp_path):
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    line = one_error_line(run(train_cmd(tmp_path / "no_data_here", blocker / "run")))
    assert f"output_dir {blocker / 'run'} is not writable" in line  # not the missing data


def test_a_second_run_on_a_locked_output_dir_is_refused(data, tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    with RunLock(out):  # the first run, still going
        line = one_error_line(run(train_cmd(data, out, "epochs=2", "batch_size=8")))
    assert f"is in use by another run (pid {os.getpid()} on host " in line and "started" in line
    assert not (out / "checkpoints").exists() and not (out / "config.yaml").exists()


def test_check_data_lists_every_bad_image_at_once(data, tmp_path):
    copy = tmp_path / "data"
    import shutil
    shutil.copytree(data, copy)
    bad = [sorted((copy / "train").rglob("*.JPEG"))[3], sorted((copy / "val").rglob("*.JPEG"))[1]]
    for path in bad:
        path.write_bytes(b"not a jpeg")
    line = one_error_line(run(train_cmd(copy, tmp_path / "run", "epochs=2", "batch_size=8", "--check_data")))
    assert "2 of 20 images cannot be decoded" in line and all(str(p) in line for p in bad)
    assert not list((tmp_path / "run").glob("checkpoints/*"))
