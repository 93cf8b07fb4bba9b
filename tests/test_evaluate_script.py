"""scripts/evaluate.py: every image counted once under 2 processes, the launcher's precision
obeyed, the run's own resolution used for a run's checkpoint, and bad input reported as one
`error:` line.

The reference for the metrics is a plain loop over the image files (no Accelerate, no
sampler, no gathering)."""

from __future__ import annotations

import json
import os
import re
import runpy
import sys

import pytest
import torch
import torch.nn.functional as F
from _train_helpers import EVALUATE, REPO, VENV_BIN, cpu_env, free_port, run, train_cmd, write_malicious_pickle

from regnet_tutorial.models import create_model
from regnet_tutorial.train.loaders import default_num_workers, eval_transform, load_split
from regnet_tutorial.train.recipe import load_config, save_config
from regnet_tutorial.train.synthetic import make_tiny_dataset
from regnet_tutorial.weights.files import save_safetensors

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("eval")
    data = make_tiny_dataset(root / "data", num_classes=4, train_per_class=1, val_per_class=10, image_size=40)
    for path in sorted((data / "val").rglob("*.JPEG"))[:3]:
        path.unlink()  # 37 images: not a multiple of 2 processes x batch 4
    torch.manual_seed(0)
    model = create_model("regnetx_200mf", num_classes=4)
    # Make BN's running statistics informative so that predictions differ between images.
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_var.uniform_(0.5, 2.0)
            m.running_mean.normal_(0, 0.1)
    save_safetensors(model, root / "model.safetensors")
    return root, data, model.eval()


@pytest.fixture(scope="module")
def run_dir(setup):
    """A training run's folder as scripts/train.py leaves it: config.yaml (crop 32 from 36),
    model.safetensors beside it, and a checkpoint folder with its own model.safetensors."""
    root, _, model = setup
    run = root / "run"
    (run / "checkpoints" / "step_00000008").mkdir(parents=True)
    cfg = load_config(REPO / "configs" / "regnetx_200mf.yaml", ["crop_size=32", "eval_resize=36", f"output_dir={run}"])
    save_config(cfg, run / "config.yaml")
    save_safetensors(model, run / "model.safetensors")
    save_safetensors(model, run / "checkpoints" / "step_00000008" / "model.safetensors")
    return run


def _plain(model, data, resize, crop):
    """(top-1 %, mean loss, image count) from a plain loop over the files."""
    val = load_split(data, "val", eval_transform(resize, crop))
    with torch.no_grad():
        images = torch.stack([val[i][0] for i in range(len(val))])
        targets = torch.tensor([val[i][1] for i in range(len(val))])
        logits = model(images)
    top1 = 100.0 * (logits.argmax(1) == targets).sum().item() / len(val)
    return top1, F.cross_entropy(logits, targets).item(), len(val)


def _script_args(root, data, out_json, *extra):
    return [str(EVALUATE), "--checkpoint", str(root / "model.safetensors"), "--data", str(data),
            "--batch_size", "4", "--num_workers", "0", "--output_json", str(out_json), *extra]


def _launch(script_args, *launcher_args, processes=2, env=None):
    """``accelerate launch`` with ``launcher_args`` (e.g. ``--mixed_precision bf16``) on CPU processes."""
    multi = ["--multi_gpu", "--num_processes", str(processes)] if processes > 1 else ["--num_processes", "1"]
    cmd = [str(VENV_BIN / "accelerate"), "launch", *multi, "--num_machines", "1", "--dynamo_backend", "no",
           "--main_process_port", str(free_port()), *launcher_args, *script_args]
    return run(cmd, env=env or cpu_env(ACCELERATE_USE_CPU="1"))


SMALL = ["--model", "regnetx_200mf", "--resize", "36", "--crop", "32"]


def test_two_processes_count_every_image_once(setup):
    root, data, model = setup
    two = _launch(_script_args(root, data, root / "two.json", *SMALL), "--mixed_precision", "no")
    assert two.returncode == 0, two.stderr[-3000:]
    m2 = json.loads((root / "two.json").read_text())
    assert (m2["processes"], m2["count"], m2["mixed_precision"]) == (2, 37, "no")
    assert "on 37 images" in two.stdout
    expected_top1, _, n = _plain(model, data, 36, 32)
    assert n == 37 and m2["top1"] == pytest.approx(expected_top1, abs=1e-4)
    assert m2["top5"] == pytest.approx(100.0)  # 4 classes: the top-4 always contains the target


def test_the_launchers_mixed_precision_reaches_the_evaluation(setup):
    root, data, model = setup
    # No --mixed_precision for the script: the launcher's bf16 must be what runs.
    bf16 = _launch(_script_args(root, data, root / "bf16.json", *SMALL), "--mixed_precision", "bf16")
    assert bf16.returncode == 0, bf16.stderr[-3000:]
    metrics = json.loads((root / "bf16.json").read_text())
    assert metrics["mixed_precision"] == "bf16" and "mixed precision bf16" in bf16.stdout
    assert metrics["count"] == 37
    _, fp32_loss, _ = _plain(model, data, 36, 32)
    # bfloat16 keeps 8 bits of mantissa: the loss moves, but only a little.
    assert metrics["loss"] != pytest.approx(fp32_loss, abs=1e-6)
    assert metrics["loss"] == pytest.approx(fp32_loss, abs=0.05)


def test_a_saved_accelerate_config_is_obeyed(setup, tmp_path):
    root, data, _ = setup
    config = tmp_path / "default_config.yaml"  # what `accelerate config` saves, answered for one CPU process
    config.write_text("compute_environment: LOCAL_MACHINE\ndistributed_type: 'NO'\nmixed_precision: bf16\n"
                      "num_machines: 1\nnum_processes: 1\nuse_cpu: true\nmachine_rank: 0\n")
    cmd = [str(VENV_BIN / "accelerate"), "launch", "--config_file", str(config),
           *_script_args(root, data, tmp_path / "m.json", *SMALL)]
    done = run(cmd)
    assert done.returncode == 0, done.stderr[-3000:]
    assert json.loads((tmp_path / "m.json").read_text())["mixed_precision"] == "bf16"


def test_mixed_precision_setting(monkeypatch):
    setting = runpy.run_path(str(EVALUATE))["mixed_precision_setting"]
    monkeypatch.delenv("ACCELERATE_MIXED_PRECISION", raising=False)
    assert (setting(None), setting("bf16")) == ("no", "bf16")  # no launcher: the flag, else fp32
    monkeypatch.setenv("ACCELERATE_MIXED_PRECISION", "bf16")  # what accelerate launch exports
    assert (setting(None), setting("bf16")) == ("bf16", "bf16")
    with pytest.raises(Exception, match=r"--mixed-precision fp16 conflicts with the launcher's mixed precision 'bf16'"):
        setting("fp16")


def _error_lines(done):
    return [line for line in done.stderr.splitlines() if line.startswith("error:")]


def test_a_flag_that_contradicts_the_launcher_is_one_error_line(setup, tmp_path):
    root, data, _ = setup
    done = _launch(_script_args(root, data, tmp_path / "m.json", *SMALL, "--mixed_precision", "fp16"),
                   "--mixed_precision", "bf16", processes=1)
    assert done.returncode != 0
    assert _error_lines(done) == [
        "error: --mixed-precision fp16 conflicts with the launcher's mixed precision 'bf16' (accelerate launch "
        "--mixed_precision, or the saved accelerate config): give it once, to the launcher."
    ], done.stderr[-3000:]
    # The script's own output has no traceback; accelerate's launcher adds its report after it,
    # naming the script's exit status.
    assert "Traceback" not in done.stderr.split("error:")[0] and not (tmp_path / "m.json").exists()
    assert "returned non-zero exit status 2" in done.stderr


@pytest.mark.parametrize("problem", ["missing data folder", "truncated checkpoint", "unknown model"])
def test_bad_input_is_one_error_line_under_two_processes(setup, tmp_path, problem):
    root, data, _ = setup
    checkpoint, model = root / "model.safetensors", "regnetx_200mf"
    if problem == "missing data folder":
        data = tmp_path / "no_such_folder"
        expected = f"error: Data folder {data} does not exist."
    elif problem == "truncated checkpoint":
        checkpoint = tmp_path / "cut.safetensors"
        checkpoint.write_bytes((root / "model.safetensors").read_bytes()[:5000])
        expected = f"error: {checkpoint} could not be read"
    else:
        model, expected = "regnetx_999mf", "error: --model: Unknown model 'regnetx_999mf'."
    args = [str(EVALUATE), "--checkpoint", str(checkpoint), "--data", str(data), "--model", model,
            "--resize", "36", "--crop", "32", "--num_workers", "0"]
    done = _launch(args, "--mixed_precision", "no")
    assert done.returncode != 0
    lines = _error_lines(done)
    assert len(lines) == 1 and lines[0].startswith(expected), done.stderr[-3000:]  # once, not once per process
    assert "Traceback (most recent call last)" not in done.stderr.split("error:")[0]
    assert "exitcode  : 2" in done.stderr or "exit code 2" in done.stderr or "exitcode: 2" in done.stderr, \
        done.stderr[-3000:]


# ---- the run's own resolution ---------------------------------------------------------


@pytest.fixture()
def evaluate_checkpoint(monkeypatch):
    monkeypatch.delenv("ACCELERATE_MIXED_PRECISION", raising=False)
    return runpy.run_path(str(EVALUATE))["evaluate_checkpoint"]


@pytest.mark.parametrize("where", ["run folder", "model file", "checkpoint folder"])
def test_a_runs_checkpoint_is_evaluated_at_the_runs_resolution(setup, run_dir, evaluate_checkpoint, capsys, where):
    _, data, model = setup
    checkpoint = {"run folder": run_dir, "model file": run_dir / "model.safetensors",
                  "checkpoint folder": run_dir / "checkpoints" / "step_00000008"}[where]
    metrics = evaluate_checkpoint(["--checkpoint", str(checkpoint), "--data", str(data), "--num_workers", "0"])
    out = capsys.readouterr().out
    assert (metrics["model"], metrics["resize"], metrics["crop"]) == ("regnetx_200mf", 36, 32)  # from config.yaml
    assert f"regnetx_200mf: resize 36, crop 32 (from {run_dir / 'config.yaml'})" in out  # and it says so
    top1, loss, count = _plain(model, data, 36, 32)
    assert metrics["count"] == count and metrics["top1"] == pytest.approx(top1, abs=1e-4)
    assert metrics["loss"] == pytest.approx(loss, rel=1e-4)


def test_a_checkpoint_written_by_train_py_is_found_with_its_run(setup, evaluate_checkpoint, tmp_path, capsys):
    """The layout scripts/train.py really writes, not a copy of it: a checkpoint folder mid-run."""
    from regnet_tutorial.weights.files import load_safetensors

    root, data, _ = setup
    trained = run(train_cmd(data, tmp_path / "run", "epochs=2", "batch_size=2", "max_steps_per_epoch=2",
                            "checkpoint_every_steps=2"))
    assert trained.returncode == 0, trained.stderr[-3000:]
    step = sorted((tmp_path / "run" / "checkpoints").glob("step_*"))[0]
    metrics = evaluate_checkpoint(["--checkpoint", str(step), "--data", str(data), "--num_workers", "0"])
    assert f"resize 36, crop 32 (from {tmp_path / 'run' / 'config.yaml'})" in capsys.readouterr().out
    model = create_model("regnetx_200mf", num_classes=4)
    model.load_state_dict(load_safetensors(step / "model.safetensors"))
    top1, loss, _ = _plain(model.eval(), data, 36, 32)
    assert metrics["top1"] == pytest.approx(top1, abs=1e-4) and metrics["loss"] == pytest.approx(loss, rel=1e-4)


def test_flags_override_the_runs_resolution_and_say_so(setup, run_dir, evaluate_checkpoint, capsys):
    _, data, _ = setup
    metrics = evaluate_checkpoint(["--checkpoint", str(run_dir), "--data", str(data), "--num_workers", "0",
                                   "--crop", "28"])
    assert (metrics["resize"], metrics["crop"]) == (36, 28)
    assert f"resize 36, crop 28 (from the command line, not {run_dir / 'config.yaml'})" in capsys.readouterr().out


def test_a_file_from_elsewhere_gets_the_papers_protocol(setup, evaluate_checkpoint, capsys):
    root, data, model = setup
    metrics = evaluate_checkpoint(["--checkpoint", str(root / "model.safetensors"), "--model", "regnetx_200mf",
                                   "--data", str(data), "--num_workers", "0", "--batch_size", "37"])
    assert (metrics["resize"], metrics["crop"]) == (256, 224)
    assert "resize 256, crop 224 (the paper's protocol)" in capsys.readouterr().out
    top1, _, _ = _plain(model, data, 256, 224)
    assert metrics["top1"] == pytest.approx(top1, abs=1e-4)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--checkpoint", "{root}/nope.safetensors", "--model", "regnetx_200mf"],
         "error: --checkpoint {root}/nope.safetensors: {root}/nope.safetensors does not exist."),
        (["--checkpoint", "{root}/model.safetensors"], "error: --model is required: {root}/model.safetensors has no "
                                                       "config.yaml beside it"),
        (["--checkpoint", "{root}/run", "--model", "regnety_200mf"],
         "error: --model regnety_200mf, but {root}/run/config.yaml trained regnetx_200mf: drop --model."),
        (["--checkpoint", "{root}/run", "--resize", "30"],
         "error: --crop 32 with --resize 30: the crop must fit the resized image."),
        (["--checkpoint", "{root}/run", "--output_json", "{root}/no/m.json"],
         "error: --output-json {root}/no/m.json: its folder does not exist"),
        (["--checkpoint", "{root}/model.safetensors", "--model", "regnetx_400mf"],
         "error: {root}/model.safetensors holds a regnetx_200mf, not a regnetx_400mf: pass --model regnetx_200mf."),
    ],
    ids=["missing checkpoint", "no model", "other model than the run", "crop larger than resize",
         "output folder missing", "wrong model"],
)
def test_bad_input_is_one_error_line(setup, run_dir, monkeypatch, capsys, argv, message):
    root, data, _ = setup
    monkeypatch.delenv("ACCELERATE_MIXED_PRECISION", raising=False)
    main = runpy.run_path(str(EVALUATE))["main"]
    with pytest.raises(SystemExit) as exit_:
        main([a.format(root=root) for a in argv] + ["--data", str(data), "--num_workers", "0"])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and err.startswith(message.format(root=root)), err


def test_the_model_hint_is_a_flag_and_applying_it_works(setup, monkeypatch, capsys):
    """A command-line user is told the --model to pass (not create_model(...)), and passing it evaluates."""
    root, data, model = setup
    monkeypatch.delenv("ACCELERATE_MIXED_PRECISION", raising=False)
    main = runpy.run_path(str(EVALUATE))["main"]
    argv = ["--checkpoint", str(root / "model.safetensors"), "--data", str(data), "--num_workers", "0", *SMALL[2:]]
    with pytest.raises(SystemExit):
        main([*argv, "--model", "regnety_200mf"])
    hint = re.search(r"pass (--model \S+)\.$", capsys.readouterr().err.strip()).group(1).split()
    metrics = main([*argv, *hint])
    top1, _, _ = _plain(model, data, 36, 32)
    assert metrics["model"] == "regnetx_200mf" and metrics["top1"] == pytest.approx(top1, abs=1e-4)


def test_a_pickle_named_model_safetensors_is_one_line_and_runs_nothing(setup, tmp_path):
    """In a subprocess, as a user would run it: torch.load would hand a .safetensors name to safetensors."""
    root, data, _ = setup
    marker = tmp_path / "pwned"
    for as_torch_zip in (False, True):
        run_dir = tmp_path / f"run_{as_torch_zip}"
        run_dir.mkdir()
        write_malicious_pickle(run_dir / "model.safetensors", marker, as_torch_zip=as_torch_zip)
        result = run([sys.executable, str(EVALUATE), "--checkpoint", str(run_dir), "--model", "regnetx_200mf",
                      "--data", str(data), "--num_workers", "0"])
        assert result.returncode == 2, result.stderr[-3000:]
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith(f"error: {run_dir / 'model.safetensors'} is named "
                                                       ".safetensors but holds a torch.save pickle"), lines
        assert not marker.exists()


def test_the_default_workers_fit_the_machine(setup):
    """No DataLoader warning about more workers than cores: the default is at most the cores available."""
    root, data, _ = setup
    result = run([sys.executable, str(EVALUATE), "--checkpoint", str(root / "model.safetensors"), *SMALL,
                  "--data", str(data), "--batch_size", "8"])
    assert result.returncode == 0, result.stderr[-3000:]
    assert "worker" not in result.stderr, result.stderr[-3000:]
    assert default_num_workers() == min(4, len(os.sched_getaffinity(0)))
