"""The training augmentation's geometry and lighting, measured on images that can show them.

A constant-colour image hides crop and flip, so these tests feed a *coordinate image*: channel 0
holds each pixel's column, channel 1 its row. After the transform (lighting off, normalisation
undone with the literal ImageNet mean and SD) the value at an output pixel says where in the
source it came from, so the crop box, its area and aspect ratio, and the flip can be read back.

Expected values are the Inception / pycls recipe (pycls ``datasets/transforms.py``
``random_sized_crop(area_frac=0.08)`` with aspect ratios 3/4 to 4/3, ``horizontal_flip(p=0.5)``,
``lighting(TRAIN.PCA_STD=0.1)``; torchvision's ``RandomResizedCrop`` defaults are the same).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from PIL import Image
from torchvision.transforms import v2

from regnet_tutorial.train.loaders import PCALighting, eval_transform, train_transform

MEAN = torch.tensor((0.485, 0.456, 0.406))[:, None, None]  # ImageNet RGB mean and SD (literal)
SD = torch.tensor((0.229, 0.224, 0.225))[:, None, None]
AREA = (0.08, 1.0)
RATIO = (3 / 4, 4 / 3)
PX = 0.1  # how well source_box locates an edge: antialiased downscaling weights are not exactly symmetric

# fb.resnet.torch / pycls PCA eigen-pairs, eigenvectors as columns.
EIGVAL = np.array([0.2175, 0.0188, 0.0045])
EIGVEC = np.array([[-0.5675, 0.7192, 0.4009], [-0.5808, -0.0045, -0.8140], [-0.5836, -0.6948, 0.4203]])


def coordinate_image(height: int, width: int) -> torch.Tensor:
    """A float RGB image: channel 0 = column index, channel 1 = row index, channel 2 = 0."""
    rows, cols = torch.meshgrid(torch.arange(height, dtype=torch.float32),
                                torch.arange(width, dtype=torch.float32), indexing="ij")
    return torch.stack([cols, rows, torch.zeros_like(rows)])


def source_box(out: torch.Tensor) -> tuple[float, float, float, float, bool]:
    """(left, top, width, height, flipped) of the source region an output crop shows.

    Resizing maps output pixel ``j`` to source coordinate ``left + (j + 0.5) * w / S - 0.5``, so
    along a row the column value is linear in ``j`` with slope ``w / S`` (negative when flipped).
    Two interior pixels give the slope; the border pixels are avoided (clamped interpolation).
    """
    size = out.shape[-1]
    a, b = size // 4, 3 * size // 4
    mid = size // 2
    col_slope = (out[0, mid, b] - out[0, mid, a]).item() / (b - a)
    row_slope = (out[1, b, mid] - out[1, a, mid]).item() / (b - a)
    flipped = col_slope < 0
    w, h = abs(col_slope) * size, row_slope * size
    # the left edge of the source region: extrapolate the ramp to the outer border of pixel 0
    # (of the last pixel when flipped)
    j = a if not flipped else size - 1 - a
    left = out[0, mid, j].item() + 0.5 - (a + 0.5) * abs(col_slope)
    top = out[1, a, mid].item() + 0.5 - (a + 0.5) * row_slope
    return left, top, w, h, flipped


def undo_normalisation(out: torch.Tensor) -> torch.Tensor:
    return out * SD + MEAN


def test_transform_parameters_are_the_recipe() -> None:
    t = train_transform()
    crop = [m for m in t.transforms if isinstance(m, v2.RandomResizedCrop)]
    flip = [m for m in t.transforms if isinstance(m, v2.RandomHorizontalFlip)]
    light = [m for m in t.transforms if isinstance(m, PCALighting)]
    assert len(crop) == len(flip) == len(light) == 1
    assert list(crop[0].size) == [224, 224]
    assert tuple(crop[0].scale) == AREA
    assert tuple(crop[0].ratio) == pytest.approx(RATIO, rel=1e-12)
    assert flip[0].p == 0.5
    assert light[0].alphastd == 0.1
    np.testing.assert_array_equal(light[0].eigval.numpy(), EIGVAL.astype(np.float32))
    np.testing.assert_array_equal(light[0].eigvec.numpy(), EIGVEC.astype(np.float32))
    # order: geometry on the image, lighting on [0, 1] values before normalising (as pycls)
    kinds = [type(m) for m in t.transforms]
    assert kinds.index(v2.RandomResizedCrop) < kinds.index(PCALighting) < kinds.index(v2.Normalize)


def test_source_box_reads_a_known_crop_back() -> None:
    """The measuring helper itself, on a crop whose box is known: rows 10..49, columns 30..109."""
    img = coordinate_image(64, 128)
    out = v2.functional.resized_crop(img, top=10, left=30, height=40, width=80, size=[32, 32], antialias=True)
    left, top, w, h, flipped = source_box(out)
    assert (left, top, w, h) == pytest.approx((30, 10, 80, 40), abs=PX) and not flipped
    left, top, w, h, flipped = source_box(v2.functional.horizontal_flip(out))
    assert (left, top, w, h) == pytest.approx((30, 10, 80, 40), abs=PX) and flipped


def test_random_crops_cover_the_area_and_aspect_ranges_and_flip_half_the_time() -> None:
    height, width, size, n = 96, 128, 32, 600
    transform = train_transform(crop_size=size, lighting_std=0.0)
    img = coordinate_image(height, width)
    torch.manual_seed(0)
    boxes = [source_box(undo_normalisation(transform(img))) for _ in range(n)]
    left, top, w, h, flipped = (np.array(v) for v in zip(*boxes))
    area = w * h / (width * height)
    ratio = w / h
    # Every crop lies inside the image ...
    assert left.min() > -PX and top.min() > -PX
    assert (left + w).max() < width + PX and (top + h).max() < height + PX
    # ... within the area and aspect ranges; torchvision rounds w and h to whole pixels, which
    # moves the area by at most ~(1/w + 1/h) and the ratio by ~(1/(2w) + 1/(2h)), relative.
    slack = 1 / w + 1 / h
    assert np.all(area >= AREA[0] * (1 - slack) - 1e-6) and np.all(area <= AREA[1] + 1e-6)
    assert np.all((ratio >= RATIO[0] * (1 - slack)) & (ratio <= RATIO[1] * (1 + slack)))
    # ... and they fill those ranges: small crops occur (P(area < 0.12) ~ 4% for a uniform
    # area on [0.08, 1]), and so do both extreme shapes (log-uniform ratio: ~11% beyond each of 0.8, 1.25).
    assert area.min() < 0.12 and area.max() > 0.9
    assert ratio.min() < 0.8 and ratio.max() > 1.25
    # The flip: both orientations, about half each (binomial sd 2% at n=600).
    assert 0.4 < flipped.mean() < 0.6


def test_flip_mirrors_the_picture() -> None:
    """A marker in the top-left corner lands top-left or top-right, nowhere else."""
    img = torch.zeros(3, 40, 40)
    img[:, :8, :8] = 1.0  # the marker
    transform = v2.Compose([*[m for m in train_transform(crop_size=40, lighting_std=0.0).transforms
                              if not isinstance(m, v2.RandomResizedCrop)]])  # flip only
    torch.manual_seed(0)
    corners = set()
    for _ in range(40):
        out = undo_normalisation(transform(img))[0]
        corners.add((out[:8, :8].mean().item() > 0.99, out[:8, -8:].mean().item() > 0.99))
    assert corners == {(True, False), (False, True)}


def test_eval_resize_256_then_centre_crop_224() -> None:
    """A 576 x 384 (w x h) coordinate image: the short side 384 becomes 256 (1.5 source pixels
    per output pixel) and the centre 224 x 224 is kept: source columns 120..456, rows 24..360."""
    out = undo_normalisation(eval_transform()(coordinate_image(384, 576)))
    assert out.shape == (3, 224, 224)
    left, top, w, h, flipped = source_box(out)
    assert (w, h) == pytest.approx((224 * 1.5, 224 * 1.5), rel=1e-3) and not flipped
    assert (left, top) == pytest.approx((120, 24), abs=0.05)


def test_default_lighting_has_the_alexnet_covariance() -> None:
    """The lighting of the default pipeline adds ``EIGVEC @ (alpha * EIGVAL)`` with
    ``alpha ~ N(0, 0.1^2)``: along eigenvector ``j`` the offsets have sd ``0.1 * EIGVAL[j]``."""
    (light,) = [m for m in train_transform().transforms if isinstance(m, PCALighting)]
    torch.manual_seed(0)
    n = 20_000
    offsets = light(torch.zeros(n, 3, 1, 1))[:, :, 0, 0].double().numpy()
    coords = offsets @ np.linalg.inv(EIGVEC).T  # coordinates in the eigenvector basis
    np.testing.assert_allclose(coords.std(axis=0), 0.1 * EIGVAL, rtol=0.05)
    assert math.isclose(np.corrcoef(coords[:, 0], coords[:, 1])[0, 1], 0.0, abs_tol=0.05)


# --- the small-image augmentation (pad_crop): pycls's CIFAR recipe -----------------------------------


def test_pad_crop_is_a_flipped_or_plain_window_of_the_zero_padded_image() -> None:
    """Each output is one (dy, dx) window of the image with a crop//8 zero border, maybe mirrored;
    over many draws every offset in [-pad, pad] and both flips occur (28 px: pad 3)."""
    from regnet_tutorial.train.loaders import small_image_transform

    size, pad = 28, 28 // 8
    source = torch.randint(1, 255, (size, size, 3), dtype=torch.uint8)  # no zero pixel: the border shows
    image = Image.fromarray(source.numpy())
    padded = np.zeros((size + 2 * pad, size + 2 * pad, 3), dtype=np.float32)
    padded[pad:-pad, pad:-pad] = source.numpy() / 255.0
    windows = {
        (dy - pad, dx - pad, flip): window[:, ::-1] if flip else window
        for dy in range(2 * pad + 1)
        for dx in range(2 * pad + 1)
        for flip in (False, True)
        for window in [padded[dy : dy + size, dx : dx + size]]
    }
    transform = small_image_transform(size)
    seen = set()
    torch.manual_seed(0)
    for _ in range(400):
        out = (transform(image) * SD + MEAN).permute(1, 2, 0).numpy()
        matches = [key for key, window in windows.items() if np.allclose(window, out, atol=1e-5)]
        assert len(matches) == 1, matches
        seen.add(matches[0])
    assert {(dy, dx) for dy, dx, _ in seen} == {(y, x) for y in range(-pad, pad + 1) for x in range(-pad, pad + 1)}
    assert {flip for *_, flip in seen} == {False, True}
