"""The measuring machinery of ``benchmarks.speed``: contenders, interleaved timing, memory, peak.

A *contender* is one model in one setting (library, mode, batch, resolution, precision,
memory format, compile, folded BN). ``time_interleaved`` warms every contender up, then runs
``rounds`` rounds; in each round every contender is timed once with
``torch.utils.benchmark.Timer.blocked_autorange``, in a rotated order. On a shared machine the
load drifts from one second to the next: interleaving gives each contender the same mix of
quiet and busy moments, and the per-round ratios between two contenders cancel most of it.
"""

from __future__ import annotations

import logging
import multiprocessing
import statistics
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils import _pytree as pytree
from torch.utils._python_dispatch import TorchDispatchMode

# torch.utils.benchmark imports cpp_extension, which warns (with a time stamp) that a CPU-only
# machine has no CUDA runtime; nothing here compiles extensions, so the warning is noise.
logging.getLogger("torch.utils.cpp_extension").setLevel(logging.ERROR)
from torch.utils import benchmark  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
IMPLS = ("ours", "torchvision", "timm")
MODES = ("infer", "train")
PRECISIONS = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}
"""Autocast dtypes. fp16 training steps run without loss scaling: they time the step, and a
real fp16 run adds ``torch.amp.GradScaler`` (a few cheap ops per step)."""
MEMORY_FORMATS = {"contiguous": torch.contiguous_format, "channels_last": torch.channels_last}


@dataclass(frozen=True)
class Contender:
    """One model in one setting. ``arch`` is the model's name in its library (``impl``)."""

    impl: str
    arch: str
    mode: str = "infer"
    batch: int = 16
    resolution: int = 224
    precision: str = "fp32"
    memory_format: str = "contiguous"
    compile: bool = False
    fused: bool = False
    group: str = ""
    """Contenders with the same ``group`` are compared with each other (ratios)."""

    @property
    def settings(self) -> str:
        """The non-default settings in a few characters: ``fused+cl+bf16``, or ``eager``."""
        parts = [p for p, on in (
            ("fused", self.fused), ("cl", self.memory_format == "channels_last"),
            ("compile", self.compile), (self.precision, self.precision != "fp32"),
        ) if on]
        return "+".join(parts) or "eager"

    @property
    def label(self) -> str:
        return f"{self.impl}:{self.arch} {self.mode} {self.settings}"


def validate(c: Contender) -> None:
    """Reject settings that do not make sense, with the fix, before anything runs."""
    problems = []
    if c.impl not in IMPLS:
        problems.append(f"impl {c.impl!r} is not one of {IMPLS}")
    if c.mode not in MODES:
        problems.append(f"mode {c.mode!r} is not one of {MODES}")
    if c.precision not in PRECISIONS:
        problems.append(f"precision {c.precision!r} is not one of {list(PRECISIONS)}")
    if c.memory_format not in MEMORY_FORMATS:
        problems.append(f"memory format {c.memory_format!r} is not one of {list(MEMORY_FORMATS)}")
    if c.fused and c.mode == "train":
        problems.append("folded BN is for inference only; use --fused off with --modes train")
    if c.batch < 1 or c.resolution < 32:
        problems.append(f"need batch >= 1 and resolution >= 32, got {c.batch} and {c.resolution}")
    if problems:
        raise ValueError(f"{c.label}: " + "; ".join(problems))


def build_model(c: Contender) -> nn.Module:
    """The contender's network, randomly initialised (nothing is downloaded)."""
    if c.impl == "ours":
        from regnet_tutorial import create_model

        return create_model(c.arch)
    if c.impl == "torchvision":
        import torchvision

        return torchvision.models.get_model(c.arch, weights=None)
    import timm

    return timm.create_model(c.arch, pretrained=False)


def make_step(c: Contender, device: torch.device) -> Callable[[], None]:
    """A closure running one inference call or one training step of ``c`` on random data."""
    from regnet_tutorial.inference import fuse_for_inference

    validate(c)
    model = build_model(c).to(device)
    if c.fused:
        model = fuse_for_inference(model)
    fmt = MEMORY_FORMATS[c.memory_format]
    model = model.to(memory_format=fmt)
    images = torch.randn(c.batch, 3, c.resolution, c.resolution, device=device).to(memory_format=fmt)
    dtype = PRECISIONS[c.precision]
    if c.mode == "infer":
        model.eval()
        run = torch.compile(model) if c.compile else model

        def step() -> None:
            with torch.inference_mode(), torch.autocast(device.type, dtype=dtype, enabled=dtype is not None):
                run(images)

        return step
    model.train()
    run = torch.compile(model) if c.compile else model
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, nesterov=True, weight_decay=5e-5)
    targets = torch.randint(0, 1000, (c.batch,), device=device)

    def step() -> None:
        with torch.autocast(device.type, dtype=dtype, enabled=dtype is not None):
            loss = F.cross_entropy(run(images), targets)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    return step


@dataclass
class Timing:
    """Seconds per call of one contender, one value per round."""

    contender: Contender
    per_round: list[float] = field(default_factory=list)

    @property
    def median(self) -> float:
        return statistics.median(self.per_round)

    def quartiles(self) -> tuple[float, float]:
        if len(self.per_round) < 2:
            return self.per_round[0], self.per_round[0]
        q = statistics.quantiles(self.per_round, n=4, method="inclusive")
        return q[0], q[2]


def time_interleaved(
    steps: Sequence[tuple[Contender, Callable[[], None]]], rounds: int, warmup: int,
    min_run_time: float, log: Callable[[str], None] = print,
) -> list[Timing]:
    """Warm every step up, then time them all ``rounds`` times, interleaved (see module doc)."""
    threads = torch.get_num_threads()
    for i, (c, step) in enumerate(steps):
        log(f"warm-up {i + 1}/{len(steps)}: {c.label}")
        for _ in range(warmup):
            step()
    timings = [Timing(c) for c, _ in steps]
    timers = [
        # num_threads: Timer would otherwise run everything on one thread.
        benchmark.Timer(stmt="step()", globals={"step": step}, num_threads=threads, label=c.label)
        for c, step in steps
    ]
    for r in range(rounds):
        order = [(r + k) % len(steps) for k in range(len(steps))]  # rotate: no fixed position
        for k in order:
            timings[k].per_round.append(timers[k].blocked_autorange(min_run_time=min_run_time).median)
        log(f"round {r + 1}/{rounds} done")
    return timings


def paired_ratio(t: Timing, reference: Timing) -> tuple[float, float, float]:
    """Throughput of ``t`` over ``reference``, round by round: (median, min, max)."""
    ratios = [ref / own for own, ref in zip(t.per_round, reference.per_round)]
    return statistics.median(ratios), min(ratios), max(ratios)


def peak_memory_mib(contenders: Sequence[Contender], device: torch.device) -> list[tuple[float, str]]:
    """Peak memory of one warm step of each contender, in MiB, and what was measured.

    CUDA: ``max_memory_allocated`` (weights, activations, workspace). CPU: the rise of the
    process's peak resident set (``VmHWM``) over its size before the model was built, in a
    fresh process per contender forked from a server that has only imported the libraries, so
    no contender inherits another's freed-but-cached memory.
    """
    if device.type == "cuda":
        out = []
        for c in contenders:
            step = make_step(c, device)
            step()
            torch.cuda.synchronize(device)
            torch.cuda.reset_peak_memory_stats(device)
            step()
            torch.cuda.synchronize(device)
            out.append((torch.cuda.max_memory_allocated(device) / 2**20, "cuda_max_allocated"))
            del step
        return out
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(["benchmarks.harness", "regnet_tutorial", "torchvision", "timm"])
    with ctx.Pool(1, maxtasksperchild=1) as pool:
        peaks = pool.map(child_peak_rss, [asdict(c) for c in contenders], chunksize=1)
    return [(p, "cpu_peak_rss_rise") for p in peaks]


class _NewTensorBytes(TorchDispatchMode):
    """Adds up the storage bytes of every tensor an aten op returns that does not share storage
    with one of its inputs (views and in-place results do)."""

    def __init__(self) -> None:
        super().__init__()
        self.total = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        inputs = {t.untyped_storage().data_ptr() for t in pytree.tree_leaves((args, kwargs))
                  if isinstance(t, torch.Tensor)}
        for t in pytree.tree_leaves(out):
            if isinstance(t, torch.Tensor) and t.untyped_storage().data_ptr() not in inputs:
                self.total += t.untyped_storage().nbytes()
        return out


def allocated_bytes(step: Callable[[], None]) -> int:
    """Bytes of the new tensors one call of ``step`` creates, forward and backward, freed later
    or not: the allocation traffic, not the peak. Counted at the dispatcher, op by op, so the
    count depends only on the ops and their shapes, not on the CPU, its kernels or its load;
    two implementations compare exactly where their timings compare only within noise.
    Kernel-internal scratch memory is not included."""
    with _NewTensorBytes() as counter:
        step()
    return counter.total


def allocated_bytes_per_step(c: Contender, device: torch.device) -> int:
    """:func:`allocated_bytes` of a steady-state step of ``c``: the first step, which also
    creates the optimizer's momentum buffers, runs uncounted."""
    step = make_step(c, device)
    step()
    return allocated_bytes(step)


def _status_mib(field: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024  # kB
    raise OSError(f"/proc/self/status has no {field}")


def child_peak_rss(spec: dict) -> float:
    """In a fresh process: build the contender, run one step; the peak RSS rise in MiB (the first
    step allocates everything a later one needs: activations, gradients, momentum buffers)."""
    c = Contender(**spec)
    before = _status_mib("VmRSS")
    Path("/proc/self/clear_refs").write_text("5")  # Linux: reset the peak (VmHWM) to the current RSS
    make_step(c, torch.device("cpu"))()
    return _status_mib("VmHWM") - before


PEAK_KERNELS = ("matmul", "conv3x3")


def peak_flops(
    device: torch.device, repeats: int = 5, min_run_time: float = 0.3, small: bool = False,
) -> dict[str, float]:
    """The device's measured peak, per kernel: fp32 FLOP/s of a large matrix product (``2 n^3``
    FLOPs) and of a large dense 3x3 convolution in channels-last layout, each the fastest of
    ``repeats`` measurements (on a shared machine load only ever slows a kernel down).

    Both are needed because one library's kernel can be far from the hardware: on an AMD CPU
    with full-width AVX-512, PyTorch's CPU matmul (MKL) ran at half the rate of oneDNN's
    convolutions (110 against 270 GFLOP/s on one thread), so a matmul-only "peak" put the
    models above 100% of it. Use the best of the two, :func:`best_peak`. ``small`` shrinks the
    problems for tests.
    """
    if device.type == "cuda":
        n, (b, c, hw) = (8192, (64, 256, 56)) if not small else (256, (2, 16, 8))
    else:
        n, (b, c, hw) = (2048, (16, 256, 28)) if not small else (128, (2, 16, 8))
    a, m = torch.randn(n, n, device=device), torch.randn(n, n, device=device)
    x = torch.randn(b, c, hw, hw, device=device).to(memory_format=torch.channels_last)
    w = torch.randn(c, c, 3, 3, device=device).to(memory_format=torch.channels_last)
    kernels = {
        "matmul": ("a @ m", 2 * n**3),
        "conv3x3": ("F.conv2d(x, w, padding=1)", 2 * b * c * c * 9 * hw * hw),
    }
    out = {}
    with torch.inference_mode():
        for name, (stmt, flops) in kernels.items():
            timer = benchmark.Timer(stmt=stmt, globals={"a": a, "m": m, "x": x, "w": w, "F": F},
                                    num_threads=torch.get_num_threads())
            timer.timeit(1)  # first call: allocation, kernel selection
            best = min(min(timer.blocked_autorange(min_run_time=min_run_time).times) for _ in range(repeats))
            out[name] = flops / best
    return out


def best_peak(peaks: dict[str, float] | None) -> float | None:
    """The highest FLOP/s among the measured kernels (``None`` when nothing was measured)."""
    return max(peaks.values()) if peaks else None


def merge_peaks(old: dict[str, float] | None, new: dict[str, float]) -> dict[str, float]:
    """Per kernel, the faster of two measurements."""
    return {k: max(v, (old or {}).get(k, 0.0)) for k, v in new.items()}


def device_name(device: torch.device) -> str:
    """A readable name: the GPU model, or the CPU model from /proc/cpuinfo."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    import platform

    return platform.processor() or "unknown CPU"
