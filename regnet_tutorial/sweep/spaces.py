"""The paper's design spaces as samplers (Section 3, Table 1; Section 4 for RegNetX constrained).

A *design space* is a set of models plus a distribution over it. Each space below draws
models from the AnyNet skeleton (stem, four stages of X blocks, head; paper Figure 3) and
keeps only those whose flops fall in a complexity band (rejection sampling; the paper's
band is 360-400 MF at 224 px; every candidate is screened by a closed-form flops count,
:func:`band_flops`, and only accepted ones get the full count). The spaces, each a
refinement of the previous one, under the paper's names (all use X blocks, hence the X):

==============================  ===================================================================
AnyNetX_A                       per stage i: depth d_i <= 16, width w_i <= 1024 (multiple of 8),
                                bottleneck ratio b_i in {1, 2, 4}, group width g_i one of the six
                                powers of two 1, 2, 4, 8, 16, 32
AnyNetX_B                       A with one shared b
AnyNetX_C                       B with one shared g
AnyNetX_D                       C with w_{i+1} >= w_i
AnyNetX_E                       D with d_{i+1} >= d_i
RegNetX                         d < 64, w0 < 256, wa < 256, 1.5 <= wm <= 3 (Eq. 2-4); b and g as
                                in E; exactly 4 stages after quantization (Section 3.3)
RegNetX constrained, no limits  RegNetX with b = 1, d <= 40, wm >= 2: the first half of Section
                                4's refinement only (the space of this tutorial's first sweep)
RegNetX constrained             RegNetX with b = 1, d <= 40, wm >= 2 *and* the parameter and
                                activation limits (Section 4, "RegNetX constrained")
==============================  ===================================================================

The command-line keys (:data:`PAPER_NAMES`) of the last three are ``regnetx``,
``regnetx_constrained_nolimits``, ``regnetx_constrained``. Before the spaces took the paper's
names, ``regnet`` meant RegNetX and ``regnetx`` meant the constrained space without limits;
``regnet`` is now refused with the new key, and lines written under the old names carry no
``space_names`` field (:func:`check_space_names`; ``results/migrate_space_names.py`` renames them).

**The parameter and activation limits** (:func:`within_paper_limits`). The paper: "we limit
parameters and activations, following Figure 12 (bottom)", the fits of the best models'
complexity against flops (activations grow with the square root of flops, parameters
linearly). Its text gives no numbers; the numbers are pycls's, the paper's code, whose sweep
config documents them for RegNets (``pycls/sweep/config.py``, ``SETUP.CONSTRAINTS.CX``): for
flops F in GF, params <= 3 + 5.5 F and acts <= 6.5 sqrt(F), both in millions. Those fits are
for ImageNet models at 224 px; at 28 px on the small skeleton the same architecture has about
1/16 of the flops and activations and a 10-class head, so applying them to our counts would
be a different constraint. The limits are therefore applied to each sample's **ImageNet
equivalent**: the same stages (depths, widths, b, g) on the paper's skeleton (stem stride 2,
224 px, 3 input channels, 1000 classes), counted by :mod:`regnet_tutorial.complexity`. On the
ImageNet skeleton at 224 px this is the sample itself, exactly the paper's setting. A small
skeleton with fewer than four stages is checked the same way, an extrapolation of the paper's
fits to nets it never measured. At our 2-4 MF band the equivalent is about 30-65 MF, below the
paper's smallest model (200 MF): there the 3 M parameter intercept is never reached and only
the activation limit rejects samples (a few percent of RegNetX constrained, no limits).

How values are drawn follows the paper's code (pycls ``sweep/random.py``):

* d_i, w_i, w0, wa, wm are log-uniform, quantized up (``ceil``) to 1, 8, 8, 0.1 and 0.001;
  the RegNetX depth d is uniform. g is uniform over the powers of two 1..32, b uniform
  over {1, 2, 4}. Lower bounds the paper leaves open come from pycls's RegNet sampler:
  w0 >= 8 and wa >= 8.
* D's and E's orderings are drawn by sorting the four independent draws. For continuous
  draws this is exactly the distribution of rejection sampling on the ordering (the
  order statistics); with discrete values only the weight of ties differs slightly, and
  it is ~24x cheaper.
* Group width and bottleneck are then made compatible as pycls's
  ``adjust_block_compatibility`` does (:func:`~regnet_tutorial.design_space.make_compatible`):
  ``g <- min(g, w/b)``, and the inner width ``w/b`` rounded to a multiple of ``g``. So a
  stored ``g`` may be smaller than drawn (it equals the inner width then), and ``w`` may move
  to the nearest width whose inner width ``g`` divides; every constraint above is checked
  again on the adjusted model, and a model that breaks one is rejected.
* A RegNetX draw is rejected unless its quantized widths give exactly the requested number
  of stages with no stage skipped (pycls: ``num_stages == max_stages``).

The paper's bottleneck *ratio* b gives the inner width ``w / b``; the package's
:class:`~regnet_tutorial.design_space.StageSpec` stores a bottleneck *multiplier*
``b_mul`` with inner width ``w * b_mul``, so ``b_mul = 1 / b``::

    b = 1  ->  b_mul = 1.0      b = 2  ->  b_mul = 0.5      b = 4  ->  b_mul = 0.25

**Skeletons.** ``"imagenet"`` is the paper's: stem stride 2, four stride-2 stages.
``"small"`` is this tutorial's skeleton for 28-32 px inputs (Fashion-MNIST, CIFAR): the
stem keeps stride 1 and the number of stages is configurable (1-4). It is a deviation
from the paper, and the complexity counter covers it.

**Reproducibility.** A stream of samples is a pure function of ``(space, seed)`` and the
band/skeleton arguments: a :class:`random.Random` seeded with the string
``"regnet-tutorial:<stream>:<seed>"`` (Python seeds strings through SHA-512, the same on
every platform) and only ``random()`` draws. ``<stream>`` is the space's key, except for the
two spaces renamed after samples were committed, which keep the key they had then
(:data:`STREAM_NAMES`), so that every committed sample is drawn again. The ``index``-th sample
of a stream does not depend on how many are asked for, so ``n=100`` is a prefix of ``n=200``.
"""

from __future__ import annotations

import json
import math
import random
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, replace
from typing import Any

from ..complexity import Complexity, band_flops, model_complexity
from ..design_space import (
    MAX_STAGES,
    QUANTUM,
    DesignSpaceError,
    StageSpec,
    block_exponent,
    group_stages,
    linear_width,
    make_compatible,
    regnet_block_widths,
)
from ..errors import check_int

PAPER_NAMES: dict[str, str] = {
    "anynetx_a": "AnyNetX_A", "anynetx_b": "AnyNetX_B", "anynetx_c": "AnyNetX_C",
    "anynetx_d": "AnyNetX_D", "anynetx_e": "AnyNetX_E", "regnetx": "RegNetX",
    "regnetx_constrained_nolimits": "RegNetX constrained, no limits", "regnetx_constrained": "RegNetX constrained",
}
"""Space key (lower case, as on the command line) -> the paper's name (Sections 3 and 4), in the
order of the refinements."""

SPACES: tuple[str, ...] = tuple(PAPER_NAMES)

SPACE_NAMES = "paper"
"""The value of every sample's ``space_names`` field: the keys above, the paper's names. Lines
without it were written when ``regnet`` meant RegNetX and ``regnetx`` its constrained space
without limits (:func:`check_space_names`)."""

RENAMED: dict[str, str] = {"regnet": "regnetx"}
"""Old key -> new key, for the one-line error an old key gets (no alias: the old ``regnetx``
is now RegNetX constrained, no limits, and its key means RegNetX)."""

OLD_NAMES: dict[str, str] = {"regnet": "regnetx", "regnetx": "regnetx_constrained_nolimits"}
"""Old key -> new key of a line written before the rename (``results/migrate_space_names.py``)."""

STREAM_NAMES: dict[str, str] = {"regnetx": "regnet", "regnetx_constrained_nolimits": "regnetx"}
"""Space key -> the name its random streams are seeded with, where the two differ. Both spaces
were sampled, trained and committed under their old keys, and a stream seeded with the new key
would draw other models: keeping the old names keeps every committed sample reproducible
(``tests/test_sweep_spaces.py`` re-samples the committed files)."""

SKELETONS: dict[str, int] = {"imagenet": 2, "small": 1}
"""Skeleton name -> stem stride."""

DEFAULT_FLOPS: tuple[float, float] = (360e6, 400e6)
"""The paper's complexity band: 360-400 MF (multiply-adds) at 224 px."""

STEM_WIDTH = 32
BOTTLENECK_RATIOS = (1, 2, 4)
GROUP_WIDTHS = (1, 2, 4, 8, 16, 32)
MAX_STAGE_DEPTH = 16
MAX_WIDTH = 1024
REGNET_RANGES: dict[str, dict[str, tuple[float, float]]] = {
    # d < 64, w0 < 256, wa < 256 (strict: the largest quantized values below 256), 1.5 <= wm <= 3.
    "regnetx": {"d": (1, 63), "w0": (8, 248), "wa": (8.0, 255.9), "wm": (1.5, 3.0)},
    # Section 4: b = 1, d <= 40, wm >= 2 (b is fixed in _draw_regnet).
    "regnetx_constrained_nolimits": {"d": (1, 40), "w0": (8, 248), "wa": (8.0, 255.9), "wm": (2.0, 3.0)},
    "regnetx_constrained": {"d": (1, 40), "w0": (8, 248), "wa": (8.0, 255.9), "wm": (2.0, 3.0)},
}
CONSTRAINED: tuple[str, ...] = ("regnetx_constrained_nolimits", "regnetx_constrained")
"""The spaces with Section 4's b = 1, d <= 40, wm >= 2."""
LIMITED: tuple[str, ...] = ("regnetx_constrained",)
"""The spaces with Section 4's parameter and activation limits (:func:`within_paper_limits`)."""

SAMPLE_KEYS: tuple[str, ...] = (
    "space", "space_names", "index", "seed", "depths", "widths", "bottleneck_ratios", "group_widths", "strides",
    "se_ratio", "stem_width", "stem_stride", "resolution", "num_classes", "in_channels",
    "flops", "params", "acts",
)
"""Keys of every sample; RegNetX samples (of all three RegNetX spaces) add ``REGNET_KEYS``."""
REGNET_KEYS: tuple[str, ...] = ("d", "w0", "wa", "wm")


class SamplingError(DesignSpaceError):
    """Bad sampler arguments, or a band no draw reaches: the message names the fix."""


def canonical_space(space: str) -> str:
    """The lower-case key of ``space`` (names are case-insensitive), or a :class:`SamplingError`
    (an old key's names the new one)."""
    key = str(space).lower()
    if key in RENAMED:
        raise SamplingError(
            f"space {space!r} was renamed to the paper's name: use {RENAMED[key]} (RegNetX); the constrained "
            "spaces are regnetx_constrained and regnetx_constrained_nolimits."
        )
    if key not in PAPER_NAMES:
        raise SamplingError(f"unknown space {space!r}: choose one of {', '.join(SPACES)} (any case).")
    return key


def check_space_names(record: Mapping[str, Any], where: str = "a line") -> None:
    """Raise a :class:`SamplingError` if ``record`` was written under the old space keys and its
    key is one whose meaning changed (``regnet``, ``regnetx``): reading it now would mistake
    the space. Lines of the AnyNetX spaces, whose keys did not change, pass either way."""
    if record.get("space_names") == SPACE_NAMES or record.get("space") not in OLD_NAMES:
        return
    raise SamplingError(
        f"{where} has space {record.get('space')!r} under the old names (no space_names field), where "
        "regnet meant RegNetX and regnetx meant RegNetX constrained without limits: rename its spaces "
        "with `python results/migrate_space_names.py FILE` and read it again."
    )


# ---------------------------------------------------------------- random draws (pycls style)


def _log_uniform(rng: random.Random, low: float, high: float, q: float) -> float:
    """Log-uniform on ``[low, high]``, quantized up to a multiple of ``q``.

    Draws ``f`` log-uniformly in ``(low - min(q, low/2), high]`` and rounds up, so that
    every quantized value in ``[low, high]`` can occur, as pycls's ``log_uniform``.
    """
    bounds = (low, high, q)
    if bounds not in _LOG_RANGES:
        lo = math.log(low - min(q, low / 2))
        _LOG_RANGES[bounds] = (lo, math.log(high) - lo)
    lo, span = _LOG_RANGES[bounds]
    f = math.exp(lo + span * rng.random())
    k = math.ceil(f / q - 1e-9)
    return min(max(k * q, low), high)


_LOG_RANGES: dict[tuple[float, float, float], tuple[float, float]] = {}
"""``(low, high, q) -> (log of the open lower end, log-range)``: the logarithms of each range once."""


def _uniform_int(rng: random.Random, low: int, high: int) -> int:
    return min(high, low + int((high - low + 1) * rng.random()))


def _choice(rng: random.Random, values: tuple[int, ...]) -> int:
    return values[min(len(values) - 1, int(len(values) * rng.random()))]


def _draw_anynet(rng: random.Random, space: str, stages: int) -> tuple[list[int], list[int], list[int], list[int]]:
    """Raw per-stage ``(depths, widths, bottleneck_ratios, group_widths)`` of an AnyNetX space."""
    depths = [int(_log_uniform(rng, 1, MAX_STAGE_DEPTH, 1)) for _ in range(stages)]
    widths = [int(round(_log_uniform(rng, QUANTUM, MAX_WIDTH, QUANTUM))) for _ in range(stages)]
    if space == "anynetx_a":
        bs = [_choice(rng, BOTTLENECK_RATIOS) for _ in range(stages)]
    else:
        bs = [_choice(rng, BOTTLENECK_RATIOS)] * stages
    if space in ("anynetx_a", "anynetx_b"):
        gs = [_choice(rng, GROUP_WIDTHS) for _ in range(stages)]
    else:
        gs = [_choice(rng, GROUP_WIDTHS)] * stages
    if space in ("anynetx_d", "anynetx_e"):
        widths.sort()
    if space == "anynetx_e":
        depths.sort()
    return depths, widths, bs, gs


def _draw_regnet(rng: random.Random, space: str) -> dict[str, Any]:
    """Raw ``d, w0, wa, wm, b, g`` of one of the RegNetX spaces."""
    r = REGNET_RANGES[space]
    d = _uniform_int(rng, int(r["d"][0]), int(r["d"][1]))
    w0 = int(round(_log_uniform(rng, r["w0"][0], r["w0"][1], QUANTUM)))
    wa = round(_log_uniform(rng, r["wa"][0], r["wa"][1], 0.1), 1)
    wm = round(_log_uniform(rng, r["wm"][0], r["wm"][1], 0.001), 3)
    b = 1 if space in CONSTRAINED else _choice(rng, BOTTLENECK_RATIOS)
    g = _choice(rng, GROUP_WIDTHS)
    return {"d": d, "w0": w0, "wa": wa, "wm": wm, "b": b, "g": g}


def _regnet_stages(p: dict[str, Any], stages: int) -> tuple[list[int], list[int]] | None:
    """Per-stage ``(depths, widths)`` of a RegNetX draw, or ``None`` unless it has exactly
    ``stages`` stages with none skipped (pycls's ``num_stages == max_stages`` check)."""
    # No skipped stage: the largest exponent round(s_j), at the last block, must be stages - 1.
    u_last = linear_width(p["d"] - 1, p["w0"], p["wa"])
    if round(block_exponent(u_last, p["w0"], p["wm"])) + 1 != stages:
        return None  # checked first: it rejects most draws at the cost of one logarithm
    depths, widths = group_stages(regnet_block_widths(p["d"], p["w0"], p["wa"], p["wm"]))  # valid by construction
    if len(widths) != stages:  # two exponents gave the same multiple of 8
        return None
    return depths, widths


# ---------------------------------------------------------------- constraints


def satisfies_space(space: str, depths: list[int], widths: list[int], bs: list[int], gs: list[int]) -> bool:
    """Whether an adjusted AnyNetX model still lies in ``space`` (checked after compatibility)."""
    if not all(1 <= d <= MAX_STAGE_DEPTH for d in depths):
        return False
    if not all(QUANTUM <= w <= MAX_WIDTH and w % QUANTUM == 0 for w in widths):
        return False
    if not all(b in BOTTLENECK_RATIOS and (w // b) % g == 0 for w, b, g in zip(widths, bs, gs)):
        return False
    if space != "anynetx_a" and len(set(bs)) > 1:
        return False
    if space in ("anynetx_d", "anynetx_e") and any(a > c for a, c in zip(widths, widths[1:])):
        return False
    return not (space == "anynetx_e" and any(a > c for a, c in zip(depths, depths[1:])))


# ---------------------------------------------------------------- Section 4's limits

PAPER_SKELETON: dict[str, int] = {"resolution": 224, "num_classes": 1000, "in_channels": 3, "stem_stride": 2}
"""Where the paper's complexity fits hold: ImageNet at 224 px, stem stride 2."""


def paper_limits(flops: float) -> tuple[float, float]:
    """The parameter and activation limits at ``flops`` multiply-adds (ImageNet, 224 px):
    ``(3 + 5.5 F) * 1e6`` parameters and ``6.5 sqrt(F) * 1e6`` activations for ``F = flops / 1e9``
    (pycls's ``SETUP.CONSTRAINTS.CX`` note for RegNets; the form is the paper's Figure 12 bottom:
    parameters linear in flops, activations in its square root)."""
    f = flops / 1e9
    return (3 + 5.5 * f) * 1e6, 6.5 * math.sqrt(f) * 1e6


def paper_equivalent(spec: StageSpec) -> Complexity:
    """The complexity of ``spec``'s stages on the paper's skeleton (:data:`PAPER_SKELETON`)."""
    on_paper = replace(spec, stem_stride=PAPER_SKELETON["stem_stride"])
    return model_complexity(
        on_paper, PAPER_SKELETON["resolution"], PAPER_SKELETON["num_classes"], PAPER_SKELETON["in_channels"]
    )


def within_paper_limits(spec: StageSpec) -> bool:
    """Whether ``spec``'s ImageNet equivalent satisfies the parameter and activation limits of
    RegNetX constrained (module docstring: why the equivalent, not the sample's own counts)."""
    cx = paper_equivalent(spec)
    max_params, max_acts = paper_limits(cx.flops)
    return cx.params <= max_params and cx.acts <= max_acts


# ---------------------------------------------------------------- the sampler


@dataclass(frozen=True)
class SamplerConfig:
    """What fixes a stream of samples besides the space and the seed."""

    flops: tuple[float, float] = DEFAULT_FLOPS
    resolution: int = 224
    skeleton: str = "imagenet"
    stages: int = MAX_STAGES
    num_classes: int = 1000
    in_channels: int = 3

    def __post_init__(self) -> None:
        lo, hi = self.flops
        if not (math.isfinite(lo) and math.isfinite(hi) and 0 <= lo < hi):
            raise SamplingError(
                f"flops band {lo:g}:{hi:g} is invalid: give LOW:HIGH with 0 <= LOW < HIGH, e.g. 360e6:400e6."
            )
        for name in ("resolution", "stages", "num_classes", "in_channels"):
            value = getattr(self, name)
            check_int(name, value, 1, SamplingError)
        if self.skeleton not in SKELETONS:
            raise SamplingError(f"skeleton {self.skeleton!r} is invalid: choose one of {', '.join(SKELETONS)}.")
        if not 1 <= self.stages <= MAX_STAGES:
            raise SamplingError(f"stages={self.stages} is invalid: the AnyNet skeleton has 1 to {MAX_STAGES} stages.")
        if self.skeleton == "imagenet" and self.stages != MAX_STAGES:
            raise SamplingError(
                f"stages={self.stages} needs the small skeleton: the ImageNet skeleton has {MAX_STAGES} "
                "stages; pass --skeleton small to choose fewer."
            )


def stream_name(space: str) -> str:
    """The name ``space``'s random streams are seeded with (:data:`STREAM_NAMES`)."""
    return STREAM_NAMES.get(space, space)


def _rng(space: str, seed: int) -> random.Random:
    return random.Random(f"regnet-tutorial:{stream_name(space)}:{seed}")


def _draw(rng: random.Random, space: str, cfg: SamplerConfig) -> dict[str, Any] | None:
    """One candidate's JSON fields, or ``None`` if it leaves the space."""
    extra: dict[str, Any] = {}
    if space.startswith("anynetx"):
        depths, widths, bs, gs = _draw_anynet(rng, space, cfg.stages)
    else:
        p = _draw_regnet(rng, space)
        stages = _regnet_stages(p, cfg.stages)
        if stages is None:
            return None
        depths, widths = stages
        bs, gs = [p["b"]] * cfg.stages, [p["g"]] * cfg.stages
        extra = {k: p[k] for k in REGNET_KEYS}
    b_mul = [1 / b for b in bs]
    widths, gs = make_compatible(widths, b_mul, gs)
    if space.startswith("anynetx"):
        if not satisfies_space(space, depths, widths, bs, gs):
            return None
    elif any(a > c for a, c in zip(widths, widths[1:])):
        return None
    fields = {"depths": depths, "widths": widths, "bottleneck_ratios": bs, "group_widths": gs}
    return {**fields, **extra}


def _in_band(fields: dict[str, Any], cfg: SamplerConfig) -> bool:
    """Whether a candidate's flops lie in the band (the cheap check every candidate gets)."""
    flops = band_flops(
        fields["depths"], fields["widths"], fields["group_widths"], [1 / b for b in fields["bottleneck_ratios"]],
        [2] * cfg.stages, 0.0, STEM_WIDTH, SKELETONS[cfg.skeleton], cfg.resolution, cfg.num_classes,
        cfg.in_channels,
    )
    return cfg.flops[0] <= flops <= cfg.flops[1]


def iter_samples(
    space: str, seed: int = 0, config: SamplerConfig | None = None, max_draws: int | None = None
) -> Iterator[dict[str, Any]]:
    """Yield samples of ``space`` in the band, endlessly, in the order fixed by ``seed``.

    ``max_draws`` bounds the raw draws (default: unbounded); reaching it raises a
    :class:`SamplingError` that names the band.
    """
    key = canonical_space(space)
    cfg = config or SamplerConfig()
    check_int("seed", seed, 0, SamplingError)
    rng = _rng(key, seed)
    lo, hi = cfg.flops
    index = draws = 0
    while True:
        draws += 1
        if max_draws is not None and draws > max_draws:
            raise SamplingError(
                f"no more {PAPER_NAMES[key]} samples in the flops band {lo:g}:{hi:g} after {max_draws} draws "
                f"(resolution {cfg.resolution}, {cfg.skeleton} skeleton): widen the band or change the resolution."
            )
        fields = _draw(rng, key, cfg)
        if fields is None or not _in_band(fields, cfg):
            continue
        spec = StageSpec(
            depths=tuple(fields["depths"]), widths=tuple(fields["widths"]),
            group_widths=tuple(fields["group_widths"]),
            bottleneck_multipliers=tuple(1 / b for b in fields["bottleneck_ratios"]),
            strides=(2,) * cfg.stages, se_ratio=0.0, stem_width=STEM_WIDTH, stem_stride=SKELETONS[cfg.skeleton],
        )
        if key in LIMITED and not within_paper_limits(spec):
            continue
        cx = model_complexity(spec, cfg.resolution, cfg.num_classes, cfg.in_channels)
        regnet = {k: fields.pop(k) for k in REGNET_KEYS if k in fields}
        yield {
            "space": key, "space_names": SPACE_NAMES, "index": index, "seed": seed, **fields,
            "strides": list(spec.strides), "se_ratio": spec.se_ratio, "stem_width": spec.stem_width,
            "stem_stride": spec.stem_stride, "resolution": cfg.resolution, "num_classes": cfg.num_classes,
            "in_channels": cfg.in_channels, "flops": cx.flops, "params": cx.params, "acts": cx.acts, **regnet,
        }
        index += 1


def sample_space(
    space: str, n: int, seed: int = 0, config: SamplerConfig | None = None, max_draws: int | None = None
) -> list[dict[str, Any]]:
    """The first ``n`` samples of ``space`` for ``seed`` (see :func:`iter_samples`).

    By default at most ``2000 * n + 200000`` raw draws are tried before giving up.
    """
    check_int("n", n, 1, SamplingError, "It is the number of samples.")
    limit = max_draws if max_draws is not None else 2000 * n + 200_000
    stream = iter_samples(space, seed, config, limit)
    return [next(stream) for _ in range(n)]


# ---------------------------------------------------------------- samples as data


def spec_from_sample(sample: Mapping[str, Any]) -> StageSpec:
    """The :class:`StageSpec` a sample describes (the bottleneck ratio b becomes ``b_mul = 1/b``)."""
    missing = [k for k in ("depths", "widths", "bottleneck_ratios", "group_widths", "strides") if k not in sample]
    if missing:
        raise SamplingError(f"sample lacks {', '.join(missing)}: pass a line written by `sweep sample`.")
    return StageSpec(
        depths=tuple(int(d) for d in sample["depths"]),
        widths=tuple(int(w) for w in sample["widths"]),
        group_widths=tuple(int(g) for g in sample["group_widths"]),
        bottleneck_multipliers=tuple(1 / b for b in sample["bottleneck_ratios"]),
        strides=tuple(int(s) for s in sample["strides"]),
        se_ratio=float(sample.get("se_ratio", 0.0)),
        stem_width=int(sample.get("stem_width", STEM_WIDTH)),
        stem_stride=int(sample.get("stem_stride", 2)),
    )


def sample_to_json(sample: Mapping[str, Any]) -> str:
    """One JSON line (no newline) for a sample, keys in :data:`SAMPLE_KEYS` order."""
    return json.dumps(dict(sample), separators=(", ", ": "))


def sample_from_json(line: str) -> dict[str, Any]:
    """The sample of one JSON line, checked to carry every key in :data:`SAMPLE_KEYS`."""
    sample = json.loads(line)
    if not isinstance(sample, dict):
        raise SamplingError("a sample line must be a JSON object: pass a line written by `sweep sample`.")
    check_space_names(sample, "the sample line")
    missing = [k for k in SAMPLE_KEYS if k not in sample]
    if missing:
        raise SamplingError(f"sample line lacks {', '.join(missing)}: pass a line written by `sweep sample`.")
    return sample
