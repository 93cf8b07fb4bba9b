"""Checkpoint conversion, safe loading, strict loading with suggestions, safetensors IO.

Real pycls (.pyth) and mmclassification (.pth) RegNet checkpoints cannot be fetched
offline, and neither library installs here (pycls' weights are on a server we cannot
reach; mmcv needs compiling). Their checkpoints are therefore rebuilt in this file from
the documented naming rules, by a key-name generator written independently of
``regnet_tutorial.weights.convert``'s rename tables, and saved the way those libraries save them.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np
import pytest
import timm
import torch
from PIL import Image
from torch import nn

from regnet_tutorial import MODEL_CARDS, StageSpec, create_model, get_card
from regnet_tutorial.weights.convert import (
    CheckpointFormatError,
    CheckpointMismatchError,
    convert_state_dict,
    detect_source,
    identify_model,
    load_checkpoint_file,
    load_safetensors,
    load_safetensors_metadata,
    load_state_dict_strict,
    save_safetensors,
)

BN_TENSORS = ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")


def randomised(name: str, seed: int = 0, **kwargs) -> nn.Module:
    """A model whose every tensor, BN statistics included, holds distinct random values,
    so that a tensor placed under the wrong (same-shaped) key changes the result."""
    torch.manual_seed(seed)
    model = create_model(name, **kwargs)
    with torch.no_grad():
        for key, tensor in model.state_dict().items():
            if key.endswith("num_batches_tracked"):
                tensor.fill_(int(torch.randint(1, 1000, ())))
            elif key.endswith("running_var") or key.endswith("bn.weight"):
                tensor.copy_(torch.rand_like(tensor) + 0.5)
            else:
                tensor.copy_(torch.randn_like(tensor) * (0.1 if tensor.dim() == 1 else tensor[0].numel() ** -0.5))
    return model.eval()


def outputs(model: nn.Module, seed: int = 1) -> torch.Tensor:
    x = torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(seed))
    with torch.no_grad():
        return model.eval()(x)


# ---- independent key-name generators for the pycls and mmcls layouts --------------


def _conv_bn(names: dict[str, str], conv: str, bn: str, ours: str) -> None:
    names[f"{conv}.weight"] = f"{ours}.conv.weight"
    for t in BN_TENSORS:
        names[f"{bn}.{t}"] = f"{ours}.bn.{t}"


def _blocks(spec: StageSpec):
    """(stage number, block number from 1, whether the block has a projection shortcut)."""
    w_in = spec.stem_width
    for s, (depth, width, stride) in enumerate(zip(spec.depths, spec.widths, spec.strides), start=1):
        for b in range(1, depth + 1):
            yield s, b, b == 1 and (w_in != width or stride != 1)
        w_in = width


def pycls_names(spec: StageSpec) -> dict[str, str]:
    """pycls key -> our key, from pycls's naming: stem.conv/bn, s{i}.b{j}.proj with its BN
    as s{i}.b{j}.bn, f.a/f.a_bn, f.b/f.b_bn, f.se.f_ex.0 / .2, f.c/f.c_bn, head.fc."""
    names: dict[str, str] = {}
    _conv_bn(names, "stem.conv", "stem.bn", "stem")
    for s, b, has_proj in _blocks(spec):
        block, ours = f"s{s}.b{b}", f"stages.s{s}.b{b}"
        if has_proj:
            _conv_bn(names, f"{block}.proj", f"{block}.bn", f"{ours}.proj")
        for part in "ab":
            _conv_bn(names, f"{block}.f.{part}", f"{block}.f.{part}_bn", f"{ours}.f.{part}")
        if spec.se_ratio > 0:
            for index, our_part in ((0, "squeeze"), (2, "excite")):
                for t in ("weight", "bias"):
                    names[f"{block}.f.se.f_ex.{index}.{t}"] = f"{ours}.f.se.{our_part}.{t}"
        _conv_bn(names, f"{block}.f.c", f"{block}.f.c_bn", f"{ours}.f.c")
    names.update({"head.fc.weight": "head.fc.weight", "head.fc.bias": "head.fc.bias"})
    return names


def mmcls_names(spec: StageSpec) -> dict[str, str]:
    """mmcls key -> our key, from mmcls's ResNet-style naming: backbone.conv1/bn1 (stem),
    backbone.layer{i}.{j} (j from 0) with conv1-3/bn1-3 and downsample.0/.1, head.fc."""
    assert spec.se_ratio == 0, "mmcls's RegNet has no squeeze-and-excitation"
    names: dict[str, str] = {}
    _conv_bn(names, "backbone.conv1", "backbone.bn1", "stem")
    for s, b, has_proj in _blocks(spec):
        block, ours = f"backbone.layer{s}.{b - 1}", f"stages.s{s}.b{b}"
        for i, part in enumerate("abc", start=1):
            _conv_bn(names, f"{block}.conv{i}", f"{block}.bn{i}", f"{ours}.f.{part}")
        if has_proj:
            _conv_bn(names, f"{block}.downsample.0", f"{block}.downsample.1", f"{ours}.proj")
    names.update({"head.fc.weight": "head.fc.weight", "head.fc.bias": "head.fc.bias"})
    return names


def _round_trip(tmp_path: Path, model_name: str, names: dict[str, str], wrap, filename: str, source: str):
    original = randomised(model_name)
    ours = original.state_dict()
    assert sorted(names.values()) == sorted(ours), "the generator must name every tensor exactly once"
    foreign = {theirs: ours[mine].clone() for theirs, mine in names.items()}
    path = tmp_path / filename
    torch.save(wrap(foreign), path)

    converted = load_checkpoint_file(path, source)
    assert set(converted) == set(ours)
    for theirs, mine in names.items():
        expected = foreign[theirs]
        if mine == "stem.conv.weight":  # BGR-trained: the stem's input channels come reversed
            expected = torch.stack([expected[:, 2], expected[:, 1], expected[:, 0]], dim=1)
        assert torch.equal(converted[mine], expected), f"{theirs} did not land on {mine}"
    fresh = load_state_dict_strict(create_model(model_name), converted).eval()
    x_bgr = torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        torch.testing.assert_close(fresh(x_bgr[:, [2, 1, 0]]), original(x_bgr), rtol=1e-5, atol=1e-5)
    # Kept in BGR order on request, the weights are exactly the original's.
    as_is = load_checkpoint_file(path, source, rgb_input=False)
    assert all(torch.equal(as_is[k], v) for k, v in ours.items())


def test_pycls_checkpoint_round_trip(tmp_path: Path) -> None:
    name = "regnety_200mf"  # a Y model, so the SE keys are exercised too
    names = pycls_names(get_card(name).stages())
    assert "s1.b1.f.se.f_ex.2.bias" in names and "s1.b1.bn.running_var" in names

    def as_pycls_saves_it(state):  # pycls.core.checkpoint.save_checkpoint
        return {
            "epoch": 99, "model_state": state, "cfg": "MODEL:\n  TYPE: regnet\n",
            "optimizer_state": {"state": {}, "param_groups": [{"lr": 0.1, "momentum": 0.9, "params": [0, 1]}]},
        }

    _round_trip(tmp_path, name, names, as_pycls_saves_it, "RegNetY-200MF_dds_8gpu.pyth", "pycls")


def test_mmcls_checkpoint_round_trip(tmp_path: Path) -> None:
    name = "regnetx_400mf"
    names = mmcls_names(get_card(name).stages())
    assert "backbone.layer1.0.downsample.1.running_mean" in names

    def as_mmcls_saves_it(state):  # mmcv.runner.save_checkpoint
        meta = {"epoch": 100, "mmcls_version": "0.25.0", "CLASSES": ("tench", "goldfish")}
        return {"meta": meta, "state_dict": state}

    _round_trip(tmp_path, name, names, as_mmcls_saves_it, "regnetx-400mf_8xb128_in1k.pth", "mmcls")


# ---- channel order: pycls and mmcls weights were trained on BGR images ---------------

# Each library's preprocessing for its BGR image (cv2.imread order), in that order:
# pycls/datasets/imagenet.py scales to [0, 1] and uses _MEAN/_SD "in BGR order";
# mmcls's RegNet configs normalise 0-255 pixels with to_rgb=False.
UPSTREAM_BGR_NORM = {
    "pycls": (1 / 255, (0.406, 0.456, 0.485), (0.225, 0.224, 0.229)),
    "mmcls": (1.0, (103.53, 116.28, 123.675), (57.375, 57.12, 58.395)),
}


def _to_timm_key(key: str, source: str) -> str:
    """The upstream key's name in timm's RegNet (an independent implementation of the network)."""
    if source == "mmcls":
        key = key.replace("backbone.conv1.", "stem.conv.").replace("backbone.bn1.", "stem.bn.")
        key = re.sub(r"backbone\.layer(\d)\.(\d+)\.", lambda m: f"s{m[1]}.b{int(m[2]) + 1}.", key)
        key = re.sub(r"\.conv(\d)\.", r".conv\1.conv.", key)
        key = re.sub(r"\.bn(\d)\.", r".conv\1.bn.", key)
        return key.replace(".downsample.0.", ".downsample.conv.").replace(".downsample.1.", ".downsample.bn.")
    key = re.sub(r"^(s\d\.b\d+)\.proj\.", r"\1.downsample.conv.", key)
    key = re.sub(r"^(s\d\.b\d+)\.bn\.", r"\1.downsample.bn.", key)
    for part, timm_part in (("a", "conv1"), ("b", "conv2"), ("c", "conv3")):
        key = key.replace(f".f.{part}.", f".{timm_part}.conv.").replace(f".f.{part}_bn.", f".{timm_part}.bn.")
    return key.replace(".f.se.f_ex.0.", ".se.fc1.").replace(".f.se.f_ex.2.", ".se.fc2.")


def _images(n: int = 3, size: int = 64) -> list[Image.Image]:
    """RGB images whose three channels differ (a colour gradient plus noise)."""
    g = torch.Generator().manual_seed(7)
    ramp = torch.linspace(0, 1, size)
    images = []
    for _ in range(n):
        base = torch.stack([ramp[None, :].expand(size, size), ramp[:, None].expand(size, size),
                            torch.full((size, size), 0.3)], dim=-1)
        pixels = (base * 160 + torch.rand(size, size, 3, generator=g) * 95).round().to(torch.uint8)
        images.append(Image.fromarray(pixels.numpy(), "RGB"))
    return images


@pytest.mark.parametrize(
    ("source", "model_name", "names_of"),
    [("pycls", "regnety_200mf", pycls_names), ("mmcls", "regnetx_400mf", mmcls_names)],
)
def test_converted_bgr_weights_take_rgb(tmp_path: Path, source: str, model_name: str, names_of) -> None:
    from regnet_tutorial.train.loaders import eval_transform

    # An upstream checkpoint of the documented layout, and the network it describes run the
    # upstream way: timm's RegNet with the weights mapped by hand, fed BGR images.
    original = randomised(model_name).state_dict()
    upstream = {theirs: original[ours].clone() for theirs, ours in names_of(get_card(model_name).stages()).items()}
    torch.save({"state_dict": upstream} if source == "mmcls" else {"model_state": upstream}, tmp_path / "w.pth")
    reference = timm.create_model(get_card(model_name).timm, pretrained=False, num_classes=1000).eval()
    reference.load_state_dict({_to_timm_key(k, source): v for k, v in upstream.items()}, strict=True)

    images = _images()
    scale, mean, std = UPSTREAM_BGR_NORM[source]
    bgr = torch.stack([torch.from_numpy(np.asarray(im)[:, :, ::-1].copy()) for im in images])  # as cv2 reads
    bgr = ((bgr.permute(0, 3, 1, 2).float() * scale - torch.tensor(mean)[:, None, None])
           / torch.tensor(std)[:, None, None])
    # Ours: the tutorial's own RGB evaluation pipeline on the same images.
    rgb = torch.stack([eval_transform(64, 64)(im) for im in images])
    torch.testing.assert_close(rgb, bgr.flip(1), rtol=0, atol=1e-5)  # same pixels, reversed channels

    converted = load_state_dict_strict(create_model(model_name), load_checkpoint_file(tmp_path / "w.pth", source))
    with torch.no_grad():
        ours_rgb, upstream_bgr = converted.eval()(rgb), reference(bgr)
        torch.testing.assert_close(ours_rgb, upstream_bgr, rtol=1e-4, atol=1e-4)
        # Without the flip the same RGB input gives clearly different logits: the test can fail.
        unflipped = load_state_dict_strict(
            create_model(model_name), load_checkpoint_file(tmp_path / "w.pth", source, rgb_input=False)
        ).eval()
        assert (unflipped(rgb) - upstream_bgr).abs().max() > 100 * 1e-4
        torch.testing.assert_close(unflipped(bgr), upstream_bgr, rtol=1e-4, atol=1e-4)


def test_only_a_three_channel_stem_is_flipped() -> None:
    grey = create_model("regnetx_200mf", in_channels=1).state_dict()
    mmcls = {theirs: grey[ours] for theirs, ours in mmcls_names(get_card("regnetx_200mf").stages()).items()}
    with pytest.raises(CheckpointFormatError, match=r"shape \(32, 1, 3, 3\).*rgb_input=False"):
        convert_state_dict(mmcls, "mmcls")
    assert convert_state_dict(mmcls, "mmcls", rgb_input=False)["stem.conv.weight"].shape == (32, 1, 3, 3)
    tv = {"stem.0.weight": torch.randn(32, 3, 3, 3)}  # torchvision trains on RGB: renamed only
    assert torch.equal(convert_state_dict(tv, "torchvision")["stem.conv.weight"], tv["stem.0.weight"])


@pytest.mark.parametrize(
    ("source", "key", "ours"),
    [  # examples straight from each library's layout description
        ("torchvision", "stem.1.running_var", "stem.bn.running_var"),
        ("torchvision", "trunk_output.block2.block2-0.proj.0.weight", "stages.s2.b1.proj.conv.weight"),
        ("torchvision", "trunk_output.block4.block4-6.f.se.fc2.bias", "stages.s4.b7.f.se.excite.bias"),
        ("torchvision", "fc.weight", "head.fc.weight"),
        ("timm", "s3.b2.conv2.bn.weight", "stages.s3.b2.f.b.bn.weight"),
        ("timm", "s1.b1.downsample.conv.weight", "stages.s1.b1.proj.conv.weight"),
        ("timm", "s2.b1.se.fc1.weight", "stages.s2.b1.f.se.squeeze.weight"),
        ("pycls", "s1.b1.bn.weight", "stages.s1.b1.proj.bn.weight"),
        ("pycls", "s4.b3.f.c_bn.running_mean", "stages.s4.b3.f.c.bn.running_mean"),
        ("pycls", "s2.b1.f.se.f_ex.0.weight", "stages.s2.b1.f.se.squeeze.weight"),
        ("mmcls", "backbone.bn1.bias", "stem.bn.bias"),
        ("mmcls", "backbone.layer3.0.downsample.1.weight", "stages.s3.b1.proj.bn.weight"),
        ("mmcls", "backbone.layer2.4.conv3.weight", "stages.s2.b5.f.c.conv.weight"),
        ("mmcls", "head.fc.bias", "head.fc.bias"),
    ],
)
def test_documented_keys_map_to_ours(source: str, key: str, ours: str) -> None:
    value = torch.randn(5, generator=torch.Generator().manual_seed(len(key)))
    converted = convert_state_dict({key: value}, source)
    assert list(converted)[0] == ours  # (a BN key also brings its num_batches_tracked)
    assert torch.equal(converted[ours], value)  # the tensor itself moved, unchanged


def test_checkpoint_wrappers_are_unwrapped() -> None:
    state = randomised("regnetx_200mf").state_dict()
    plain = convert_state_dict(state, "regnet_tutorial")
    for wrapped in (
        {"model": {f"module.{k}": v for k, v in state.items()}, "epoch": 3},  # DDP, timm's train script
        {"state_dict": state, "meta": {}},
        {"model_state": {f"_orig_mod.{k}": v for k, v in state.items()}},  # torch.compile
    ):
        unwrapped = convert_state_dict(wrapped, "regnet_tutorial")
        assert unwrapped.keys() == plain.keys()
        assert all(torch.equal(unwrapped[k], state[k]) for k in state)  # values too, key by key


def test_missing_batch_counters_are_added_as_zero() -> None:
    model = randomised("regnetx_200mf")
    without = {k: v for k, v in model.state_dict().items() if not k.endswith("num_batches_tracked")}
    converted = convert_state_dict(without, "regnet_tutorial")
    assert converted["stages.s2.b1.proj.bn.num_batches_tracked"].item() == 0
    load_state_dict_strict(create_model("regnetx_200mf"), without)  # strict, yet no complaint


def test_identify_model() -> None:
    tv = create_model("regnetx_400mf_tv").state_dict()
    assert identify_model(tv) == ["regnetx_400mf_tv"]  # one of the three models the rounding rules split
    assert identify_model(create_model("regnety_600mf").state_dict()) == ["regnety_600mf"]  # no tv variant
    assert identify_model(create_model("regnety_1_6gf").state_dict()) == ["regnety_1_6gf", "regnety_1_6gf_tv"]
    # A fine-tuned model (10 classes, grey images) is still recognised.
    assert identify_model(create_model("regnetx_200mf", num_classes=10, in_channels=1).state_dict()) == [
        "regnetx_200mf"
    ]
    assert identify_model({"conv.weight": torch.zeros(3)}) == []


def test_detect_source() -> None:
    assert detect_source(create_model("regnetx_200mf").state_dict()) == "regnet_tutorial"
    pycls = {k: torch.zeros(1) for k in pycls_names(get_card("regnety_200mf").stages())}
    assert detect_source(pycls) == "pycls"
    assert detect_source({"features.0.weight": torch.zeros(1)}) is None


# ---- strict loading and its suggestions ----------------------------------------------


def test_wrong_rounding_rule_is_suggested() -> None:
    state = create_model("regnetx_400mf_tv").state_dict()
    with pytest.raises(CheckpointMismatchError) as err:
        load_state_dict_strict(create_model("regnetx_400mf"), state)  # name found from the model's spec
    assert "The checkpoint matches regnetx_400mf_tv: did you mean the torchvision rounding rule?" in str(err.value)
    with pytest.raises(CheckpointMismatchError, match="did you mean the pycls rounding rule"):
        load_state_dict_strict(create_model("regnety_800mf_tv"), create_model("regnety_800mf").state_dict())


def test_wrong_model_lists_differences_and_suggests_the_right_one() -> None:
    state = create_model("regnetx_200mf").state_dict()
    with pytest.raises(CheckpointMismatchError) as err:
        load_state_dict_strict(create_model("regnety_200mf"), state, model_name="regnety_200mf")
    e, message = err.value, str(err.value)
    se_keys = [k for k in create_model("regnety_200mf").state_dict() if ".f.se." in k]
    assert sorted(e.missing) == sorted(se_keys) and not e.unexpected
    assert f"{len(se_keys)} missing keys" in message and f"... and {len(se_keys) - 5} more" in message
    assert "stages.s1.b1.f.se.squeeze.weight" in message
    assert e.matches == ["regnetx_200mf"]
    assert "did you mean create_model('regnetx_200mf')?" in message

    with pytest.raises(CheckpointMismatchError) as err:
        load_state_dict_strict(create_model("regnetx_200mf"), create_model("regnetx_600mf").state_dict())
    assert err.value.mismatched and "shape mismatches" in str(err.value)
    assert "checkpoint (48, 32, 1, 1) vs model (24, 32, 1, 1)" in str(err.value)  # stage 1 widths 48 vs 24
    assert "regnetx_600mf" in str(err.value)


def test_unconverted_checkpoint_gets_a_conversion_hint() -> None:
    pycls = {p: torch.zeros(1) for p in pycls_names(get_card("regnety_200mf").stages())}
    with pytest.raises(CheckpointMismatchError, match=r"convert_state_dict\(state_dict, source='pycls'\)"):
        load_state_dict_strict(create_model("regnety_200mf"), pycls)


def test_unknown_architecture_says_so() -> None:
    state = create_model("regnetx_200mf").state_dict()
    state["head.fc.weight"] = torch.zeros(1000, 7)
    with pytest.raises(CheckpointMismatchError, match=f"matches none of the {len(MODEL_CARDS)} registered models"):
        load_state_dict_strict(create_model("regnetx_200mf"), state)


# ---- conversion errors ---------------------------------------------------------------


def test_unknown_source_is_rejected(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"Unknown checkpoint source 'keras'.*'torchvision', 'timm', 'pycls', 'mmcls'"):
        convert_state_dict({}, "keras")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="Unknown checkpoint source"):
        load_checkpoint_file(tmp_path / "never-read.pth", "caffe")  # type: ignore[arg-type]


def test_wrong_source_names_the_right_one() -> None:
    mmcls = {k: torch.zeros(1) for k in mmcls_names(get_card("regnetx_200mf").stages())}
    with pytest.raises(CheckpointFormatError, match=r"not pycls RegNet keys.*pass source='mmcls'"):
        convert_state_dict(mmcls, "pycls")
    with pytest.raises(CheckpointFormatError, match="Is it a RegNet checkpoint"):
        convert_state_dict({"features.0.weight": torch.zeros(1)}, "timm")


def test_checkpoint_without_weights_is_rejected() -> None:
    with pytest.raises(CheckpointFormatError, match=r"holds no state dict.*'epoch'"):
        convert_state_dict({"epoch": 3, "cfg": "x"}, "pycls")
    with pytest.raises(CheckpointFormatError, match="is a list; expected a state dict"):
        convert_state_dict([torch.zeros(1)], "pycls")  # type: ignore[arg-type]
    with pytest.raises(CheckpointFormatError, match=r"\['state_dict'\] is empty"):
        convert_state_dict({"state_dict": {}, "meta": {}}, "mmcls")


# ---- file errors ---------------------------------------------------------------------


def test_missing_file(tmp_path: Path) -> None:
    missing = tmp_path / "nope" / "weights.pth"
    with pytest.raises(FileNotFoundError, match=r"No checkpoint file at .*nope/weights\.pth"):
        load_checkpoint_file(missing, "torchvision")
    with pytest.raises(FileNotFoundError, match="weights.safetensors"):
        load_safetensors(tmp_path / "weights.safetensors")


@pytest.mark.parametrize("legacy", [False, True], ids=["zip", "legacy-pickle"])
def test_truncated_torch_file(tmp_path: Path, legacy: bool) -> None:
    path = tmp_path / "cut.pth"
    torch.save(create_model("regnetx_200mf").state_dict(), path, _use_new_zipfile_serialization=not legacy)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(CheckpointFormatError, match=r"cut\.pth could not be read .* truncated or corrupt"):
        load_checkpoint_file(path, "regnet_tutorial")


def test_truncated_safetensors_file(tmp_path: Path) -> None:
    path = save_safetensors(create_model("regnetx_200mf"), tmp_path / "cut.safetensors")
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(CheckpointFormatError, match=r"cut\.safetensors could not be read .* truncated or corrupt"):
        load_checkpoint_file(path, "regnet_tutorial")


def test_files_that_are_not_checkpoints(tmp_path: Path) -> None:
    text = tmp_path / "notes.pth"
    text.write_text("these are not weights\n")
    jpeg = tmp_path / "cat.pth"
    Image.new("RGB", (8, 8), "orange").save(jpeg, format="JPEG")
    empty = tmp_path / "empty.pth"
    empty.touch()
    for path, kind in ((text, "a text file"), (jpeg, "a JPEG image"), (empty, "an empty file")):
        with pytest.raises(CheckpointFormatError) as err:
            load_checkpoint_file(path, "torchvision")
        assert f"{path} is not a checkpoint: it looks like {kind}" in str(err.value)
        assert "torch.save" in str(err.value) and ".safetensors" in str(err.value)  # says what was expected
    with pytest.raises(CheckpointFormatError, match="is a folder"):
        load_checkpoint_file(tmp_path, "torchvision")


MARKER = Path(os.environ.get("TMPDIR", "/tmp")) / "regnet_tutorial_test_code_ran"


def _leave_marker() -> None:
    MARKER.touch()


class CodeOnLoad:
    """Unpickling this calls ``_leave_marker``: what a malicious checkpoint would do."""

    def __reduce__(self):
        return (_leave_marker, ())


def test_pickled_objects_are_refused_and_never_run(tmp_path: Path) -> None:
    path = tmp_path / "trojan.pth"
    MARKER.unlink(missing_ok=True)
    torch.save({"model_state": create_model("regnetx_200mf").state_dict(), "payload": CodeOnLoad()}, path)
    assert not MARKER.exists()
    with pytest.raises(CheckpointFormatError) as err:
        load_checkpoint_file(path, "pycls")
    message = str(err.value)
    assert "trojan.pth was refused" in message and "arbitrary code" in message
    assert "_leave_marker" in message  # names the object it refused
    assert not MARKER.exists()
    # The payload is live: an unrestricted load runs it. The refusal is what protected us.
    torch.load(path, weights_only=False)
    assert MARKER.exists()
    MARKER.unlink()


def test_safe_torch_file_of_the_wrong_kind(tmp_path: Path) -> None:
    path = tmp_path / "numbers.pth"
    torch.save([1, 2, 3], path)
    with pytest.raises(CheckpointFormatError, match="is a list; expected a state dict"):
        load_checkpoint_file(path, "timm")


# ---- safetensors ---------------------------------------------------------------------


def test_safetensors_round_trip(tmp_path: Path) -> None:
    model = randomised("regnety_200mf")
    metadata = {"model": "regnety_200mf", "epoch": "100"}
    path = save_safetensors(model, tmp_path / "regnety_200mf.safetensors", metadata=metadata)
    loaded = load_safetensors(path)
    assert loaded.keys() == model.state_dict().keys()
    assert all(torch.equal(loaded[k], v) for k, v in model.state_dict().items())
    assert load_safetensors_metadata(path) == {"format": "pt", "model": "regnety_200mf", "epoch": "100"}
    fresh = load_state_dict_strict(create_model("regnety_200mf"), load_checkpoint_file(path, "regnet_tutorial"))
    assert torch.equal(outputs(fresh), outputs(model))


def test_safetensors_write_is_atomic(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = save_safetensors(create_model("regnetx_200mf"), tmp_path / "w.safetensors", metadata={"v": "1"})
    before = path.read_bytes()

    write_bytes = Path.write_bytes

    def crash_midway(self, data):
        write_bytes(self, data[:100])  # part of the file, then the disk fills up
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(Path, "write_bytes", crash_midway)
    with pytest.raises(OSError, match="No space left"):
        save_safetensors(create_model("regnetx_400mf"), path, metadata={"v": "2"})
    monkeypatch.undo()
    assert path.read_bytes() == before
    assert load_safetensors_metadata(path)["v"] == "1"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["w.safetensors"]  # no temp file left

    # The real writer refusing its input (tensors sharing memory) leaves the file alone too.
    shared = torch.zeros(4)
    with pytest.raises(RuntimeError):
        save_safetensors({"a": shared, "b": shared}, path)
    assert path.read_bytes() == before and sorted(p.name for p in tmp_path.iterdir()) == ["w.safetensors"]


def test_safetensors_rejects_bad_input(tmp_path: Path) -> None:
    with pytest.raises(TypeError, match=r"not tensors: 'epoch'"):
        save_safetensors({"w": torch.zeros(1), "epoch": 3}, tmp_path / "a.safetensors")  # type: ignore[dict-item]
    with pytest.raises(TypeError, match=r"strings to strings.*'epoch': 'int'"):
        save_safetensors({"w": torch.zeros(1)}, tmp_path / "a.safetensors", metadata={"epoch": 3})  # type: ignore
    with pytest.raises(FileNotFoundError, match="does not exist"):
        save_safetensors({"w": torch.zeros(1)}, tmp_path / "no" / "a.safetensors")
    assert list(tmp_path.iterdir()) == []


def test_to_pycls_state_dict_is_the_documented_pycls_layout() -> None:
    from regnet_tutorial.weights.convert import to_pycls_state_dict

    for name in ("regnetx_200mf", "regnety_200mf"):
        ours = randomised(name).state_dict()
        names = pycls_names(get_card(name).stages())  # pycls key -> our key, written independently
        theirs = to_pycls_state_dict(ours)
        assert set(theirs) == set(names)
        for pycls_key, our_key in names.items():
            expected = ours[our_key].flip(1) if our_key == "stem.conv.weight" else ours[our_key]
            assert torch.equal(theirs[pycls_key], expected), pycls_key
        assert all(torch.equal(v, ours[k]) for k, v in convert_state_dict(theirs, "pycls").items())
