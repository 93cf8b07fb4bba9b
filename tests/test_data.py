"""Data pipeline: the paper's transforms, ImageFolder loading with clear errors, loaders,
and the tiny learnable dataset."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch.utils.data import TensorDataset

from regnet_tutorial.train.__main__ import main as train_main
from regnet_tutorial.train.loaders import (
    IMAGENET_MEAN,
    IMAGENET_PCA_EIGVAL,
    IMAGENET_PCA_EIGVEC,
    IMAGENET_STD,
    CorruptImageError,
    DataError,
    PCALighting,
    build_dataloader,
    check_same_classes,
    eval_transform,
    load_split,
    train_transform,
)
from regnet_tutorial.train.synthetic import make_tiny_dataset


@pytest.fixture(scope="module")
def tiny_root(tiny_dataset) -> Path:
    return tiny_dataset(num_classes=3, train_per_class=6, val_per_class=2, image_size=32)


def copy_dataset(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


# --- PCA lighting ----------------------------------------------------------------------------

def test_pca_constants_pair_the_largest_eigenvalue_with_brightness() -> None:
    vec = np.array(IMAGENET_PCA_EIGVEC)
    # An orthonormal basis (to the 4 printed digits) ...
    np.testing.assert_allclose(vec.T @ vec, np.eye(3), atol=2e-3)
    # ... whose first *column* is the grey axis (1, 1, 1)/sqrt(3): the direction of largest
    # variance of natural-image colours must go with the largest eigenvalue.
    grey = np.ones(3) / np.sqrt(3)
    assert IMAGENET_PCA_EIGVAL[0] == max(IMAGENET_PCA_EIGVAL)
    assert abs(vec[:, 0] @ grey) > 0.999
    assert abs(vec[0, :] @ grey) < 0.5  # the rows are not eigenvectors


def test_pca_lighting_has_the_alexnet_covariance() -> None:
    """AlexNet: add sum_j alpha_j lambda_j p_j, alpha_j ~ N(0, sigma^2), the same to every pixel.
    So the offset has covariance sum_j (sigma lambda_j)^2 p_j p_j^T and zero spatial variation."""
    torch.manual_seed(0)
    sigma, n = 0.1, 40_000
    out = PCALighting(sigma)(torch.zeros(n, 3, 2, 2))
    offsets = out[:, :, 0, 0].double().numpy()
    assert torch.equal(out, out[:, :, :1, :1].expand_as(out))
    p = np.array(IMAGENET_PCA_EIGVEC)
    coords = offsets @ p  # coordinates along each eigenvector (the columns)
    expected_std = sigma * np.array(IMAGENET_PCA_EIGVAL)
    np.testing.assert_allclose(coords.std(axis=0), expected_std, rtol=0.03)
    assert np.all(np.abs(coords.mean(axis=0)) < 4 * expected_std / np.sqrt(n))
    expected_cov = p @ np.diag(expected_std**2) @ p.T
    np.testing.assert_allclose(np.cov(offsets.T), expected_cov, atol=0.03 * expected_std[0] ** 2)


def test_pca_lighting_off_and_bad_input() -> None:
    img = torch.rand(3, 4, 4)
    assert torch.equal(PCALighting(0.0)(img), img)
    with pytest.raises(TypeError, match="float RGB tensor.*ToDtype"):
        PCALighting()(torch.zeros(3, 4, 4, dtype=torch.uint8))
    with pytest.raises(TypeError, match=r"\(\.\.\., 3, H, W\)"):
        PCALighting()(torch.zeros(1, 4, 4))
    with pytest.raises(ValueError, match="alphastd"):
        PCALighting(-1.0)


# --- transforms ------------------------------------------------------------------------------

def normalised(rgb: tuple[int, int, int]) -> torch.Tensor:
    return (torch.tensor(rgb) / 255 - torch.tensor(IMAGENET_MEAN)) / torch.tensor(IMAGENET_STD)


def test_train_transform_crops_flips_and_normalises() -> None:
    colour = (200, 30, 90)
    out = train_transform(crop_size=24, lighting_std=0.0)(Image.new("RGB", (50, 40), colour))
    assert out.shape == (3, 24, 24) and out.dtype == torch.float32
    # A constant image stays constant under crop and flip; only the normalisation changes it.
    torch.testing.assert_close(out, normalised(colour)[:, None, None].expand(3, 24, 24), atol=1e-5, rtol=0)


def test_train_transform_adds_the_same_lighting_offset_to_every_pixel() -> None:
    torch.manual_seed(1)
    colour = (120, 120, 120)
    out = train_transform(crop_size=16, lighting_std=0.1)(Image.new("RGB", (20, 20), colour))
    shift = (out - normalised(colour)[:, None, None]) * torch.tensor(IMAGENET_STD)[:, None, None]
    assert shift.abs().max() > 1e-4  # noise was added, before normalisation ...
    torch.testing.assert_close(shift, shift[:, :1, :1].expand_as(shift), atol=1e-5, rtol=0)  # ... uniformly


def test_eval_transform_resizes_the_short_side_and_centre_crops() -> None:
    img = Image.new("RGB", (200, 100), (0, 0, 0))
    img.paste((255, 255, 255), (70, 20, 130, 80))  # a white 60 x 60 square in the middle
    out = eval_transform(resize_size=100, crop_size=50)(img)
    assert out.shape == (3, 50, 50)
    torch.testing.assert_close(out, normalised((255, 255, 255))[:, None, None].expand(3, 50, 50), atol=1e-5, rtol=0)
    wide = eval_transform(resize_size=64, crop_size=56)(Image.new("RGB", (300, 100)))
    assert wide.shape == (3, 56, 56)
    with pytest.raises(ValueError, match="resize_size=200 is smaller than crop_size=224"):
        eval_transform(200, 224)


# --- folders and their errors ----------------------------------------------------------------

def test_load_split_reads_the_imagefolder_layout(tiny_root: Path) -> None:
    train = load_split(tiny_root, "train", eval_transform(32, 32))
    val = load_split(tiny_root, "val", None)
    assert train.classes == ["n00000000", "n00000001", "n00000002"]
    assert len(train) == 18 and len(val) == 6
    assert check_same_classes(train, val) == train.classes
    image, label = train[7]
    assert image.shape == (3, 32, 32) and label == 1


def test_missing_data_folder_names_the_path_and_the_layout(tmp_path: Path) -> None:
    missing = tmp_path / "imagenet"
    with pytest.raises(DataError, match=f"{missing}.*does not exist.*root/train/<wnid>/\\*\\.JPEG"):
        load_split(missing, "train", None)
    (missing / "train").mkdir(parents=True)
    with pytest.raises(DataError, match=r"Split folder .*val does not exist \(folders in .*: \['train'\]\)"):
        load_split(missing, "val", None)
    with pytest.raises(DataError, match=r"has no class folders.*root/train/<wnid>"):
        load_split(missing, "train", None)


def test_class_folder_without_images_is_named(tiny_root: Path, tmp_path: Path) -> None:
    root = copy_dataset(tiny_root, tmp_path / "d")
    empty = root / "train" / "n00000009"
    empty.mkdir()
    (empty / "notes.txt").write_text("not an image")
    with pytest.raises(DataError, match=r"1 class folder\(s\) .* contain no images .*n00000009"):
        load_split(root, "train", None)


def test_mismatched_classes_are_listed(tiny_root: Path, tmp_path: Path) -> None:
    root = copy_dataset(tiny_root, tmp_path / "d")
    shutil.move(root / "val" / "n00000002", root / "val" / "n00000007")
    train, val = load_split(root, "train", None), load_split(root, "val", None)
    with pytest.raises(DataError, match=r"only in train: 1 \(n00000002\); only in val: 1 \(n00000007\)"):
        check_same_classes(train, val)


def write_corrupt_files(root: Path) -> list[Path]:
    """A file of random bytes and a JPEG cut in half, both named like ImageNet images."""
    folder = root / "train" / "n00000001"
    garbage = folder / "n00000001_garbage.JPEG"
    garbage.write_bytes(np.random.default_rng(0).bytes(500))
    good = sorted(folder.glob("*.JPEG"))[0].read_bytes()
    truncated = folder / "n00000001_truncated.JPEG"
    truncated.write_bytes(good[: len(good) // 2])
    return [garbage, truncated]


def test_corrupt_image_error_names_the_file(tiny_root: Path, tmp_path: Path) -> None:
    root = copy_dataset(tiny_root, tmp_path / "d")
    bad = write_corrupt_files(root)
    dataset = load_split(root, "train", None)
    assert len(dataset) == 20  # found, not yet read
    for path in bad:
        index = [p for p, _ in dataset.samples].index(str(path))
        with pytest.raises(CorruptImageError, match=f"Cannot decode image {path}.*skip_corrupt=True"):
            dataset[index]


def test_skip_corrupt_drops_bad_files_with_one_warning(tiny_root: Path, tmp_path: Path) -> None:
    root = copy_dataset(tiny_root, tmp_path / "d")
    bad = write_corrupt_files(root)
    with pytest.warns(UserWarning, match=r"Skipped 2 unreadable image\(s\).*n00000001_garbage") as record:
        dataset = load_split(root, "train", None, skip_corrupt=True)
    assert len(record) == 1
    assert len(dataset) == 18 and not {str(p) for p in bad} & {p for p, _ in dataset.samples}
    assert dataset.targets == [t for _, t in dataset.samples]
    assert all(dataset[i][0].size == (32, 32) for i in range(len(dataset)))


# --- loaders ---------------------------------------------------------------------------------

def loader_order(loader: torch.utils.data.DataLoader) -> list[int]:
    return [int(i) for (batch,) in loader for i in batch]


def test_train_loader_shuffles_reproducibly_and_drops_the_partial_batch() -> None:
    data = TensorDataset(torch.arange(23))
    first = loader_order(build_dataloader(data, 5, train=True, num_workers=0, seed=3))
    again = loader_order(build_dataloader(data, 5, train=True, num_workers=0, seed=3))
    other = loader_order(build_dataloader(data, 5, train=True, num_workers=0, seed=4))
    assert first == again != other
    assert len(first) == 20 and len(set(first)) == 20  # 4 full batches, no repeats
    assert first != sorted(first)


def test_eval_loader_keeps_every_sample_in_order() -> None:
    data = TensorDataset(torch.arange(23))
    loader = build_dataloader(data, 5, train=False, num_workers=0)
    assert loader_order(loader) == list(range(23))
    assert len(loader_order(build_dataloader(data, 5, train=False, num_workers=0, drop_last=True))) == 20
    with pytest.raises(ValueError, match="batch_size=0"):
        build_dataloader(data, 0, train=True)


# --- the tiny dataset ------------------------------------------------------------------------

def tree_digest(root: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(root.rglob("*.JPEG")):
        digest.update(str(path.relative_to(root)).encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


def test_tiny_dataset_layout_and_determinism(tmp_path: Path) -> None:
    args = dict(num_classes=3, train_per_class=3, val_per_class=2, image_size=16)
    a = make_tiny_dataset(tmp_path / "a", seed=1, **args)
    b = make_tiny_dataset(tmp_path / "b", seed=1, **args)
    c = make_tiny_dataset(tmp_path / "c", seed=2, **args)
    assert tree_digest(a) == tree_digest(b) != tree_digest(c)
    assert sorted(p.name for p in (a / "val").iterdir()) == ["n00000000", "n00000001", "n00000002"]
    assert len(list((a / "train").rglob("*.JPEG"))) == 9 and len(list((a / "val").rglob("*.JPEG"))) == 6
    with Image.open(next((a / "train" / "n00000000").iterdir())) as img:
        assert img.format == "JPEG" and img.size == (16, 16) and img.mode == "RGB"
    with pytest.raises(ValueError, match="num_classes=1 is invalid"):
        make_tiny_dataset(tmp_path / "d", num_classes=1)


def test_tiny_dataset_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    train_main(["synthetic", str(tmp_path / "t"), "--num-classes", "2", "--train-per-class", "2",
                "--val-per-class", "1", "--image-size", "16"])
    assert "Wrote 6 JPEG images of 2 classes" in capsys.readouterr().out
    assert len(list((tmp_path / "t").rglob("*.JPEG"))) == 6


def test_tiny_dataset_is_learnable_by_a_tiny_cnn(tmp_path: Path) -> None:
    """Two epochs of a two-layer CNN on the augmented images separate the classes well,
    while chance is 25%: the labels carry signal the real pipeline preserves."""
    torch.manual_seed(0)
    root = make_tiny_dataset(tmp_path, num_classes=4, train_per_class=40, val_per_class=10, image_size=32)
    train = load_split(root, "train", train_transform(crop_size=32))
    val = load_split(root, "val", eval_transform(resize_size=32, crop_size=32))
    model = torch.nn.Sequential(
        torch.nn.Conv2d(3, 16, 5, stride=2), torch.nn.ReLU(),
        torch.nn.Conv2d(16, 32, 3, stride=2), torch.nn.ReLU(),
        torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), torch.nn.Linear(32, 4),
    )
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(2):
        for images, labels in build_dataloader(train, 16, train=True, num_workers=0):
            optimizer.zero_grad()
            torch.nn.functional.cross_entropy(model(images), labels).backward()
            optimizer.step()
    with torch.no_grad():
        images, labels = next(iter(build_dataloader(val, 40, train=False, num_workers=0)))
        accuracy = (model(images).argmax(1) == labels).float().mean().item()
    assert accuracy >= 0.9


def test_find_unreadable_images_lists_every_bad_file_in_order(tmp_path):
    from regnet_tutorial.train.loaders import find_unreadable_images, unreadable_images_error

    good = tmp_path / "good.jpg"
    Image.new("RGB", (8, 8), (10, 20, 30)).save(good)
    truncated = tmp_path / "truncated.jpg"
    truncated.write_bytes(good.read_bytes()[:40])
    text = tmp_path / "text.jpg"
    text.write_text("not an image")
    paths = [str(p) for p in (text, good, truncated, good)]
    assert find_unreadable_images(paths, workers=2) == [str(text), str(truncated)]
    message = str(unreadable_images_error([str(text), str(truncated)], 4))
    assert message.startswith("2 of 4 images cannot be decoded: ") and str(truncated) in message


def test_one_seeded_subset_for_training_and_the_sweep() -> None:
    from regnet_tutorial.sweep.images import ImageSet
    from regnet_tutorial.train.loaders import random_subset, seeded_order

    order = seeded_order(10, 4, seed=3).tolist()
    assert len(set(order)) == 4 and set(order) <= set(range(10))  # without replacement
    images = ImageSet("t", torch.arange(10.0).view(10, 1, 1, 1), torch.arange(10), 10)
    assert images.subset(4, seed=3).labels.tolist() == order == random_subset(list(range(10)), 4, 3).indices
    assert seeded_order(10, None, seed=3).sort().values.tolist() == list(range(10))
    assert seeded_order(10, 4, seed=4).tolist() != order  # the seed matters
