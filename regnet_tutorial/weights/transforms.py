"""Each source's own evaluation transform, as data, and a PIL-to-tensor pipeline built from it.

Published accuracies hold only under the preprocessing they were measured with, and the
libraries differ in more than the numbers 256 and 224:

==============  =========  ============  ==============================  ==============  ==========
source          resize     crop          resize backend                  mean/std        channels
==============  =========  ============  ==============================  ==============  ==========
pycls           256 short  224, ceil     OpenCV bilinear on float [0,1]  RGB, [0, 1]     BGR
mmcls           256 short  224, round    OpenCV bilinear on uint8        BGR, [0, 255]   BGR
torchvision V1  256 short  224, round    Pillow bilinear (antialiased)   RGB, [0, 1]     RGB
torchvision V2  232 short  224, round    Pillow bilinear (antialiased)   RGB, [0, 1]     RGB
timm            size/crop  224 (or 384)  Pillow, bicubic (antialiased)   RGB, [0, 1]     RGB
==============  =========  ============  ==============================  ==============  ==========

(timm: ``crop_pct`` from each weights' ``pretrained_cfg``, e.g. 224 / 0.95 -> resize 235.)

OpenCV's ``INTER_LINEAR`` does not low-pass filter when it shrinks an image; Pillow does. On a
500x375 ImageNet photo shrunk to 256 that changes every pixel, so each source gets its own
backend here. OpenCV's bilinear rule (half-pixel centres, edge clamping, no antialiasing,
float32 weights) is written out with torch in :func:`opencv_linear_float`, so OpenCV is not
needed. On uint8 images OpenCV works in fixed point (weights in 1/2048ths, the vertical pass
truncating in steps); :func:`opencv_linear_uint8` does the same integer arithmetic. It matches
``cv2.resize`` exactly when shrinking (the ImageNet case; the tests compare with OpenCV) and to
within one grey level on a few border pixels when enlarging.

Channel order is handled by the weights, not the images: the converters reverse the stem
convolution of the BGR-trained pycls and mmcls weights (:mod:`regnet_tutorial.weights.convert`), so
every converted model takes RGB input. :meth:`EvalTransform.build` therefore returns RGB
tensors normalised with the source's statistics rearranged into RGB order and [0, 1] scale,
which is the source's own BGR tensor with its channels reversed.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import torch
from PIL import Image
from torchvision.transforms import InterpolationMode, v2

Backend = Literal["pillow", "opencv"]
ChannelOrder = Literal["RGB", "BGR"]


@dataclass(frozen=True)
class EvalTransform:
    """A single-centre-crop evaluation transform, as its source documents it.

    ``mean`` and ``std`` are as the source writes them: in its ``mean_order`` and on its
    ``pixel_scale`` (1 for images in [0, 1], 255 for 0-255). ``channel_order`` is the order
    of the tensor the source's network sees. ``resize_dtype`` is what OpenCV resized (uint8
    images are rounded back to integers). ``crop_offset``: how the centre crop's corner is
    rounded, ``"round"`` (torchvision, mmcls) or ``"ceil"`` (pycls). ``long_side``: how the
    resized long side is computed, ``"size*long/short"`` (torchvision, mmcls) or
    ``"long/short*size"`` (pycls); both truncate, and they can differ by one pixel.
    """

    source: str
    resize: int
    crop: int
    interpolation: Literal["bilinear", "bicubic"]
    backend: Backend
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    mean_order: ChannelOrder
    pixel_scale: float
    channel_order: ChannelOrder
    resize_dtype: Literal["uint8", "float32"] = "uint8"
    crop_offset: Literal["round", "ceil"] = "round"
    long_side: Literal["size*long/short", "long/short*size"] = "size*long/short"
    documented_at: str = ""

    def rgb_mean_std(self) -> tuple[tuple[float, ...], tuple[float, ...]]:
        """Mean and std in RGB order for images scaled to [0, 1] (what :meth:`build` normalises with)."""
        order = slice(None) if self.mean_order == "RGB" else slice(None, None, -1)
        mean = tuple(m / self.pixel_scale for m in self.mean[order])
        std = tuple(s / self.pixel_scale for s in self.std[order])
        return mean, std

    def resized_size(self, height: int, width: int) -> tuple[int, int]:
        """(height, width) after the short side is resized to :attr:`resize`."""
        short, long = min(height, width), max(height, width)
        if short == self.resize:
            return height, width
        if self.long_side == "size*long/short":
            new_long = int(self.resize * long / short)
        else:
            new_long = int(long / short * self.resize)
        return (self.resize, new_long) if height <= width else (new_long, self.resize)

    def build(self) -> Callable[[Image.Image], torch.Tensor]:
        """PIL image -> normalised float tensor ``(3, crop, crop)`` in RGB order, for converted weights."""
        mean, std = self.rgb_mean_std()
        if self.backend == "pillow":
            return v2.Compose([
                v2.Resize(self.resize, interpolation=InterpolationMode(self.interpolation), antialias=True),
                v2.CenterCrop(self.crop),
                v2.PILToTensor(),
                v2.ToDtype(torch.float32, scale=True),
                v2.Normalize(mean, std),
            ])
        return _OpenCVStyle(self, mean, std)

    def describe(self) -> str:
        """One line, e.g. ``"resize 256 (opencv bilinear, uint8), centre crop 224, BGR mean/std x255"``."""
        resizer = f"{self.backend} {self.interpolation}"
        if self.backend == "opencv":
            resizer += f", {self.resize_dtype}"
        return (f"{self.source}: short side {self.resize} ({resizer}), centre crop {self.crop}, "
                f"mean {list(self.mean)} std {list(self.std)} ({self.mean_order}, 0-{self.pixel_scale:g}), "
                f"network input {self.channel_order}")


class _OpenCVStyle:
    """The OpenCV-based pipelines of pycls and mmcls, computed with torch (no OpenCV needed)."""

    def __init__(self, spec: EvalTransform, mean: tuple[float, ...], std: tuple[float, ...]) -> None:
        if spec.interpolation != "bilinear":
            raise ValueError(f"{spec.source}: only OpenCV's bilinear resize is implemented, not {spec.interpolation}.")
        self.spec = spec
        self.mean = torch.tensor(mean).view(3, 1, 1)
        self.std = torch.tensor(std).view(3, 1, 1)

    def __call__(self, image: Image.Image) -> torch.Tensor:
        spec = self.spec
        pixels = v2.functional.pil_to_tensor(image.convert("RGB")).float()  # (3, H, W), 0-255
        if spec.resize_dtype == "float32":
            pixels = pixels / 255.0
        height, width = pixels.shape[-2:]
        size = spec.resized_size(height, width)
        if size != (height, width) and spec.resize_dtype == "uint8":
            pixels = opencv_linear_uint8(pixels.long(), size).float()
        elif size != (height, width):
            pixels = opencv_linear_float(pixels, size)
        top, left = (_offset(n, spec.crop, spec.crop_offset) for n in size)
        pixels = pixels[:, top:top + spec.crop, left:left + spec.crop]
        if spec.resize_dtype == "uint8":
            pixels = pixels / 255.0
        return (pixels - self.mean) / self.std

    def __repr__(self) -> str:
        return f"OpenCVStyle({self.spec.describe()})"


_COEF_BITS = 11  # OpenCV's INTER_RESIZE_COEF_BITS: interpolation weights in units of 1/2048


def _linear_taps(
    src: int, dst: int, fixed_point: bool = True
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """First and second source index and their weights for each output index.

    Half-pixel centres; the position is rounded to float32 before its integer part is taken,
    as OpenCV does, and positions outside the image clamp to the edge pixel with weight 1.
    Weights are float32, or integers in units of 1/2048 (``fixed_point``, for uint8 images).
    """
    position = ((torch.arange(dst, dtype=torch.float64) + 0.5) * (src / dst) - 0.5).float()
    first = torch.floor(position)
    frac = position - first
    first = first.long()
    outside = (first < 0) | (first >= src - 1)
    frac = torch.where(outside, torch.zeros_like(frac), frac)
    first = first.clamp(0, src - 1)
    second = (first + 1).clamp(max=src - 1)
    if not fixed_point:
        return first, second, 1 - frac, frac
    scale = 1 << _COEF_BITS
    return first, second, torch.round((1 - frac) * scale).long(), torch.round(frac * scale).long()


def opencv_linear_float(pixels: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """``cv2.resize(..., interpolation=cv2.INTER_LINEAR)`` of a float32 image ``(C, H, W)``:
    a horizontal then a vertical pass with OpenCV's float32 weights."""
    height, width = pixels.shape[-2:]
    x0, x1, a0, a1 = _linear_taps(width, size[1], fixed_point=False)
    rows = pixels[..., :, x0] * a0 + pixels[..., :, x1] * a1
    y0, y1, b0, b1 = _linear_taps(height, size[0], fixed_point=False)
    return rows[..., y0, :] * b0[:, None] + rows[..., y1, :] * b1[:, None]


def opencv_linear_uint8(pixels: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """``cv2.resize(..., interpolation=cv2.INTER_LINEAR)`` of a uint8 image held as integers ``(C, H, W)``.

    Horizontal pass exact in integers (scale 2^11); the vertical pass shifts as OpenCV's
    vectorised code does (``(b0 * (r0 >> 4) >> 16) + (b1 * (r1 >> 4) >> 16) + 2 >> 2``), except
    on rows that copy one source row, which it rounds exactly.
    """
    height, width = pixels.shape[-2:]
    x0, x1, a0, a1 = _linear_taps(width, size[1])
    rows = pixels[..., :, x0] * a0 + pixels[..., :, x1] * a1
    y0, y1, b0, b1 = _linear_taps(height, size[0])
    r0, r1, b0, b1 = rows[..., y0, :], rows[..., y1, :], b0[:, None], b1[:, None]
    shifted = (((b0 * (r0 >> 4)) >> 16) + ((b1 * (r1 >> 4)) >> 16) + 2) >> 2
    exact = (r0 * b0 + r1 * b1 + (1 << (2 * _COEF_BITS - 1))) >> (2 * _COEF_BITS)
    return torch.where(b1 == 0, exact, shifted).clamp(0, 255)


def _offset(length: int, crop: int, rule: str) -> int:
    if length < crop:
        raise ValueError(f"The resized image side {length} is smaller than the crop {crop}.")
    half = (length - crop) / 2
    return math.ceil(half) if rule == "ceil" else int(round(half))


PYCLS_EVAL = EvalTransform(
    source="pycls", resize=256, crop=224, interpolation="bilinear", backend="opencv",
    mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225), mean_order="RGB", pixel_scale=1.0,
    channel_order="BGR", resize_dtype="float32", crop_offset="ceil", long_side="long/short*size",
    documented_at=(
        "pycls/datasets/imagenet.py (_prepare_im: cv2.imread BGR, /255, scale_and_center_crop(TEST.IM_SIZE=256, "
        "TRAIN.IM_SIZE=224) with cv2.INTER_LINEAR, color_norm with _MEAN/_STD, network input BGR) and "
        "pycls/datasets/transforms.py, facebookresearch/pycls@5719de641657c251f807c20a1fcf8ef6f4b60144"
    ),
)
"""The paper's own evaluation: OpenCV reads BGR uint8, pycls scales to [0, 1] float and resizes that."""

MMCLS_EVAL = EvalTransform(
    source="mmcls", resize=256, crop=224, interpolation="bilinear", backend="opencv",
    mean=(103.53, 116.28, 123.675), std=(57.375, 57.12, 58.395), mean_order="BGR", pixel_scale=255.0,
    channel_order="BGR", resize_dtype="uint8", crop_offset="round", long_side="size*long/short",
    documented_at=(
        "mmclassification configs/regnet/regnetx-*_in1k.py: img_norm_cfg mean=[103.53, 116.28, 123.675], "
        "std=[57.375, 57.12, 58.395], to_rgb=False ('used in PyCls when training RegNets'); test_pipeline "
        "LoadImageFromFile (cv2, BGR uint8), Resize(size=(256, -1)) (backend cv2, bilinear), CenterCrop(224)"
    ),
)
"""mmclassification's RegNet configs: pycls's statistics in BGR order on 0-255 uint8 images."""


def torchvision_eval(weights: object) -> EvalTransform:
    """The transform of a torchvision weights enum member, read from its ``transforms()``."""
    preset = weights.transforms()  # type: ignore[attr-defined]
    if not getattr(preset, "antialias", True):
        raise ValueError(f"{weights}: transforms() without antialiasing is not a Pillow-style resize.")
    return EvalTransform(
        source="torchvision", resize=int(preset.resize_size[0]), crop=int(preset.crop_size[0]),
        interpolation=preset.interpolation.value, backend="pillow",
        mean=tuple(preset.mean), std=tuple(preset.std), mean_order="RGB", pixel_scale=1.0,
        channel_order="RGB", documented_at=f"torchvision.models.{type(weights).__name__}.{weights.name}.transforms()",
    )


def timm_eval(data_config: dict, name: str) -> EvalTransform:
    """The transform timm evaluates ``name`` with, from ``timm.data.resolve_data_config``'s output.

    timm's ``create_transform`` (eval, ``crop_mode="center"``) resizes the short side to
    ``floor(size / crop_pct)`` with Pillow, then centre-crops ``size``.
    """
    size = data_config["input_size"][-1]
    if data_config.get("crop_mode", "center") != "center" or data_config["input_size"][-2] != size:
        raise ValueError(f"timm {name}: only square centre-crop evaluation is supported, not {data_config}.")
    return EvalTransform(
        source="timm", resize=math.floor(size / data_config["crop_pct"]), crop=size,
        interpolation=data_config["interpolation"], backend="pillow",
        mean=tuple(data_config["mean"]), std=tuple(data_config["std"]), mean_order="RGB", pixel_scale=1.0,
        channel_order="RGB",
        documented_at=f"timm.data.resolve_data_config(pretrained_cfg of {name}) + create_transform",
    )


TRANSFORMS_BY_LAYOUT: dict[str, EvalTransform] = {"pycls": PYCLS_EVAL, "mmcls": MMCLS_EVAL}
"""The fixed transforms of the sources that publish one pipeline for all their RegNets."""
