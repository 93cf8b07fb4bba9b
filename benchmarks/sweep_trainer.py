"""Speed of the sweep's trainer on a CPU: images/s per core of the design-space proxy's settings
against the settings of the first committed sweep, on the same sampled models, interleaved.

* ``before``: batch 64, contiguous (NCHW) tensors: the first committed sweep's runner.
* ``proxy``: batch 128, channels-last (NHWC) tensors: the pilot's and the new sweep's settings.

Both train from tensors held in memory (no per-image Python). Each contender is one SGD step
(Nesterov momentum, weight decay) on a fixed Fashion-MNIST batch; rounds rotate the order so that
load drift on a shared machine hits both alike, and each model's ratio is the median of its
per-round ratios. Achieved FLOP/s counts a training step as 3x the forward pass (forward, and a
backward of about twice its cost), 2 FLOPs per multiply-add, against the machine's measured peak
(:func:`benchmarks.harness.peak_flops`). Where the proxy's time goes is profiled too
(:func:`time_shares`: convolutions forward and backward, batch norm, the optimizer, the rest), which
says what a faster trainer would have to speed up. Example::

    OMP_NUM_THREADS=1 python -m benchmarks.sweep_trainer --models 4 --rounds 7 \\
        --out benchmarks/results/cpu/sweep_trainer.json
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from benchmarks.harness import best_peak, device_name, paired_ratio, peak_flops, time_interleaved
from regnet_tutorial.anynet import AnyNet
from regnet_tutorial.sweep.images import load_fashion_mnist
from regnet_tutorial.sweep.run_command import SMALL_FLOPS, sample_small
from regnet_tutorial.sweep.spaces import spec_from_sample

SETTINGS: dict[str, tuple[int, bool]] = {"before": (64, False), "proxy": (128, True)}
"""Contender name -> (batch size, channels-last)."""


@dataclass(frozen=True)
class TrainerContender:
    """One sampled model under one of :data:`SETTINGS`."""

    space: str
    index: int
    setting: str

    @property
    def label(self) -> str:
        return f"{self.space}#{self.index} {self.setting}"


def make_step(sample: dict, setting: str, images: torch.Tensor, labels: torch.Tensor) -> Callable[[], None]:
    """One training step of ``sample``'s network on the first batch of ``images`` under ``setting``."""
    batch, channels_last = SETTINGS[setting]
    memory_format = torch.channels_last if channels_last else torch.contiguous_format
    torch.manual_seed(0)
    model = AnyNet(spec_from_sample(sample), num_classes=10, in_channels=1, zero_init_last_bn=True)
    model.to(memory_format=memory_format).train()
    x = images[:batch].contiguous(memory_format=memory_format)
    y = labels[:batch]
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, nesterov=True, weight_decay=5e-5)

    def step() -> None:
        loss = F.cross_entropy(model(x), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    return step


SHARES = {
    "convolution forward": ("aten::mkldnn_convolution", "aten::_convolution", "aten::convolution"),
    "convolution backward": ("aten::convolution_backward",),
    "batch norm": ("aten::native_batch_norm", "aten::native_batch_norm_backward", "aten::_batch_norm_impl_index",
                   "aten::batch_norm"),
}
"""Category -> the ops whose self time it sums (the optimizer is taken whole, from its range)."""


def time_shares(step: Callable[[], None], steps: int = 5) -> dict[str, float]:
    """The shares of one training step's CPU time (self time of every op, profiled over ``steps``
    steps after a warm-up): :data:`SHARES`, the optimizer's step, and the rest. They sum to 1."""
    from torch.profiler import ProfilerActivity, profile

    step()
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for _ in range(steps):
            step()
    events = prof.key_averages()
    total = sum(e.self_cpu_time_total for e in events)
    shares = {name: sum(e.self_cpu_time_total for e in events if e.key in ops) / total for name, ops in SHARES.items()}
    shares["optimizer step"] = sum(e.cpu_time_total for e in events if e.key.startswith("Optimizer.step#")) / total
    shares["other"] = 1 - sum(shares.values())
    return shares


def main(argv: Sequence[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=int, default=4, help="models per space (default 4)")
    parser.add_argument("--spaces", default="regnetx,anynetx_e")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--min-run-time", type=float, default=0.5, help="seconds per measurement")
    parser.add_argument("--out", default=None, help="write the results as JSON here")
    args = parser.parse_args(argv)

    train = load_fashion_mnist("train")
    options = {"skeleton": "small", "stages": 4, "resolution": 28, "num_classes": 10, "in_channels": 1}
    samples = [s for space in args.spaces.split(",") for s in sample_small(space, args.models, 0, SMALL_FLOPS, options)]
    steps = [(TrainerContender(s["space"], s["index"], name), make_step(s, name, train.images, train.labels))
             for s in samples for name in SETTINGS]
    timings = time_interleaved(steps, rounds=args.rounds, warmup=3, min_run_time=args.min_run_time)
    peaks = peak_flops(torch.device("cpu"))
    peak = best_peak(peaks)
    rows = []
    for k, sample in enumerate(samples):
        before, proxy = timings[2 * k], timings[2 * k + 1]
        ratio, low, high = paired_ratio(proxy, before)
        # paired_ratio compares seconds per call; per image the batch sizes enter too.
        per_image = SETTINGS["proxy"][0] / SETTINGS["before"][0]
        row = {"space": sample["space"], "index": sample["index"], "flops": sample["flops"]}
        for name, t in (("before", before), ("proxy", proxy)):
            batch = SETTINGS[name][0]
            row[f"{name}_images_per_s"] = batch / t.median
            row[f"{name}_peak_fraction"] = 3 * 2 * sample["flops"] * batch / t.median / peak
        row.update(ratio=ratio * per_image, ratio_low=low * per_image, ratio_high=high * per_image)
        row["proxy_time_shares"] = time_shares(steps[2 * k + 1][1])
        rows.append(row)
    result = {
        "what": __doc__.splitlines()[0],
        "settings": {name: {"batch_size": b, "channels_last": cl} for name, (b, cl) in SETTINGS.items()},
        "device": device_name(torch.device("cpu")), "threads": torch.get_num_threads(),
        "torch": torch.__version__, "python": platform.python_version(), "rounds": args.rounds,
        "peak_flops": peaks, "models": rows,
        "median_ratio": statistics.median(r["ratio"] for r in rows),
    }
    print(f"{'model':<16} {'flops':>9} {'before img/s':>13} {'proxy img/s':>12} {'ratio':>6} {'of peak':>8}")
    for r in rows:
        print(f"{r['space'] + '#' + str(r['index']):<16} {r['flops']:>9,} {r['before_images_per_s']:>13.0f} "
              f"{r['proxy_images_per_s']:>12.0f} {r['ratio']:>5.2f}x {r['proxy_peak_fraction']:>7.1%}")
    print(f"median ratio proxy/before: {result['median_ratio']:.2f}x (peak {peak / 1e9:.0f} GFLOP/s)")
    for name in rows[0]["proxy_time_shares"]:
        shares = [r["proxy_time_shares"][name] for r in rows]
        print(f"proxy's time in {name}: {min(shares):.0%} to {max(shares):.0%}")
    if args.out:
        with open(args.out, "w", encoding="utf-8") as f:
            json.dump(result, f, indent=2)
            f.write("\n")
    return result


if __name__ == "__main__":
    main()
