"""Shared helpers for the tests that run scripts/train.py and scripts/evaluate.py."""

from __future__ import annotations

import os
import pickle
import socket
import subprocess
import sys
from pathlib import Path

from conftest import ROOT

REPO = ROOT
VENV_BIN = Path(sys.executable).parent
TRAIN = REPO / "scripts" / "train.py"
EVALUATE = REPO / "scripts" / "evaluate.py"

# A small registered model at 32 px on the tiny dataset: ~0.1 s per step on one CPU core.
TINY_OVERRIDES = [
    "crop_size=32", "eval_resize=36", "eval_batch_size=16", "num_workers=0", "lr_per_128=0.4",
    "log_every=1", "warmup_epochs=1", "zero_init_last_bn=true", "schedule=per_step",
]


def cpu_env(**extra: str) -> dict[str, str]:
    """The environment for a child run: one thread per process (deterministic and fair on 2 cores)."""
    env = dict(os.environ)
    env.update(OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", PYTHONHASHSEED="0", TOKENIZERS_PARALLELISM="false")
    env.pop("REGNET_TUTORIAL_CRASH_AT", None)
    env.update(extra)
    return env


def run(cmd: list[str], env: dict[str, str] | None = None, timeout: int = 240) -> subprocess.CompletedProcess:
    """Run ``cmd`` in the repository root and capture its output."""
    return subprocess.run(cmd, cwd=REPO, env=env or cpu_env(), capture_output=True, text=True, timeout=timeout)


def train_cmd(data: Path, output_dir: Path, *overrides: str, config: str = "configs/regnetx_200mf.yaml") -> list[str]:
    """``python scripts/train.py`` with the tiny settings and ``overrides``."""
    return [sys.executable, str(TRAIN), "--config", config, "--data", str(data),
            "--output_dir", str(output_dir), *TINY_OVERRIDES, *overrides]


def free_port() -> int:
    """A free TCP port on the loopback interface for the processes' rendezvous."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def launch_two_cpu_processes(script_cmd: list[str], timeout: int = 240, mixed_precision: str = "no",
                             quiet: bool = False, use_cpu: bool = True) -> subprocess.CompletedProcess:
    """``accelerate launch`` ``script_cmd`` (a script path and its arguments) as 2 gloo CPU processes,
    with the launcher's ``--mixed_precision`` (and ``-q`` if ``quiet``).

    ``ACCELERATE_USE_CPU=1`` is what makes ``--multi_gpu --num_processes 2`` start two
    processes on a machine without a GPU; the scripts record the count they saw. ``use_cpu=False``
    leaves it out, as a user who forgot it would.
    """
    cmd = [str(VENV_BIN / "accelerate"), "launch", *(["-q"] if quiet else []), "--multi_gpu", "--num_processes", "2",
           "--num_machines", "1", "--mixed_precision", mixed_precision, "--dynamo_backend", "no",
           "--main_process_port", str(free_port()), *script_cmd]
    env = cpu_env(ACCELERATE_USE_CPU="1") if use_cpu else cpu_env()
    if not use_cpu:
        env.pop("ACCELERATE_USE_CPU", None)
    return run(cmd, env=env, timeout=timeout)


def launch_one_process(script_cmd: list[str], timeout: int = 240, quiet: bool = True) -> subprocess.CompletedProcess:
    """``accelerate launch [-q]`` ``script_cmd`` as one process, every launcher setting given (so that
    accelerate prints no note about defaults)."""
    cmd = [str(VENV_BIN / "accelerate"), "launch", *(["-q"] if quiet else []), "--num_processes", "1",
           "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no", *script_cmd]
    return run(cmd, timeout=timeout)


class RunsCode:
    """Unpickling this creates ``marker``: what a malicious checkpoint file would do."""

    def __init__(self, marker: os.PathLike | str) -> None:
        self.marker = str(marker)

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def write_malicious_pickle(path: Path, marker: Path, as_torch_zip: bool) -> None:
    """Write a file at ``path`` that runs code (creates ``marker``) if anything unpickles it:
    a ``torch.save`` zip or a raw pickle."""
    if as_torch_zip:
        import torch

        torch.save({"state": RunsCode(marker)}, path)
    else:
        path.write_bytes(pickle.dumps(RunsCode(marker)))
