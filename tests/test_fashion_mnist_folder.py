"""write_fashion_mnist_folder: a Fashion-MNIST subset in ImageNet's folder layout (chapter 05's real-data run)."""

from __future__ import annotations

import gzip
import os

import numpy as np
import pytest
from PIL import Image

from regnet_tutorial.sweep.images import (
    FASHION_MNIST_DIR,
    SweepDataError,
    fashion_mnist_class_folder,
    write_fashion_mnist_folder,
)
from regnet_tutorial.train.loaders import load_split

HAVE_DATA = (FASHION_MNIST_DIR / "train-images-idx3-ubyte.gz").exists()
if not HAVE_DATA and os.environ.get("CI") == "true":  # CI installs it (.ci/run); elsewhere skip
    raise RuntimeError(f"Fashion-MNIST missing from {FASHION_MNIST_DIR}: apt-get install dataset-fashion-mnist")
needs_data = pytest.mark.skipif(not HAVE_DATA, reason="needs the Debian package dataset-fashion-mnist")


def _raw(prefix: str) -> tuple[np.ndarray, np.ndarray]:
    """Images and labels read straight from the IDX bytes (16- and 8-byte headers), not via the package."""
    with gzip.open(FASHION_MNIST_DIR / f"{prefix}-images-idx3-ubyte.gz") as f:
        images = np.frombuffer(f.read(), np.uint8, offset=16).reshape(-1, 28, 28)
    with gzip.open(FASHION_MNIST_DIR / f"{prefix}-labels-idx1-ubyte.gz") as f:
        labels = np.frombuffer(f.read(), np.uint8, offset=8)
    return images, labels


def test_class_folders_sort_in_label_order():
    names = [fashion_mnist_class_folder(label) for label in range(10)]
    assert names[0] == "0_t-shirt-top" and names[9] == "9_ankle-boot"
    assert sorted(names) == names and all("/" not in n and " " not in n for n in names)


@needs_data
def test_folder_holds_the_raw_pixels_balanced_and_labelled(tmp_path):
    root = write_fashion_mnist_folder(tmp_path / "fm", train_per_class=3, val_per_class=2, seed=5)
    for split, prefix, per_class in (("train", "train", 3), ("val", "t10k", 2)):
        images, labels = _raw(prefix)
        dataset = load_split(root, split, None)  # the training script's loader (an ImageFolder)
        assert len(dataset) == 10 * per_class
        assert dataset.classes == [fashion_mnist_class_folder(label) for label in range(10)]
        counts = np.bincount([target for _, target in dataset.samples], minlength=10)
        assert counts.tolist() == [per_class] * 10
        for path, target in dataset.samples:
            index = int(os.path.basename(path).split("_")[1].split(".")[0])
            assert labels[index] == target  # the ImageFolder class index is the Fashion-MNIST label
            with Image.open(path) as img:
                assert img.mode == "RGB" and img.size == (28, 28)
                rgb = np.asarray(img)
            assert all(np.array_equal(rgb[..., c], images[index]) for c in range(3))  # lossless grey


@needs_data
def test_same_seed_same_images_other_seed_others(tmp_path):
    def files(root):
        return sorted(p.relative_to(root).as_posix() for p in root.rglob("*.png"))

    a = files(write_fashion_mnist_folder(tmp_path / "a", 4, 1, seed=0))
    b = files(write_fashion_mnist_folder(tmp_path / "b", 4, 1, seed=0))
    c = files(write_fashion_mnist_folder(tmp_path / "c", 4, 1, seed=1))
    assert a == b and a != c


@needs_data
def test_bad_requests_are_one_line_errors(tmp_path):
    with pytest.raises(SweepDataError, match="train_per_class=0 is invalid"):
        write_fashion_mnist_folder(tmp_path / "x", 0, 1)
    with pytest.raises(SweepDataError, match="val_per_class=1001 is too many.*1000 images of its smallest class"):
        write_fashion_mnist_folder(tmp_path / "y", 1, 1001)
    assert not (tmp_path / "y").exists()  # checked before anything is written
    write_fashion_mnist_folder(tmp_path / "z", 1, 1)
    with pytest.raises(SweepDataError, match="already holds train/ or val/"):
        write_fashion_mnist_folder(tmp_path / "z", 1, 1)
    with pytest.raises(SweepDataError, match="apt-get install dataset-fashion-mnist"):
        write_fashion_mnist_folder(tmp_path / "w", 1, 1, source=tmp_path / "nowhere")
