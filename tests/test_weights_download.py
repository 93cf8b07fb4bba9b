"""Loading published weights by name, against a real HTTP server on 127.0.0.1 started here.

The server holds checkpoints in each upstream layout, made from random weights
(``_weights_server.py``), at the same paths as upstream; ``REGNET_WEIGHTS_MIRROR`` points the
registry's real URLs at it. Where the upstream file name carries a checksum, the served file is
named after its own checksum and the registry entry is swapped for one with that name.
"""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import torch
from _weights_server import FileServer, closed_port, sha256_hex, silent_listener, upstream_checkpoint

from regnet_tutorial import create_model
from regnet_tutorial.weights import registry
from regnet_tutorial.weights.convert import load_checkpoint_file, load_state_dict_strict
from regnet_tutorial.weights.download import (
    MIRROR_ENV,
    TIMEOUT_ENV,
    WeightsDownloadError,
    cache_dir,
    mirrored_url,
)

CASES = [  # (source, model, tag, layout of the file)
    ("pycls", "regnetx_200mf", "in1k", "pycls"),
    ("mmcls", "regnetx_400mf", "in1k", "mmcls"),
    ("torchvision", "regnetx_400mf_tv", "imagenet1k_v1", "torchvision"),
    ("timm", "regnetx_400mf_tv", "tv2_in1k", "torchvision"),  # timm lists torchvision's file
]


@pytest.fixture
def server(served):
    """The shared file server (``served`` in conftest.py)."""
    return served


def publish(server: FileServer, monkeypatch: pytest.MonkeyPatch, source: str, model: str, tag: str,
            data: bytes, checksum_of: bytes | None = None) -> registry.PublishedWeights:
    """Serve ``data`` as the registry entry's file; the entry's checksum is that of ``checksum_of``
    (default ``data``) where the upstream name carries one."""
    real = registry.get_weights(model, f"{source}.{tag}")
    path = urlsplit(real.url).path
    if real.sha256_prefix:
        prefix = sha256_hex(checksum_of if checksum_of is not None else data)[:8]
        path = path.replace(f"-{real.sha256_prefix}.", f"-{prefix}.")
        entry = replace(real, url=f"{real.url.split(urlsplit(real.url).path)[0]}{path}", sha256_prefix=prefix)
    else:
        entry = real
    server.files[path] = data
    loader = registry._LOADERS[source]
    monkeypatch.setitem(registry._LOADERS, source,
                        lambda: [entry if e.name == entry.name else e for e in loader()])
    registry.source_entries.cache_clear()
    return entry


def logits(model: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return model.eval()(x)


def cache_files() -> list[str]:
    folder = cache_dir()
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


@pytest.mark.parametrize(("source", "model", "tag", "layout"), CASES)
def test_download_checksum_cache_and_conversion_match_the_file_on_disk(
    server: FileServer, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, source: str, model: str, tag: str,
    layout: str,
) -> None:
    data, upstream = upstream_checkpoint(layout, model)
    entry = publish(server, monkeypatch, source, model, tag, data)
    downloaded = create_model(model, weights=f"{source}.{tag}")
    assert (cache_dir() / entry.filename).read_bytes() == data
    again = create_model(model, weights=f"{source}.{tag}")
    assert server.requests == [urlsplit(entry.url).path], "the second load must reuse the cached file"

    on_disk = tmp_path / entry.filename
    on_disk.write_bytes(data)
    from_disk = load_state_dict_strict(create_model(model), load_checkpoint_file(on_disk, layout))
    given_file = create_model(model, weights=f"{source}.{tag}", weights_file=on_disk)
    x = torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(3))
    expected = logits(from_disk, x)
    for loaded in (downloaded, again, given_file):
        assert torch.equal(logits(loaded, x), expected)
    # And it is the upstream network: pycls and mmcls saw BGR, ours takes RGB.
    x_upstream = x[:, [2, 1, 0]] if layout in ("pycls", "mmcls") else x
    torch.testing.assert_close(expected, logits(upstream, x_upstream), rtol=1e-4, atol=1e-4)


def test_the_source_alone_picks_its_default_weights(server: FileServer, monkeypatch: pytest.MonkeyPatch) -> None:
    data, _ = upstream_checkpoint("mmcls", "regnetx_400mf")
    publish(server, monkeypatch, "mmcls", "regnetx_400mf", "in1k", data)
    create_model("regnetx_400mf", weights="mmcls")
    assert len(server.requests) == 1 and "regnetx-400mf_8xb128_in1k" in server.requests[0]


def test_a_download_with_the_wrong_checksum_is_refused_and_removed(
    server: FileServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    data, _ = upstream_checkpoint("mmcls", "regnetx_400mf")
    tampered = data[:-1] + bytes([data[-1] ^ 0xFF])
    publish(server, monkeypatch, "mmcls", "regnetx_400mf", "in1k", tampered, checksum_of=data)
    with pytest.raises(WeightsDownloadError, match="not the published one.*It was deleted") as info:
        create_model("regnetx_400mf", weights="mmcls")
    assert "\n" not in str(info.value)
    assert cache_files() == [], "neither the file nor a partial download may stay"


def test_a_damaged_cached_file_is_deleted_and_fetched_again(
    server: FileServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    data, _ = upstream_checkpoint("mmcls", "regnetx_400mf")
    entry = publish(server, monkeypatch, "mmcls", "regnetx_400mf", "in1k", data)
    create_model("regnetx_400mf", weights="mmcls")
    cached = cache_dir() / entry.filename
    cached.write_bytes(data[:1000] + b"x" + data[1001:])
    with pytest.raises(WeightsDownloadError, match="damaged or not the published file.*was deleted"):
        create_model("regnetx_400mf", weights="mmcls")
    assert not cached.exists()
    create_model("regnetx_400mf", weights="mmcls")
    assert cached.read_bytes() == data and len(server.requests) == 2


def test_an_interrupted_download_leaves_no_file_that_is_used_later(
    server: FileServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    data, upstream = upstream_checkpoint("pycls", "regnetx_200mf")  # pycls: no checksum to catch it
    entry = publish(server, monkeypatch, "pycls", "regnetx_200mf", "in1k", data)
    server.truncated.add(urlsplit(entry.url).path)
    with pytest.raises(WeightsDownloadError, match=rf"interrupted after {len(data) // 2} of {len(data)} bytes"):
        create_model("regnetx_200mf", weights="pycls")
    assert cache_files() == []
    server.truncated.clear()
    model = create_model("regnetx_200mf", weights="pycls")
    assert (cache_dir() / entry.filename).read_bytes() == data
    x = torch.randn(1, 3, 64, 64)
    torch.testing.assert_close(logits(model, x), logits(upstream, x[:, [2, 1, 0]]), rtol=1e-4, atol=1e-4)


def test_offline_is_one_line_naming_the_url_and_the_local_file_option(
    server: FileServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(MIRROR_ENV, f"http://127.0.0.1:{closed_port()}")
    start = time.monotonic()
    with pytest.raises(WeightsDownloadError) as info:
        create_model("regnetx_200mf", weights="pycls")
    message = str(info.value)
    assert time.monotonic() - start < 10
    assert "\n" not in message
    assert "RegNetX-200MF_dds_8gpu.pyth" in message and "--weights-file PATH" in message
    assert cache_files() == []


def test_a_server_that_never_answers_times_out(server: FileServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(TIMEOUT_ENV, "1")
    with silent_listener() as port:
        monkeypatch.setenv(MIRROR_ENV, f"http://127.0.0.1:{port}")
        start = time.monotonic()
        with pytest.raises(WeightsDownloadError, match=r"timeout 1 s.*--weights-file"):
            create_model("regnetx_200mf", weights="pycls")
        assert time.monotonic() - start < 8


def test_the_mirror_keeps_the_path_below_the_host() -> None:
    url = "https://download.openmmlab.com/mmclassification/v0/regnet/regnetx-400mf_8xb128_in1k_20211213-89bfc226.pth"
    assert mirrored_url(url, "http://cache.local:8080/weights/") == (
        "http://cache.local:8080/weights/mmclassification/v0/regnet/regnetx-400mf_8xb128_in1k_20211213-89bfc226.pth"
    )
    assert mirrored_url(url, "") == url
    with pytest.raises(WeightsDownloadError, match="not a base URL"):
        mirrored_url(url, "cache.local")


def test_a_weights_file_must_be_the_published_file(tmp_path: Path) -> None:
    wrong = tmp_path / "regnetx-400mf.pth"
    wrong.write_bytes(b"not a checkpoint")
    with pytest.raises(WeightsDownloadError, match="is not mmcls.in1k:regnetx_400mf's published file"):
        create_model("regnetx_400mf", weights="mmcls", weights_file=wrong)
    with pytest.raises(ValueError, match="needs weights="):
        create_model("regnetx_400mf", weights_file=wrong)
    with pytest.raises(ValueError, match="replace model.head.fc"):
        create_model("regnetx_400mf", num_classes=10, weights="mmcls")
