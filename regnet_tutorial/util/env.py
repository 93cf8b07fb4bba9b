"""Reproducibility in one place: seeding, deterministic settings, and the environment report
checked against the lock file (``requirements.lock``, the exact environment the book was run in)."""

from __future__ import annotations

import hashlib
import importlib.metadata
import os
import platform
import random
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import torch

DEFAULT_SEED = 0
REPORTED_PACKAGES = ("torch", "torchvision", "timm", "accelerate", "torchmetrics", "safetensors", "numpy")
LOCK_FILE_NAME = "requirements.lock"
DIFFERENCES_NAMED = 8  # the report's one line names this many differing packages, then counts the rest
_PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;\\]+)")


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


def lock_file() -> Path | None:
    """This checkout's lock file (``requirements.lock`` beside the ``regnet_tutorial`` folder), or
    ``None`` for a copy of the package installed without it."""
    package = Path(__file__).resolve().parent
    while (package.parent / "__init__.py").is_file():  # up to the package's top folder
        package = package.parent
    path = package.parent / LOCK_FILE_NAME
    return path if path.is_file() else None


def normalized_name(name: str) -> str:
    """A distribution's name as the lock writes it (PEP 503: lower case, runs of ``-_.`` as ``-``)."""
    return re.sub(r"[-_.]+", "-", name).lower()


def locked_versions(path: str | Path) -> dict[str, str]:
    """The exact pins (``name==version`` lines) of a requirements-format lock file, by normalized name."""
    pins = {}
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        match = _PIN.match(line)
        if match:
            pins[normalized_name(match.group(1))] = match.group(2)
    return pins


def lock_sha256(path: str | Path | None = None) -> str | None:
    """SHA-256 of the lock file's bytes (default: this checkout's), ``None`` where there is none."""
    path = lock_file() if path is None else Path(path)
    return hashlib.sha256(path.read_bytes()).hexdigest() if path is not None else None


def installed_versions() -> dict[str, str]:
    """Every distribution the running interpreter can import, by normalized name (the first found on
    ``sys.path`` wins, as for imports)."""
    versions: dict[str, str] = {}
    for dist in importlib.metadata.distributions():
        name = dist.metadata["Name"]
        if name:
            versions.setdefault(normalized_name(name), dist.version)
    return versions


def lock_differences(locked: dict[str, str], installed: dict[str, str]) -> dict[str, str]:
    """Installed packages whose version is not the locked one: ``{name: "installed (locked X)"}``.

    A locked package that is not installed is no difference: nothing here can import it, so it
    cannot change a result (a user's own environment rarely has the book's tools).
    """
    return {name: f"{installed[name]} (locked {version})" for name, version in sorted(locked.items())
            if name in installed and installed[name] != version}


def lock_status(path: str | Path | None = None) -> dict[str, object]:
    """The lock's hash and where the installed versions differ from it, for a run's metadata:
    ``{"lock_sha256": ..., "lock_differs": {name: "installed (locked X)"}}``."""
    path = lock_file() if path is None else Path(path)
    if path is None:
        return {"lock_sha256": None, "lock_differs": {}}
    return {"lock_sha256": lock_sha256(path),
            "lock_differs": lock_differences(locked_versions(path), installed_versions())}


def lock_report_line(path: str | Path | None = None) -> str:
    """One line saying whether the installed versions are the locked ones, naming those that are not."""
    path = lock_file() if path is None else Path(path)
    if path is None:
        return f"{'environment':<13}not checked: no {LOCK_FILE_NAME} beside this copy of regnet_tutorial"
    differs = lock_differences(locked_versions(path), installed_versions())
    if not differs:
        return f"{'environment':<13}as locked in {path.name}"
    named = [f"{name} {change}" for name, change in list(differs.items())[:DIFFERENCES_NAMED]]
    more = len(differs) - len(named)
    return (f"{'environment':<13}differs from {path.name}, so numbers may differ from the book's: "
            + ", ".join(named) + (f" and {more} more" if more else ""))


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
    """The text block of every notebook's first cell: the versions that matter, exactly, and one
    line saying whether every installed package is the locked version (naming those that are not).

    With the lock installed (``make install``) the block is the same on every machine, so nbval
    compares it; in another environment its ``environment`` line tells the reader why a number may differ.
    """
    info = environment_info()
    lines = [f"Python {'.'.join(info['python'].split('.')[:2])}"]
    lines += [f"{name:<13}{info[name]}" for name in REPORTED_PACKAGES]
    lines.append(lock_report_line())
    if seed is not None:
        lines.append(f"{'seed':<13}{seed}")
    return "\n".join(lines)


if __name__ == "__main__":  # pragma: no cover - convenience for bug reports
    for key, value in environment_info().items():
        print(f"{key}: {value}")
    print(f"git: {git_commit()}", file=sys.stdout)
    print(lock_report_line())
