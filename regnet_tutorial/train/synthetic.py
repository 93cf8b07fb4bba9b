"""A tiny, learnable ImageNet look-alike for demos and tests (no download needed).

Every class is a coloured sinusoidal grating with its own hue and orientation; each
image draws a random phase (position), frequency, brightness and pixel noise. A small
CNN separates the classes within a couple of epochs, yet the images still go through
the real JPEG / ``ImageFolder`` / augmentation path that ImageNet uses.

Command line: ``python -m regnet_tutorial.train synthetic OUT_DIR [--num-classes 4 ...]``.
"""

from __future__ import annotations

import colorsys
import math
from pathlib import Path

import numpy as np
from PIL import Image

from ..errors import check_int

JPEG_QUALITY = 90
NOISE_STD = 0.08


def _class_name(index: int) -> str:
    """Folder name shaped like an ImageNet WordNet id: ``n00000000``, ``n00000001``, ..."""
    return f"n{index:08d}"


def _class_style(index: int, num_classes: int) -> tuple[np.ndarray, float]:
    """The RGB colour and grating orientation (radians) of class ``index``."""
    rgb = np.array(colorsys.hsv_to_rgb(index / num_classes, 0.75, 0.9), dtype=np.float32)
    # Orientations spread over a quarter turn, so no two classes coincide even after a
    # horizontal flip (which maps an angle theta to pi - theta).
    theta = 0.5 * math.pi * index / num_classes
    return rgb, theta


def _render(rng: np.random.Generator, rgb: np.ndarray, theta: float, size: int) -> np.ndarray:
    """One ``size x size`` uint8 RGB image of a grating with random phase, frequency and noise."""
    ys, xs = np.mgrid[0:size, 0:size].astype(np.float32) / size
    cycles = rng.uniform(2.5, 4.5)
    phase = rng.uniform(0, 2 * math.pi)
    jitter = rng.normal(0, 0.08)  # a few degrees of orientation noise
    t = xs * math.cos(theta + jitter) + ys * math.sin(theta + jitter)
    wave = 0.5 + 0.5 * np.sin(2 * math.pi * cycles * t + phase)
    brightness = rng.uniform(0.7, 1.1)
    img = wave[..., None] * rgb[None, None, :] * brightness + 0.1
    img = img + rng.normal(0, NOISE_STD, size=img.shape)
    return (np.clip(img, 0, 1) * 255 + 0.5).astype(np.uint8)


def make_tiny_dataset(
    root: str | Path,
    num_classes: int = 4,
    train_per_class: int = 40,
    val_per_class: int = 10,
    image_size: int = 64,
    seed: int = 0,
) -> Path:
    """Write a small image-classification dataset as JPEG files under ``root`` and return it.

    Layout as ImageNet: ``root/train/<class>/*.JPEG`` and ``root/val/<class>/*.JPEG`` with
    class folders ``n00000000``, ``n00000001``, ... The same arguments give the same pixels.
    """
    for name, value, low in (
        ("num_classes", num_classes, 2), ("train_per_class", train_per_class, 1),
        ("val_per_class", val_per_class, 1), ("image_size", image_size, 8),
    ):
        check_int(name, value, low)
    root = Path(root)
    rng = np.random.default_rng(seed)
    for split, per_class in (("train", train_per_class), ("val", val_per_class)):
        for c in range(num_classes):
            rgb, theta = _class_style(c, num_classes)
            folder = root / split / _class_name(c)
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(per_class):
                pixels = _render(rng, rgb, theta, image_size)
                Image.fromarray(pixels, "RGB").save(
                    folder / f"{_class_name(c)}_{i:05d}.JPEG", "JPEG", quality=JPEG_QUALITY
                )
    return root


_HUES = (("red", 0.0), ("orange", 1 / 12), ("yellow", 1 / 6), ("lime", 1 / 4), ("green", 1 / 3), ("cyan", 1 / 2),
         ("blue", 2 / 3), ("purple", 3 / 4), ("magenta", 5 / 6), ("red", 1.0))


def class_descriptions(num_classes: int = 4) -> list[str]:
    """What tells the classes apart, one short name per class: the grating's colour and its
    orientation, e.g. ``"red 0°"`` (for figures, which the folder names ``n0000000k`` don't help)."""
    names = []
    for index in range(num_classes):
        hue = index / num_classes
        colour = min(_HUES, key=lambda named: abs(named[1] - hue))[0]
        names.append(f"{colour} {90 * index / num_classes:g}°")
    return names
