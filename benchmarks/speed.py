"""Speed of our RegNets: against torchvision and timm, with BN folded, against EfficientNet, and
runtime against flops and activations. Speed targets live here, never in the unit tests.

Subcommands (each prints a table and writes ``NAME.csv`` and ``NAME.json`` into ``--out``)::

    python -m benchmarks.speed compare --models regnetx_400mf --impls ours torchvision timm \\
        --modes infer train --batch 16 --fused off on --memory-format contiguous channels_last
    python -m benchmarks.speed compare --impls ours --modes train --batch 128 \\
        --precision fp32 bf16 fp16 --memory-format channels_last --device cuda   # training throughput
    python -m benchmarks.speed table4 --table4-batch 64     # RegNetY vs EfficientNet, the paper's pairs
    python -m benchmarks.speed scaling --scaling-batch 8    # all 24 models: runtime vs flops and acts
    python -m benchmarks.speed peak                   # the device's measured peak FLOP/s
    python -m benchmarks.speed all --out benchmarks/results/cpu   # everything, as committed

Throughput is images per second from the median over interleaved rounds (``harness``); the
``x_torchvision`` / ``x_timm`` columns are paired per-round throughput ratios against that
library's plain eager run of the identical architecture in the same process (> 1: faster).
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import os
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, replace
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import torch

from benchmarks import harness
from benchmarks.harness import Contender, Timing
from regnet_tutorial.complexity import model_complexity
from regnet_tutorial.errors import UsageError
from regnet_tutorial.figures.style import format_table
from regnet_tutorial.models import MODEL_CARDS, get_card, list_models
from regnet_tutorial.util.atomic import write_text_atomic
from regnet_tutorial.util.cli import ArgumentParser, int_at_least, run_main
from regnet_tutorial.util.env import environment_info, git_commit

PAPER_TABLE4_SOURCE = (
    "Radosavovic et al. 2020, Table 4 (https://arxiv.org/abs/2003.13678); the same numbers: pycls MODEL_ZOO.md at "
    "https://github.com/facebookresearch/pycls/blob/1caf15bbefeecd6d4df74075f293592b504069d2/MODEL_ZOO.md"
)
TABLE4_PAIRS = (
    # (our RegNetY, torchvision EfficientNet, its image size, V100 inference ms for 64 images:
    #  RegNetY, EfficientNet). The times are the paper's Table 4 "infer (ms)" column (64 images,
    #  1 V100), shipped in regnet_tutorial/weights/published_data/paper_table4.csv (a test checks
    #  that they agree); headline: RegNetY-8.0GF 113 ms, EfficientNet-B5 504 ms.
    ("regnety_400mf", "efficientnet_b0", 224, 19, 34),
    ("regnety_600mf", "efficientnet_b1", 240, 19, 52),
    ("regnety_800mf", "efficientnet_b2", 260, 22, 68),
    ("regnety_1_6gf", "efficientnet_b3", 300, 39, 114),
    ("regnety_4_0gf", "efficientnet_b4", 380, 68, 240),
    ("regnety_8_0gf", "efficientnet_b5", 456, 113, 504),
)
PYCLS_MODELS = [name for name in list_models() if not name.endswith("_tv")]
"""The paper's 24 models (12 RegNetX, 12 RegNetY)."""


def log(message: str) -> None:
    """Progress lines on stderr, so the tables on stdout stay clean."""
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# --- which architecture is which ------------------------------------------------------------


def canonical(name: str) -> str:
    """Our registered name for an architecture: the pycls name when the ``_tv`` variant is the
    same network (most models), so identical networks share one name."""
    card = get_card(name)
    base = card.name.removesuffix("_tv")
    if card.name != base and base in MODEL_CARDS and MODEL_CARDS[base].stages() == card.stages():
        return base
    return card.name


def peers(model: str, impls: Sequence[str]) -> list[tuple[str, str, str]]:
    """``(impl, arch, twin)`` for each library asked for that has ``model``; ``twin`` is our
    name for the identical architecture, and ours comes once per distinct twin."""
    card = get_card(model)
    base = card.name.removesuffix("_tv")
    rows: list[tuple[str, str, str]] = []
    if "torchvision" in impls and MODEL_CARDS[base].torchvision is not None and base + "_tv" in MODEL_CARDS:
        rows.append(("torchvision", MODEL_CARDS[base].torchvision, canonical(base + "_tv")))
    if "timm" in impls and MODEL_CARDS[base].timm is not None:
        rows.append(("timm", MODEL_CARDS[base].timm, canonical(base)))
    ours = []
    if "ours" in impls:
        for twin in [canonical(card.name)] + [t for _, _, t in rows]:
            if twin not in ours:
                ours.append(twin)
    return [("ours", t, t) for t in ours] + rows


def twin_of(c: Contender) -> str:
    return c.group.split("|")[1]


# --- suites ---------------------------------------------------------------------------------


def compare_contenders(
    models: Sequence[str], impls: Sequence[str], modes: Sequence[str], batch: int, resolution: int,
    precisions: Sequence[str], formats: Sequence[str], compiles: Sequence[bool], fuseds: Sequence[bool],
    train_batch: int | None = None,
) -> list[Contender]:
    """Every library x setting asked for; folded BN only for inference on foldable models."""
    out = []
    for model in models:
        for mode in modes:
            for impl, arch, twin in peers(model, impls):
                for precision, fmt, comp, fused in itertools.product(precisions, formats, compiles, fuseds):
                    # timm's BatchNormAct2d also applies the activation, so it is not folded.
                    if fused and (mode == "train" or impl == "timm"):
                        continue
                    out.append(Contender(
                        impl, arch, mode, (train_batch or batch) if mode == "train" else batch,
                        resolution, precision, fmt, comp, fused,
                        group=f"{canonical(model)} {mode}|{twin}",
                    ))
    return out


def committed_compare(models: Sequence[str], batch: int, resolution: int, train_batch: int | None) -> list[Contender]:
    """The committed run: eager parity in both modes, plus the inference speed-ups on ours and
    channels_last on torchvision (so "torchvision's best eager" is measured, not assumed)."""
    eager = compare_contenders(models, harness.IMPLS, harness.MODES, batch, resolution,
                               ["fp32"], ["contiguous"], [False], [False], train_batch)
    extra = []
    for c in eager:
        if c.mode != "infer":
            continue
        if c.impl == "torchvision":
            extra.append(replace(c, memory_format="channels_last"))
        same_group = [p for p in eager if p.group.split("|")[0] == c.group.split("|")[0]]
        tv_twin = next((twin_of(p) for p in same_group if p.impl == "torchvision"), None)
        if c.impl == "ours" and c.arch == tv_twin:
            extra += [replace(c, memory_format="channels_last"), replace(c, fused=True),
                      replace(c, fused=True, memory_format="channels_last")]
    return eager + extra


def measure_groups(
    contenders: Sequence[Contender], device: torch.device, args: argparse.Namespace,
    peaks: dict[str, float] | None, macs: Callable[[Contender], float | None],
) -> tuple[list[dict], dict[str, float] | None]:
    """Time each comparison group interleaved; one row per contender with ratios and memory,
    and the device's peak FLOP/s (re-measured after each group, the best kept)."""
    rows = []
    groups: dict[str, list[Contender]] = {}
    for c in contenders:
        groups.setdefault(c.group.split("|")[0], []).append(c)
    for name, members in groups.items():
        log(f"group {name}: {len(members)} contenders")
        steps = [(c, harness.make_step(c, device)) for c in members]
        timings = harness.time_interleaved(steps, args.rounds, args.warmup, args.min_run_time, log)
        del steps
        if peaks:  # load only ever slows a kernel down: keep the best seen
            peaks = harness.merge_peaks(peaks, harness.peak_flops(device))
        for t in timings:
            rows.append(row_for(t, timings, None, macs(t.contender)))
    peak_flops = harness.best_peak(peaks)
    for row in rows:
        if peak_flops and row["achieved_gflops"]:
            row["pct_of_peak"] = 100 * row["achieved_gflops"] * 1e9 / peak_flops
    if args.memory == "on":
        measured = [r.pop("_contender") for r in rows]
        log(f"peak memory of {len(measured)} contenders, one process each")
        for row, (mib, kind) in zip(rows, harness.peak_memory_mib(measured, device)):
            row["peak_mem_mib"], row["mem_kind"] = mib, kind
    else:
        for row in rows:
            row.pop("_contender")
            row["peak_mem_mib"], row["mem_kind"] = None, "off"
    return rows, peaks


def row_for(t: Timing, group: Sequence[Timing], peak_flops: float | None, macs: float | None) -> dict:
    """One output row: settings, median time and spread, throughput, ratios, achieved FLOP/s."""
    c = t.contender
    q1, q3 = t.quartiles()
    row = {k: v for k, v in asdict(c).items() if k != "group"}
    row.update(
        twin=twin_of(c), settings=c.settings, rounds=len(t.per_round),
        ms_median=1e3 * t.median, ms_q1=1e3 * q1, ms_q3=1e3 * q3,
        img_per_s=c.batch / t.median, img_per_s_q1=c.batch / q3, img_per_s_q3=c.batch / q1,
    )
    for ref_impl in ("torchvision", "timm"):
        ref = next((r for r in group if r.contender.impl == ref_impl and r.contender.settings == "eager"
                    and twin_of(r.contender) == twin_of(c) and r.contender.mode == c.mode), None)
        ratio = harness.paired_ratio(t, ref) if ref is not None else (None, None, None)
        row[f"x_{ref_impl}"], row[f"x_{ref_impl}_min"], row[f"x_{ref_impl}_max"] = ratio
    row["gmacs_per_image"] = macs / 1e9 if macs else None
    if macs:
        # FLOPs = 2 x multiply-adds; a training step costs about 3 forward passes.
        flops = 2 * macs * c.batch * (3 if c.mode == "train" else 1) / t.median
        row["achieved_gflops"] = flops / 1e9
        row["pct_of_peak"] = 100 * flops / peak_flops if peak_flops else None
    else:
        row["achieved_gflops"] = row["pct_of_peak"] = None
    row["_contender"] = c
    return row


def macs_of(c: Contender) -> float | None:
    """Multiply-adds per image: our analytic counter for RegNets (the twin's), else PyTorch's
    ``FlopCounterMode`` on one image (it counts FLOPs, 2 per multiply-add)."""
    if c.group and "|" in c.group:
        return float(model_complexity(twin_of(c), resolution=c.resolution).flops)
    from torch.utils.flop_counter import FlopCounterMode

    model = harness.build_model(c).eval()
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(torch.randn(1, 3, c.resolution, c.resolution))
    return counter.get_total_flops() / 2


def table4_contenders(pairs: Sequence[tuple], batch: int) -> list[Contender]:
    out = []
    for ours, effnet, size, _, _ in pairs:
        out.append(Contender("ours", ours, "infer", batch, 224, group=f"table4|{ours}"))
        out.append(Contender("torchvision", effnet, "infer", batch, size, group=f"table4|{ours}"))
    return out


def table4_rows(rows: list[dict], pairs: Sequence[tuple], timings_by_label: dict) -> list[dict]:
    """One row per pair: our times per 64 images beside the published V100 ones."""
    out = []
    for ours, effnet, size, paper_regnet, paper_effnet in pairs:
        r = next(x for x in rows if x["arch"] == ours)
        e = next(x for x in rows if x["arch"] == effnet)
        ratio = harness.paired_ratio(timings_by_label[effnet], timings_by_label[ours])
        out.append({
            "regnet": get_card(ours).display_name, "efficientnet": effnet, "efficientnet_size": size,
            "batch": r["batch"], "regnet_ms_per_64": r["ms_median"] * 64 / r["batch"],
            "efficientnet_ms_per_64": e["ms_median"] * 64 / e["batch"],
            "speedup_median": 1 / ratio[0], "speedup_min": 1 / ratio[2], "speedup_max": 1 / ratio[1],
            "paper_regnet_ms_v100": paper_regnet, "paper_efficientnet_ms_v100": paper_effnet,
            "paper_speedup": paper_effnet / paper_regnet,
            "regnet_gmacs": r["gmacs_per_image"], "efficientnet_gmacs": e["gmacs_per_image"],
        })
    return out


def fit(x: Sequence[float], y: Sequence[float]) -> dict[str, float]:
    """Least-squares line ``y = slope x + intercept``, its R^2, and Pearson's and Spearman's r."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    slope, intercept = np.polyfit(x, y, 1)
    residual = y - (slope * x + intercept)
    r2 = 1 - float(residual @ residual) / float(((y - y.mean()) ** 2).sum())
    ranks = lambda v: np.argsort(np.argsort(v))  # noqa: E731 - no ties among these models
    return {
        "slope": float(slope), "intercept": float(intercept), "r2": r2,
        "pearson_r": float(np.corrcoef(x, y)[0, 1]), "spearman_r": float(np.corrcoef(ranks(x), ranks(y))[0, 1]),
    }


def scaling_rows(timings: Sequence[Timing]) -> tuple[list[dict], dict]:
    """Per model: flops, acts, params and time; and the fit of time against flops and acts."""
    rows = []
    for t in timings:
        c = t.contender
        cx = model_complexity(c.arch, resolution=c.resolution)
        q1, q3 = t.quartiles()
        rows.append({
            "model": get_card(c.arch).display_name, "arch": c.arch, "batch": c.batch, "resolution": c.resolution,
            "gflops": cx.flops / 1e9, "macts": cx.acts / 1e6, "mparams": cx.params / 1e6,
            "ms_median": 1e3 * t.median, "ms_q1": 1e3 * q1, "ms_q3": 1e3 * q3,
        })
    times = [r["ms_median"] for r in rows]
    fits = {
        "flops": fit([r["gflops"] for r in rows], times),
        "acts": fit([r["macts"] for r in rows], times),
    }
    return rows, fits


# --- output ---------------------------------------------------------------------------------


def metadata(device: torch.device, peaks: dict[str, float] | None) -> dict:
    info = environment_info()
    return {
        "command": "python -m benchmarks.speed " + " ".join(sys.argv[1:]),
        "date_utc": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "git_commit": git_commit(harness.ROOT),
        "device": device.type, "device_name": harness.device_name(device),
        "torch_threads": torch.get_num_threads(), "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS"),
        "cpu_count": os.cpu_count(), "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "peak_gflops": harness.best_peak(peaks) / 1e9 if peaks else None,
        "peak_gflops_by_kernel": {k: v / 1e9 for k, v in peaks.items()} if peaks else None,
        **{k: info[k] for k in ("python", "platform", "torch", "torchvision", "timm")},
    }


def write_results(out: Path, name: str, rows: list[dict], meta: dict, extra: dict | None = None) -> None:
    """``NAME.csv`` (pandas when installed, else the csv module) and ``NAME.json`` with ``meta``."""
    out.mkdir(parents=True, exist_ok=True)
    try:
        import pandas as pd

        text = pd.DataFrame(rows).to_csv(index=False, float_format="%.6g")
    except ImportError:
        import csv
        import io

        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=list(rows[0]), lineterminator="\n")
        writer.writeheader()
        writer.writerows([{k: _fmt(v) for k, v in r.items()} for r in rows])
        text = buf.getvalue()
    write_text_atomic(out / f"{name}.csv", text)
    payload = {"meta": meta, **(extra or {}), "rows": rows}
    write_text_atomic(out / f"{name}.json", json.dumps(payload, indent=1, default=str) + "\n")


def _fmt(v: object) -> object:
    return "" if v is None else (f"{v:.6g}" if isinstance(v, float) else v)


def _num(v: float | None, spec: str = ".2f") -> str:
    return "-" if v is None or (isinstance(v, float) and math.isnan(v)) else format(v, spec)


def print_compare(rows: Sequence[dict]) -> None:
    table = [
        [r["impl"], r["arch"], r["mode"], r["settings"], r["batch"], _num(r["img_per_s"], ".1f"),
         f"{_num(r['img_per_s_q1'], '.1f')}-{_num(r['img_per_s_q3'], '.1f')}",
         _num(r["x_torchvision"]), _num(r["x_timm"]), _num(r["pct_of_peak"], ".0f"), _num(r["peak_mem_mib"], ".0f")]
        for r in rows
    ]
    print(format_table(table, ["impl", "arch", "mode", "settings", "batch", "img/s", "IQR",
                               "x torchvision", "x timm", "% peak", "peak MiB"]))


def print_table4(rows: Sequence[dict]) -> None:
    table = [
        [r["regnet"], r["efficientnet"], r["batch"], _num(r["regnet_ms_per_64"], ".0f"),
         _num(r["efficientnet_ms_per_64"], ".0f"), _num(r["speedup_median"]),
         r["paper_regnet_ms_v100"], r["paper_efficientnet_ms_v100"], _num(r["paper_speedup"])]
        for r in rows
    ]
    print(format_table(table, ["RegNetY", "EfficientNet", "batch", "ours ms/64", "EffNet ms/64",
                               "speed-up", "V100 ms/64 (paper)", "EffNet V100", "V100 speed-up"]))
    print(f"V100 numbers: inference of 64 images on 1 V100, {PAPER_TABLE4_SOURCE}.")


def print_scaling(rows: Sequence[dict], fits: dict) -> None:
    table = [[r["model"], _num(r["gflops"]), _num(r["macts"], ".1f"), _num(r["ms_median"], ".1f")] for r in rows]
    print(format_table(table, ["model", "GF", "acts (M)", "ms"]))
    for key, f in fits.items():
        print(f"time vs {key:5s}: R^2 = {f['r2']:.3f}, Pearson r = {f['pearson_r']:.3f}, "
              f"Spearman r = {f['spearman_r']:.3f}")


# --- commands -------------------------------------------------------------------------------


def run_compare(
    args: argparse.Namespace, device: torch.device, peak: dict[str, float] | None,
    contenders: list[Contender] | None = None,
) -> tuple[list[dict], dict[str, float] | None]:
    if contenders is None:
        contenders = compare_contenders(
            args.models, args.impls, args.modes, args.batch, args.resolution, args.precision,
            args.memory_format, [v == "on" for v in args.compile], [v == "on" for v in args.fused],
            args.train_batch,
        )
    if not contenders:
        raise SystemExit("nothing to measure: check --impls and --models (e.g. timm has no *_tv models).")
    for c in contenders:
        harness.validate(c)
    rows, peak = measure_groups(contenders, device, args, peak, macs_of)
    print_compare(rows)
    write_results(args.out, "compare", rows, metadata(device, peak))
    return rows, peak


def run_table4(args: argparse.Namespace, device: torch.device, peak: dict[str, float] | None) -> list[dict]:
    pairs = [p for p in TABLE4_PAIRS if not args.pairs or p[0] in args.pairs]
    contenders = table4_contenders(pairs, args.table4_batch)
    log(f"table 4: {len(contenders)} contenders")
    steps = [(c, harness.make_step(c, device)) for c in contenders]
    timings = harness.time_interleaved(steps, args.table4_rounds or args.rounds, args.warmup, args.min_run_time, log)
    del steps
    macs = {c.arch: macs_of(replace(c, group="") if c.impl != "ours" else c) for c in contenders}
    peak_flops = harness.best_peak(peak)
    rows = [row_for(t, timings, peak_flops, macs[t.contender.arch]) for t in timings]
    for r in rows:
        r.pop("_contender")
    out = table4_rows(rows, pairs, {t.contender.arch: t for t in timings})
    print_table4(out)
    write_results(args.out, "table4", out, metadata(device, peak), {"source": PAPER_TABLE4_SOURCE})
    return out


def run_scaling(
    args: argparse.Namespace, device: torch.device, peak: dict[str, float] | None,
) -> tuple[list[dict], dict]:
    models = args.scaling_models or PYCLS_MODELS
    contenders = [Contender("ours", m, "infer", args.scaling_batch, args.resolution, group=f"scaling|{m}")
                  for m in models]
    steps = []
    for i, c in enumerate(contenders):
        log(f"building {i + 1}/{len(contenders)}: {c.arch}")
        steps.append((c, harness.make_step(c, device)))
    timings = harness.time_interleaved(steps, args.scaling_rounds or args.rounds, args.warmup, args.min_run_time, log)
    del steps
    rows, fits = scaling_rows(timings)
    print_scaling(rows, fits)
    write_results(args.out, "scaling", rows, metadata(device, peak), {"fits": fits})
    return rows, fits


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    common = ArgumentParser(add_help=False)
    common.add_argument("--out", type=Path, default=Path("benchmarks/results/local"),
                        help="folder for NAME.csv and NAME.json (default: benchmarks/results/local)")
    common.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto")
    common.add_argument("--threads", type=int_at_least(1), default=None,
                        help="PyTorch CPU threads (default: its own choice)")
    common.add_argument("--rounds", type=int_at_least(1), default=7, help="interleaved timing rounds")
    common.add_argument("--warmup", type=int_at_least(0), default=2, help="untimed calls per contender first")
    common.add_argument("--min-run-time", type=float, default=0.5,
                        help="seconds per contender per round (blocked_autorange)")
    common.add_argument("--memory", choices=["on", "off"], default="on",
                        help="peak memory per contender (CPU: a child process each)")
    common.add_argument("--models", nargs="+", default=["regnetx_400mf", "regnety_1_6gf"])
    common.add_argument("--batch", type=int_at_least(1), default=16)
    common.add_argument("--train-batch", type=int_at_least(1), default=None,
                        help="batch of training steps (default: --batch)")
    common.add_argument("--resolution", type=int_at_least(32), default=224)
    common.add_argument("--pairs", nargs="+", default=None, metavar="REGNETY",
                        help="table 4 pairs by our RegNetY name (default: all six)")
    common.add_argument("--table4-batch", type=int_at_least(1), default=64,
                        help="images per call in table 4 (paper: 64)")
    common.add_argument("--table4-rounds", type=int_at_least(1), default=3,
                        help="rounds of table 4 (default 3: EfficientNet-B5 at 64 images takes a minute "
                             "on one CPU core)")
    common.add_argument("--scaling-batch", type=int_at_least(1), default=8)
    common.add_argument("--scaling-rounds", type=int_at_least(1), default=None, help="default: --rounds")
    common.add_argument("--scaling-models", nargs="+", default=None, help="default: the paper's 24 models")
    parser = ArgumentParser(prog="python -m benchmarks.speed", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    compare = sub.add_parser("compare", parents=[common], help="ours vs torchvision vs timm, any settings")
    compare.add_argument("--impls", nargs="+", choices=harness.IMPLS, default=list(harness.IMPLS))
    compare.add_argument("--modes", nargs="+", choices=harness.MODES, default=list(harness.MODES))
    compare.add_argument("--precision", nargs="+", choices=list(harness.PRECISIONS), default=["fp32"])
    compare.add_argument("--memory-format", nargs="+", choices=list(harness.MEMORY_FORMATS), default=["contiguous"])
    compare.add_argument("--compile", nargs="+", choices=["off", "on"], default=["off"])
    compare.add_argument("--fused", nargs="+", choices=["off", "on"], default=["off"])
    sub.add_parser("table4", parents=[common], help="RegNetY vs EfficientNet (paper, Table 4 pairs)")
    sub.add_parser("scaling", parents=[common], help="runtime vs flops and activations, 24 models")
    sub.add_parser("peak", parents=[common], help="the device's measured peak FLOP/s (matmul, 3x3 conv)")
    sub.add_parser("all", parents=[common], help="peak, compare (committed set), table4, scaling")
    args = parser.parse_args(argv)
    if args.min_run_time < 0:
        parser.error(f"argument --min-run-time: {args.min_run_time} is negative; give seconds >= 0")
    for name in list(args.models) + list(args.scaling_models or []) + list(args.pairs or []):
        if name not in MODEL_CARDS:
            parser.error(f"unknown model {name!r}; "
                         "python -c 'import regnet_tutorial as r; print(r.list_models())' lists them")
    if args.pairs and not set(args.pairs) <= {p[0] for p in TABLE4_PAIRS}:
        parser.error(f"--pairs takes our RegNetY names among {[p[0] for p in TABLE4_PAIRS]}")
    return args


def main(argv: Sequence[str] | None = None) -> dict:
    """Run one subcommand; returns what it measured (rows per suite). Bad input is one ``error:`` line."""
    return run_main(measure, argv)


def measure(argv: Sequence[str] | None = None) -> dict:
    """Run one subcommand; returns what it measured (rows per suite)."""
    args = parse_args(argv)
    if args.device == "cuda" and not torch.cuda.is_available():
        raise UsageError("--device cuda was asked for, but PyTorch sees no CUDA device; use --device cpu.")
    device = torch.device("cuda" if args.device == "auto" and torch.cuda.is_available() else
                          "cpu" if args.device == "auto" else args.device)
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    log(f"device {harness.device_name(device)}, {torch.get_num_threads()} threads, "
        f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS')}")
    peak = harness.peak_flops(device) if args.command in ("peak", "all", "compare") else None
    if peak:
        print("measured peak (fp32): " + ", ".join(f"{k} {v / 1e9:.1f} GFLOP/s" for k, v in peak.items()))
    results: dict = {"peak_gflops": harness.best_peak(peak) / 1e9 if peak else None}
    if args.command == "peak":
        write_results(args.out, "peak", [{"kernel": k, "gflops": v / 1e9} for k, v in peak.items()],
                      metadata(device, peak))
    if args.command == "compare":
        results["compare"], peak = run_compare(args, device, peak)
    if args.command == "all":
        chosen = committed_compare(args.models, args.batch, args.resolution, args.train_batch)
        results["compare"], peak = run_compare(args, device, peak, chosen)
    if args.command in ("table4", "all"):
        results["table4"] = run_table4(args, device, peak)
    if args.command in ("scaling", "all"):
        results["scaling"] = run_scaling(args, device, peak)
    return results


if __name__ == "__main__":
    main()
