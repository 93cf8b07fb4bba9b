"""Training throughput of RegNet models on synthetic data (images per second).

Runs full training steps (forward, cross-entropy, backward, SGD step) on random images,
so it measures the model and the precision settings, not the data pipeline. Example::

    python benchmarks/train_throughput.py --model regnetx_400mf regnety_400mf \\
        --batch-size 128 --precision bf16 --channels-last --device cuda

Speed targets live here, never in the unit tests.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from regnet_tutorial.models import create_model

PRECISIONS = {"no": None, "bf16": torch.bfloat16, "fp16": torch.float16}


@dataclass(frozen=True)
class Result:
    """One benchmark row."""

    model: str
    batch: int
    precision: str
    channels_last: bool
    images_per_s: float
    peak_memory_gib: float | None


def pick_device(name: str) -> torch.device:
    """``auto`` -> CUDA when available, else CPU; ``cuda`` without a GPU is an error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise SystemExit("--device cuda was asked for, but PyTorch sees no CUDA device; use --device cpu.")
    return torch.device(name)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def measure(
    model_name: str, batch: int, precision: str, channels_last: bool, steps: int,
    warmup_steps: int, resolution: int, device: torch.device,
) -> Result:
    """Images per second over ``steps`` timed training steps after ``warmup_steps`` untimed ones."""
    memory_format = torch.channels_last if channels_last else torch.contiguous_format
    model = create_model(model_name).to(device, memory_format=memory_format).train()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, nesterov=True, weight_decay=5e-5)
    scaler = torch.amp.GradScaler(device.type, enabled=precision == "fp16")
    dtype = PRECISIONS[precision]
    images = torch.randn(batch, 3, resolution, resolution, device=device).to(memory_format=memory_format)
    targets = torch.randint(0, 1000, (batch,), device=device)

    def step() -> None:
        with torch.autocast(device.type, dtype=dtype, enabled=dtype is not None):
            loss = F.cross_entropy(model(images), targets)
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()

    for _ in range(warmup_steps):
        step()
    _sync(device)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    start = time.perf_counter()
    for _ in range(steps):
        step()
    _sync(device)
    elapsed = time.perf_counter() - start
    peak = torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else None
    return Result(model_name, batch, precision, channels_last, batch * steps / elapsed, peak)


def format_table(results: Sequence[Result]) -> str:
    """The results as a Markdown table."""
    lines = [
        "| model | batch | precision | channels_last | images/s | peak memory (GiB) |",
        "|---|---:|---|---|---:|---:|",
    ]
    for r in results:
        memory = f"{r.peak_memory_gib:.2f}" if r.peak_memory_gib is not None else "n/a"
        lines.append(
            f"| {r.model} | {r.batch} | {r.precision} | {r.channels_last} | {r.images_per_s:.1f} | {memory} |"
        )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> list[Result]:
    """Parse the arguments, run every (model, batch size) pair and print the table."""
    parser = argparse.ArgumentParser(description="Training throughput of RegNet models on synthetic data.")
    parser.add_argument("--model", nargs="+", default=["regnetx_400mf"], help="registered model name(s)")
    parser.add_argument("--batch-size", nargs="+", type=int, default=[64], help="images per step")
    parser.add_argument("--precision", choices=list(PRECISIONS), default="no")
    parser.add_argument("--channels-last", action="store_true")
    parser.add_argument("--steps", type=int, default=20, help="timed steps")
    parser.add_argument("--warmup-steps", type=int, default=5, help="untimed steps first (cuDNN autotuning, caches)")
    parser.add_argument("--resolution", type=int, default=224)
    parser.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto")
    parser.add_argument("--threads", type=int, default=None, help="CPU threads for PyTorch (default: its own choice)")
    args = parser.parse_args(argv)
    if args.steps < 1 or args.warmup_steps < 0 or args.resolution < 32 or min(args.batch_size) < 1:
        parser.error("need --steps >= 1, --warmup-steps >= 0, --resolution >= 32 and batch sizes >= 1")
    device = pick_device(args.device)
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    where = torch.cuda.get_device_name(device) if device.type == "cuda" else f"cpu ({torch.get_num_threads()} threads)"
    print(f"device: {where}, "
          f"resolution {args.resolution}, {args.steps} timed steps after {args.warmup_steps} warmup steps")
    results = [
        measure(m, b, args.precision, args.channels_last, args.steps, args.warmup_steps, args.resolution, device)
        for m in args.model for b in args.batch_size
    ]
    print(format_table(results))
    return results


if __name__ == "__main__":
    main()
