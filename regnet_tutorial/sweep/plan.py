"""What defines a sweep, checked before anything is trained: the short training schedule
(:class:`TrainSettings`), the plan (:class:`SweepPlan`) and the datasets it may use. Imports no
torch, so that the command line starts fast (:mod:`regnet_tutorial.sweep.runner` trains)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from ..errors import RegNetTutorialError, check_int

DATASETS = ("fashion_mnist", "cifar10", "imagefolder")
"""The datasets a sweep trains on (:func:`regnet_tutorial.sweep.images.load_dataset`)."""
IMAGE_FOLDER_RESOLUTION = 32
"""The default side of images read from an ImageNet-layout folder (``--dataset imagefolder``)."""


class SweepError(RegNetTutorialError, ValueError):
    """An invalid sweep setting: the message names it and the allowed values."""


@dataclass(frozen=True)
class TrainSettings:
    """The short training schedule every model of a sweep gets (the paper: 10 ImageNet epochs,
    SGD with momentum, lr 0.1 with a half-period cosine, batch 128, weight decay 5e-5).

    The sweep keeps the paper's optimiser and schedule shape with Nesterov momentum (as in our
    ImageNet recipe) but far fewer images and epochs: it ranks models, it does not train them.
    Two additions make so short a schedule informative (without them most deep models stay at
    chance): each residual branch's last BN starts at zero (``zero_init_last_bn``, Goyal et
    al., 2017), and BN statistics are recomputed before evaluation (pycls's precise BN).
    """

    dataset: str = "fashion_mnist"
    train_images: int = 1000
    val_images: int = 500
    epochs: int = 1
    batch_size: int = 64
    lr: float = 0.2
    weight_decay: float = 5e-5
    momentum: float = 0.9
    zero_init_last_bn: bool = True
    precise_bn_images: int = 256
    channels_last: bool = False

    def __post_init__(self) -> None:
        if self.dataset not in DATASETS:
            raise SweepError(f"--dataset {self.dataset!r} is unknown: choose one of {', '.join(DATASETS)}")
        check_int("--precise-bn-images", self.precise_bn_images, 0, SweepError)
        for name in ("train_images", "val_images", "epochs", "batch_size"):
            check_int(f"--{name.replace('_', '-')}", getattr(self, name), 1, SweepError)
        if self.batch_size > self.train_images:
            raise SweepError(
                f"--batch-size {self.batch_size} exceeds --train-images {self.train_images}: "
                "every step needs a full batch; lower the batch size or use more images"
            )
        for name in ("lr", "weight_decay", "momentum"):
            value = getattr(self, name)
            if not math.isfinite(value) or value < 0:
                raise SweepError(f"--{name.replace('_', '-')} {value!r} is invalid: it must be a finite number >= 0")

    @property
    def steps_per_epoch(self) -> int:
        return self.train_images // self.batch_size  # full batches only: BN needs them


@dataclass(frozen=True)
class SweepPlan:
    """Everything that defines a sweep's results (and so must match when it resumes)."""

    spaces: tuple[str, ...]
    n: int
    seed: int
    flops: tuple[float, float]
    train: TrainSettings = field(default_factory=TrainSettings)
    sample_options: dict[str, Any] = field(default_factory=dict)
    replicate: int = 0

    def settings(self) -> dict[str, Any]:
        """The per-line ``settings`` record: what a resumed sweep must agree with."""
        return {"flops_band": list(self.flops), **asdict(self.train), **self.sample_options}


def parse_spaces(text: str, known: Sequence[str], renamed: Mapping[str, str] | None = None) -> tuple[str, ...]:
    """``"anynetx_a,RegNetX"`` -> ``("anynetx_a", "regnetx")``, each checked against ``known``; an
    old key in ``renamed`` gets its new key in the error."""
    spaces = tuple(s.strip().lower() for s in text.split(",") if s.strip())
    if not spaces:
        raise SweepError(f"--spaces is empty: give one or more of {', '.join(known)}, separated by commas")
    for s in spaces:
        if renamed and s in renamed:
            raise SweepError(f"--spaces: {s!r} was renamed to the paper's name: use {renamed[s]}")
        if s not in known:
            raise SweepError(f"--spaces: {s!r} is unknown; choose from {', '.join(known)}")
    if len(set(spaces)) != len(spaces):
        raise SweepError(f"--spaces {text!r} names a space twice; give each once")
    return spaces
