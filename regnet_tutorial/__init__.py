"""regnet_tutorial: an executable, reproducible tutorial of RegNet (Radosavovic et al., 2020).

The names below are imported on first use (:pep:`562`), so that ``import regnet_tutorial`` and
the design-space math (``design_space``, ``complexity``, ``models``, ``sweep.spaces``) do not
import torch; building a network does.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_EXPORTS: dict[str, str] = {
    "AnyNet": "anynet", "init_weights": "anynet",
    "Complexity": "complexity", "model_complexity": "complexity", "stage_complexity": "complexity",
    "ROUNDING_RULES": "design_space", "DesignSpaceError": "design_space", "RegNetParams": "design_space",
    "StageSpec": "design_space", "generate_stages": "design_space", "make_compatible": "design_space",
    "quantized_widths": "design_space",
    "RegNetTutorialError": "errors",
    "fuse_for_inference": "inference",
    "MODEL_CARDS": "models", "ModelCard": "models", "get_card": "models",
    "create_model": "weights.pretrained",  # models.create_model, plus weights= (published checkpoints)
    "list_models": "models",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_EXPORTS])
