"""regnet_tutorial: an executable, reproducible tutorial of RegNet (Radosavovic et al., 2020)."""

from .anynet import AnyNet, init_weights
from .complexity import Complexity, model_complexity, stage_complexity
from .design_space import (
    ROUNDING_RULES,
    DesignSpaceError,
    RegNetParams,
    StageSpec,
    generate_stages,
    make_compatible,
    quantized_widths,
)
from .inference import fuse_for_inference
from .models import MODEL_CARDS, ModelCard, create_model, get_card, list_models

__version__ = "0.1.0"

__all__ = [
    "AnyNet", "Complexity", "DesignSpaceError", "MODEL_CARDS", "ModelCard", "ROUNDING_RULES", "RegNetParams",
    "StageSpec", "create_model", "fuse_for_inference", "generate_stages", "get_card", "init_weights", "list_models",
    "make_compatible", "model_complexity", "quantized_widths", "stage_complexity",
]
