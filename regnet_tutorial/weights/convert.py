"""Weights from other RegNet implementations, renamed into this package's layout.

Four libraries publish RegNet weights, each under its own parameter names. The
networks are the same (paper, Figure 3 and 4), so converting is renaming: every key
is split into a block prefix (stage and block number), a module path inside the block
and a tensor name (``weight``, ``bias``, ``running_mean``, ...), and the module path is
looked up in a small table per library. For example, the first block's 3x3 convolution:

=============  ==============================================
torchvision    ``trunk_output.block1.block1-0.f.b.0.weight``
timm           ``s1.b1.conv2.conv.weight``
pycls          ``s1.b1.f.b.weight``
mmcls          ``backbone.layer1.0.conv2.weight``
this package   ``stages.s1.b1.f.b.conv.weight``
=============  ==============================================

Channel order. pycls and mmclassification train RegNet on **BGR** images (OpenCV decoding;
pycls normalises with its ``_MEAN``/``_SD`` "in BGR order", mmcls with
``mean=[103.53, 116.28, 123.675], std=[57.375, 57.12, 58.395], to_rgb=False``). Those are the
ImageNet per-colour statistics, listed blue first, so their normalised BGR image is exactly our
normalised RGB image with its channels reversed. Converting their weights therefore also reverses
the stem convolution's input channels (``weight[:, [2, 1, 0]]``): the converted model takes this
tutorial's RGB input, normalised with the RGB ImageNet mean and std
(:data:`regnet_tutorial.train.loaders.IMAGENET_MEAN`, :data:`~regnet_tutorial.train.loaders.IMAGENET_STD`), and gives
what the original gives on the BGR image, ``ours(rgb) == upstream(bgr)`` up to float rounding.
torchvision and timm train on RGB; their weights are only renamed.

Loading into a model is strict: a mismatch is reported key by key, together with the
registered models whose shapes the checkpoint does fit (:func:`identify_model`).
"""

from __future__ import annotations

import functools
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

import torch
from torch import nn

from ..errors import RegNetTutorialError
from ..models import MODEL_CARDS, create_model
from .files import (
    CheckpointFormatError,
    _preview,
    load_safetensors,
    load_safetensors_metadata,
    read_checkpoint,
    save_safetensors,
)

Source = Literal["torchvision", "timm", "pycls", "mmcls", "regnet_tutorial"]

__all__ = [
    "BGR_SOURCES", "CheckpointFormatError", "CheckpointMismatchError", "KeyLayout", "LAYOUTS", "Source",
    "bgr_stem_to_rgb", "convert_state_dict", "detect_source", "identify_model", "load_checkpoint_file",
    "load_safetensors", "load_safetensors_metadata", "load_state_dict_strict",
    "save_safetensors", "to_pycls_state_dict", "unwrap_checkpoint",
]


class CheckpointMismatchError(RegNetTutorialError, ValueError):
    """A state dict whose keys or shapes do not fit the model it is loaded into.

    ``missing``, ``unexpected`` and ``mismatched`` (key, checkpoint shape, model shape)
    list the differences; ``matches`` names the registered models the checkpoint fits.
    """

    def __init__(
        self, message: str, missing: list[str], unexpected: list[str],
        mismatched: list[tuple[str, tuple[int, ...], tuple[int, ...]]], matches: list[str],
    ) -> None:
        super().__init__(message)
        self.missing, self.unexpected, self.mismatched, self.matches = missing, unexpected, mismatched, matches


@dataclass(frozen=True)
class KeyLayout:
    """How one library names the tensors of a RegNet.

    ``block`` matches a key's module path inside a block and captures ``stage``,
    ``block`` (numbered from ``first_block``) and ``rest``; ``block_renames`` maps
    ``rest`` to our names inside a block, ``other_renames`` the stem and head paths.
    Both are ``(regex, replacement)`` pairs matched against the whole path.
    """

    source: str
    block: str
    first_block: int
    block_renames: tuple[tuple[str, str], ...]
    other_renames: tuple[tuple[str, str], ...]


TENSOR_NAMES = ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")

LAYOUTS: dict[str, KeyLayout] = {
    layout.source: layout
    for layout in (
        KeyLayout(
            source="torchvision",
            block=r"trunk_output\.block(?P<stage>\d+)\.block(?P=stage)-(?P<block>\d+)\.(?P<rest>.+)",
            first_block=0,
            block_renames=(
                (r"(proj|f\.[abc])\.0", r"\1.conv"),  # Conv2dNormActivation: 0 conv, 1 BN
                (r"(proj|f\.[abc])\.1", r"\1.bn"),
                (r"f\.se\.fc1", "f.se.squeeze"),
                (r"f\.se\.fc2", "f.se.excite"),
            ),
            other_renames=((r"stem\.0", "stem.conv"), (r"stem\.1", "stem.bn"), (r"fc", "head.fc")),
        ),
        KeyLayout(
            source="timm",
            block=r"s(?P<stage>\d+)\.b(?P<block>\d+)\.(?P<rest>.+)",
            first_block=1,
            block_renames=(
                (r"conv1\.(conv|bn)", r"f.a.\1"),
                (r"conv2\.(conv|bn)", r"f.b.\1"),
                (r"conv3\.(conv|bn)", r"f.c.\1"),
                (r"se\.fc1", "f.se.squeeze"),
                (r"se\.fc2", "f.se.excite"),
                (r"downsample\.(conv|bn)", r"proj.\1"),
            ),
            other_renames=((r"stem\.(conv|bn)", r"stem.\1"), (r"head\.fc", "head.fc")),
        ),
        KeyLayout(
            source="pycls",
            block=r"s(?P<stage>\d+)\.b(?P<block>\d+)\.(?P<rest>.+)",
            first_block=1,
            block_renames=(
                (r"proj", "proj.conv"),
                (r"bn", "proj.bn"),  # the projection shortcut's BN sits on the block itself
                (r"f\.([abc])", r"f.\1.conv"),
                (r"f\.([abc])_bn", r"f.\1.bn"),
                (r"f\.se\.f_ex\.0", "f.se.squeeze"),  # f_ex = (conv, ReLU, conv, Sigmoid)
                (r"f\.se\.f_ex\.2", "f.se.excite"),
            ),
            other_renames=((r"stem\.(conv|bn)", r"stem.\1"), (r"head\.fc", "head.fc")),
        ),
        KeyLayout(
            source="mmcls",
            block=r"backbone\.layer(?P<stage>\d+)\.(?P<block>\d+)\.(?P<rest>.+)",
            first_block=0,
            block_renames=(
                (r"conv1", "f.a.conv"), (r"bn1", "f.a.bn"),
                (r"conv2", "f.b.conv"), (r"bn2", "f.b.bn"),
                (r"conv3", "f.c.conv"), (r"bn3", "f.c.bn"),
                (r"downsample\.0", "proj.conv"), (r"downsample\.1", "proj.bn"),
            ),
            other_renames=((r"backbone\.conv1", "stem.conv"), (r"backbone\.bn1", "stem.bn"), (r"head\.fc", "head.fc")),
        ),
        KeyLayout(
            source="regnet_tutorial",  # ours: the identity, for validating and unwrapping
            block=r"stages\.s(?P<stage>\d+)\.b(?P<block>\d+)\.(?P<rest>.+)",
            first_block=1,
            block_renames=(
                (r"(proj|f\.[abc])\.(conv|bn)", r"\1.\2"),
                (r"f\.se\.(squeeze|excite)", r"f.se.\1"),
            ),
            other_renames=((r"stem\.(conv|bn)", r"stem.\1"), (r"head\.fc", "head.fc")),
        ),
    )
}

BGR_SOURCES: frozenset[str] = frozenset({"pycls", "mmcls"})
"""Libraries whose RegNet weights were trained on BGR images (see the module docstring)."""

# Training checkpoints keep the weights under one of these keys: pycls ("model_state"),
# mmcls/mmpretrain and Lightning ("state_dict"), timm's and many other training scripts ("model").
WRAPPER_KEYS = ("model_state", "state_dict", "model")
# DistributedDataParallel and torch.compile put these in front of every key.
WRAPPER_PREFIXES = ("module.", "_orig_mod.")


def unwrap_checkpoint(checkpoint: Mapping[str, object]) -> dict[str, torch.Tensor]:
    """The state dict inside a checkpoint: a state dict itself, or one under ``model_state``,
    ``state_dict`` or ``model``; a ``module.`` (DDP) or ``_orig_mod.`` prefix is removed."""
    obj: object = checkpoint
    path = "the checkpoint"
    for _ in range(3):  # at most a couple of nested wrappers
        if not isinstance(obj, Mapping):
            raise CheckpointFormatError(
                f"{path} is a {type(obj).__name__}; expected a state dict (a mapping of names to tensors) "
                f"or a checkpoint dict holding one under {' / '.join(map(repr, WRAPPER_KEYS))}."
            )
        if not obj:
            raise CheckpointFormatError(f"{path} is empty: it holds no tensors.")
        if all(isinstance(v, torch.Tensor) for v in obj.values()):
            break
        wrapper = next((k for k in WRAPPER_KEYS if isinstance(obj.get(k), Mapping)), None)
        if wrapper is None:
            not_tensors = [k for k, v in obj.items() if not isinstance(v, torch.Tensor)]
            raise CheckpointFormatError(
                f"{path} holds no state dict: entries {_preview([str(k) for k in not_tensors])} are not "
                f"tensors, and none of {', '.join(map(repr, WRAPPER_KEYS))} holds the weights. "
                f"Pass the state dict itself. Top-level keys: {_preview([str(k) for k in obj])}."
            )
        obj, path = obj[wrapper], f"{path}[{wrapper!r}]"
    state_dict = dict(obj)  # type: ignore[arg-type]
    for prefix in WRAPPER_PREFIXES:
        if state_dict and all(k.startswith(prefix) for k in state_dict):
            state_dict = {k[len(prefix):]: v for k, v in state_dict.items()}
    return state_dict


def convert_state_dict(
    state_dict: Mapping[str, object], source: Source, rgb_input: bool = True,
) -> dict[str, torch.Tensor]:
    """Rename a ``source`` library's RegNet weights into this package's layout.

    Accepts a state dict or a whole checkpoint dict (see :func:`unwrap_checkpoint`).
    BN layers without a ``num_batches_tracked`` counter get one set to 0.

    For the BGR-trained sources (:data:`BGR_SOURCES`: pycls, mmcls) the stem convolution's
    input channels are reversed as well (:func:`bgr_stem_to_rgb`), so the converted model takes
    RGB images normalised with the RGB ImageNet mean and std and gives what the original gives
    on the same images in BGR. ``rgb_input=False`` keeps their BGR input order (only for
    feeding the model BGR images yourself).
    """
    layout = _layout(source)
    tensors = unwrap_checkpoint(state_dict)
    converted: dict[str, torch.Tensor] = {}
    unknown = []
    for key, value in tensors.items():
        new = _rename(key, layout)
        if new is None:
            unknown.append(key)
        elif new in converted:
            raise CheckpointFormatError(f"Two {source} keys both map to {new!r}; one of them is {key!r}.")
        else:
            converted[new] = value
    if unknown:
        guess = detect_source(tensors)
        hint = (
            f" They look like {guess!r} keys: pass source={guess!r}." if guess not in (None, source)
            else " Is it a RegNet checkpoint?"
        )
        raise CheckpointFormatError(
            f"{len(unknown)} of {len(tensors)} keys are not {source} RegNet keys, "
            f"e.g. {_preview(unknown, 3)}.{hint}"
        )
    if source in BGR_SOURCES and rgb_input:
        converted = bgr_stem_to_rgb(converted)
    return _with_bn_counters(converted)


def bgr_stem_to_rgb(state_dict: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """``state_dict`` (our layout) with the stem convolution's input channels reversed.

    A network trained on BGR images then takes RGB ones: the first convolution sums over
    input channels, so reversing its weights' channel axis is the same as reversing the
    image's. The normalisation must be the same per colour (it is for pycls and mmcls:
    the ImageNet statistics, listed in BGR order). Other tensors are shared, not copied; a
    state dict without the stem is returned as it is (strict loading reports it missing).
    """
    key = "stem.conv.weight"
    if key not in state_dict:
        return dict(state_dict)
    weight = state_dict[key]
    if weight.dim() != 4 or weight.shape[1] != 3:
        raise CheckpointFormatError(
            f"{key} has shape {tuple(weight.shape)}, not (out, 3, k, k): only a 3-channel colour stem "
            "can be switched from BGR to RGB input. Pass rgb_input=False to keep the weights as they are."
        )
    return {**state_dict, key: weight[:, [2, 1, 0]].contiguous()}


_TO_PYCLS = (  # our module path inside a block -> pycls's (the inverse of LAYOUTS["pycls"].block_renames)
    (r"proj\.conv", "proj"), (r"proj\.bn", "bn"), (r"f\.([abc])\.conv", r"f.\1"), (r"f\.([abc])\.bn", r"f.\1_bn"),
    (r"f\.se\.squeeze", "f.se.f_ex.0"), (r"f\.se\.excite", "f.se.f_ex.2"),
)


def to_pycls_state_dict(state_dict: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """This package's weights in pycls's layout and channel order (BGR input): what pycls saves
    under ``model_state``. The inverse of ``convert_state_dict(..., "pycls")``; used to make
    pycls-format files for demonstrations and tests."""
    out: dict[str, torch.Tensor] = {}
    for key, value in bgr_stem_to_rgb(state_dict).items():  # reversing the channels is its own inverse
        module, _, tensor = key.rpartition(".")
        block = re.fullmatch(r"stages\.(s\d+\.b\d+)\.(.+)", module)
        if block is None:
            out[key] = value  # stem.conv, stem.bn, head.fc: the same names in pycls
            continue
        for pattern, replacement in _TO_PYCLS:
            found = re.fullmatch(pattern, block[2])
            if found:
                out[f"{block[1]}.{found.expand(replacement)}.{tensor}"] = value
                break
        else:
            raise CheckpointFormatError(f"{key} has no pycls name: is the state dict in this package's layout?")
    return out


def detect_source(state_dict: Mapping[str, object]) -> str | None:
    """The library whose RegNet layout names every key of ``state_dict``, or ``None``."""
    keys = list(unwrap_checkpoint(state_dict))
    for source, layout in LAYOUTS.items():
        if all(_rename(k, layout) is not None for k in keys):
            return source
    return None


def load_checkpoint_file(
    path: str | os.PathLike, source: Source, rgb_input: bool = True,
) -> dict[str, torch.Tensor]:
    """Read a ``source`` library's checkpoint file (never executing code) and convert it
    (:func:`convert_state_dict`: pycls and mmcls weights are switched to RGB input).

    ``.pth``/``.pt``/``.pyth`` files are opened with ``torch.load(weights_only=True)``,
    ``.safetensors`` files with safetensors.
    """
    _layout(source)  # reject a bad source before touching the file
    checkpoint = read_checkpoint(path)
    try:
        return convert_state_dict(checkpoint, source, rgb_input)  # type: ignore[arg-type]
    except CheckpointFormatError as err:
        raise CheckpointFormatError(f"{path}: {err}") from err


def identify_model(state_dict: Mapping[str, torch.Tensor]) -> list[str]:
    """The registered models (:data:`~regnet_tutorial.models.MODEL_CARDS`) whose tensors have
    exactly the shapes of ``state_dict`` (in this package's layout).

    The classifier's size and the input channels are read from the checkpoint, so a
    fine-tuned model with another number of classes is still recognised.
    """
    shapes = _shapes(state_dict)
    num_classes = shapes.get("head.fc.weight", (1000,))[0]
    stem = shapes.get("stem.conv.weight", (0, 3))
    in_channels = stem[1] if len(stem) == 4 else 3
    depths, widths = _stage_depths_and_widths(shapes)
    # Building a model, even on the meta device, takes a moment: compare depths and widths first.
    candidates = [
        name for name, card in MODEL_CARDS.items()
        if (card.stages().depths, card.stages().widths) == (depths, widths)
    ]
    return [name for name in candidates if _model_shapes(name, num_classes, in_channels) == shapes]


def load_state_dict_strict(
    model: nn.Module, state_dict: Mapping[str, torch.Tensor], model_name: str | None = None,
    assign: bool = False,
) -> nn.Module:
    """Load ``state_dict`` (this package's layout) into ``model``; every key and shape must match.

    On a mismatch, raises :class:`CheckpointMismatchError` listing the differences and
    naming the registered models the checkpoint does fit. ``model_name`` (default:
    looked up from the model's stage spec) makes the suggestion precise. ``assign``
    is passed to :meth:`torch.nn.Module.load_state_dict` (use it for models built on the
    meta device). Returns the model.
    """
    state_dict = _with_bn_counters(dict(state_dict))
    expected = model.state_dict()
    missing = [k for k in expected if k not in state_dict]
    unexpected = [k for k in state_dict if k not in expected]
    mismatched = [
        (k, tuple(v.shape), tuple(expected[k].shape))
        for k, v in state_dict.items() if k in expected and v.shape != expected[k].shape
    ]
    if missing or unexpected or mismatched:
        model_name = model_name or _registered_name(model)
        matches = identify_model(state_dict)
        raise CheckpointMismatchError(
            _mismatch_message(state_dict, model_name, missing, unexpected, mismatched, matches),
            missing, unexpected, mismatched, matches,
        )
    model.load_state_dict(state_dict, strict=True, assign=assign)
    return model


def _layout(source: str) -> KeyLayout:
    if source not in LAYOUTS:
        raise ValueError(f"Unknown checkpoint source {source!r}; choose one of {', '.join(map(repr, LAYOUTS))}.")
    return LAYOUTS[source]


def _rename(key: str, layout: KeyLayout) -> str | None:
    """Our name for ``key`` in ``layout``, or ``None`` if the layout has no such key."""
    module, _, tensor = key.rpartition(".")
    if tensor not in TENSOR_NAMES:
        return None
    block = re.fullmatch(layout.block, module)
    if block:
        index = int(block["block"]) - layout.first_block + 1
        prefix, module, table = f"stages.s{block['stage']}.b{index}.", block["rest"], layout.block_renames
    else:
        prefix, table = "", layout.other_renames
    for pattern, replacement in table:
        found = re.fullmatch(pattern, module)
        if found:
            return f"{prefix}{found.expand(replacement)}.{tensor}"
    return None


def _with_bn_counters(state_dict: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Add ``num_batches_tracked = 0`` for BN layers saved without it (as PyTorch starts it)."""
    for key in [k for k in state_dict if k.endswith(".running_mean")]:
        counter = key.removesuffix("running_mean") + "num_batches_tracked"
        state_dict.setdefault(counter, torch.tensor(0, dtype=torch.long))
    return state_dict


def _shapes(state_dict: Mapping[str, torch.Tensor]) -> dict[str, tuple[int, ...]]:
    return {k: tuple(v.shape) for k, v in state_dict.items() if not k.endswith("num_batches_tracked")}


def _stage_depths_and_widths(shapes: Mapping[str, tuple[int, ...]]) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """Blocks per stage and each stage's output width, read from the keys and shapes."""
    blocks: dict[int, int] = {}
    for key in shapes:
        found = re.match(r"stages\.s(\d+)\.b(\d+)\.", key)
        if found:
            stage, block = int(found[1]), int(found[2])
            blocks[stage] = max(blocks.get(stage, 0), block)
    stages = sorted(blocks)
    widths = tuple(shapes.get(f"stages.s{s}.b1.f.c.conv.weight", (0,))[0] for s in stages)
    return tuple(blocks[s] for s in stages), widths


@functools.lru_cache(maxsize=256)
def _model_shapes(name: str, num_classes: int, in_channels: int) -> dict[str, tuple[int, ...]]:
    if num_classes < 1 or in_channels < 1:
        return {}
    with torch.device("meta"):  # shapes only: no memory, no initialisation cost
        model = create_model(name, num_classes=num_classes, in_channels=in_channels)
    return _shapes(model.state_dict())


def _registered_name(model: nn.Module) -> str | None:
    spec = getattr(model, "spec", None)
    same = [name for name, card in MODEL_CARDS.items() if card.stages() == spec]
    return same[0] if len(same) == 1 else None


def _mismatch_message(
    state_dict: Mapping[str, torch.Tensor], model_name: str | None, missing: list[str],
    unexpected: list[str], mismatched: list[tuple[str, tuple[int, ...], tuple[int, ...]]],
    matches: list[str],
) -> str:
    target = model_name or "the model"
    lines = [f"The checkpoint does not fit {target}:"]
    if missing:
        lines.append(f"  {len(missing)} missing keys: {_preview(missing)}")
    if unexpected:
        lines.append(f"  {len(unexpected)} unexpected keys: {_preview(unexpected)}")
    if mismatched:
        shown = "; ".join(f"{k}: checkpoint {c} vs model {m}" for k, c, m in mismatched[:5])
        more = f" ... and {len(mismatched) - 5} more" if len(mismatched) > 5 else ""
        lines.append(f"  {len(mismatched)} shape mismatches: {shown}{more}")
    lines.append(_suggestion(state_dict, model_name, matches))
    return "\n".join(lines)


def _suggestion(state_dict: Mapping[str, torch.Tensor], model_name: str | None, matches: list[str]) -> str:
    if matches:
        best = matches[0]
        others = f" (also {', '.join(matches[1:])}, with the same shapes)" if len(matches) > 1 else ""
        if model_name and f"{model_name}_tv" in matches:
            best, why = f"{model_name}_tv", "did you mean the torchvision rounding rule?"
        elif model_name and model_name.endswith("_tv") and model_name.removesuffix("_tv") in matches:
            best, why = model_name.removesuffix("_tv"), "did you mean the pycls rounding rule?"
        else:
            why = f"did you mean create_model({best!r})?"
        return f"The checkpoint matches {best}{others}: {why}"
    source = detect_source(state_dict)
    if source not in (None, "regnet_tutorial"):
        return (
            f"Its keys are in {source}'s layout: convert them first with "
            f"convert_state_dict(state_dict, source={source!r})."
        )
    return f"It matches none of the {len(MODEL_CARDS)} registered models either (list_models() names them)."

