"""Reproducibility in one place: seeding, deterministic settings and the environment report."""

from __future__ import annotations

import importlib.metadata
import os
import platform
import random
import subprocess
import sys
from pathlib import Path

import numpy as np
import torch

DEFAULT_SEED = 0
REPORTED_PACKAGES = ("torch", "torchvision", "timm", "accelerate", "torchmetrics", "safetensors", "numpy")


def seed_everything(seed: int = DEFAULT_SEED, deterministic: bool = True) -> int:
    """Seed Python, NumPy and PyTorch (all devices); with ``deterministic`` also ask PyTorch
    for deterministic kernels. Returns the seed.

    Bitwise determinism holds for a fixed machine, library build and thread count on CPU.
    On GPUs some kernels have no deterministic variant; ``warn_only=True`` reports them
    instead of failing (see the PyTorch "Reproducibility" notes).
    """
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)  # seeds every CUDA device too
    if deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True, warn_only=True)
        torch.backends.cudnn.benchmark = False
    return seed


def package_versions(packages: tuple[str, ...] = REPORTED_PACKAGES) -> dict[str, str]:
    """Installed versions of ``packages`` (``"not installed"`` where absent)."""
    versions = {}
    for name in packages:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def git_commit(repo: str | Path | None = None) -> str:
    """The current git commit of ``repo`` (default: this package's checkout), with ``-dirty``
    when there are uncommitted changes; ``"unknown"`` outside a git checkout."""
    cwd = Path(repo) if repo is not None else Path(__file__).resolve().parent
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"], cwd=cwd,
            capture_output=True, text=True, check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return commit + ("-dirty" if dirty else "")


def versions(packages: tuple[str, ...] = REPORTED_PACKAGES) -> dict[str, str]:
    """Python's version and the installed versions of ``packages``."""
    return {"python": platform.python_version(), **package_versions(packages)}


def environment_info() -> dict[str, str]:
    """Python, platform, package versions and the accelerator available, as a dict."""
    info = {"platform": platform.platform(terse=True), **versions()}
    if torch.cuda.is_available():
        info["device"] = f"cuda ({torch.cuda.get_device_name(0)}, x{torch.cuda.device_count()})"
    else:
        info["device"] = "cpu"
    return info


def environment_report(seed: int | None = None) -> str:
    """A short, stable text block for the first cell of every notebook.

    Versions are printed major.minor only, so that a patch upgrade does not break the
    stored notebook outputs; ``environment_info()`` has the full strings.
    """
    info = environment_info()
    lines = [f"Python {'.'.join(info['python'].split('.')[:2])}"]
    for name in REPORTED_PACKAGES:
        version = info[name]
        short = ".".join(version.split("+")[0].split(".")[:2]) if version[0].isdigit() else version
        lines.append(f"{name:<13}{short}")
    if seed is not None:
        lines.append(f"{'seed':<13}{seed}")
    return "\n".join(lines)


if __name__ == "__main__":  # pragma: no cover - convenience for bug reports
    for key, value in environment_info().items():
        print(f"{key}: {value}")
    print(f"git: {git_commit()}", file=sys.stdout)
