"""``create_model`` with published weights: the package's public ``regnet_tutorial.create_model``.

The model layer (:func:`regnet_tutorial.models.create_model`) builds randomly initialised networks
and knows nothing of files or downloads; this function adds ``weights=`` on top of it, so that
``from regnet_tutorial import create_model`` offers both, as torchvision's and timm's builders do.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from .. import models

if TYPE_CHECKING:
    from ..anynet import AnyNet


def create_model(
    name: str,
    num_classes: int = 1000,
    in_channels: int = 3,
    zero_init_last_bn: bool = False,
    stem_stride: int | None = None,
    weights: str | None = None,
    weights_file: str | os.PathLike | None = None,
) -> AnyNet:
    """Build the named RegNet: randomly initialised (pycls style), or with published weights.
    ``stem_stride=1`` gives the small skeleton for 28-32 px inputs (randomly initialised only).

    ``weights`` names a published checkpoint of this model by its source, ``"mmcls"``,
    ``"pycls"``, ``"torchvision"`` (the ``*_tv`` models) or ``"timm"``, optionally with a tag
    such as ``"torchvision.imagenet1k_v2"`` or ``"mmcls.from_pycls"``
    (``python -m regnet_tutorial.weights list`` prints them all). The file is downloaded into the
    torch hub cache once, checked against its checksum, converted to this package's layout (RGB
    input) and loaded strictly; the model is returned in eval mode. ``weights_file`` uses a file
    you downloaded yourself instead (offline machines); it must be the published file.
    """
    if weights is None:
        if weights_file is not None:
            raise ValueError(
                f"weights_file={str(weights_file)!r} needs weights= naming whose checkpoint it is, "
                "e.g. create_model(name, weights='mmcls', weights_file=path)."
            )
        return models.create_model(name, num_classes, in_channels, zero_init_last_bn, stem_stride)
    if (num_classes, in_channels, zero_init_last_bn, stem_stride) != (1000, 3, False, None):
        raise ValueError(
            "Published weights are ImageNet-1k models with 3 input channels and the ImageNet stem: drop "
            "num_classes, in_channels, zero_init_last_bn and stem_stride, and replace model.head.fc "
            "afterwards to fine-tune on other classes."
        )
    from .download import load_published  # torch and the registry only when weights are asked for

    return load_published(name, weights, weights_file)  # type: ignore[return-value]
