"""scripts/evaluate.py under `accelerate launch` with 2 CPU processes counts every validation
image exactly once on a set that does not divide evenly, and its top-1 equals a plain
single-process evaluation of the same weights."""

from __future__ import annotations

import json
import runpy

import pytest
import torch

from regnet_tutorial.checkpoint_io import save_safetensors
from regnet_tutorial.data import eval_transform, load_split
from regnet_tutorial.models import create_model
from regnet_tutorial.tiny_dataset import make_tiny_dataset

from _train_helpers import EVALUATE, launch_two_cpu_processes

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
    return root, data, model


def _evaluate_cmd(root, data, out_json):
    return [str(EVALUATE), "--model", "regnetx_200mf", "--checkpoint", str(root / "model.safetensors"),
            "--data", str(data), "--resize", "36", "--crop", "32", "--batch_size", "4",
            "--num_workers", "0", "--output_json", str(out_json)]


def _plain_top1(model, data):
    """Top-1 with a plain loop over the files: no Accelerate, no sampler, no gathering."""
    val = load_split(data, "val", eval_transform(36, 32))
    model.eval()
    with torch.no_grad():
        images = torch.stack([val[i][0] for i in range(len(val))])
        targets = torch.tensor([val[i][1] for i in range(len(val))])
        correct = (model(images).argmax(1) == targets).sum().item()
    return 100.0 * correct / len(val), len(val)


def test_two_processes_count_every_image_once(setup):
    root, data, model = setup
    two = launch_two_cpu_processes(_evaluate_cmd(root, data, root / "two.json"))
    assert two.returncode == 0, two.stderr[-3000:]
    m2 = json.loads((root / "two.json").read_text())
    assert m2["processes"] == 2
    assert m2["count"] == 37
    assert "on 37 images" in two.stdout
    # The single-process reference: a plain loop over the 37 files, no Accelerate at all.
    expected_top1, n = _plain_top1(model, data)
    assert n == 37 and m2["top1"] == pytest.approx(expected_top1, abs=1e-4)
    assert m2["top5"] == pytest.approx(100.0)  # 4 classes: the top-4 always contains the target


def test_checkpoint_that_does_not_exist_is_a_clear_error(tmp_path):
    load_weights = runpy.run_path(str(EVALUATE))["load_weights"]  # the script's own function
    with pytest.raises(FileNotFoundError, match="does not exist") as err:
        load_weights(tmp_path / "nope.safetensors", "regnet_tutorial")
    assert "scripts/train.py" in str(err.value)
