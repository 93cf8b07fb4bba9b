"""Read the results ``benchmarks.speed`` wrote, and draw them (chapter 07 uses this).

Figures use matplotlib's object-oriented API and the tutorial's fixed style, as in
``regnet_tutorial.figures.style``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import NullFormatter, ScalarFormatter

from regnet_tutorial.figures.style import FIGURE_WIDTH, Table, use_tutorial_style
from regnet_tutorial.models import get_card

RESULTS = Path(__file__).resolve().parent / "results"


def load(folder: str | Path) -> dict[str, dict]:
    """``{"compare": payload, "table4": ..., "scaling": ...}`` for the JSON files present."""
    folder = Path(folder)
    return {p.stem: json.loads(p.read_text()) for p in sorted(folder.glob("*.json"))}


def _display(row: dict) -> str:
    return get_card(row["twin"]).display_name.replace(" (tv)", "")


def parity(rows: Sequence[dict]) -> dict[tuple[str, str, str], tuple[float, float, float]]:
    """``(model, mode, library) -> (median, min, max)`` of ours over that library, eager fp32,
    identical architecture, same process, paired per round."""
    out = {}
    for r in rows:
        if r["impl"] != "ours" or r["settings"] != "eager":
            continue
        for lib in ("torchvision", "timm"):
            if r[f"x_{lib}"] is not None:
                out[(_display(r), r["mode"], lib)] = (r[f"x_{lib}"], r[f"x_{lib}_min"], r[f"x_{lib}_max"])
    return out


def parity_table(rows: Sequence[dict]) -> Table:
    """Ours / library throughput ratios (> 1: ours faster), with the range over rounds."""
    body = [[model, mode, lib, f"{m:.2f}", f"{lo:.2f}-{hi:.2f}"]
            for (model, mode, lib), (m, lo, hi) in parity(rows).items()]
    return Table(body, ["model", "mode", "ours / library", "median ratio", "range over rounds"])


def inference_speedups(rows: Sequence[dict]) -> dict[str, dict[str, float]]:
    """Per model: each inference setting of ours over torchvision's eager run, and folded +
    channels-last over torchvision's *best* eager run (the faster of its two memory formats),
    as the ratio of the two paired medians."""
    out: dict[str, dict[str, float]] = {}
    for r in rows:
        if r["mode"] == "infer" and r["x_torchvision"] is not None:
            out.setdefault(_display(r), {})[f"{r['impl']} {r['settings']}"] = r["x_torchvision"]
    for ratios in out.values():
        best_tv = max(v for k, v in ratios.items() if k.startswith("torchvision"))
        ratios["ours fused+cl / torchvision best"] = ratios["ours fused+cl"] / best_tv
    return out


def inference_table(rows: Sequence[dict]) -> Table:
    """Each inference setting against torchvision's eager run: images/s and ratio."""
    body = [[_display(r), r["impl"], r["settings"], r["batch"], f"{r['img_per_s']:.1f}",
             f"{r['x_torchvision']:.2f}", f"{r['pct_of_peak']:.0f}%",
             f"{r['peak_mem_mib']:.0f}" if r["peak_mem_mib"] else "-"]
            for r in rows if r["mode"] == "infer" and r["x_torchvision"] is not None]
    return Table(body, ["model", "impl", "settings", "batch", "img/s", "x torchvision eager",
                        "of peak FLOP/s", "peak MiB"])


def plot_ratios(rows: Sequence[dict]) -> Figure:
    """Throughput relative to torchvision's eager run, per model, mode and setting."""
    use_tutorial_style()
    picked = [r for r in rows if r["x_torchvision"] is not None]
    labels = [f"{_display(r)} {r['mode']}:\n{r['impl']} {r['settings']}" for r in picked]
    med = np.array([r["x_torchvision"] for r in picked])
    err = np.array([[m - r["x_torchvision_min"], r["x_torchvision_max"] - m] for m, r in zip(med, picked)]).T
    fig = Figure(figsize=(FIGURE_WIDTH, 0.42 * len(picked) + 1.2), layout="constrained")
    ax = fig.subplots()
    colors = ["tab:gray" if r["impl"] == "torchvision" else "tab:green" if r["fused"] else "tab:blue" for r in picked]
    y = np.arange(len(picked))[::-1]
    ax.barh(y, med, xerr=err, color=colors, capsize=2)
    ax.axvline(1.0, color="black", linewidth=0.8)
    ax.set_yticks(y, labels)
    ax.set_xlabel("throughput / torchvision eager\n(paired per round; bar: median, whisker: range)")
    return fig


def plot_table4(rows: Sequence[dict]) -> Figure:
    """EfficientNet time / RegNetY time per pair: this machine against the published V100."""
    use_tutorial_style()
    fig = Figure(figsize=(FIGURE_WIDTH, 3.8), layout="constrained")
    ax = fig.subplots()
    x = np.arange(len(rows))
    ours = [r["speedup_median"] for r in rows]
    err = np.array([[m - r["speedup_min"], r["speedup_max"] - m] for m, r in zip(ours, rows)]).T
    ax.bar(x - 0.2, [r["paper_speedup"] for r in rows], 0.4, label="V100 (paper, Table 4)", color="tab:gray")
    ax.bar(x + 0.2, ours, 0.4, yerr=err, capsize=2, label="this machine", color="tab:blue")
    ax.axhline(1.0, color="black", linewidth=0.8)
    ax.set_xticks(x, [f"{r['regnet'].removeprefix('RegNetY-')}\nvs B{r['efficientnet'][-1]}" for r in rows])
    ax.set_xlabel("RegNetY model vs EfficientNet")
    ax.set_ylabel("EfficientNet time /\nRegNetY time")
    fig.legend(*ax.get_legend_handles_labels(), loc="outside upper center", ncols=2)
    return fig


def plot_scaling(rows: Sequence[dict], fits: dict) -> Figure:
    """Inference time of every model against its flops and against its activations (log axes:
    the models span two orders of magnitude), with the least-squares line and its R^2."""
    use_tutorial_style()
    fig = Figure(figsize=(FIGURE_WIDTH, 6.4), layout="constrained")
    axes = fig.subplots(2, 1)
    t = np.array([r["ms_median"] for r in rows])
    for ax, key, column, unit in ((axes[0], "flops", "gflops", "flops (B multiply-adds)"),
                                  (axes[1], "acts", "macts", "activations (M)")):
        x = np.array([r[column] for r in rows])
        for family, marker in (("RegNetX", "o"), ("RegNetY", "s")):
            pick = [r["model"].startswith(family) for r in rows]
            ax.plot(x[pick], t[pick], marker, label=family, markersize=4)
        f = fits[key]
        # The straight-line fit, drawn over the models' range, where it predicts a positive time.
        xs = np.geomspace(x.min(), x.max(), 100)
        ys = f["slope"] * xs + f["intercept"]
        ax.plot(xs[ys > 0], ys[ys > 0], "-", color="black", linewidth=0.8, label="least-squares line")
        ax.set(xscale="log", yscale="log", ylim=(t.min() / 1.5, t.max() * 1.5))
        for axis in (ax.xaxis, ax.yaxis):  # plain numbers, and no crowded labels between decades
            axis.set_major_formatter(ScalarFormatter())
            axis.set_minor_formatter(NullFormatter())
        ax.set_title(f"time vs {key}: $R^2$ = {f['r2']:.2f}")
        ax.set_xlabel(unit + ", log scale")
        ax.set_ylabel(f"ms per batch of {rows[0]['batch']}\n({rows[0]['resolution']} px), log scale")
    axes[0].legend()
    return fig
