"""The figure and table helpers the chapters call."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
from matplotlib.figure import Figure

from regnet_tutorial import get_card
from regnet_tutorial.figures.style import STAGE_ORDER, format_table, plot_stage_breakdown, plot_width_functions

# Per-block widths w_j (Eq. 4, before the group-width adjustment), typed in from the published
# stage tables: RegNetX-200MF has depths (1, 1, 4, 7) and widths (24, 56, 152, 368) (pycls
# MODEL_ZOO / timm, g = 8 leaves them unchanged); RegNetX-32GF (w0 = 320, wm = 2) has depths
# (2, 7, 13, 1) and widths 320 * 2**k, which g = 168 then turns into (336, 672, 1344, 2520).
PUBLISHED_BLOCK_WIDTHS = {
    "regnetx_200mf": [24] + [56] + [152] * 4 + [368] * 7,
    "regnetx_32gf": [320] * 2 + [640] * 7 + [1280] * 13 + [2560],
}


def numpy_widths(w0: float, wa: float, wm: float, d: int) -> tuple[np.ndarray, np.ndarray]:
    """(u_j, w_j) from the paper's Eq. 2-4 in NumPy, as pycls's generate_regnet computes them."""
    u = w0 + wa * np.arange(d)
    k = np.round(np.log(u / w0) / np.log(wm))
    return u, np.round(w0 * wm**k / 8) * 8


def test_format_table_aligns_text_left_and_numbers_right() -> None:
    text = format_table([("a", 1, (1, 2)), ("bbb", 10.5, (3,))], ["name", "value", "depths"])
    lines = text.splitlines()
    assert len(lines) == 4  # header, rule, two rows
    assert lines[2].startswith("a    ") and lines[3].startswith("bbb  ")
    value_col = [line.split()[1] for line in lines[2:]]
    assert value_col == ["1", "10.5"]
    assert lines[2].index("1 ") == lines[3].index("10.5") + 3  # right-aligned numbers
    assert "1 2" in lines[2]  # tuples print as space-separated values


def test_width_plot_draws_every_block() -> None:
    names = ["regnetx_200mf", "regnety_8_0gf", "regnetx_32gf"]
    fig = plot_width_functions({n: get_card(n).params for n in names})
    assert isinstance(fig, Figure)
    panels = [ax for ax in fig.axes if ax.has_data()]
    assert len(panels) == 3
    for ax, name in zip(panels, names):
        p = get_card(name).params
        u, w = numpy_widths(p.w0, p.wa, p.wm, p.depth)
        lines = [(np.asarray(line.get_xdata(), float), np.asarray(line.get_ydata(), float)) for line in ax.get_lines()]
        assert all(np.array_equal(x, np.arange(p.depth)) for x, _ in lines)  # one point per block j
        assert any(np.allclose(y, u, rtol=0, atol=1e-9) for _, y in lines), f"{name}: no u_j curve"
        assert any(np.array_equal(y, w) for _, y in lines), f"{name}: no w_j steps"
        if name in PUBLISHED_BLOCK_WIDTHS:
            assert any(np.array_equal(y, PUBLISHED_BLOCK_WIDTHS[name]) for _, y in lines)


def test_stage_breakdown_draws_the_given_numbers() -> None:
    """Hand-made breakdowns: every bar's height is the attribute / divisor, in stem..head order,
    and the two models' bars sit side by side around each part's tick."""
    parts = {"head": (5e6, 1e6, 2e6), "s1": (3e6, 4e6, 1e6), "stem": (2e6, 0.5e6, 4e6)}  # unordered
    one = {k: SimpleNamespace(flops=f, params=p, acts=a) for k, (f, p, a) in parts.items()}
    two = {k: SimpleNamespace(flops=2 * f, params=2 * p, acts=2 * a) for k, (f, p, a) in parts.items()}
    fig = plot_stage_breakdown({"one": one, "two": two})
    panels = [ax for ax in fig.axes if ax.has_data()]
    assert len(panels) == 3
    order = ["stem", "s1", "head"]
    for ax, attr in zip(panels, ("flops", "params", "acts")):
        bars = sorted(ax.patches, key=lambda b: b.get_x())
        assert len(bars) == 6
        heights = [b.get_height() for b in bars]
        expected = []
        for part in order:
            expected += [getattr(one[part], attr) / 1e6, getattr(two[part], attr) / 1e6]
        assert heights == pytest.approx(expected, rel=1e-12)
        centres = [b.get_x() + b.get_width() / 2 for b in bars]
        ticks = [STAGE_ORDER.index(part) for part in order]
        assert centres[0::2] == pytest.approx([t - 0.2 for t in ticks]) and centres[1::2] == pytest.approx(
            [t + 0.2 for t in ticks]
        )
