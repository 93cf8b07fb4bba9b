"""Design-space design (paper, Sections 2-4): spaces as samplers, the sweep, EDFs and the bootstrap.

``python -m regnet_tutorial.sweep sample ...`` draws models from a space (see ``__main__``).
"""

from .spaces import (
    PAPER_NAMES,
    SAMPLE_KEYS,
    SPACES,
    SamplerConfig,
    SamplingError,
    iter_samples,
    sample_from_json,
    sample_space,
    sample_to_json,
    spec_from_sample,
)

__all__ = [
    "PAPER_NAMES", "SAMPLE_KEYS", "SPACES", "SamplerConfig", "SamplingError", "iter_samples",
    "sample_from_json", "sample_space", "sample_to_json", "spec_from_sample",
]
