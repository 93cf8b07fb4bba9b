"""Shared test settings and fixtures: the repository root and the tiny synthetic dataset."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import torch

from regnet_tutorial.train.synthetic import make_tiny_dataset

ROOT = Path(__file__).resolve().parents[1]
"""The repository root (``from conftest import ROOT`` where a module needs it at import time)."""


@pytest.fixture(autouse=True)
def _one_thread():
    """One intra-op thread per test: under pytest-xdist the cores are already taken, and on a
    busy 2-core machine OpenMP's spinning threads made small convolutions ~10x slower."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def repo_root() -> Path:
    """The repository root."""
    return ROOT


@pytest.fixture(scope="session")
def tiny_dataset(tmp_path_factory: pytest.TempPathFactory) -> Callable[..., Path]:
    """``tiny_dataset(**settings)``: the root of :func:`make_tiny_dataset` with ``settings``, written
    once per session and settings. Tests that change the files make their own copy instead."""
    made: dict[tuple, Path] = {}

    def make(**settings) -> Path:
        key = tuple(sorted(settings.items()))
        if key not in made:
            made[key] = make_tiny_dataset(tmp_path_factory.mktemp("tiny"), **settings)
        return made[key]

    return make


@pytest.fixture
def served(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """A file server on 127.0.0.1 that the weights registry's URLs are mirrored to
    (``REGNET_WEIGHTS_MIRROR``), and an empty torch hub cache."""
    from _weights_server import FileServer

    from regnet_tutorial.weights import registry
    from regnet_tutorial.weights.download import MIRROR_ENV

    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))
    monkeypatch.setattr(torch.hub, "_hub_dir", None)
    registry.source_entries.cache_clear()
    with FileServer() as files:
        monkeypatch.setenv(MIRROR_ENV, files.base)
        yield files
    registry.source_entries.cache_clear()
