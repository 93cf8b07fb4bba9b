"""EDF, its legend and the empirical bootstrap against hand-computed and analytic cases."""

from __future__ import annotations

import math

import numpy as np
import pytest
from matplotlib.figure import Figure

from regnet_tutorial.figures.design_spaces import (
    bootstrap_figure,
    complexity_histogram_figure,
    complexity_scatter_figure,
    edf_figure,
    edf_panels_figure,
)
from regnet_tutorial.sweep.analysis import bootstrap_best, edf, edf_curve, edf_label
from regnet_tutorial.sweep.spaces import SamplingError


def test_edf_counts_errors_strictly_below_e() -> None:
    errors = [3.0, 1.0, 2.0, 2.0]
    # By hand: F(e) = #{e_i < e} / 4.
    assert edf(errors, 0.5) == 0.0
    assert edf(errors, 1.0) == 0.0  # strict: e_1 = 1 is not below 1
    assert edf(errors, 1.5) == 0.25
    assert edf(errors, 2.0) == 0.25
    assert edf(errors, 2.5) == 0.75
    assert edf(errors, 3.0) == 0.75
    assert edf(errors, 3.5) == 1.0
    assert list(edf(errors, [0, 2.5, 10])) == [0.0, 0.75, 1.0]


def test_edf_curve_and_legend() -> None:
    x, f = edf_curve([3.0, 1.0, 2.0, 2.0])
    assert list(x) == [1.0, 2.0, 2.0, 3.0] and list(f) == [0.25, 0.5, 0.75, 1.0]
    assert edf_label("A", [37.44, 40.0, 48.86]) == "[A] 3 | 37.4 | 42.1"  # mean 126.3 / 3 = 42.1
    with pytest.raises(ValueError, match="non-empty"):
        edf([], 1.0)


def test_bootstrap_of_all_equal_values_is_that_value() -> None:
    r = bootstrap_best([16] * 40, np.linspace(30, 50, 40), seed=1)
    assert (r.best, r.low, r.high) == (16, 16, 16) and r.draws.shape == (10_000,)


def test_bootstrap_when_error_falls_with_the_parameter() -> None:
    """Values 1..100 with error falling as the value grows: the best of a resample is its largest
    value, the maximum of m = 25 uniform draws, with CDF P(max <= k) = (k / 100) ** 25."""
    values = np.arange(1, 101)
    r = bootstrap_best(values, 100.0 - values, seed=0)
    cdf = lambda k: (k / 100) ** 25  # noqa: E731
    quantile = lambda q: min(k for k in range(1, 101) if cdf(k) >= q)  # noqa: E731
    assert (quantile(0.025), quantile(0.5), quantile(0.975)) == (87, 98, 100)
    assert r.best == 98 and r.high == 100 and r.low in (86, 87, 88)
    empirical = np.array([(r.draws <= k).mean() for k in range(1, 101)])
    assert np.max(np.abs(empirical - [cdf(k) for k in range(1, 101)])) < 0.02  # DKW bound at 10^4: ~0.014
    again = bootstrap_best(values, 100.0 - values, seed=0)
    assert np.array_equal(again.draws, r.draws)


def test_bootstrap_with_a_dominant_best_model() -> None:
    """One model far better than the rest, sampled with fraction 1 (m = n = 10): it is in a
    resample with probability 1 - 0.9 ** 10 = 0.651, else the best is the second best (value 2)."""
    errors = [10.0, 20.0] + [30.0] * 8
    values = [1.0, 2.0] + [3.0] * 8
    r = bootstrap_best(values, errors, fraction=1.0, seed=3)
    p1 = 1 - 0.9**10
    assert abs((r.draws == 1.0).mean() - p1) < 0.015
    assert r.best == 1.0 and r.low == 1.0
    # Value 3 wins only when neither model 1 nor 2 is drawn: 0.8 ** 10 = 0.107 > 2.5%.
    assert r.high == 3.0 and math.isclose(0.8**10, (r.draws == 3.0).mean(), abs_tol=0.01)


def test_bootstrap_bad_input_is_named() -> None:
    with pytest.raises(ValueError, match="one value per model"):
        bootstrap_best([1, 2], [1.0, 2.0, 3.0])


def test_figures_draw_what_they_are_given() -> None:
    fig = edf_figure({"A": [40.0, 42.0], "E": [38.0, 39.0, 41.0]})
    assert isinstance(fig, Figure)
    texts = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert texts == ["[A] 2 | 40.0 | 41.0", "[E] 3 | 38.0 | 39.3"]
    fig = bootstrap_figure({"depth": [1, 2, 3, 4]}, [4.0, 3.0, 2.0, 1.0])
    assert fig.axes[0].get_xlabel() == "depth"
    # The staircase is the EDF: F = 0 left of the smallest error, then edf_curve's values.
    x, f = edf_curve([38.0, 39.0, 41.0])
    line = edf_figure({"E": [38.0, 39.0, 41.0]}).axes[0].get_lines()[0]
    assert list(line.get_xdata()) == [38.0, *x] and list(line.get_ydata()) == [0.0, *f]
    best = bootstrap_best([1, 2, 3, 4], [4.0, 3.0, 2.0, 1.0])
    ax = fig.axes[0]
    assert ax.get_title() == f"depth: best {best.best:g} [{best.low:g}, {best.high:g}]"
    assert [tuple(p) for p in ax.collections[0].get_offsets()] == [(1, 4.0), (2, 3.0), (3, 2.0), (4, 1.0)]
    assert ax.get_lines()[0].get_xdata()[0] == best.best  # the vertical line at the most likely best
    samples = [{"flops": 1e6, "params": 2e6, "acts": 3e6}, {"flops": 2e6, "params": 1e6, "acts": 1e6}]
    scatter = complexity_scatter_figure({"A": samples}, {"A": [1.0, 2.0]})
    assert [[tuple(p) for p in ax.collections[0].get_offsets()] for ax in scatter.axes] == [
        [(1.0, 1.0), (2.0, 2.0)], [(2.0, 1.0), (1.0, 2.0)], [(3.0, 1.0), (1.0, 2.0)]]  # flops, params, acts in M
    histogram = complexity_histogram_figure(samples, bins=2)
    for ax, key in zip(histogram.axes, ("flops", "params", "acts")):
        heights = [bar.get_height() for bar in ax.patches]
        edges = sorted({bar.get_x() for bar in ax.patches})
        assert heights == [1, 1] and edges[0] == min(s[key] / 1e6 for s in samples)
    steps = [{"A": [1.0, 2.0], "B": [1.5]}, {"B": [1.5], "C": [3.0]}, {"C": [3.0]}]
    panels = edf_panels_figure(steps, ["A->B", "B->C"])
    visible = [ax for ax in panels.axes if ax.get_visible()]
    assert len(visible) == 3 and [ax.get_title() for ax in visible[:2]] == ["A->B", "B->C"]
    assert [t.get_text() for t in visible[1].get_legend().get_texts()] == ["[B] 1 | 1.5 | 1.5", "[C] 1 | 3.0 | 3.0"]
    # A space keeps its colour from panel to panel.
    assert visible[0].get_lines()[1].get_color() == visible[1].get_lines()[0].get_color()


def test_group_by_space_keeps_the_paper_order_and_finite_errors() -> None:
    from regnet_tutorial.sweep.analysis import group_by_space

    new = {"space_names": "paper"}
    records = [
        {"space": "regnetx_constrained", "index": 0, "top1_error": 4.0, **new},
        {"space": "regnetx", "index": 1, "top1_error": 5.0, **new},
        {"space": "anynetx_e", "index": 0, "top1_error": 7.0},
        {"space": "regnetx", "index": 0, "top1_error": 6.0, **new},
        {"space": "anynetx_a", "index": 0, "top1_error": float("nan")},
    ]
    groups = group_by_space(records)
    assert list(groups) == ["anynetx_e", "regnetx", "regnetx_constrained"]
    assert [r["index"] for r in groups["regnetx"]] == [0, 1]
    # A line under the old names (regnetx then meant the constrained space) is refused, not misread.
    with pytest.raises(SamplingError, match="migrate_space_names"):
        group_by_space([*records, {"space": "regnetx", "index": 2, "top1_error": 5.0}])


def test_first_runs_is_a_fixed_snapshot_of_a_growing_file():
    from regnet_tutorial.sweep.analysis import first_runs

    def line(space, index, replicate=0):
        return {"space": space, "index": index, "replicate": replicate, "top1_error": 10.0}

    grown = [line(s, i) for i in range(4) for s in ("anynetx_a", "regnetx")] + [line("anynetx_a", 0, 1)]
    snap = first_runs(grown, 3)
    expected = [(s, i) for s in ("anynetx_a", "regnetx") for i in range(3)]
    assert sorted((r["space"], r["index"]) for r in snap) == expected
    assert first_runs(grown + [line("regnetx", 9)], 3) == snap  # appending lines changes nothing
    with pytest.raises(ValueError, match="regnetx has 0 of its first 1 models at replicate 1"):
        first_runs(grown, 1, replicate=1)


def test_seed_pairs_align_two_seeds_of_the_same_models():
    from regnet_tutorial.sweep.analysis import seed_pairs

    def line(space, index, replicate):
        return {"space": space, "index": index, "replicate": replicate, "top1_error": 10.0 * replicate + index}

    # Written out of order, as two processes append them; a third model has one seed only.
    lines = [line("regnetx", i, k) for k in (1, 0) for i in (1, 0)] + [line("regnetx", 2, 0)]
    lines += [line("anynetx_e", i, k) for i in (0, 1) for k in (0, 1)] + [line("anynetx_e", 2, 0)]
    pairs = seed_pairs(lines, 2)
    assert list(pairs) == ["regnetx", "anynetx_e"]
    for a, b in pairs.values():
        assert a.tolist() == [0.0, 1.0] and b.tolist() == [10.0, 11.0]  # model i at both seeds
    with pytest.raises(ValueError, match="regnetx has 2 of its first 3 models at replicate 1"):
        seed_pairs(lines, 3)
