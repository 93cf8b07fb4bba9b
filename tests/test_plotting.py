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


def test_table_is_a_dataframe_shown_as_an_html_table_without_row_numbers() -> None:
    from regnet_tutorial.plotting import Table

    t = Table([("a", 1, (1, 2)), ("bbb", 3, (3,))], ["name", "value", "depths"])
    assert list(t.frame.columns) == ["name", "value", "depths"] and t.frame.shape == (2, 3)
    html = t._repr_html_()
    assert html.startswith("<table") and html.count("<tr>") + html.count("<tr ") == 3
    assert "<th>name</th>" in html and "<td>1 2</td>" in html and "<th>0</th>" not in html
    assert repr(t).splitlines() == ["name  value depths", "   a      1    1 2", " bbb      3      3"]


def _texts(fig: Figure) -> list[str]:
    return [t.get_text() for ax in fig.axes for t in ax.texts] + [ax.get_title() for ax in fig.axes]


def test_anynet_diagram_shows_the_models_stages() -> None:
    from regnet_tutorial.diagrams import draw_anynet

    texts = "\n".join(_texts(draw_anynet("regnetx_400mf")))
    # RegNetX-400MF in the paper's code: depths 1, 2, 7, 12; widths 32, 64, 160, 384; g = 16.
    for d, w in [(1, 32), (2, 64), (7, 160), (12, 384)]:
        assert f"d={d} w={w}\ng=16" in texts
    for part in ("stem", "stage 1", "stage 4", "head", "RegNetX-400MF"):
        assert part in texts
    generic = "\n".join(_texts(draw_anynet(None)))
    assert "$w_4$, $b_4$, $g_4$" in generic and "d=" not in generic


def test_block_diagram_draws_x_and_y_blocks() -> None:
    from regnet_tutorial.diagrams import draw_blocks

    fig = draw_blocks()
    x_texts, y_texts = ("\n".join(t.get_text() for t in ax.texts) for ax in fig.axes)
    assert "squeeze-excite" in y_texts and "squeeze-excite" not in x_texts
    for texts in (x_texts, y_texts):
        assert "3×3 group conv" in texts and texts.count("1×1 conv") == 3  # two in the branch, one shortcut
