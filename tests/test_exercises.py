"""The numbers quoted in the exercise solutions of chapters 02 and 03, and of some in 01 and 04 (chapter 07's are in
test_benchmarks.py), computed again from the package and compared with the chapter's text.

Each solution is read from the notebook, so that a number that drifts from what the code
gives fails here rather than misleading a reader.
"""

from __future__ import annotations

import dataclasses
import math
import re
from pathlib import Path

import nbformat
import pytest

from regnet_tutorial import get_card
from regnet_tutorial.complexity import model_complexity
from regnet_tutorial.design_space import (
    DesignSpaceError,
    RegNetParams,
    block_exponents,
    generate_stages,
    quantized_widths,
)

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"


def solution(notebook: str, number: int) -> str:
    """The text of ``Solution <number>`` of a chapter, whitespace collapsed."""
    nb = nbformat.read(NOTEBOOKS / notebook, as_version=4)
    text = "\n".join(c.source for c in nb.cells if c.cell_type == "markdown")
    found = re.search(rf"\{{dropdown\}} Solution {number}\n(.*?)\n:::", text, re.S)
    assert found, f"{notebook}: no 'Solution {number}' dropdown"
    return " ".join(found.group(1).split())


def tuple_text(values: tuple[int, ...] | list[int]) -> str:
    return "(" + ", ".join(str(v) for v in values) + ")"


def test_ch02_solution1_wider_multipliers() -> None:
    text = solution("02_regnet_parametrization.ipynb", 1)
    p = get_card("regnetx_400mf").params
    assert f"{p.w0} + {p.wa} \\cdot {p.depth - 1} \\approx {round(p.w0 + p.wa * (p.depth - 1))}" in text
    with pytest.raises(DesignSpaceError) as err:
        generate_stages(dataclasses.replace(p, wm=2.0))
    five = [p.w0 * 2**k for k in range(5)]
    assert all(str(w) in str(err.value) for w in five) and tuple_text(five) in text
    three = generate_stages(dataclasses.replace(p, wm=3.0))
    original = generate_stages(p)
    assert f"depths {tuple_text(three.depths)} and widths {tuple_text(three.widths)}" in text
    assert f"instead of {tuple_text(original.depths)} and {tuple_text(original.widths)}" in text
    flops = model_complexity(three).flops / 1e9, model_complexity(original).flops / 1e9
    assert f"{flops[0]:.2f} GF instead of {flops[1]:.2f} GF" in text


def test_ch02_solution2_torchvision_rounding_of_regnety_4_0gf() -> None:
    text = solution("02_regnet_parametrization.ipynb", 2)
    card = get_card("regnety_4_0gf")
    paper, tv = generate_stages(card.params, "pycls"), generate_stages(card.params, "torchvision")
    assert f"({', '.join(map(str, tv.widths))}) instead of ({', '.join(map(str, paper.widths))})" in text
    changed = [i for i, (a, b) in enumerate(zip(paper.widths, tv.widths, strict=True)) if a != b]
    assert changed == [1] and text.startswith("Stage 2 changes")
    cp, ct = model_complexity(paper), model_complexity(tv)
    params_growth = 100 * (ct.params / cp.params - 1)
    assert f"from {cp.params / 1e6:.1f} M to {ct.params / 1e6:.1f} M (+{params_growth:.1f}%)" in text
    assert f"from {cp.flops / 1e9:.2f} to {ct.flops / 1e9:.2f} GF (+{100 * (ct.flops / cp.flops - 1):.0f}%)" in text


def test_ch02_solution3_three_stages() -> None:
    text = solution("02_regnet_parametrization.ipynb", 3)
    params = RegNetParams(depth=10, w0=48, wa=20.0, wm=2.5, group_width=8)
    stages = generate_stages(params)
    assert f"depths {tuple_text(stages.depths)} and widths {tuple_text(stages.widths)}" in text
    last = params.w0 + params.wa * (params.depth - 1)
    assert f"= {last:g}$" in text
    powers = math.log(last / params.w0) / math.log(params.wm)  # the exponent s_j of the last block
    assert powers == pytest.approx(max(block_exponents(params)), rel=1e-12)
    assert f"\\approx {powers:.2f}$ powers of 2.5" in text and f"{powers:.2f}" == "1.70"
    assert sorted({round(s) for s in block_exponents(params)}) == [0, 1, 2]


def test_ch02_solution4_without_the_multiple_of_8() -> None:
    text = solution("02_regnet_parametrization.ipynb", 4)
    p = get_card("regnetx_1_6gf").params
    eq4 = sorted({p.w0 * p.wm ** round(s) for s in block_exponents(p)})
    code = sorted(set(quantized_widths(p)))
    assert "Eq. 4 alone gives " + ", ".join(f"{w:g}" for w in eq4[:-1]) + f" and {eq4[-1]:g} channels" in text
    assert "multiples of 8 gives " + ", ".join(str(w) for w in code[:-1]) + f" and {code[-1]}" in text


def test_ch03_solution1_squeeze_parameters() -> None:
    from regnet_tutorial.blocks import ResBottleneckBlock

    text = solution("03_blocks.ipynb", 1)
    count = {r: sum(p.numel() for p in ResBottleneckBlock(32, 64, 2, 16, se_ratio=r).parameters())
             for r in (0.0, 0.25, 0.5)}
    w_b, w_se = 64, int(0.5 * 32)
    se = w_b * w_se + w_se + w_se * w_b + w_b
    assert se == count[0.5] - count[0.0]
    assert f"= {se}$ parameters ({count[0.25] - count[0.0]} with 0.25)" in text
    assert f"has {count[0.5]} parameters instead of {count[0.25]}" in text


def test_ch03_solution2_and_4_regnety_800mf_widths() -> None:
    params = get_card("regnety_800mf").params
    spec, tv = generate_stages(params), generate_stages(params, "torchvision")
    assert f"depths {tuple_text(spec.depths)} and widths {tuple_text(spec.widths)}" in solution("03_blocks.ipynb", 2)
    assert f"widths are {tuple_text(tv.widths)} instead of {tuple_text(spec.widths)}" in solution("03_blocks.ipynb", 4)


def test_ch03_solution3_smaller_input() -> None:
    text = solution("03_blocks.ipynb", 3)
    big, small = model_complexity("regnetx_400mf", resolution=224), model_complexity("regnetx_400mf", resolution=160)
    assert f"from {big.flops / 1e9:.3f} to {small.flops / 1e9:.3f} GF" in text
    assert f"from {big.acts / 1e6:.2f} M to {small.acts / 1e6:.2f} M" in text
    assert f"\\approx {(160 / 224) ** 2:.2f}$" in text


def test_ch01_solution3_first_regnetx_line() -> None:
    """The first RegNetX sample of the exercise's command, as the solution quotes it."""
    from regnet_tutorial.sweep import SamplerConfig, sample_space

    text = solution("01_design_spaces.ipynb", 3)
    s = sample_space("regnetx", 1, 0, SamplerConfig(flops=(2e6, 4e6), resolution=28, skeleton="small", stages=3))[0]
    assert f"$d = {s['d']}$, $w_0 = {s['w0']}$, $w_a = {s['wa']}$, $w_m = {s['wm']:.2f}$" in text
    assert f"depths {tuple_text(s['depths'])} and widths {tuple_text(s['widths'])}" in text
    assert f"{s['flops'] / 1e6:.2f} M flops at 28 px" in text and f"line's {s['params']:,} parameters" in text


def _ch04_solution(number: int) -> str:
    nb = nbformat.read(NOTEBOOKS / "04_design_space_analysis.ipynb", as_version=4)
    text = "\n".join(c.source for c in nb.cells if c.cell_type == "markdown")
    found = re.findall(r"\{dropdown\} Solution\n(.*?)\n\s*```", text, re.S)
    return " ".join(found[number - 1].split())


def test_ch04_solution1_b_on_a_and_d_against_e() -> None:
    """The differences of mean error the solution quotes, recomputed from the committed sweep with
    a percentile bootstrap of our own (another seed: the interval ends agree to 0.2 points)."""
    import json

    import numpy as np

    text = _ch04_solution(1)
    lines = (NOTEBOOKS.parent / "results" / "sweep_fashion_mnist.jsonl").read_text().splitlines()
    errors: dict[str, list[float]] = {}
    for r in map(json.loads, lines):
        errors.setdefault(r["space"], []).append(r["top1_error"])
    rng = np.random.default_rng(123)
    # In order: B - A, its interval; D - E, its interval; D's best error.
    numbers = [float(x.replace("−", "-")) for x in re.findall(r"[−+]?\d+\.\d", text)]
    assert len(numbers) == 7, numbers
    for a, b, (diff, lo, hi) in (("anynetx_b", "anynetx_a", numbers[0:3]), ("anynetx_d", "anynetx_e", numbers[3:6])):
        x, y = np.array(errors[a]), np.array(errors[b])
        boot = rng.choice(x, (20000, x.size)).mean(1) - rng.choice(y, (20000, y.size)).mean(1)
        low, high = np.quantile(boot, [0.025, 0.975])
        assert round(x.mean() - y.mean(), 1) == diff and abs(low - lo) < 0.2 and abs(high - hi) < 0.2
        assert low < 0 < high  # "both intervals contain zero"
    assert min(errors["anynetx_d"]) == numbers[6] == 49.0  # D's single best model
    assert "the paper finds E better than D" in text


def _committed_sweep() -> dict[str, list[dict]]:
    import json

    lines = (NOTEBOOKS.parent / "results" / "sweep_fashion_mnist.jsonl").read_text().splitlines()
    spaces: dict[str, list[dict]] = {}
    for r in map(json.loads, filter(str.strip, lines)):
        spaces.setdefault(r["space"], []).append(r)
    return spaces


def _numbers(text: str) -> list[float]:
    """Every decimal number of ``text`` in order, the typographic minus read as a minus."""
    return [float(x.replace("−", "-")) for x in re.findall(r"[−-]?\d+\.\d+", text)]


def test_ch01_solution4_widths_explain_the_most() -> None:
    """Each family's R^2 (the squared correlation of the error with its least-squares fit on the
    family's four log stage values) and its 95% interval, by a bootstrap of our own (another seed:
    the ends agree to 0.05), against the solution's "R^2 = 0.56 ... [0.39, 0.77] ...". """
    import numpy as np

    text = solution("01_design_spaces.ipynb", 4)
    quoted = text[text.index("The widths explain"):text.index("whose intervals overlap")]
    numbers = _numbers(quoted)
    assert len(numbers) == 12, numbers  # R^2, low, high for w, d, g, b in the text's order
    rows = _committed_sweep()["anynetx_a"]
    e = np.array([r["top1_error"] for r in rows])

    def r2(x: np.ndarray, y: np.ndarray) -> float:
        design = np.column_stack([np.ones(len(y)), x])
        fitted = design @ np.linalg.lstsq(design, y, rcond=None)[0]
        return float(np.corrcoef(fitted, y)[0, 1] ** 2)

    rng = np.random.default_rng(2024)
    for k, key in enumerate(("widths", "depths", "group_widths", "bottleneck_ratios")):
        x = np.log([r[key] for r in rows])
        idx = rng.integers(0, e.size, (4000, e.size))
        low, high = np.quantile([r2(x[i], e[i]) for i in idx], [0.025, 0.975])
        value, lo, hi = numbers[3 * k: 3 * k + 3]
        assert round(r2(x, e), 2) == value and abs(low - lo) < 0.05 and abs(high - hi) < 0.05, key
    assert numbers[0] > 0.5 and max(numbers[3::3]) <= 0.08 and numbers[1] > max(numbers[5::3])  # "far more"


def test_ch01_solution5_models_needed_for_a_one_point_step() -> None:
    """n = (z_0.975 + z_0.8)^2 (sigma_D^2 + sigma_E^2) / delta^2 for delta = 1 point, with the exact
    normal quantiles (the solution rounds them to 1.96 and 0.84) and the committed errors."""
    from statistics import NormalDist, pstdev

    text = solution("01_design_spaces.ipynb", 5)
    found = re.search(r"standard deviations of (\d+\.\d) and (\d+\.\d) points, this is about (\d+) models", text)
    assert found, "the solution no longer quotes the SDs and the number of models"
    sweep = _committed_sweep()
    sd_d, sd_e = (pstdev(r["top1_error"] for r in sweep[s]) for s in ("anynetx_d", "anynetx_e"))
    assert (f"{sd_d:.1f}", f"{sd_e:.1f}") == found.group(1, 2)
    z = NormalDist().inv_cdf(0.975) + NormalDist().inv_cdf(0.8)
    n = z**2 * (sd_d**2 + sd_e**2)
    assert round(2.8**2 * (sd_d**2 + sd_e**2)) == int(found.group(3))  # the solution's own formula
    assert abs(n - int(found.group(3))) / n < 0.01  # "about": within 1% of the exact quantiles'


def test_ch04_solution4_a_subset_chosen_after_the_fact() -> None:
    """The subset b = 4, w_m <= 2 of RegNetX against all of it: its size, the difference of means and
    the difference at equal log10 parameters (our own least squares), each with a percentile
    bootstrap of our own (another seed: the ends agree to 0.25 points), and the p-values' rounding."""
    import numpy as np

    from regnet_tutorial.sweep.analysis import compare, controlled_difference

    nb = nbformat.read(NOTEBOOKS / "04_design_space_analysis.ipynb", as_version=4)
    cell = next(c.source for c in nb.cells if "a constrained space for this scale" in c.source)
    text = " ".join(cell[cell.index("On the committed sweep"):].split())
    found = re.search(r"sweep (\d+) of the (\d+) RegNetX models qualify", text)
    assert found
    rows = _committed_sweep()["regnetx"]
    keep = np.array([r["bottleneck_ratios"][0] == 4 and r["wm"] <= 2.0 for r in rows])
    assert (int(keep.sum()), len(rows)) == tuple(map(int, found.group(1, 2)))
    e = np.array([r["top1_error"] for r in rows])
    logp = np.log10([r["params"] for r in rows])
    # In order: the mean difference (as "points below"), its interval, p; the same at equal params.
    below, lo, hi, p, below_p, lo_p, hi_p, p_p = _numbers(text[found.end():text.index("which")])
    rng = np.random.default_rng(99)
    sub, full = e[keep], e

    def at_params(e1: np.ndarray, l1: np.ndarray, e2: np.ndarray, l2: np.ndarray) -> float:
        y = np.concatenate([e1, e2])
        design = np.column_stack([np.ones(y.size), np.r_[np.ones(e1.size), np.zeros(e2.size)], np.r_[l1, l2]])
        return float(np.linalg.lstsq(design, y, rcond=None)[0][1])

    boot = [rng.choice(sub, sub.size).mean() - rng.choice(full, full.size).mean() for _ in range(10_000)]
    assert round(full.mean() - sub.mean(), 1) == below
    assert np.quantile(boot, 0.025) == pytest.approx(lo, abs=0.25) and np.quantile(boot, 0.975) == pytest.approx(
        hi, abs=0.25)
    boot_p = []
    for _ in range(2000):
        i, j = rng.integers(0, sub.size, sub.size), rng.integers(0, full.size, full.size)
        boot_p.append(at_params(sub[i], logp[keep][i], full[j], logp[j]))
    assert round(-at_params(sub, logp[keep], full, logp), 1) == below_p
    assert np.quantile(boot_p, 0.025) == pytest.approx(lo_p, abs=0.25)
    assert np.quantile(boot_p, 0.975) == pytest.approx(hi_p, abs=0.25)
    # The p-values are the package's permutation tests, as the solution's code prints them.
    assert round(compare(sub, full).p_value, 2) == p
    assert round(controlled_difference(sub, 10**logp[keep], full, 10**logp).p_value, 2) == p_p
    assert hi < 0 and hi_p < 0 and "Both intervals exclude 0" in text
