"""scripts/train.py's entry point: bad input stops it early with one `error:` line and exit status 2,
the launcher's mixed precision is obeyed, one run per output folder, and --check_data."""

from __future__ import annotations

import os
import re
import sys

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


def test_a_yaml_syntax_error_is_one_line(data, tmp_path):
    config = tmp_path / "broken.yaml"
    config.write_text("model: regnetx_200mf\nepochs: [2\n")
    line = one_error_line(run(train_cmd(data, tmp_path / "run", config=str(config))))
    assert f"Config file {config} is not valid YAML at line" in line
    assert not (tmp_path / "run").exists()


def test_an_empty_recipe_is_refused_in_one_line(data, tmp_path):
    config = tmp_path / "empty.yaml"
    config.write_text("")
    line = one_error_line(run(train_cmd(data, tmp_path / "run", config=str(config))))
    assert f"Config file {config} is empty" in line
    assert not (tmp_path / "run").exists()  # nothing trained with the defaults


def test_a_file_given_as_data_is_called_a_file(tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text("# not a dataset\n")
    line = one_error_line(run(train_cmd(readme, tmp_path / "run")))
    assert f"Data folder {readme} is a file, not a folder" in line


def test_an_early_failure_leaves_no_folder_holding_only_the_lock(tmp_path):
    """The data folder is missing: found after the output folder was created and locked."""
    line = one_error_line(run(train_cmd(tmp_path / "missing", tmp_path / "run")))
    assert "does not exist" in line
    assert not (tmp_path / "run").exists()
    kept = tmp_path / "kept"
    kept.mkdir()
    (kept / "notes.txt").write_text("mine")
    one_error_line(run(train_cmd(tmp_path / "missing", kept)))
    assert (kept / "notes.txt").read_text() == "mine"  # a folder holding anything else is left as it was


def test_the_raw_fashion_mnist_folder_names_the_command_that_converts_it(tmp_path):
    """Fashion-MNIST as Debian ships it (IDX files) is not an image folder: the error names the command
    that writes one, and that command, run as suggested, gives a folder the training script reads."""
    from regnet_tutorial.sweep.images import FASHION_MNIST_DIR

    raw = FASHION_MNIST_DIR if (FASHION_MNIST_DIR / "train-images-idx3-ubyte.gz").exists() else None
    if raw is None:
        raw = tmp_path / "fashion-mnist"
        raw.mkdir()
        (raw / "train-images-idx3-ubyte.gz").write_bytes(b"")
    line = one_error_line(run(train_cmd(raw, tmp_path / "run")))
    command = re.search(r"`python (-m regnet_tutorial\.train fashion-mnist [^`]*)`", line).group(1)
    assert f"--source {raw}" in command and "then pass --data data/fashion_mnist" in line
    if raw != FASHION_MNIST_DIR:
        pytest.skip("needs the Debian package dataset-fashion-mnist to apply the suggestion")
    converted = run([sys.executable, *command.replace("data/fashion_mnist", str(tmp_path / "fm")).split(),
                     "--train-per-class", "2", "--val-per-class", "1"])
    assert converted.returncode == 0, converted.stderr[-2000:]
    trained = run(train_cmd(tmp_path / "fm", tmp_path / "run", "epochs=2", "batch_size=10", "crop_size=28",
                            "eval_resize=28", "precise_bn_samples=0"))
    assert trained.returncode == 0, trained.stderr[-3000:]
