"""Small real image sets for design-space sweeps, held in memory as tensors.

Fashion-MNIST (Xiao et al., 2017) is the default: 70,000 real 28x28 grey images in 10 classes.
Debian ships it as the package ``dataset-fashion-mnist`` (IDX files, gzip-compressed, in
:data:`FASHION_MNIST_DIR`); :func:`read_idx` reads them without any download. torchvision's
downloader is used only when asked for (``download=True``). CIFAR-10 is an option for users
with more compute (through torchvision; it is not shipped by Debian).
"""

from __future__ import annotations

import functools
import gzip
import os
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..errors import RegNetTutorialError, check_int
from ..train.loaders import seeded_order
from .plan import DATASETS, IMAGE_FOLDER_RESOLUTION

FASHION_MNIST_DIR = Path("/usr/share/datasets/fashion-mnist")
"""Where the Debian package ``dataset-fashion-mnist`` installs the IDX files."""

DOWNLOAD_DIR = Path.home() / ".cache" / "regnet_tutorial" / "datasets"
"""Where ``download=True`` puts datasets when no folder is given."""

FASHION_MNIST_FILES = {
    "train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
    "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"),
}
FASHION_MNIST_CLASSES = (
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
)

# IDX type codes (LeCun's format): only unsigned bytes occur in (Fashion-)MNIST.
_IDX_UBYTE = 0x08


class SweepDataError(RegNetTutorialError, ValueError):
    """The dataset is missing or unreadable: the message names the path and how to get it."""


@dataclass(frozen=True)
class ImageSet:
    """Images ``(N, C, H, W)`` as float32, normalised per channel, and integer ``labels``."""

    name: str
    images: torch.Tensor
    labels: torch.Tensor
    num_classes: int

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def in_channels(self) -> int:
        return self.images.shape[1]

    @property
    def resolution(self) -> int:
        return self.images.shape[-1]

    def subset(self, count: int | None, seed: int) -> ImageSet:
        """``count`` examples drawn without replacement by a generator seeded with ``seed``
        (all of them, in a fixed shuffled order, when ``count`` is None)."""
        n = len(self)
        if count is not None and not 1 <= count <= n:
            raise SweepDataError(f"{self.name} has {n} images; a subset of {count} is impossible: choose 1..{n}.")
        order = seeded_order(n, count, seed)
        return ImageSet(self.name, self.images[order], self.labels[order], self.num_classes)


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Read one IDX file (gzip-compressed or not) into a read-only ``uint8`` array of its shape.

    The arrays of the last few files read are kept (decompressing takes seconds; a notebook or a
    test suite reads the same files again and again)."""
    path = Path(path).resolve()
    try:
        stat = path.stat()
    except OSError as e:
        raise SweepDataError(f"cannot read {path}: {e}. Reinstall the dataset (see its error message).") from e
    return _read_idx(path, stat.st_mtime_ns, stat.st_size)


@functools.lru_cache(maxsize=4)
def _read_idx(path: Path, mtime_ns: int, size: int) -> np.ndarray:
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as f:
            data = f.read()
    except (OSError, EOFError) as e:
        raise SweepDataError(f"cannot read {path}: {e}. Reinstall the dataset (see its error message).") from e
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] != _IDX_UBYTE:
        raise SweepDataError(f"{path} is not an unsigned-byte IDX file (bad magic number).")
    ndim = data[3]
    shape = struct.unpack(f">{ndim}I", data[4: 4 + 4 * ndim])
    body = np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim)
    if body.size != int(np.prod(shape)):
        raise SweepDataError(f"{path} is truncated: header says {shape}, found {body.size} values.")
    body = body.reshape(shape)
    body.flags.writeable = False
    return body


def _missing_fashion_mnist(folder: Path, file: str) -> SweepDataError:
    return SweepDataError(
        f"Fashion-MNIST not found: {folder / file} is missing. Install it with "
        f"`apt-get install dataset-fashion-mnist` (files in {FASHION_MNIST_DIR}), or pass --download "
        f"to fetch it with torchvision into --data-dir (default {DOWNLOAD_DIR})."
    )


def _fashion_mnist_folder(root: Path | None, download: bool) -> Path:
    """The folder holding the IDX files: ``root`` itself, torchvision's ``root/FashionMNIST/raw``,
    or the Debian folder when ``root`` is None."""
    if download:
        from torchvision.datasets import FashionMNIST  # only on request: this uses the network

        root = root or DOWNLOAD_DIR
        for train in (True, False):
            FashionMNIST(str(root), train=train, download=True)
        return root / "FashionMNIST" / "raw"
    root = root or FASHION_MNIST_DIR
    torchvision_layout = root / "FashionMNIST" / "raw"
    if not (root / FASHION_MNIST_FILES["train"][0]).exists() and torchvision_layout.is_dir():
        return torchvision_layout
    return root


def fashion_mnist_mean_std() -> tuple[float, float]:
    """The mean and standard deviation of the Fashion-MNIST training pixels scaled to [0, 1],
    which normalise both splits (values computed by :func:`load_fashion_mnist` and pinned in a test)."""
    return 0.2860, 0.3530


def _read_fashion_mnist_split(folder: Path, split: str) -> tuple[np.ndarray, np.ndarray]:
    """The ``(images, labels)`` arrays of ``split`` from the IDX files in ``folder`` (``.gz`` or not)."""
    arrays = []
    for file in FASHION_MNIST_FILES[split]:
        path = folder / file
        if not path.exists() and (folder / file.removesuffix(".gz")).exists():
            path = folder / file.removesuffix(".gz")
        if not path.exists():
            raise _missing_fashion_mnist(folder, file)
        arrays.append(read_idx(path))
    images, labels = arrays
    return images, labels


def load_fashion_mnist(
    split: str = "train", root: str | os.PathLike | None = None, download: bool = False,
) -> ImageSet:
    """Fashion-MNIST's ``split`` ("train": 60,000 images, "test": 10,000) as an :class:`ImageSet`."""
    if split not in FASHION_MNIST_FILES:
        raise SweepDataError(f"split={split!r} is invalid: Fashion-MNIST has 'train' and 'test'.")
    folder = _fashion_mnist_folder(Path(root) if root is not None else None, download)
    images, labels = _read_fashion_mnist_split(folder, split)
    if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
        raise SweepDataError(
            f"Fashion-MNIST in {folder} has mismatched files: images {images.shape}, labels {labels.shape}."
        )
    mean, std = fashion_mnist_mean_std()
    x = (torch.from_numpy(images.copy()).float().div_(255).sub_(mean).div_(std)).unsqueeze(1)
    return ImageSet("fashion_mnist", x, torch.from_numpy(labels.astype(np.int64)), len(FASHION_MNIST_CLASSES))


def fashion_mnist_class_folder(label: int) -> str:
    """The folder name of Fashion-MNIST class ``label`` in an ImageNet-layout copy, e.g.
    ``"0_t-shirt-top"``: the label first, so that sorted folder names keep the label order."""
    return f"{label}_" + FASHION_MNIST_CLASSES[label].lower().replace("/", "-").replace(" ", "-")


def write_fashion_mnist_folder(
    root: str | os.PathLike, train_per_class: int, val_per_class: int, seed: int = 0,
    source: str | os.PathLike | None = None,
) -> Path:
    """Write a class-balanced Fashion-MNIST subset as PNG files in ImageNet's layout and return ``root``.

    ``root/train/<class>/`` gets ``train_per_class`` images of each class from the training split,
    ``root/val/<class>/`` gets ``val_per_class`` from the test split, chosen by a generator seeded
    with ``seed``; each 28x28 grey image is stored as an RGB PNG (lossless, three equal channels).
    Class folders are :func:`fashion_mnist_class_folder` names, so the class index a
    ``torchvision`` ``ImageFolder`` assigns is the Fashion-MNIST label. ``source``: the folder of
    the IDX files (default: the Debian package's, :data:`FASHION_MNIST_DIR`).
    """
    from PIL import Image

    for name, value in (("train_per_class", train_per_class), ("val_per_class", val_per_class)):
        check_int(name, value, 1, SweepDataError)
    root = Path(root)
    if any((root / split).exists() for split in ("train", "val")):
        raise SweepDataError(f"{root} already holds train/ or val/: choose an empty or new folder.")
    folder = _fashion_mnist_folder(Path(source) if source is not None else None, download=False)
    splits = []  # everything is read and checked before the first file is written
    for split, file_split, per_class in (("train", "train", train_per_class), ("val", "test", val_per_class)):
        arrays = _read_fashion_mnist_split(folder, file_split)
        fewest = int(np.bincount(arrays[1], minlength=len(FASHION_MNIST_CLASSES)).min())
        if per_class > fewest:
            raise SweepDataError(f"{split}_per_class={per_class} is too many: Fashion-MNIST's {file_split} "
                                 f"split has {fewest} images of its smallest class.")
        splits.append((split, file_split, per_class, *arrays))
    rng = np.random.default_rng(seed)
    for split, file_split, per_class, images, labels in splits:
        for label in range(len(FASHION_MNIST_CLASSES)):
            out = root / split / fashion_mnist_class_folder(label)
            out.mkdir(parents=True)
            chosen = rng.choice(np.flatnonzero(labels == label), per_class, replace=False)
            for index in np.sort(chosen):
                Image.fromarray(images[index]).convert("RGB").save(out / f"{file_split}_{index:05d}.png")
    return root


CIFAR10_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR10_STD = (0.2470, 0.2435, 0.2616)


def load_cifar10(split: str = "train", root: str | os.PathLike | None = None, download: bool = False) -> ImageSet:
    """CIFAR-10 (32x32 colour, 10 classes) through torchvision; nothing is downloaded unless asked."""
    from torchvision.datasets import CIFAR10

    if split not in ("train", "test"):
        raise SweepDataError(f"split={split!r} is invalid: CIFAR-10 has 'train' and 'test'.")
    root = Path(root) if root is not None else DOWNLOAD_DIR
    try:
        ds = CIFAR10(str(root), train=split == "train", download=download)
    except RuntimeError as e:
        raise SweepDataError(
            f"CIFAR-10 not found in {root}: pass --data-dir to the folder holding cifar-10-batches-py, "
            f"or --download to fetch it with torchvision."
        ) from e
    x = torch.from_numpy(ds.data).permute(0, 3, 1, 2).float().div_(255)
    x = (x - torch.tensor(CIFAR10_MEAN).view(1, 3, 1, 1)) / torch.tensor(CIFAR10_STD).view(1, 3, 1, 1)
    return ImageSet("cifar10", x.contiguous(), torch.tensor(ds.targets, dtype=torch.int64), 10)


def load_image_folder(
    root: str | os.PathLike | None, split: str, count: int | None, seed: int,
    resolution: int = IMAGE_FOLDER_RESOLUTION,
) -> ImageSet:
    """``count`` images of an ImageNet-layout folder ``root/<split>/<class>/*`` (ImageNet itself,
    or any such folder), drawn by a generator seeded with ``seed``, resized (short side to
    ``resolution * 256 / 224``) and centre-cropped to ``resolution``, as the paper evaluates.
    Only the drawn images are decoded, so a few thousand images of ImageNet load in seconds."""
    from ..train.loaders import DataError, eval_transform, load_split

    if root is None:
        raise SweepDataError(
            "--dataset imagefolder needs --data-dir: a folder with train/ and val/ class folders (ImageNet's layout)"
        )
    try:
        ds = load_split(root, split, eval_transform(round(resolution * 256 / 224), resolution))
        n = len(ds)
        if count is not None and not 1 <= count <= n:
            raise SweepDataError(f"{Path(root) / split} has {n} images; {count} are impossible: choose 1..{n}.")
        order = seeded_order(n, count, seed)
        pairs = [ds[i] for i in order.tolist()]
    except DataError as e:
        raise SweepDataError(str(e)) from e
    images = torch.stack([image for image, _ in pairs])
    labels = torch.tensor([label for _, label in pairs], dtype=torch.int64)
    return ImageSet("imagefolder", images, labels, len(ds.classes))


def load_dataset(
    name: str, split: str, root: str | os.PathLike | None = None, download: bool = False,
    count: int | None = None, seed: int = 0, resolution: int | None = None,
) -> ImageSet:
    """``count`` images (all when None) of one split of dataset ``name`` (one of :data:`DATASETS`),
    drawn by a generator seeded with ``seed``. "val" is the test split of Fashion-MNIST and
    CIFAR-10, and the ``val/`` folder of an image folder; ``resolution`` applies to image folders."""
    if name == "imagefolder":
        return load_image_folder(root, split, count, seed, resolution or IMAGE_FOLDER_RESOLUTION)
    split = "test" if split == "val" else split
    if name == "fashion_mnist":
        data = load_fashion_mnist(split, root, download)
    elif name == "cifar10":
        data = load_cifar10(split, root, download)
    else:
        raise SweepDataError(f"dataset={name!r} is unknown: choose one of {', '.join(DATASETS)}.")
    return data if count is None else data.subset(count, seed)
