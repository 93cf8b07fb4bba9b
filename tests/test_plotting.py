"""The figure and table helpers the chapters call."""

from __future__ import annotations

from matplotlib.figure import Figure

from regnet_tutorial import get_card, quantized_widths, stage_complexity
from regnet_tutorial.plotting import format_table, plot_stage_breakdown, plot_width_functions


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
        params = get_card(name).params
        lengths = {len(line.get_xdata()) for line in ax.get_lines()}
        assert params.depth in lengths  # one point per block j
        ys = {tuple(line.get_ydata()) for line in ax.get_lines()}
        assert tuple(float(w) for w in quantized_widths(params)) in {tuple(map(float, y)) for y in ys}


def test_stage_breakdown_has_one_panel_per_quantity() -> None:
    fig = plot_stage_breakdown({"X-400MF": stage_complexity("regnetx_400mf")})
    assert len([ax for ax in fig.axes if ax.has_data()]) == 3
