"""Each source's evaluation transform equals that library's own on real images.

torchvision: its weights' ``transforms()`` itself. pycls and mmcls do not install here, so their
documented pipelines are written out below with OpenCV and NumPy, step by step as their code
does it (pycls ``datasets/imagenet.py`` + ``transforms.py``; mmcls ``LoadImageFromFile``,
``Resize(size=(256, -1))``, ``CenterCrop(224)``, ``Normalize(to_rgb=False)``), and compared
with ours after reversing our RGB channels into their BGR order.
"""

from __future__ import annotations

import gzip
import math
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from PIL import Image
from torchvision.models import get_model_weights

from regnet_tutorial.train.loaders import IMAGENET_MEAN, IMAGENET_STD
from regnet_tutorial.weights.registry import list_weights
from regnet_tutorial.weights.transforms import MMCLS_EVAL, PYCLS_EVAL, opencv_linear_uint8

FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz")
# (height, width): ImageNet's common 4:3 and 3:2 shapes in both orientations, a near-square
# slight shrink, and a small image that is enlarged.
SIZES = [(375, 500), (500, 333), (281, 500), (300, 260), (150, 200)]


def real_images() -> list[Image.Image]:
    """Fashion-MNIST test images as RGB photos: three different garments as the three colour
    channels, enlarged (bicubic) to ImageNet-like sizes."""
    if not FASHION_MNIST.exists():
        pytest.skip("Fashion-MNIST is not installed (apt-get install dataset-fashion-mnist)")
    with gzip.open(FASHION_MNIST) as f:
        pixels = np.frombuffer(f.read(), np.uint8, offset=16).reshape(-1, 28, 28)
    images = []
    for i, (h, w) in enumerate(SIZES):
        rgb = np.stack([pixels[3 * i], pixels[3 * i + 1], pixels[3 * i + 2]], axis=-1)
        images.append(Image.fromarray(rgb).resize((w, h), Image.BICUBIC))
    noise = np.random.default_rng(0).integers(0, 256, (333, 500, 3), dtype=np.uint8)
    return [*images, Image.fromarray(noise)]


def pycls_reference(image: Image.Image) -> np.ndarray:
    """pycls's test-time pipeline on what cv2.imread gives (BGR uint8), returning its CHW BGR input."""
    im = np.asarray(image)[:, :, ::-1]  # cv2.imread: BGR
    im = im[:, :, ::-1].astype(np.float32) / 255  # _prepare_im: HWC/RGB/float
    h, w = im.shape[:2]
    size, crop = 256, 224  # TEST.IM_SIZE, TRAIN.IM_SIZE
    if w < h and w != size:
        w, h = size, int(h / w * size)
        im = cv2.resize(im, (w, h), interpolation=cv2.INTER_LINEAR)
    elif h <= w and h != size:
        w, h = int(w / h * size), size
        im = cv2.resize(im, (w, h), interpolation=cv2.INTER_LINEAR)
    x, y = math.ceil((w - crop) / 2), math.ceil((h - crop) / 2)
    im = im[y:y + crop, x:x + crop, :]
    for i, (m, s) in enumerate(zip([0.485, 0.456, 0.406], [0.229, 0.224, 0.225], strict=True)):  # _MEAN, _STD
        im[:, :, i] = (im[:, :, i] - m) / s
    return np.ascontiguousarray(im[:, :, ::-1].transpose([2, 0, 1]))  # CHW/BGR


def mmcls_reference(image: Image.Image) -> np.ndarray:
    """mmcls's RegNet test pipeline (cv2 backend, to_rgb=False), returning its CHW BGR input."""
    im = np.ascontiguousarray(np.asarray(image)[:, :, ::-1])  # LoadImageFromFile: BGR uint8
    h, w = im.shape[:2]
    short = 256
    if not ((w <= h and w == short) or (h <= w and h == short)):
        width, height = (short, int(short * h / w)) if w < h else (int(short * w / h), short)
        im = cv2.resize(im, (width, height), interpolation=cv2.INTER_LINEAR)
    h, w = im.shape[:2]
    y1, x1 = max(0, int(round((h - 224) / 2.0))), max(0, int(round((w - 224) / 2.0)))
    im = im[y1:y1 + 224, x1:x1 + 224].astype(np.float32)
    im = (im - np.array([103.53, 116.28, 123.675], np.float32)) / np.array([57.375, 57.12, 58.395], np.float32)
    return im.transpose(2, 0, 1)


def test_torchvision_transforms_equal_the_enums_own_on_real_images() -> None:
    images = real_images()
    checked = set()
    for entry in list_weights("torchvision"):
        key = (entry.transform.resize, entry.transform.crop, entry.transform.interpolation)
        if key in checked:
            continue
        checked.add(key)
        builder, member = entry.source_model.split(".")
        theirs = getattr(get_model_weights(_builder_of(builder)), member).transforms()
        ours = entry.transform.build()
        for image in images:
            torch.testing.assert_close(ours(image), theirs(image), rtol=0, atol=1e-6)
    assert {(256, 224, "bilinear"), (232, 224, "bilinear"), (384, 384, "bicubic")} <= checked


def _builder_of(enum_name: str) -> str:
    return enum_name.removesuffix("_Weights").lower()


def test_pycls_transform_is_pycls_pipeline_in_rgb() -> None:
    ours = PYCLS_EVAL.build()
    for image in real_images():
        theirs = torch.from_numpy(pycls_reference(image))
        # Float32 arithmetic in another order than OpenCV's vector code: within 1e-4 std
        # (0.006 grey levels); a wrong backend, rounding or crop offset is off by 1e-2 or more.
        torch.testing.assert_close(ours(image), theirs.flip(0), rtol=0, atol=1e-4)


def test_mmcls_transform_is_mmcls_pipeline_in_rgb() -> None:
    ours = MMCLS_EVAL.build()
    for image, (h, w) in zip(real_images(), [*SIZES, (333, 500)], strict=True):
        theirs = torch.from_numpy(mmcls_reference(image)).flip(0)
        if min(h, w) >= 256:  # shrinking, the ImageNet case: OpenCV's fixed point exactly
            torch.testing.assert_close(ours(image), theirs, rtol=0, atol=1e-5)
        else:  # enlarging: within one grey level on a few pixels
            diff = (ours(image) - theirs).abs()
            assert diff.max() <= 1.01 / 57.12 and (diff > 1e-5).float().mean() < 0.01


def test_opencv_uint8_resize_matches_cv2_when_shrinking() -> None:
    rng = np.random.default_rng(1)
    for (h, w), size in [((375, 500), (256, 341)), ((500, 333), (384, 256)), ((257, 300), (256, 298))]:
        image = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
        theirs = cv2.resize(image, size[::-1], interpolation=cv2.INTER_LINEAR)
        ours = opencv_linear_uint8(torch.from_numpy(image).permute(2, 0, 1).long(), size)
        assert torch.equal(ours.permute(1, 2, 0), torch.from_numpy(theirs).long())


def test_documented_constants_and_channel_order() -> None:
    # Both are the ImageNet statistics: in RGB order on [0, 1] they are the package's own.
    for spec in (PYCLS_EVAL, MMCLS_EVAL):
        mean, std = spec.rgb_mean_std()
        assert mean == pytest.approx(IMAGENET_MEAN, abs=1e-9) and std == pytest.approx(IMAGENET_STD, abs=1e-9)
        assert spec.channel_order == "BGR" and (spec.resize, spec.crop) == (256, 224)
    assert MMCLS_EVAL.mean == (103.53, 116.28, 123.675) and MMCLS_EVAL.mean_order == "BGR"
    assert MMCLS_EVAL.pixel_scale == 255 and MMCLS_EVAL.resize_dtype == "uint8"
    assert PYCLS_EVAL.mean_order == "RGB" and PYCLS_EVAL.resize_dtype == "float32"
    assert (PYCLS_EVAL.crop_offset, MMCLS_EVAL.crop_offset) == ("ceil", "round")


def test_the_backends_differ_where_it_matters() -> None:
    """Pillow's antialiased shrink and OpenCV's plain bilinear give visibly different inputs:
    the reason each source keeps its own backend."""
    noise = Image.fromarray(np.random.default_rng(2).integers(0, 256, (375, 500, 3), dtype=np.uint8))
    tv_v1 = next(e for e in list_weights("torchvision") if e.tag == "imagenet1k_v1").transform
    assert (tv_v1.resize, tv_v1.crop) == (MMCLS_EVAL.resize, MMCLS_EVAL.crop)
    gap = (tv_v1.build()(noise) - MMCLS_EVAL.build()(noise)).abs().mean()
    assert gap > 0.3  # in units of the ImageNet std


def test_timm_transforms_equal_timms_own_on_real_images() -> None:
    from timm.data import create_transform, resolve_data_config
    from timm.models import get_pretrained_cfg

    images = real_images()
    checked = set()
    for entry in list_weights("timm"):
        t = entry.transform
        if (t.resize, t.crop, t.interpolation) in checked:
            continue
        checked.add((t.resize, t.crop, t.interpolation))
        config = resolve_data_config({}, pretrained_cfg=get_pretrained_cfg(entry.source_model).to_dict())
        theirs, ours = create_transform(**config), t.build()
        for image in images:
            torch.testing.assert_close(ours(image), theirs(image), rtol=0, atol=1e-6)
    assert {(235, 224, "bicubic"), (232, 224, "bicubic"), (384, 384, "bicubic")} <= checked
