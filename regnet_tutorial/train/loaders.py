"""ImageNet-style data: the paper's augmentation, folder datasets with clear errors, loaders.

The recipe is the one of the paper's code (pycls, ``datasets/imagenet.py``):

* train: Inception-style random-sized crop to 224 (area 8%-100%, aspect 3/4-4/3),
  horizontal flip, AlexNet-style PCA lighting noise (std 0.1), per-channel normalisation;
* eval: resize the short side to 256, centre crop 224, per-channel normalisation.

Images are read from an ``ImageFolder`` layout, ``root/<split>/<wnid>/*.JPEG``, which is
what the usual ImageNet preparation scripts produce.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import torch
from PIL import Image, UnidentifiedImageError
from torch import nn
from torch.utils.data import DataLoader, Dataset, Subset
from torchvision import tv_tensors
from torchvision.datasets import ImageFolder
from torchvision.datasets.folder import IMG_EXTENSIONS
from torchvision.transforms import v2

from ..errors import RegNetTutorialError, check_int

IMAGENET_MEAN: tuple[float, float, float] = (0.485, 0.456, 0.406)
"""Per-channel mean of ImageNet in RGB order, for images scaled to [0, 1]."""

IMAGENET_STD: tuple[float, float, float] = (0.229, 0.224, 0.225)
"""Per-channel standard deviation of ImageNet in RGB order, for images scaled to [0, 1]."""

IMAGENET_PCA_EIGVAL: tuple[float, float, float] = (0.2175, 0.0188, 0.0045)
"""Eigenvalues of the RGB pixel covariance of ImageNet (fb.resnet.torch, pycls), largest first."""

IMAGENET_PCA_EIGVEC: tuple[tuple[float, float, float], ...] = (
    (-0.5675, 0.7192, 0.4009),
    (-0.5808, -0.0045, -0.8140),
    (-0.5836, -0.6948, 0.4203),
)
"""The matching eigenvectors, one per **column**: row ``i`` is colour channel ``i`` (R, G, B).

pycls and fb.resnet.torch both compute ``rgb[i] = sum_j eigvec[i][j] * alpha_j * eigval_j``,
so column ``j`` belongs to ``eigval[j]``. The first column, about ``-(1, 1, 1) / sqrt(3)``,
is overall brightness: as expected, the direction of largest variance in natural images.
"""

CORRUPT_EXAMPLES_SHOWN = 5


class DataError(RegNetTutorialError, ValueError):
    """A problem with the dataset on disk: the message names the path and how to fix it."""


class CorruptImageError(DataError, OSError):
    """An image file that cannot be decoded; the message names the file."""

    per_process = True
    """Only the process that read the file meets it: every process that does reports it, with its
    rank (:func:`regnet_tutorial.util.cli.report`)."""


class PCALighting(nn.Module):
    """AlexNet-style PCA lighting noise (Krizhevsky et al., 2012), as in the paper's recipe.

    Adds the same RGB offset ``eigvec @ (alpha * eigval)`` with ``alpha ~ N(0, alphastd^2)``
    to every pixel. Like pycls, it acts on a float ``(..., 3, H, W)`` RGB tensor scaled to
    ``[0, 1]``, *before* normalisation (the constants are for that scale), and does not clip.
    """

    def __init__(
        self,
        alphastd: float = 0.1,
        eigval: Sequence[float] = IMAGENET_PCA_EIGVAL,
        eigvec: Sequence[Sequence[float]] = IMAGENET_PCA_EIGVEC,
    ) -> None:
        super().__init__()
        if not isinstance(alphastd, (int, float)) or isinstance(alphastd, bool) or alphastd < 0:
            raise ValueError(f"alphastd={alphastd!r} is invalid: it must be a number >= 0 (0 turns lighting off).")
        self.alphastd = float(alphastd)
        self.register_buffer("eigval", torch.tensor(eigval, dtype=torch.float32), persistent=False)
        self.register_buffer("eigvec", torch.tensor(eigvec, dtype=torch.float32), persistent=False)

    def forward(self, img: torch.Tensor) -> torch.Tensor:
        """``img`` plus one random lighting offset per image."""
        if not torch.is_tensor(img) or not img.is_floating_point() or img.ndim < 3 or img.shape[-3] != 3:
            raise TypeError(
                f"PCALighting needs a float RGB tensor of shape (..., 3, H, W) scaled to [0, 1], got "
                f"{type(img).__name__} {getattr(img, 'dtype', '')} {tuple(getattr(img, 'shape', ()))}. "
                "Place it after v2.ToDtype(torch.float32, scale=True) and before v2.Normalize."
            )
        if self.alphastd == 0:
            return img
        alpha = torch.randn(*img.shape[:-3], 3, dtype=torch.float32) * self.alphastd
        offset = (alpha * self.eigval) @ self.eigvec.T  # rgb_i = sum_j eigvec[i, j] alpha_j eigval_j
        out = img + offset.to(img.dtype)[..., None, None]
        return tv_tensors.wrap(out, like=img) if isinstance(img, tv_tensors.TVTensor) else out

    def extra_repr(self) -> str:
        return f"alphastd={self.alphastd}"


def train_transform(crop_size: int = 224, lighting_std: float = 0.1) -> v2.Compose:
    """The paper's training augmentation, PIL image -> normalised float tensor."""
    return v2.Compose([
        v2.RandomResizedCrop(crop_size, antialias=True),
        v2.RandomHorizontalFlip(),
        v2.ToImage(),
        v2.ToDtype(torch.float32, scale=True),
        PCALighting(lighting_std),
        v2.Normalize(IMAGENET_MEAN, IMAGENET_STD),
    ])


def small_image_transform(crop_size: int = 32) -> v2.Compose:
    """The usual augmentation for 28-32 px images (CIFAR, Fashion-MNIST): a ``crop_size // 8``
    zero border, a random ``crop_size`` crop and a horizontal flip (pycls's CIFAR recipe)."""
    return v2.Compose([
        v2.Resize(crop_size, antialias=True),
        v2.RandomCrop(crop_size, padding=crop_size // 8),
        v2.RandomHorizontalFlip(),
        v2.ToImage(),
        v2.ToDtype(torch.float32, scale=True),
        v2.Normalize(IMAGENET_MEAN, IMAGENET_STD),
    ])


def eval_transform(resize_size: int = 256, crop_size: int = 224) -> v2.Compose:
    """The paper's evaluation preprocessing: short side to ``resize_size``, centre crop."""
    if resize_size < crop_size:
        raise ValueError(
            f"resize_size={resize_size} is smaller than crop_size={crop_size}; the centre crop "
            "would pad the image. Use resize_size >= crop_size (the paper: 256 and 224)."
        )
    return v2.Compose([
        v2.Resize(resize_size, antialias=True),
        v2.CenterCrop(crop_size),
        v2.ToImage(),
        v2.ToDtype(torch.float32, scale=True),
        v2.Normalize(IMAGENET_MEAN, IMAGENET_STD),
    ])


def load_rgb_image(path: str) -> Image.Image:
    """Open ``path`` as an RGB PIL image; a file that cannot be decoded raises
    :class:`CorruptImageError` naming it."""
    try:
        with Image.open(path) as img:
            return img.convert("RGB")  # convert() decodes the whole file
    except (OSError, UnidentifiedImageError, SyntaxError, ValueError) as err:
        raise CorruptImageError(
            f"Cannot decode image {path}: {err}. Delete or replace the file, or pass "
            "skip_corrupt=True (config key skip_corrupt) to drop unreadable files up front."
        ) from err


def is_readable_image(path: str) -> bool:
    """Whether ``path`` opens, passes ``PIL.Image.verify`` and decodes (at reduced size)."""
    try:
        with Image.open(path) as img:
            img.verify()
        with Image.open(path) as img:
            img.draft("RGB", (max(1, img.width // 8), max(1, img.height // 8)))  # cheap JPEG decode
            img.load()
        return True
    except Exception:
        return False


_LAYOUT = "root/train/<wnid>/*.JPEG and root/val/<wnid>/*.JPEG (the torchvision ImageFolder layout)"


def _class_folders(split_dir: Path) -> list[Path]:
    return sorted(p for p in split_dir.iterdir() if p.is_dir() and not p.name.startswith("."))


def _has_image(folder: Path) -> bool:
    for _dirpath, _dirs, files in os.walk(folder, followlinks=True):
        if any(name.lower().endswith(IMG_EXTENSIONS) for name in files):
            return True
    return False


_WRITE_A_FOLDER = (
    "to write one, `python -m regnet_tutorial.train fashion-mnist --out data/fashion_mnist` (real images, "
    "from the Debian package dataset-fashion-mnist) or `python -m regnet_tutorial.train synthetic "
    "data/synthetic` (a tiny synthetic set)"
)

FASHION_MNIST_IDX_FILES = ("train-images-idx3-ubyte", "train-images-idx3-ubyte.gz")
"""A folder holding one of these is Fashion-MNIST's (or MNIST's) raw IDX files, not image folders."""


def _check_layout(root: Path, split: str) -> Path:
    if root.exists() and not root.is_dir():
        raise DataError(
            f"Data folder {root} is a file, not a folder. Point `data` at a folder laid out as {_LAYOUT}; "
            f"{_WRITE_A_FOLDER}."
        )
    if not root.is_dir():
        raise DataError(
            f"Data folder {root} does not exist. Point `data` at a folder laid out as {_LAYOUT}; "
            f"{_WRITE_A_FOLDER}."
        )
    split_dir = root / split
    if not split_dir.is_dir():
        if any((root / name).is_file() for name in FASHION_MNIST_IDX_FILES):
            raise DataError(
                f"Split folder {split_dir} does not exist: {root} holds Fashion-MNIST's raw IDX files, not "
                f"image folders. Write them as an image folder with `python -m regnet_tutorial.train "
                f"fashion-mnist --source {root} --out data/fashion_mnist`, then pass --data data/fashion_mnist."
            )
        present = sorted(p.name for p in root.iterdir() if p.is_dir())
        raise DataError(
            f"Split folder {split_dir} does not exist (folders in {root}: {present or 'none'}). "
            f"Expected layout: {_LAYOUT}."
        )
    classes = _class_folders(split_dir)
    if not classes:
        raise DataError(
            f"Split folder {split_dir} has no class folders. Expected layout: {_LAYOUT}; "
            "the validation images must be sorted into one folder per class, like the training set."
        )
    empty = [c for c in classes if not _has_image(c)]
    if empty:
        shown = ", ".join(str(c) for c in empty[:CORRUPT_EXAMPLES_SHOWN])
        more = f" and {len(empty) - CORRUPT_EXAMPLES_SHOWN} more" if len(empty) > CORRUPT_EXAMPLES_SHOWN else ""
        raise DataError(
            f"{len(empty)} class folder(s) in {split_dir} contain no images "
            f"(extensions {', '.join(IMG_EXTENSIONS)}): {shown}{more}. "
            "Add the missing images or delete the empty folders (in every split, so the classes still match)."
        )
    return split_dir


def _drop_corrupt(dataset: ImageFolder, split_dir: Path) -> None:
    paths = [path for path, _ in dataset.samples]
    bad = find_unreadable_images(paths)
    if not bad:
        return
    bad_set = set(bad)
    readable = [p not in bad_set for p in paths]
    keep = [s for s, ok in zip(dataset.samples, readable) if ok]
    left = {target for _, target in keep}
    emptied = [c for c, i in dataset.class_to_idx.items() if i not in left]
    if emptied:
        raise DataError(
            f"After dropping {len(bad)} unreadable image(s), class folder(s) {emptied} in {split_dir} "
            "have no images left. Replace the broken files."
        )
    dataset.samples = dataset.imgs = keep
    dataset.targets = [target for _, target in keep]
    shown = ", ".join(bad[:CORRUPT_EXAMPLES_SHOWN])
    warnings.warn(
        f"Skipped {len(bad)} unreadable image(s) in {split_dir} (skip_corrupt=True); first: {shown}",
        stacklevel=3,
    )


def load_split(
    root: str | Path,
    split: str,
    transform: Callable[[Any], Any] | None,
    skip_corrupt: bool = False,
) -> ImageFolder:
    """The ``split`` folder of ``root`` as an ``ImageFolder`` whose images go through ``transform``.

    Missing folders, a split without class folders and class folders without images raise
    :class:`DataError` naming the path and the expected layout. An image that cannot be
    decoded raises :class:`CorruptImageError` (naming the file) when it is loaded, unless
    ``skip_corrupt`` is set: then the split is checked up front and unreadable files are
    dropped with one warning.
    """
    split_dir = _check_layout(Path(root), split)
    dataset = ImageFolder(str(split_dir), transform=transform, loader=load_rgb_image)
    if skip_corrupt:
        _drop_corrupt(dataset, split_dir)
    return dataset


def find_unreadable_images(paths: Sequence[str], workers: int | None = None) -> list[str]:
    """The files among ``paths`` that do not open and decode (:func:`is_readable_image`), in order;
    checked by a thread pool (a fast JPEG draft decode per file)."""
    workers = workers or min(8, os.cpu_count() or 1)
    with ThreadPoolExecutor(max_workers=workers) as pool:
        readable = list(pool.map(is_readable_image, paths, chunksize=64))
    return [p for p, ok in zip(paths, readable) if not ok]


def unreadable_images_error(bad: Sequence[str], checked: int) -> DataError:
    """One :class:`DataError` listing every unreadable file (``--check_data``)."""
    return DataError(
        f"{len(bad)} of {checked} images cannot be decoded: {', '.join(bad)}. Delete or replace them, or "
        "pass skip_corrupt=true to drop unreadable files up front."
    )


def check_same_classes(train: ImageFolder, val: ImageFolder) -> list[str]:
    """The common class list of ``train`` and ``val``; raises :class:`DataError` listing the
    classes found in only one of them, since labels are class indices in sorted order."""
    if train.classes == val.classes:
        return list(train.classes)
    only_train = sorted(set(train.classes) - set(val.classes))
    only_val = sorted(set(val.classes) - set(train.classes))

    def listing(names: list[str]) -> str:
        head = ", ".join(names[:10])
        return f"{len(names)} ({head}{', ...' if len(names) > 10 else ''})" if names else "none"

    raise DataError(
        f"Train ({train.root}) and val ({val.root}) have different class folders: only in train: "
        f"{listing(only_train)}; only in val: {listing(only_val)}. Labels are indices into the sorted "
        "class list, so both splits need exactly the same class folders."
    )


def default_num_workers(most: int = 4) -> int:
    """Data-loading workers that fit this machine: ``most``, or fewer when fewer CPU cores are
    available to this process (PyTorch warns when a DataLoader asks for more workers than that)."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(0, min(most, cores))


def build_dataloader(
    dataset: Dataset,
    batch_size: int,
    train: bool,
    num_workers: int = 4,
    seed: int = 0,
    drop_last: bool | None = None,
) -> DataLoader:
    """A ``DataLoader`` for training (seeded shuffle, drop the last partial batch) or
    evaluation (in order, keep every sample).

    The seeded generator fixes the shuffle order and the per-worker seeds, so the
    augmentation noise is reproducible for a given ``num_workers``.
    """
    check_int("batch_size", batch_size)
    check_int("num_workers", num_workers, 0, hint="0 loads in the main process.")
    return DataLoader(
        dataset,
        batch_size=batch_size,
        shuffle=train,
        num_workers=num_workers,
        generator=torch.Generator().manual_seed(seed),
        pin_memory=torch.cuda.is_available(),
        persistent_workers=num_workers > 0,
        drop_last=train if drop_last is None else drop_last,
    )


# --- per-sample seeded augmentation and seeded subsets ---------------------------------------------

class SeededAugmentation(Dataset):
    """Wraps a map-style dataset so that sample ``i`` of epoch ``e`` is drawn with the random
    state ``seed(base_seed, e, i)``: the augmentation is a pure function of (seed, epoch, index).

    Why: a DataLoader draws a worker seed from the global RNG when an epoch starts and loads
    one batch ahead, so the global random state saved in a checkpoint mid-epoch does not
    reproduce the next batches' crops. With this wrapper a resumed run (which skips the
    batches already seen) draws exactly the crops the uninterrupted run drew, for any
    number of workers or processes. The epoch lives in shared memory so that persistent
    DataLoader workers see :meth:`set_epoch`.
    """

    def __init__(self, dataset: Dataset, base_seed: int) -> None:
        self.dataset = dataset
        self.base_seed = int(base_seed)
        self._epoch = torch.zeros((), dtype=torch.int64).share_memory_()

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch whose random draws the next samples use."""
        self._epoch.fill_(int(epoch))

    def __len__(self) -> int:
        return len(self.dataset)  # type: ignore[arg-type]

    def __getitem__(self, index: int) -> Any:
        epoch = int(self._epoch.item())
        seed = (self.base_seed * 1_000_003 + epoch) * 100_000_007 + int(index)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed % (2**63))
            return self.dataset[index]

    def __getattr__(self, name: str) -> Any:  # expose .classes, .samples, ... of the wrapped set
        if name == "dataset":
            raise AttributeError(name)
        return getattr(self.dataset, name)


def seeded_order(n: int, count: int | None, seed: int) -> torch.Tensor:
    """The first ``count`` indices (all ``n`` when ``None``) of a permutation of ``range(n)`` drawn
    by a generator seeded with ``seed``: a subset without replacement, the same on every machine."""
    generator = torch.Generator().manual_seed(int(seed) % (2**63))
    return torch.randperm(n, generator=generator)[: n if count is None else min(count, n)]


def random_subset(dataset: Dataset, count: int, seed: int) -> Subset:
    """``count`` samples of ``dataset`` drawn without replacement (:func:`seeded_order`)."""
    return Subset(dataset, seeded_order(len(dataset), count, seed).tolist())  # type: ignore[arg-type]
