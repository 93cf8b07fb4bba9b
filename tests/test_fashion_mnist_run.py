"""The committed full Fashion-MNIST run of chapter 05 (``results/fashion_mnist_regnetx_200mf/``).

Its records agree with each other (``config.yaml``, ``run.json``, ``final.json``, ``metrics.csv``),
with TensorBoard's event file of the same run (a second tracker that logged the same values), with
the schedule's formula, and with the recipe file ``configs/fashion_mnist/regnetx_200mf.yaml``
whose header gives the commands that produced it: every setting, the number of processes and the
size of the data. The weights and checkpoints are not committed.
"""

from __future__ import annotations

import dataclasses
import json
import math
import re
from pathlib import Path

import pytest
import yaml
from conftest import ROOT

from regnet_tutorial.sweep.images import FASHION_MNIST_CLASSES
from regnet_tutorial.train.recipe import config_to_dict, load_config, resolve_recipe
from regnet_tutorial.train.schedule import schedule_lr
from regnet_tutorial.train.tracking import read_metrics_csv

RESULT = ROOT / "results" / "fashion_mnist_regnetx_200mf"
RECIPE = ROOT / "configs" / "fashion_mnist" / "regnetx_200mf.yaml"
RECORDS = ("config.yaml", "run.json", "final.json", "metrics.csv")
# What run.json and final.json both record about the run (final.json adds the metrics).
SHARED = ("config_changes", "device", "distributed_type", "git_commit", "lock_differs", "lock_sha256",
          "mixed_precision", "num_processes", "recipe", "versions")
TEST_IMAGES = 10_000  # Fashion-MNIST's test split (Xiao et al., 2017)


def _json(name: str) -> dict:
    return json.loads((RESULT / name).read_text())


def _events_file() -> Path:
    found = sorted(RESULT.glob("events.out.tfevents.*"))
    assert len(found) == 1, f"{RESULT}: expected one TensorBoard event file, found {found}"
    return found[0]


def _header_command() -> str:
    """The shell commands in the recipe file's header, continuation lines joined."""
    header = "\n".join(line.lstrip("#")[1:] for line in RECIPE.read_text().splitlines() if line.startswith("#"))
    return " ".join(header.split("Run it", 1)[1].replace("\\\n", " ").split())


def test_the_run_folder_holds_its_records_and_no_weights() -> None:
    names = sorted(p.name for p in RESULT.iterdir())
    assert set(RECORDS) <= set(names), names
    assert not [n for n in names if n.endswith((".safetensors", ".pth", ".pt", ".bin"))], names
    assert not (RESULT / "checkpoints").exists()
    _events_file()


def test_final_record_and_run_json_describe_the_same_run() -> None:
    run, final = _json("run.json"), _json("final.json")
    config = yaml.safe_load((RESULT / "config.yaml").read_text())
    assert final["config"] == config  # the resolved config the run wrote when it started
    assert {k: run[k] for k in SHARED} == {k: final[k] for k in SHARED}
    assert run["config_changes"] == [] and run["resumed_from"] == ""  # one run, one config
    assert config["mixed_precision"] == run["mixed_precision"]  # the precision really used
    recipe, history = run["recipe"], final["history"]
    assert recipe["num_processes"] == run["num_processes"]
    assert recipe["total_batch"] == config["batch_size"] * run["num_processes"] * config["grad_accum_steps"]
    assert math.isclose(recipe["lr"], config["lr_per_128"] * recipe["total_batch"] / 128, rel_tol=1e-12)
    assert recipe["total_steps"] == recipe["steps_per_epoch"] * config["epochs"]
    assert [h["epoch"] for h in history] == list(range(1, config["epochs"] + 1))
    assert [h["step"] for h in history] == [e * recipe["steps_per_epoch"] for e in range(1, config["epochs"] + 1)]
    assert final["metrics"] == history[-1]  # the final numbers are the last epoch's
    assert all(h["val_count"] == TEST_IMAGES for h in history), [h["val_count"] for h in history]
    assert all(0 <= h["val_top1"] <= h["val_top5"] <= 100 for h in history)
    best = max(history, key=lambda h: h["val_top1"])
    assert final["best"] == {"val_top1": best["val_top1"], "step": best["step"]}


def test_metrics_csv_has_every_logged_step_and_the_epoch_records() -> None:
    run, final = _json("run.json"), _json("final.json")
    config = final["config"]
    series = read_metrics_csv(RESULT / "metrics.csv")
    logged = list(range(0, run["recipe"]["total_steps"], config["log_every"]))
    for name in ("train/loss", "train/loss_max", "train/lr"):
        assert [step for step, _ in series[name]] == logged, name
    assert all(loss <= top for (_, loss), (_, top) in zip(series["train/loss"], series["train/loss_max"]))
    for record in final["history"]:
        at_epoch_end = {name.removeprefix("epoch/"): value for name, rows in series.items()
                        if name.startswith("epoch/") for step, value in rows if step == record["step"]}
        assert at_epoch_end == record, record["epoch"]  # the CSV's repr floats read back exactly
    assert sum(len(rows) for name, rows in series.items() if name.startswith("epoch/")) == (
        len(final["history"]) * len(final["history"][0]))


def test_the_logged_learning_rates_follow_the_schedules_formula() -> None:
    run, final = _json("run.json"), _json("final.json")
    config, recipe = final["config"], run["recipe"]
    for step, lr in read_metrics_csv(RESULT / "metrics.csv")["train/lr"]:
        expected = schedule_lr(config["schedule"], step, recipe["steps_per_epoch"], config["epochs"],
                               config["warmup_epochs"], recipe["lr"], config["warmup_factor"])
        assert math.isclose(lr, expected, rel_tol=1e-12), (step, lr, expected)


def test_tensorboard_logged_the_same_values_as_the_csv() -> None:
    from tensorboard.backend.event_processing.event_file_loader import EventFileLoader
    from tensorboard.util.tensor_util import make_ndarray

    from_events: dict[str, list[tuple[int, float]]] = {}
    for event in EventFileLoader(str(_events_file())).Load():
        for value in event.summary.value:
            scalar = make_ndarray(value.tensor)  # the loader gives add_scalar's values as 0-d tensors
            assert scalar.shape == (), value.tag
            from_events.setdefault(value.tag, []).append((event.step, float(scalar)))
    from_csv = read_metrics_csv(RESULT / "metrics.csv")
    assert sorted(from_events) == sorted(from_csv)
    for tag, rows in from_csv.items():
        # TensorBoard stores 32-bit floats; the CSV keeps Python's full repr.
        assert [s for s, _ in from_events[tag]] == [s for s, _ in rows], tag
        assert all(math.isclose(a, b, rel_tol=1e-6, abs_tol=1e-6) for (_, a), (_, b) in zip(from_events[tag], rows))


# --- the run is the recipe file's run -------------------------------------------------------------


def test_the_run_used_every_setting_of_the_recipe_file() -> None:
    """All of the run's settings are the recipe file's (unset keys: the defaults), except
    mixed_precision, which the recipe leaves to the launcher and the run records as used, and
    the data folder's path: the run read data/fashion_mnist, written by the header's command;
    the recipe names its own folder so that it does not collide with chapter 05's 5,000-image one."""
    recipe_file = config_to_dict(load_config(RECIPE))
    run_config = _json("final.json")["config"]
    assert recipe_file["mixed_precision"] is None
    assert Path(run_config["data"]).name.startswith("fashion_mnist")
    local = ("mixed_precision", "data")
    differs = {k: (run_config[k], v) for k, v in recipe_file.items() if k not in local and run_config[k] != v}
    assert not differs, f"the committed run differs from {RECIPE.name} (run, recipe file): {differs}"
    assert set(run_config) == set(recipe_file)


def test_the_run_is_what_the_recipe_files_commands_give() -> None:
    """The header's commands: the data folder (images per class) and the launch (processes). The
    recipe resolved for them is the run's, step counts included, and every test image was scored."""
    command = _header_command()
    processes = int(re.search(r"--num_processes (\d+)", command).group(1))
    train_per_class = int(re.search(r"--train-per-class (\d+)", command).group(1))
    val_per_class = int(re.search(r"--val-per-class (\d+)", command).group(1))
    assert "scripts/train.py --config configs/fashion_mnist/regnetx_200mf.yaml" in command
    classes = len(FASHION_MNIST_CLASSES)
    assert (train_per_class * classes, val_per_class * classes) == (60_000, TEST_IMAGES)  # all of Fashion-MNIST
    run, final = _json("run.json"), _json("final.json")
    assert run["num_processes"] == processes and run["device"].startswith("cpu")
    resolved = resolve_recipe(load_config(RECIPE), processes, train_per_class * classes)
    assert run["recipe"] == dataclasses.asdict(resolved)
    epochs = load_config(RECIPE).epochs
    assert len(final["history"]) == epochs and final["metrics"]["step"] == resolved.total_steps
    assert resolved.total_steps == epochs * (60_000 // resolved.total_batch)
    assert final["metrics"]["val_count"] == val_per_class * classes


@pytest.mark.parametrize("name", RECORDS)
def test_the_records_are_the_runs_own_files_unedited(name: str) -> None:
    """Written by the run's code: JSON as write_json_atomic writes it (sorted keys, indent 2),
    config.yaml as save_config writes it (field order), metrics.csv with its header."""
    text = (RESULT / name).read_text()
    if name.endswith(".json"):
        assert text == json.dumps(json.loads(text), indent=2, sort_keys=True)
    elif name == "config.yaml":
        assert list(yaml.safe_load(text)) == list(config_to_dict(load_config(RECIPE)))
    else:
        assert text.splitlines()[0] == "step,name,value"


def test_the_readme_quotes_the_runs_test_top1() -> None:
    """The README's sentence about the full run quotes final.json's last-epoch top-1 and its error."""
    top1 = _json("final.json")["metrics"]["val_top1"]
    readme = " ".join((Path(__file__).resolve().parents[1] / "README.md").read_text().split())
    assert f"It reached {top1:.2f}% test top-1 ({100 - top1:.2f}% error)" in readme
