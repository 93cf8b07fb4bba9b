"""The paper's training recipe as one frozen config, its YAML files, and the numbers it implies.

The RegNet paper (Section 5 and Appendix) and its code (pycls, ``configs/dds_baselines``)
train every model for 100 epochs with SGD (momentum 0.9, Nesterov), weight decay 5e-5,
a 5-epoch linear warmup from 0.1x, then a half-period cosine schedule, and scale the
learning rate linearly with the batch: ``lr = 0.1 x total_batch / 128``. On 8 GPUs the
total batch is 1024 up to 1.6GF, 512 from 3.2GF to 12GF (RegNetX: to 16GF) and 256 above.
Before every evaluation both pycls and mmclassification recompute the BatchNorm statistics
on 8192 training images ("precise BN", split over all processes).

:class:`TrainConfig` holds those values plus our engineering options; :func:`load_config`
reads it from YAML with ``key=value`` overrides; :func:`resolve_recipe` turns it into the
total batch, learning rate, step counts and precise-BN batches for a given number of processes.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import sys
import types
import typing
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import yaml

from ..errors import RegNetTutorialError, check_int
from ..models import MODEL_CARDS, ModelCard
from ..util.atomic import write_text_atomic

MixedPrecision = Literal["no", "fp16", "bf16"]
ScheduleName = Literal["pycls", "mmcls", "per_step"]
AugmentationName = Literal["inception", "pad_crop"]
"""The named learning-rate schedules of :mod:`regnet_tutorial.train.schedule`."""

PAPER_NUM_GPUS = 8
"""The paper's models were trained on 8 GPUs (pycls ``*_dds_8gpu.yaml``)."""

REFERENCE_BATCH = 128
"""The batch size the learning rate is quoted for: ``lr = lr_per_128 x total_batch / 128``."""

PAPER_PRECISE_BN_SAMPLES = 8192
"""Training images (over all processes) that precise BN averages BN statistics over: pycls's
default ``BN.NUM_SAMPLES_PRECISE`` and mmclassification's RegNet ``PreciseBNHook(num_samples=8192)``."""


class ConfigError(RegNetTutorialError, ValueError):
    """An invalid training configuration: the message names the key, the value and what is allowed."""


@dataclass(frozen=True)
class TrainConfig:
    """Everything a training run needs; the defaults are the paper's recipe for one process.

    Attributes:
        model: a registered model name (``regnet_tutorial.list_models()``), e.g. ``"regnetx_400mf"``.
        data: folder with ``train/<class>/*.JPEG`` and ``val/<class>/*.JPEG``.
        output_dir: where checkpoints, logs and the resolved config go.
        num_classes: classifier outputs; ``None`` means the number of class folders found.
        train_split, val_split: sub-folder names of ``data``.
        epochs: training epochs (paper: 100).
        warmup_epochs: epochs of linear warmup (paper: 5).
        warmup_factor: the warmup starts at ``warmup_factor x lr`` (paper: 0.1).
        schedule: how warmup and cosine are applied (:mod:`regnet_tutorial.train.schedule`): ``"pycls"``
            (the paper's code, lr set once per epoch; the default), ``"mmcls"`` (mmclassification:
            warmup per step, cosine per epoch; the seed-table recipes) or ``"per_step"`` (ours).
        batch_size: images per process and step (the paper: 8 GPUs x 128 up to 1.6GF).
        grad_accum_steps: micro-batches accumulated per optimizer step.
        lr_per_128: learning rate for a total batch of 128, scaled linearly (paper: 0.1).
        momentum, nesterov, weight_decay: SGD settings (paper: 0.9, Nesterov, 5e-5).
        label_smoothing: cross-entropy label smoothing (paper: none).
        zero_init_last_bn: start each block's last BN scale at 0 (paper: off).
        stem_stride: the stem's stride: 2 for ImageNet (paper), 1 for the small skeleton of 28-32 px
            inputs (chapter 01's sweep), so that four stages of stride 2 still leave 2 x 2 pixels.
        augmentation: ``"inception"`` (paper: random-sized crop, flip, lighting noise) or
            ``"pad_crop"`` (for 28-32 px images: a ``crop_size // 8`` zero border, a random
            ``crop_size`` crop and a flip; pycls's CIFAR recipe).
        crop_size: training crop and evaluation centre crop (paper: 224).
        eval_resize: evaluation short-side resize (paper: 256).
        lighting_std: std of the PCA lighting noise (paper: 0.1; 0 turns it off).
        eval_batch_size: images per process in evaluation (pycls: 800 / 8 GPUs = 100).
        num_workers: data-loading worker processes per training process.
        skip_corrupt: drop unreadable images up front instead of failing on them.
        mixed_precision: ``"no"``, ``"fp16"`` or ``"bf16"``; ``None`` (the default) takes what the
            launcher says (``accelerate launch --mixed_precision``, or ``accelerate config``).
        channels_last: use the NHWC memory format (faster convolutions on recent GPUs).
        compile: wrap the model in ``torch.compile``.
        ema_decay: decay of an exponential moving average of the weights; 0 turns it off.
        precise_bn_samples: training images, over all processes, on which every BatchNorm's
            statistics are recomputed before each evaluation (paper: 8192); 0 = off. Each process
            uses ``precise_bn_samples // (batch_size x processes)`` batches (:func:`precise_bn_batches_per_process`).
        seed: seed of every random number generator.
        max_steps_per_epoch: cap on optimizer steps per epoch, for short demo runs; ``None`` = no cap.
        eval_every_epochs: evaluate after every this many epochs (and after the last).
        checkpoint_every_steps: also checkpoint every this many optimizer steps; 0 = epoch ends only.
        keep_last: how many recent checkpoints to keep.
        log_every: log the training loss every this many optimizer steps.
        resume: a checkpoint folder to resume from, or ``"latest"`` for the newest in ``output_dir``.
    """

    model: str = "regnetx_400mf"
    data: str = "data/imagenet"
    output_dir: str = "runs"
    num_classes: int | None = None
    train_split: str = "train"
    val_split: str = "val"
    epochs: int = 100
    warmup_epochs: int = 5
    warmup_factor: float = 0.1
    schedule: ScheduleName = "pycls"
    batch_size: int = 128
    grad_accum_steps: int = 1
    lr_per_128: float = 0.1
    momentum: float = 0.9
    nesterov: bool = True
    weight_decay: float = 5e-5
    label_smoothing: float = 0.0
    zero_init_last_bn: bool = False
    stem_stride: int = 2
    augmentation: AugmentationName = "inception"
    crop_size: int = 224
    eval_resize: int = 256
    lighting_std: float = 0.1
    eval_batch_size: int = 100
    num_workers: int = 4
    skip_corrupt: bool = False
    mixed_precision: MixedPrecision | None = None
    channels_last: bool = False
    compile: bool = False
    ema_decay: float = 0.0
    precise_bn_samples: int = PAPER_PRECISE_BN_SAMPLES
    seed: int = 0
    max_steps_per_epoch: int | None = None
    eval_every_epochs: int = 1
    checkpoint_every_steps: int = 0
    keep_last: int = 2
    log_every: int = 50
    resume: str | None = None

    def __post_init__(self) -> None:
        hints = _field_types()
        for f in dataclasses.fields(self):
            value = _check_type(f.name, getattr(self, f.name), hints[f.name])
            object.__setattr__(self, f.name, value)  # ints given for float fields become floats
        for name, (ok, allowed) in _RANGES.items():
            value = getattr(self, name)
            if value is not None and not ok(value):
                raise ConfigError(f"{name}={value!r} is invalid: {name} must be {allowed}.")
        self._check_model()
        self._check_combinations()

    def _check_model(self) -> None:
        if self.model not in MODEL_CARDS:
            close = difflib.get_close_matches(self.model, list(MODEL_CARDS), n=3)
            hint = f" Did you mean {', '.join(close)}?" if close else ""
            raise ConfigError(
                f"model={self.model!r} is invalid: model must be a registered model name, e.g. "
                f"regnetx_400mf or regnety_1_6gf_tv (regnet_tutorial.list_models() lists all "
                f"{len(MODEL_CARDS)}).{hint}"
            )

    def _check_combinations(self) -> None:
        if self.warmup_epochs >= self.epochs:
            fit = min(1, self.epochs - 1)  # a valid value: one warmup epoch, or none for a 1-epoch run
            raise ConfigError(
                f"warmup_epochs={self.warmup_epochs} is invalid: it must be smaller than "
                f"epochs={self.epochs}, so that the cosine part of the schedule has steps; "
                f"when shortening a run, lower warmup_epochs too (e.g. warmup_epochs={fit})."
            )
        if self.nesterov and self.momentum == 0:
            raise ConfigError("nesterov=True needs momentum > 0 (got momentum=0); set nesterov=false or a momentum.")
        if self.eval_resize < self.crop_size:
            raise ConfigError(
                f"eval_resize={self.eval_resize} is invalid: it must be >= crop_size={self.crop_size} "
                "(the paper resizes to 256 and crops 224)."
            )


def _positive_int(v: int) -> bool:
    return v >= 1


_RANGES: dict[str, tuple[typing.Callable[[Any], bool], str]] = {
    "data": (bool, "a non-empty path"),
    "output_dir": (bool, "a non-empty path"),
    "train_split": (bool, "a non-empty folder name"),
    "val_split": (bool, "a non-empty folder name"),
    "num_classes": (_positive_int, "an integer >= 1, or null to use the number of class folders"),
    "epochs": (_positive_int, "an integer >= 1"),
    "warmup_epochs": (lambda v: v >= 0, "an integer >= 0"),
    "warmup_factor": (lambda v: 0 <= v <= 1, "a number in [0, 1]"),
    "batch_size": (_positive_int, "an integer >= 1 (images per process)"),
    "grad_accum_steps": (_positive_int, "an integer >= 1"),
    "lr_per_128": (lambda v: v > 0, "a number > 0"),
    "momentum": (lambda v: 0 <= v < 1, "a number in [0, 1)"),
    "weight_decay": (lambda v: v >= 0, "a number >= 0"),
    "label_smoothing": (lambda v: 0 <= v < 1, "a number in [0, 1)"),
    "stem_stride": (lambda v: v in (1, 2), "1 (the small skeleton, 28-32 px inputs) or 2 (ImageNet)"),
    "crop_size": (lambda v: v >= 8, "an integer >= 8 (pixels)"),
    "eval_resize": (lambda v: v >= 8, "an integer >= 8 (pixels)"),
    "lighting_std": (lambda v: v >= 0, "a number >= 0 (0 turns the lighting noise off)"),
    "eval_batch_size": (_positive_int, "an integer >= 1"),
    "num_workers": (lambda v: v >= 0, "an integer >= 0 (0 loads data in the main process)"),
    "ema_decay": (lambda v: 0 <= v < 1, "a number in [0, 1) (0 turns the EMA off)"),
    "precise_bn_samples": (lambda v: v >= 0, "an integer >= 0 (images over all processes; 0 turns precise BN off)"),
    "seed": (lambda v: 0 <= v < 2**63, "an integer in [0, 2**63)"),
    "max_steps_per_epoch": (_positive_int, "an integer >= 1, or null for no cap"),
    "eval_every_epochs": (_positive_int, "an integer >= 1"),
    "checkpoint_every_steps": (lambda v: v >= 0, "an integer >= 0 (0 = only at the end of each epoch)"),
    "keep_last": (_positive_int, "an integer >= 1"),
    "log_every": (_positive_int, "an integer >= 1"),
    "resume": (bool, "a checkpoint folder, 'latest', or null"),
}


def _field_types() -> dict[str, Any]:
    return typing.get_type_hints(TrainConfig, globalns=sys.modules[__name__].__dict__)


def _describe_type(tp: Any) -> str:
    if typing.get_origin(tp) is Literal:
        return "one of " + ", ".join(repr(a) for a in typing.get_args(tp))
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        return " or ".join("null" if a is type(None) else _describe_type(a) for a in typing.get_args(tp))
    return {bool: "true or false", int: "an integer", float: "a number", str: "a string"}.get(tp, str(tp))


def _check_type(name: str, value: Any, tp: Any) -> Any:
    """``value`` (an int turned into a float for float fields) or a :class:`ConfigError`."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in typing.get_args(tp):
            return None
        (inner,) = [a for a in typing.get_args(tp) if a is not type(None)]
        return _check_type(name, value, inner) if value is not None else _type_error(name, value, tp)
    if origin is Literal:
        return value if value in typing.get_args(tp) else _type_error(name, value, tp)
    if tp is bool:
        return value if isinstance(value, bool) else _type_error(name, value, tp)
    if tp is int:
        return value if isinstance(value, int) and not isinstance(value, bool) else _type_error(name, value, tp)
    if tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
            return float(value)
        return _type_error(name, value, tp)
    if tp is str:
        return value if isinstance(value, str) else _type_error(name, value, tp)
    raise TypeError(f"unsupported field type {tp!r} for {name}")  # a bug in TrainConfig itself


def _type_error(name: str, value: Any, tp: Any) -> typing.NoReturn:
    raise ConfigError(
        f"{name}={value!r} is invalid: {name} must be {_describe_type(tp)} "
        f"(got {type(value).__name__})."
    )


def _unknown_key_error(key: str, where: str) -> ConfigError:
    valid = [f.name for f in dataclasses.fields(TrainConfig)]
    # A key that starts a valid one (lr -> lr_per_128) first, then the closest spelling.
    close = [v for v in valid if v.startswith(key + "_")] or difflib.get_close_matches(key, valid, n=1)
    hint = f" Did you mean {close[0]!r}?" if close else ""
    return ConfigError(f"Unknown config key {key!r} ({where}).{hint} Valid keys: {', '.join(valid)}.")


_RENAMED_KEYS = {"precise_bn_batches": "precise_bn_samples"}
"""Old key -> its replacement. An old ``precise_bn_batches: 0`` still reads as precise BN off."""


def _renamed_key(key: str, value: Any, where: str) -> dict[str, Any]:
    """The new-key setting an old key's ``value`` means, or a :class:`ConfigError` saying what to write."""
    if key == "precise_bn_batches" and str(value).strip() == "0":
        return {"precise_bn_samples": 0}
    raise ConfigError(
        f"Config key {key!r} ({where}) was replaced by {_RENAMED_KEYS[key]!r}: training images over all "
        f"processes, e.g. precise_bn_samples={PAPER_PRECISE_BN_SAMPLES} as in pycls and mmclassification "
        f"(N batches per process = N x batch_size x processes images)."
    )


def _parse_text(name: str, text: str, tp: Any) -> Any:
    """A ``key=value`` override or YAML string turned into a value of the field's type."""
    args = typing.get_args(tp)
    allows_none = type(None) in args
    if allows_none and text.strip().lower() in ("null", "none", "~", ""):
        return None
    inner = next((a for a in args if a is not type(None)), tp) if allows_none else tp
    if inner is str or typing.get_origin(inner) is Literal:
        return text
    if inner is float:
        try:  # YAML 1.1 reads "5e-5" as a string; Python's float() does not
            return float(text)
        except ValueError:
            return text  # the type check reports it
    return yaml.safe_load(text) if text.strip() else text


def _coerce(name: str, value: Any, tp: Any) -> Any:
    if isinstance(value, str):
        return _parse_text(name, value, tp)
    literals = [a for a in (tp, *typing.get_args(tp)) if typing.get_origin(a) is Literal]
    if value is False and literals and "no" in typing.get_args(literals[0]):
        return "no"  # YAML 1.1 reads an unquoted `mixed_precision: no` as false
    return value


def _parse_overrides(overrides: Mapping[str, Any] | Sequence[str]) -> dict[str, Any]:
    if isinstance(overrides, Mapping):
        return dict(overrides)
    if isinstance(overrides, str):
        overrides = [overrides]
    parsed: dict[str, Any] = {}
    for item in overrides:
        if not isinstance(item, str) or "=" not in item:
            raise ConfigError(f"Override {item!r} is invalid: overrides look like key=value, e.g. epochs=2.")
        key, text = item.split("=", 1)
        parsed[key.strip()] = text.strip()
    return parsed


def load_config(
    path: str | Path | None = None, overrides: Mapping[str, Any] | Sequence[str] = ()
) -> TrainConfig:
    """A :class:`TrainConfig` from the YAML file ``path`` (default: the paper's recipe) with
    ``overrides`` applied, given as a mapping or as ``"key=value"`` strings."""
    hints = _field_types()
    values: dict[str, Any] = {}
    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise ConfigError(f"Config file {path} does not exist; the recipes of the paper are in configs/.")
        loaded = _read_yaml(path)
        if loaded is None:  # an empty file would silently train the defaults (RegNetX-400MF, 100 epochs)
            raise ConfigError(
                f"Config file {path} is empty (no key: value lines). Start from one of the paper's recipes "
                "in configs/, e.g. configs/regnetx_400mf.yaml, and change the keys you need."
            )
        if not isinstance(loaded, dict):
            raise ConfigError(f"Config file {path} must hold a mapping of key: value, not {type(loaded).__name__}.")
        for key, value in loaded.items():
            if key in _RENAMED_KEYS:
                values.update(_renamed_key(key, value, f"in {path}"))
            elif key not in hints:
                raise _unknown_key_error(str(key), f"in {path}")
            else:
                values[key] = _coerce(key, value, hints[key])
    for key, value in _parse_overrides(overrides).items():
        if key in _RENAMED_KEYS:
            values.update(_renamed_key(key, value, "in the overrides"))
        elif key not in hints:
            raise _unknown_key_error(key, "in the overrides")
        else:
            values[key] = _coerce(key, value, hints[key])
    return TrainConfig(**values)


def _read_yaml(path: Path) -> Any:
    """The YAML document in ``path``; a syntax error is a :class:`ConfigError` naming the line."""
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as err:
        raise ConfigError(f"Config file {path} is not UTF-8 text ({err.reason}); is it a recipe YAML?") from None
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = getattr(err, "problem", None) or str(err).splitlines()[0]
        raise ConfigError(
            f"Config file {path} is not valid YAML{where}: {problem}. Each line is `key: value`, "
            "e.g. `epochs: 100`; compare with configs/regnetx_400mf.yaml."
        ) from None


def config_to_dict(cfg: TrainConfig) -> dict[str, Any]:
    """The config as a plain ``{key: value}`` dict in field order."""
    return {f.name: getattr(cfg, f.name) for f in dataclasses.fields(cfg)}


def config_to_yaml(cfg: TrainConfig, comment: str | None = None) -> str:
    """The YAML text :func:`save_config` writes, with ``comment`` as leading ``#`` lines."""
    header = "".join(f"# {line}".rstrip() + "\n" for line in comment.splitlines()) if comment else ""
    return header + yaml.safe_dump(config_to_dict(cfg), sort_keys=False, default_flow_style=False)


def save_config(cfg: TrainConfig, path: str | Path, comment: str | None = None) -> Path:
    """Write ``cfg`` to ``path`` as YAML (atomically: a temporary file, then a rename)."""
    path = Path(path)
    write_text_atomic(path, config_to_yaml(cfg, comment))
    return path


@dataclass(frozen=True)
class ResolvedRecipe:
    """The numbers a config implies for one run: batch, learning rate, step counts, precise-BN batches.

    Steps are optimizer steps (one per ``grad_accum_steps`` micro-batches on every process).
    ``precise_bn_batches`` is per process (0: precise BN off).
    """

    total_batch: int
    lr: float
    steps_per_epoch: int
    total_steps: int
    warmup_steps: int
    num_processes: int
    grad_accum_steps: int
    schedule: str = "pycls"
    precise_bn_batches: int = 0

    @property
    def batch_size(self) -> int:
        """Images per process and micro-batch."""
        return self.total_batch // (self.num_processes * self.grad_accum_steps)

    @property
    def epochs(self) -> int:
        return self.total_steps // self.steps_per_epoch


def precise_bn_batches_per_process(samples: int, batch_size: int, num_processes: int) -> int:
    """Batches each process feeds to precise BN so that all processes together see ``samples``
    images: ``samples // (batch_size x num_processes)`` (pycls ``compute_precise_bn_stats``;
    mmclassification's ``PreciseBNHook``). 0 when ``samples`` is 0; fewer images than one batch
    on every process is a :class:`ConfigError`."""
    if samples == 0:
        return 0
    batches = samples // (batch_size * num_processes)
    if batches == 0:
        raise ConfigError(
            f"precise_bn_samples={samples} is fewer than one batch on every process (batch_size={batch_size} x "
            f"{num_processes} processes = {batch_size * num_processes} images): raise it to at least "
            f"{batch_size * num_processes}, or set precise_bn_samples=0 to turn precise BN off."
        )
    return batches


def resolve_recipe(cfg: TrainConfig, num_processes: int, dataset_size: int) -> ResolvedRecipe:
    """Total batch, learning rate and step counts for ``cfg`` on ``num_processes`` processes
    and a training set of ``dataset_size`` images.

    ``total_batch = batch_size x num_processes x grad_accum_steps`` and
    ``lr = lr_per_128 x total_batch / 128``. An epoch has ``dataset_size // total_batch``
    optimizer steps (the last partial batch is dropped, as in pycls), capped by
    ``max_steps_per_epoch``. Precise BN uses ``precise_bn_samples // (batch_size x num_processes)``
    batches per process (:func:`precise_bn_batches_per_process`), at most one pass over the
    training set, as pycls's ``min(num_iter, len(loader))``.
    """
    for name, value in (("num_processes", num_processes), ("dataset_size", dataset_size)):
        check_int(name, value, 1, ConfigError)
    total_batch = cfg.batch_size * num_processes * cfg.grad_accum_steps
    steps_per_epoch = dataset_size // total_batch
    if steps_per_epoch == 0:
        raise ConfigError(
            f"The training set has {dataset_size} images, fewer than one total batch of {total_batch} "
            f"(batch_size={cfg.batch_size} x {num_processes} processes x grad_accum_steps="
            f"{cfg.grad_accum_steps}). Lower batch_size or grad_accum_steps."
        )
    if cfg.max_steps_per_epoch is not None:
        steps_per_epoch = min(steps_per_epoch, cfg.max_steps_per_epoch)
    return ResolvedRecipe(
        total_batch=total_batch,
        lr=cfg.lr_per_128 * total_batch / REFERENCE_BATCH,
        steps_per_epoch=steps_per_epoch,
        total_steps=steps_per_epoch * cfg.epochs,
        warmup_steps=steps_per_epoch * cfg.warmup_epochs,
        num_processes=num_processes,
        grad_accum_steps=cfg.grad_accum_steps,
        schedule=cfg.schedule,
        precise_bn_batches=min(precise_bn_batches_per_process(cfg.precise_bn_samples, cfg.batch_size, num_processes),
                               dataset_size // (cfg.batch_size * num_processes)),
    )


def describe(resolved: ResolvedRecipe) -> str:
    """A few lines for the start of a run: how batch, learning rate, steps and precise BN were derived."""
    r = resolved
    lr_per_128 = r.lr * REFERENCE_BATCH / r.total_batch
    per_step = r.batch_size * r.num_processes
    precise = (f"{r.precise_bn_batches * per_step} images = {r.precise_bn_batches} batches per process x "
               f"{r.batch_size} x {r.num_processes} process(es), before each evaluation"
               if r.precise_bn_batches else "off")
    return "\n".join([
        f"total batch   {r.total_batch} = {r.batch_size} per process x {r.num_processes} process(es)"
        f" x {r.grad_accum_steps} accumulation step(s)",
        f"learning rate {r.lr:g} = {lr_per_128:g} x {r.total_batch} / {REFERENCE_BATCH}",
        f"steps         {r.total_steps} = {r.steps_per_epoch} per epoch x {r.epochs} epochs"
        f" (warmup {r.warmup_steps}, then half-cosine to 0)",
        f"precise BN    {precise}",
    ])


_LARGEST_AT_64_PER_GPU = {"RegNetX": 16.0, "RegNetY": 12.0}
"""pycls trains RegNetX-16GF with 8 x 64 images (``BATCH_SIZE: 512``) but RegNetY-16GF with 8 x 32."""


def paper_batch_per_gpu(card: ModelCard) -> int:
    """Images per GPU in the paper's 8-GPU runs: 128 up to 1.6GF, 64 up to 12GF (RegNetX: 16GF),
    32 above (pycls ``configs/dds_baselines/*_dds_8gpu.yaml``; mmclassification ``8xb128`` / ``8xb64``)."""
    gf = card.gigaflops
    return 128 if gf <= 1.6 else 64 if gf <= _LARGEST_AT_64_PER_GPU[card.family] else 32


def paper_config(name: str) -> TrainConfig:
    """The paper's recipe for the pycls model ``name``, per GPU of an 8-GPU run.

    The models of the seed table (mmclassification's RegNet README) get mmclassification's
    ``"mmcls"`` schedule, the others the paper's ``"pycls"`` schedule.
    """
    from ..weights.published import mmcls_table  # published imports models only; kept local to stay light

    card = MODEL_CARDS[name]
    schedule = "mmcls" if name in {row.model_name for row in mmcls_table()} else "pycls"
    return TrainConfig(model=name, output_dir=f"runs/{name}", batch_size=paper_batch_per_gpu(card),
                       schedule=schedule)


def write_recipe_files(folder: str | Path) -> list[Path]:
    """Write one YAML recipe per pycls model (``<folder>/<name>.yaml``); returns the paths."""
    folder = Path(folder)
    written = []
    for name, card in MODEL_CARDS.items():
        if card.rounding != "pycls":
            continue
        cfg = paper_config(name)
        total = cfg.batch_size * PAPER_NUM_GPUS
        schedule = (
            "mmclassification's learning-rate schedule (schedule: mmcls, warm-up per step), as the "
            "seed table's run of this model was trained" if cfg.schedule == "mmcls"
            else "the paper's code's learning-rate schedule (schedule: pycls, per epoch)"
        )
        comment = (
            f"{card.display_name}: the paper's training recipe (pycls configs/dds_baselines, "
            f"{PAPER_NUM_GPUS} GPUs)\nwith {schedule}.\n"
            f"Total batch {total} = {PAPER_NUM_GPUS} processes x batch_size {cfg.batch_size}; "
            f"lr = {cfg.lr_per_128:g} x {total} / {REFERENCE_BATCH} = {cfg.lr_per_128 * total / REFERENCE_BATCH:g}.\n"
            f"Precise BN on {cfg.precise_bn_samples} images (pycls BN.NUM_SAMPLES_PRECISE, mmcls PreciseBNHook): "
            f"{precise_bn_batches_per_process(cfg.precise_bn_samples, cfg.batch_size, PAPER_NUM_GPUS)} batches "
            f"per process on {PAPER_NUM_GPUS} processes, more on fewer.\n"
            "On fewer GPUs keep the total batch with grad_accum_steps, or let the lr scale with it.\n"
            "Generated by `python -m regnet_tutorial.train configs`; do not edit by hand."
        )
        written.append(save_config(cfg, folder / f"{name}.yaml", comment))
    return written
