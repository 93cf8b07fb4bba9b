"""scripts/evaluate.py --weights SOURCE:MODEL: a published checkpoint by name, fetched from a real
HTTP server on 127.0.0.1 (REGNET_WEIGHTS_MIRROR), evaluated with its source's transform; offline
and bad input are one `error:` line.

The validation folder has ImageNet's 1000 classes with one image each. The served checkpoint's
classifier ranks classes 0-4 first on every image, so top-1 is 1 image in 1000 and top-5 is 5.
"""

from __future__ import annotations

import argparse
import runpy
from pathlib import Path

import numpy as np
import pytest
from _train_helpers import EVALUATE
from _weights_server import FileServer, closed_port, upstream_checkpoint
from PIL import Image
from test_weights_download import publish

from regnet_tutorial.weights.download import MIRROR_ENV
from regnet_tutorial.weights.transforms import MMCLS_EVAL, PYCLS_EVAL

FAVOUR = {c: 100.0 - c for c in range(5)}


@pytest.fixture(scope="module")
def script() -> dict:
    return runpy.run_path(str(EVALUATE))


@pytest.fixture(scope="module")
def imagenet_like(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("imagenet")
    rng = np.random.default_rng(0)
    for c in range(1000):
        folder = root / "val" / f"n{c:08d}"
        folder.mkdir(parents=True)
        Image.fromarray(rng.integers(0, 256, (20, 24, 3), dtype=np.uint8)).save(folder / "img.JPEG")
    return root


def error_line(script: dict, argv: list[str], capsys) -> str:
    with pytest.raises(SystemExit) as info:
        script["main"](argv)
    assert info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "\n" not in err, err
    return err


@pytest.mark.slow
def test_a_published_checkpoint_by_name(served: FileServer, monkeypatch, script: dict, imagenet_like: Path,
                                        tmp_path: Path) -> None:
    data, _ = upstream_checkpoint("pycls", "regnetx_200mf", head_bias=FAVOUR)
    entry = publish(served, monkeypatch, "pycls", "regnetx_200mf", "in1k", data)
    # --resize/--crop shrink the run 16-fold; the biased classifier makes the result exact at any size.
    common = ["--data", str(imagenet_like), "--batch_size", "250", "--num_workers", "0", "--resize", "64",
              "--crop", "56"]
    metrics = script["main"](["--weights", "pycls:regnetx_200mf", *common])
    assert (metrics["model"], metrics["count"], metrics["resize"], metrics["crop"]) == ("regnetx_200mf", 1000, 64, 56)
    assert metrics["top1"] == pytest.approx(0.1) and metrics["top5"] == pytest.approx(0.5)
    assert metrics["resolution_from"] == "pycls's own transform, with --resize/--crop from the command line"
    assert len(served.requests) == 1
    offline_copy = tmp_path / entry.filename
    offline_copy.write_bytes(data)
    monkeypatch.setenv(MIRROR_ENV, f"http://127.0.0.1:{closed_port()}")
    again = script["main"](["--weights", "pycls:regnetx_200mf", "--weights-file", str(offline_copy), *common])
    assert (again["top1"], again["top5"]) == (metrics["top1"], metrics["top5"])


def test_the_sources_own_transform_is_the_default(script: dict) -> None:
    def args(weights: str, **flags) -> argparse.Namespace:
        return argparse.Namespace(weights=weights, checkpoint=None, model=None, source="regnet_tutorial",
                                  resize=flags.get("resize"), crop=flags.get("crop"))

    entry, spec, origin = script["published_weights"](args("mmcls:regnetx_400mf"))
    assert spec is MMCLS_EVAL and origin == "mmcls's own transform"
    assert script["published_weights"](args("pycls:regnety_200mf"))[1] is PYCLS_EVAL
    v2 = script["published_weights"](args("torchvision.imagenet1k_v2:regnetx_400mf_tv"))[1]
    assert (v2.resize, v2.crop, v2.backend) == (232, 224, "pillow")


def test_offline_is_one_line_naming_the_url_and_weights_file(served, monkeypatch, script, imagenet_like,
                                                             capsys) -> None:
    monkeypatch.setenv(MIRROR_ENV, f"http://127.0.0.1:{closed_port()}")
    err = error_line(script, ["--weights", "pycls:regnetx_200mf", "--data", str(imagenet_like)], capsys)
    assert "RegNetX-200MF_dds_8gpu.pyth" in err and "--weights-file PATH" in err


@pytest.mark.parametrize(("argv", "message"), [
    (["--weights", "mmcls:regnetx_400mf", "--weights-file", "{bad}"],
     "is not mmcls.in1k:regnetx_400mf's published file"),
    (["--weights", "nope:regnetx_400mf"], "unknown source 'nope'"),
    (["--weights", "mmcls:regnetx_400mf", "--model", "regnetx_400mf"], "drop --checkpoint, --model and --source"),
    (["--weights-file", "{bad}"], "--weights-file goes with --weights"),
    ([], "Pass --checkpoint"),
])
def test_bad_weights_arguments_are_one_line(served, script, imagenet_like, tmp_path, capsys, argv, message) -> None:
    bad = tmp_path / "bad.pth"
    bad.write_bytes(b"not the file")
    argv = [a.format(bad=bad) for a in argv] + ["--data", str(imagenet_like)]
    assert message in error_line(script, argv, capsys)
