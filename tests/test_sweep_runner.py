"""The sweep runner on real Fashion-MNIST subsets: one process, two under `accelerate launch`,
resuming after SIGKILL of every process, the results file's crash safety, the data loader."""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import json
import multiprocessing
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from _train_helpers import REPO, VENV_BIN, cpu_env, free_port, launch_two_cpu_processes, run

from regnet_tutorial.sweep.images import FASHION_MNIST_DIR, SweepDataError, fashion_mnist_mean_std, load_fashion_mnist
from regnet_tutorial.sweep.plan import SweepError, TrainSettings
from regnet_tutorial.sweep.results_file import ResultsFile, ResultsFileError, result_key
from regnet_tutorial.sweep.runner import model_seed
from regnet_tutorial.sweep.spaces import SamplerConfig, sample_space

HAVE_DATA = (FASHION_MNIST_DIR / "train-images-idx3-ubyte.gz").exists()
if not HAVE_DATA and os.environ.get("CI") == "true":  # CI installs it (.ci/run); elsewhere skip
    raise RuntimeError(f"Fashion-MNIST missing from {FASHION_MNIST_DIR}: apt-get install dataset-fashion-mnist")
needs_data = pytest.mark.skipif(not HAVE_DATA, reason="needs the Debian package dataset-fashion-mnist")
LOCK_SHA256 = hashlib.sha256((REPO / "requirements.lock").read_bytes()).hexdigest()

# A tiny sweep: 2 spaces x N models, 128 training images, ~0.3 s per model on one core.
SPACES = "anynetx_a,regnetx"
TINY = ["--train-images", "128", "--val-images", "64", "--batch-size", "32", "--precise-bn-images", "64",
        "--flops", "2e6:4e6", "--seed", "3", "--log-every", "0"]


def sweep_args(out: Path, n: int, *extra: str) -> list[str]:
    return ["-m", "regnet_tutorial.sweep", "run", "--spaces", SPACES, "--n", str(n), "--out", str(out), *TINY, *extra]


def cli(args: list[str], capsys) -> tuple[int, str]:
    """``python -m regnet_tutorial.sweep ARGS`` in this process: (exit status, stderr)."""
    from regnet_tutorial.sweep.__main__ import main

    capsys.readouterr()
    try:
        status = main(args[2:] if args[:2] == ["-m", "regnet_tutorial.sweep"] else args)
    except SystemExit as exit:
        status = exit.code
    return status, capsys.readouterr().err


def read_lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def expected_samples(n: int) -> dict[str, dict]:
    """The samples the sweep must train, drawn independently with the sampler."""
    config = SamplerConfig(flops=(2e6, 4e6), resolution=28, skeleton="small", num_classes=10, in_channels=1)
    return {result_key(s): s for space in SPACES.split(",") for s in sample_space(space, n, 3, config)}


# --- the data ------------------------------------------------------------------------------------

@needs_data
def test_fashion_mnist_loader_matches_raw_idx_bytes():
    """Our IDX reader against numpy on the raw bytes (header: 16 bytes for images, 8 for labels)."""
    test = load_fashion_mnist("test")
    with gzip.open(FASHION_MNIST_DIR / "t10k-images-idx3-ubyte.gz") as f:
        raw = np.frombuffer(f.read()[16:], dtype=np.uint8).reshape(10000, 28, 28)
    with gzip.open(FASHION_MNIST_DIR / "t10k-labels-idx1-ubyte.gz") as f:
        labels = np.frombuffer(f.read()[8:], dtype=np.uint8)
    assert test.images.shape == (10000, 1, 28, 28) and test.num_classes == 10
    mean, std = fashion_mnist_mean_std()
    np.testing.assert_allclose(test.images[:, 0].numpy() * std + mean, raw / 255.0, atol=1e-6)
    assert (test.labels.numpy() == labels).all()
    assert np.bincount(labels).tolist() == [1000] * 10  # the test split is balanced (Xiao et al., 2017)
    train = load_fashion_mnist("train")
    pixels = train.images.numpy() * std + mean
    assert abs(pixels.mean() - mean) < 1e-4 and abs(pixels.std() - std) < 1e-4  # the pinned statistics


@needs_data
def test_subset_is_seeded_and_without_replacement():
    data = load_fashion_mnist("test")
    a, b, c = data.subset(500, 0), data.subset(500, 0), data.subset(500, 1)
    assert (a.labels == b.labels).all() and (a.images == b.images).all()
    assert not (a.images == c.images).all()
    flat = a.images.flatten(1)
    assert len({tuple(row[::7].tolist()) for row in flat}) == 500  # no image drawn twice
    with pytest.raises(SweepDataError, match="impossible"):
        data.subset(10001, 0)


def test_missing_data_is_one_line_naming_apt_and_download(tmp_path, capsys):
    status, err = cli(["run", "--spaces", "anynetx_a", "--n", "1", "--out", str(tmp_path / "r.jsonl"),
                       "--data-dir", str(tmp_path / "nothing")], capsys)
    assert status == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: Fashion-MNIST not found")
    assert "apt-get install dataset-fashion-mnist" in lines[0] and "--download" in lines[0]
    assert not (tmp_path / "r.jsonl").exists()


@pytest.mark.parametrize("args, message", [
    (["--spaces", "anynetx_z"], "'anynetx_z' is unknown"),
    (["--spaces", "anynetx_a,ANYNETX_A"], "names a space twice"),
    (["--spaces", "anynetx_a", "--batch-size", "512", "--train-images", "100"], "exceeds --train-images"),
    (["--spaces", "anynetx_a", "--flops", "4e6:2e6"], "flops band"),
    (["--spaces", "anynetx_a,regnet"], "'regnet' was renamed to the paper's name: use regnetx"),
])
def test_bad_arguments_are_one_line_errors(tmp_path, capsys, args, message):
    status, err = cli(["run", "--n", "1", "--out", str(tmp_path / "r.jsonl"), *args], capsys)
    assert status == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], err


def test_train_settings_reject_bad_values():
    with pytest.raises(SweepError, match="--epochs"):
        TrainSettings(epochs=0)
    with pytest.raises(SweepError, match="--dataset"):
        TrainSettings(dataset="mnist")


def test_model_seed_depends_on_sweep_seed_space_and_index_only():
    seeds = {model_seed(s, sp, i) for s in range(3) for sp in ("anynetx_a", "regnetx") for i in range(50)}
    assert len(seeds) == 300 and all(0 <= x < 2**31 for x in seeds)
    assert model_seed(0, "regnetx", 7) == model_seed(0, "regnetx", 7)
    assert model_seed(0, "regnetx", 7, replicate=0) == model_seed(0, "regnetx", 7)  # the first run's seed kept
    assert len({model_seed(0, "regnetx", 7, r) for r in range(20)}) == 20
    # A renamed space trains from the seeds of its old key (SHA-256 of "seed/old key/index", 31 bits).
    for new, old in (("regnetx", "regnet"), ("regnetx_constrained_nolimits", "regnetx")):
        digest = hashlib.sha256(f"0/{old}/7".encode()).digest()
        assert model_seed(0, new, 7) == int.from_bytes(digest[:4], "big") >> 1
    others = {model_seed(0, s, 7) for s in ("regnetx", "regnetx_constrained_nolimits")}
    assert model_seed(0, "regnetx_constrained", 7) not in others  # a new space: its own stream


def test_a_file_under_the_old_space_names_is_not_resumed(tmp_path, capsys):
    """An old line's ``regnetx`` is the constrained space: resuming would count it as RegNetX."""
    out = tmp_path / "r.jsonl"
    ResultsFile(out).append({"space": "regnetx", "seed": 0, "index": 0, "settings": {}})
    status, err = cli(["run", "--spaces", "regnetx", "--n", "1", "--out", str(out)], capsys)
    assert status == 2 and len(err.strip().splitlines()) == 1, err
    assert "under the old names" in err and "migrate_space_names.py" in err


# --- the results file ----------------------------------------------------------------------------

def _record(space: str, index: int, **extra) -> dict:
    return {"space": space, "seed": 0, "index": index, **extra}


def test_results_file_repairs_a_partial_last_line_and_drops_duplicates(tmp_path):
    results = ResultsFile(tmp_path / "r.jsonl")
    for i in range(3):
        results.append(_record("anynetx_a", i, top1_error=10.0 + i))
    results.append(_record("anynetx_a", 1, top1_error=99.0))  # a duplicate key: the first one stays
    whole = results.path.read_bytes()
    results.path.write_bytes(whole + b'{"space": "anynetx_a", "seed": 0, "ind')  # a kill mid-line
    assert len(results.load()) == 4  # the partial line is never returned
    assert results.repair() == 2
    assert [(r["index"], r["top1_error"]) for r in results.load()] == [(0, 10.0), (1, 11.0), (2, 12.0)]
    assert results.path.read_text().endswith("}\n")
    assert results.repair() == 0
    results.append(_record("anynetx_a", 3))  # appending after a repair starts a fresh line
    assert [r["index"] for r in results.load()] == [0, 1, 2, 3]


def test_results_file_rejects_foreign_content_and_a_second_writer(tmp_path):
    path = tmp_path / "r.jsonl"
    path.write_text("hello\n")
    with pytest.raises(ResultsFileError, match="line 1 is not JSON"):
        ResultsFile(path).load()
    path.write_text('{"a": 1}\n')
    with pytest.raises(ResultsFileError, match="not a sweep result"):
        ResultsFile(path).load()
    with (ResultsFile(path).exclusive(), pytest.raises(ResultsFileError, match="another sweep is writing"),
          ResultsFile(path).exclusive()):
        pass
    assert not ResultsFile(path).lock_path.exists()  # removed when the sweep ends
    with ResultsFile(path).exclusive():  # and free again
        pass


def _append_many(path: Path, worker: int) -> None:
    results = ResultsFile(path)
    for i in range(200):
        results.append({"space": f"w{worker}", "seed": 0, "index": i, "pad": "x" * 5000})


def test_concurrent_appends_never_interleave(tmp_path):
    """Four processes append 200 lines of 5 kB each to one file: every line stays whole."""
    path = tmp_path / "r.jsonl"
    procs = [multiprocessing.get_context("fork").Process(target=_append_many, args=(path, w)) for w in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=120)
    assert [p.exitcode for p in procs] == [0] * 4
    records = ResultsFile(path).load()
    assert len(records) == 800 and len({result_key(r) for r in records}) == 800


# --- one process ----------------------------------------------------------------------------------

@needs_data
@pytest.mark.slow  # trains and resumes: ~7 s
def test_single_process_sweep_writes_one_line_per_model_and_resumes(tmp_path, capsys):
    out = tmp_path / "results.jsonl"
    status, err = cli(sweep_args(out, 2), capsys)
    assert status == 0, err
    lines = read_lines(out)
    expected = expected_samples(2)
    assert sorted(result_key(r) for r in lines) == sorted(expected)  # one line per model, none twice
    for r in lines:
        sample = expected[result_key(r)]
        assert {k: r[k] for k in sample} == sample  # the sample exactly as the sampler draws it
        assert 0 <= r["top1_error"] <= 100 and r["wall_time_s"] > 0 and not r["diverged"]
        assert r["model_seed"] == model_seed(3, r["space"], r["index"])
        assert r["versions"]["torch"] and r["versions"]["python"] and r["git_commit"]
        assert r["lock_sha256"] == LOCK_SHA256 and isinstance(r["lock_differs"], dict)
        assert r["device"].startswith("cpu") and r["num_processes"] == 1
        assert r["settings"]["train_images"] == 128 and r["settings"]["skeleton"] == "small"
    assert "sweep: 4/4 models" in err  # progress lines off a terminal
    before = out.read_bytes()
    assert cli(sweep_args(out, 2), capsys)[0] == 0
    assert out.read_bytes() == before  # everything was done: nothing retrained
    assert cli(sweep_args(out, 3), capsys)[0] == 0  # a larger n extends the same sweep
    assert out.read_bytes().startswith(before)
    assert sorted(result_key(r) for r in read_lines(out)) == sorted(expected_samples(3))
    status, err = cli(sweep_args(out, 3, "--epochs", "2"), capsys)
    assert status == 2 and "epochs 1 there, 2 now" in err


@needs_data
@pytest.mark.slow  # trains 4 models: ~7 s
def test_a_replicate_retrains_the_same_models_from_other_seeds_in_the_same_file(tmp_path, capsys):
    """Replicate 1 trains the architectures of replicate 0 again, from seeds of its own, as lines of
    their own; the thread count is recorded; channels-last changes nothing but the memory format."""
    out = tmp_path / "results.jsonl"
    assert cli(sweep_args(out, 2, "--channels-last"), capsys)[0] == 0
    assert cli(sweep_args(out, 2, "--channels-last", "--replicate", "1"), capsys)[0] == 0
    lines = read_lines(out)
    first = {result_key(r, 0): r for r in lines if r["replicate"] == 0}
    again = {result_key(r, 0): r for r in lines if r["replicate"] == 1}
    assert sorted(first) == sorted(again) == sorted(expected_samples(2))
    assert len({result_key(r) for r in lines}) == 8  # the replicate is part of a line's identity
    for key, r in again.items():
        assert {k: r[k] for k in ("depths", "widths", "group_widths", "flops")} == \
            {k: first[key][k] for k in ("depths", "widths", "group_widths", "flops")}
        assert r["model_seed"] == model_seed(3, r["space"], r["index"], 1) != first[key]["model_seed"]
        assert r["torch_threads"] == torch.get_num_threads() and r["settings"]["channels_last"] is True
    before = out.read_bytes()
    assert cli(sweep_args(out, 2, "--channels-last", "--replicate", "1"), capsys)[0] == 0
    assert out.read_bytes() == before  # both replicates were done: nothing retrained


@needs_data
def test_rerun_reproduces_a_line_exactly_and_refuses_a_bad_line(tmp_path, capsys):
    """`sweep rerun FILE --line K` re-trains line K from its record alone: same machine, same
    kernels, one thread, so the error and the loss are bitwise the recorded ones."""
    out = tmp_path / "results.jsonl"
    assert cli(sweep_args(out, 1, "--replicate", "1"), capsys)[0] == 0
    lines = read_lines(out)
    from regnet_tutorial.sweep.__main__ import main

    capsys.readouterr()
    assert main(["rerun", str(out), "--line", "2"]) == 0
    again = json.loads(capsys.readouterr().out)
    recorded = lines[1]
    assert set(again) == set(recorded)  # the same format
    for key in ("top1_error", "final_train_loss", "model_seed", "replicate", "settings", "widths", "depths"):
        assert again[key] == recorded[key], key
    status, err = cli(["rerun", str(out), "--line", "3"], capsys)
    assert status == 2 and "--line 3 is out of range" in err and "2 lines" in err


# --- several processes ----------------------------------------------------------------------------

@needs_data
@pytest.mark.slow
def test_two_processes_share_the_models_and_match_one_process(tmp_path):
    """Under `accelerate launch` each process trains its own share; every model's error is what
    one process alone gets (training is seeded per model, one thread per process on the CPU)."""
    one, two = tmp_path / "one.jsonl", tmp_path / "two.jsonl"
    assert run([sys.executable, *sweep_args(one, 2)]).returncode == 0
    proc = launch_two_cpu_processes(sweep_args(two, 2))
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = read_lines(two)
    assert sorted(result_key(r) for r in lines) == sorted(expected_samples(2))
    assert {r["process_index"] for r in lines} == {0, 1} and {r["num_processes"] for r in lines} == {2}
    alone = {result_key(r): r for r in read_lines(one)}
    for r in lines:
        assert r["top1_error"] == alone[result_key(r)]["top1_error"]
        assert r["final_train_loss"] == alone[result_key(r)]["final_train_loss"]


def _kill_everything_writing(out: Path, launcher: subprocess.Popen) -> int:
    """SIGKILL the launcher's process group and every process whose command line names ``out``
    (the launcher starts its workers in sessions of their own). Returns how many were killed."""
    killed = 0
    for pid_dir in Path("/proc").iterdir():
        if not pid_dir.name.isdigit():
            continue
        try:
            cmdline = (pid_dir / "cmdline").read_bytes()
        except OSError:
            continue
        if str(out).encode() in cmdline:
            try:
                os.kill(int(pid_dir.name), signal.SIGKILL)
                killed += 1
            except ProcessLookupError:
                pass
    with contextlib.suppress(ProcessLookupError):
        os.killpg(launcher.pid, signal.SIGKILL)
    launcher.wait(timeout=30)
    return killed


@needs_data
@pytest.mark.slow
def test_sigkill_of_every_process_then_restart_loses_and_duplicates_nothing(tmp_path):
    out = tmp_path / "results.jsonl"
    n = 4
    cmd = [str(VENV_BIN / "accelerate"), "launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1",
           "--mixed_precision", "no", "--dynamo_backend", "no", "--main_process_port", str(free_port()),
           *sweep_args(out, n)]
    launcher = subprocess.Popen(cmd, cwd=REPO, env=cpu_env(ACCELERATE_USE_CPU="1"), start_new_session=True,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline and (not out.exists() or out.read_text().count("\n") < 2):
        time.sleep(0.2)
    assert out.exists() and out.read_text().count("\n") >= 2, "the sweep wrote nothing in 3 minutes"
    assert _kill_everything_writing(out, launcher) >= 2  # both workers (and the launcher)
    time.sleep(0.5)
    survivors = [p for p in Path("/proc").iterdir() if p.name.isdigit() and _names(p, out)]
    assert not survivors
    before = ResultsFile(out).load()
    assert 2 <= len(before) < 2 * n  # killed mid-sweep
    proc = launch_two_cpu_processes(sweep_args(out, n))
    assert proc.returncode == 0, proc.stderr[-3000:]
    after = read_lines(out)
    keys = [result_key(r) for r in after]
    assert len(keys) == len(set(keys)) == 2 * n  # nothing lost, nothing twice
    assert sorted(keys) == sorted(expected_samples(n))
    assert after[: len(before)] == before  # finished lines kept as they were


def _names(pid_dir: Path, out: Path) -> bool:
    try:
        return str(out).encode() in (pid_dir / "cmdline").read_bytes()
    except OSError:
        return False


@needs_data
def test_download_on_request_uses_torchvision_layout(tmp_path, monkeypatch):
    """``download=True`` asks torchvision (here a stand-in that copies the Debian files, so the
    test stays offline) and reads its ``root/FashionMNIST/raw`` layout; without it nothing is fetched."""
    import shutil

    import torchvision.datasets

    calls = []

    class FakeFashionMNIST:
        def __init__(self, root: str, train: bool, download: bool) -> None:
            calls.append((root, train, download))
            raw = Path(root) / "FashionMNIST" / "raw"
            raw.mkdir(parents=True, exist_ok=True)
            for file in FASHION_MNIST_DIR.glob("*.gz"):
                shutil.copy(file, raw / file.name)

    monkeypatch.setattr(torchvision.datasets, "FashionMNIST", FakeFashionMNIST)
    with pytest.raises(SweepDataError, match="--download"):
        load_fashion_mnist("test", root=tmp_path)
    assert calls == []
    data = load_fashion_mnist("test", root=tmp_path, download=True)
    assert len(data) == 10000 and calls == [(str(tmp_path), True, True), (str(tmp_path), False, True)]
    assert len(load_fashion_mnist("test", root=tmp_path)) == 10000  # found again without downloading


@needs_data
@pytest.mark.slow
def test_two_processes_report_a_locked_output_once(tmp_path):
    out = tmp_path / "results.jsonl"
    with ResultsFile(out).exclusive():  # another sweep holds the file
        proc = launch_two_cpu_processes(sweep_args(out, 2))
    assert proc.returncode != 0
    assert proc.stderr.count("error: another sweep is writing") == 1, proc.stderr[-3000:]
    assert not out.exists()


@needs_data
def test_image_folder_option_trains_on_an_imagenet_layout(tmp_path, capsys):
    """``--dataset imagefolder`` reads ImageNet's layout (here a Fashion-MNIST copy as RGB PNGs):
    only the drawn images, at ``--resolution``, labelled by their class folder."""
    from regnet_tutorial.sweep.images import load_dataset, write_fashion_mnist_folder

    root = write_fashion_mnist_folder(tmp_path / "folder", train_per_class=8, val_per_class=4, seed=0)
    data = load_dataset("imagefolder", "val", root, count=30, seed=1, resolution=32)
    assert data.images.shape == (30, 3, 32, 32) and data.num_classes == 10
    again = load_dataset("imagefolder", "val", root, count=30, seed=1, resolution=32)
    assert (again.labels == data.labels).all() and (again.images == data.images).all()
    assert np.bincount(load_dataset("imagefolder", "val", root, resolution=32).labels.numpy()).tolist() == [4] * 10
    out = tmp_path / "results.jsonl"
    status, err = cli(["run", "--spaces", "anynetx_a", "--n", "1", "--out", str(out), "--dataset", "imagefolder",
                       "--data-dir", str(root), "--resolution", "32", "--train-images", "64", "--val-images", "40",
                       "--batch-size", "32", "--precise-bn-images", "32"], capsys)
    assert status == 0, err
    (line,) = read_lines(out)
    assert (line["resolution"], line["in_channels"], line["num_classes"]) == (32, 3, 10)
    assert line["settings"]["image_resolution"] == 32 and 0 <= line["top1_error"] <= 100
    status, err = cli(["run", "--spaces", "anynetx_a", "--n", "1", "--out", str(tmp_path / "x.jsonl"),
                       "--dataset", "imagefolder"], capsys)
    assert status == 2 and "needs --data-dir" in err
    status, err = cli(["run", "--spaces", "anynetx_a", "--n", "1", "--out", str(tmp_path / "x.jsonl"),
                       "--resolution", "32"], capsys)
    assert status == 2 and "applies to --dataset imagefolder only" in err
