"""Every figure stored in the chapters stays readable on a phone and sharp on a HiDPI screen.

The book shows an image at its natural CSS width (the width the notebook output declares)
or, when the text column is narrower, scaled down to the column: 358 CSS px on a 390 px phone.
Each figure PNG records its resolution and its smallest font size (``figures/style.py``), so
the size of its smallest text on the phone follows from the stored output alone. The browser
test in ``test_book.py`` measures the same on the rendered pages.
"""

from __future__ import annotations

import base64
from pathlib import Path

import nbformat
import pytest
from _png import png_facts, smallest_text_css_px

from regnet_tutorial.figures.style import FIGURE_WIDTH, figure_png, use_tutorial_style

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9A][0-9]_*.ipynb")) + [ROOT / "book" / "results.ipynb"]
PHONE_COLUMN = 358  # CSS px: the text column of the book on a 390 px wide phone
MIN_TEXT = 8.0  # CSS px


def stored_figures(path: Path) -> list[tuple[int, bytes, dict]]:
    """``(cell index, PNG bytes, output metadata of the PNG)`` of every figure a notebook stores."""
    nb = nbformat.read(path, as_version=4)
    found = []
    for index, cell in enumerate(nb.cells):
        for output in cell.get("outputs", []):
            if "image/png" in output.get("data", {}):
                found.append((index, base64.b64decode(output["data"]["image/png"]),
                              output.get("metadata", {}).get("image/png", {})))
    return found


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_every_stored_figure_is_2x_and_readable_on_a_phone(path: Path) -> None:
    problems = []
    for index, png, metadata in stored_figures(path):
        width = png_facts(png)[0]
        css_width = metadata.get("width")
        if not css_width or abs(2 * css_width - width) > 1:
            problems.append(f"cell {index}: not a 2x PNG (pixel width {width}, declared CSS width {css_width})")
            continue
        try:
            px = smallest_text_css_px(png, min(css_width, PHONE_COLUMN))
        except AssertionError as err:
            problems.append(f"cell {index}: {err}")
            continue
        if px < MIN_TEXT:
            problems.append(f"cell {index}: smallest text {px:.1f} CSS px on a {PHONE_COLUMN} px column")
    assert not problems, f"{path.name} (re-execute it after fixing the figure):\n" + "\n".join(problems)


def test_the_measure_follows_the_figure_size_and_its_fonts() -> None:
    """The recorded smallest font and the resulting size on a phone, on figures made here: 9 pt
    at 100 CSS px per inch is 12.5 CSS px, scaled by the column over the figure's CSS width; a
    figure twice as wide shows its text at about half the size."""
    from matplotlib.figure import Figure

    use_tutorial_style()
    sizes = {}
    for inches in (FIGURE_WIDTH, 2 * FIGURE_WIDTH):
        fig = Figure(figsize=(inches, 3), layout="constrained")
        ax = fig.subplots()
        ax.plot([0, 1], [0, 1])
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_xlabel("label", fontsize=12)
        ax.text(0.5, 0.5, "note", fontsize=9)
        png, metadata = figure_png(fig)
        width, dpi, text = png_facts(png)
        assert (text["Smallest font (pt)"], round(dpi), width // 2) == ("9", 200, metadata["width"])
        sizes[inches] = smallest_text_css_px(png, min(metadata["width"], PHONE_COLUMN))
        assert sizes[inches] == pytest.approx(12.5 * PHONE_COLUMN / metadata["width"], rel=0.01)
    assert sizes[2 * FIGURE_WIDTH] == pytest.approx(sizes[FIGURE_WIDTH] / 2, rel=0.05)


def _package_figures() -> dict[str, object]:
    import numpy as np

    from benchmarks import report
    from regnet_tutorial import get_card
    from regnet_tutorial.complexity import stage_complexity
    from regnet_tutorial.figures import classes, design_spaces, diagrams, proxy, style
    from regnet_tutorial.train.synthetic import class_descriptions

    rng = np.random.default_rng(0)
    errors = {"A": list(rng.uniform(10, 30, 50)), "E": list(rng.uniform(8, 25, 50))}
    samples = [{"flops": f, "params": f / 100, "acts": f / 50} for f in rng.uniform(2e8, 4e8, 50)]
    results = report.load(ROOT / "benchmarks" / "results" / "cpu")
    names = ["regnetx_400mf", "regnety_400mf", "regnetx_1_6gf"]
    return {
        "draw_anynet": lambda: diagrams.draw_anynet("regnetx_400mf"),
        "draw_blocks": diagrams.draw_blocks,
        "plot_width_functions": lambda: style.plot_width_functions(
            {get_card(n).display_name: get_card(n).params for n in ["regnetx_200mf", "regnetx_32gf"]}),
        "plot_stage_breakdown": lambda: style.plot_stage_breakdown(
            {get_card(n).display_name: stage_complexity(n) for n in names}),
        "edf_figure": lambda: design_spaces.edf_figure(errors, "title", chance=90.0),
        "edf_panels_figure": lambda: design_spaces.edf_panels_figure([errors, errors], ["one", "two"]),
        "bootstrap_figure": lambda: design_spaces.bootstrap_figure(
            {"depth d": list(rng.integers(10, 30, 50)), "w_m": list(rng.uniform(2, 3, 50))}, errors["A"]),
        "complexity_scatter_figure": lambda: design_spaces.complexity_scatter_figure(
            {"A": samples, "E": samples}, {"A": errors["A"], "E": errors["E"]}),
        "complexity_histogram_figure": lambda: design_spaces.complexity_histogram_figure(samples),
        "sample_grid_figure": lambda: classes.sample_grid_figure(
            rng.random((8, 3, 28, 28)), list(range(8)),
            ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker"]),
        "confusion_figure": lambda: classes.confusion_figure(
            np.diag([10, 10, 10, 10]), class_descriptions(4), "val set"),
        "panels": lambda: _labelled(style.panels(2, sharex=True)),
        "reliability_figure": lambda: proxy.reliability_figure(
            {"table": [{"budget": b, "images_seen": n, "retest_regnetx": r, "vs_longest_regnetx": v}
                       for b, n, r, v in (("1k x 1", 1000, 0.3, 0.1), ("30k x 1", 30000, 0.8, 1.0))],
             "retest_ci95": {"1k x 1": {"regnetx": (-0.2, 0.7)}, "30k x 1": {"regnetx": (0.5, 0.95)}}}, ["regnetx"]),
        "retest_figure": lambda: proxy.retest_figure(
            {s: (errors["A"][:20], list(np.array(errors["A"][:20]) + rng.normal(0, 1, 20)))
             for s in ("anynetx_a", "anynetx_e", "regnetx", "regnetx_constrained")}),
        "plot_ratios": lambda: report.plot_ratios(results["compare"]["rows"]),
        "plot_table4": lambda: report.plot_table4(results["table4"]["rows"]),
        "plot_scaling": lambda: report.plot_scaling(results["scaling"]["rows"], results["scaling"]["fits"]),
    }


def _labelled(made: tuple[object, list]) -> object:
    """A figure from ``style.panels`` with data, axis labels, a title and a legend in each panel."""
    fig, axes = made
    assert len(axes) == 2 and fig.get_figwidth() == FIGURE_WIDTH
    for ax in axes:
        ax.plot([1, 10, 100], [3, 2, 1], label="a curve")
        ax.set(xscale="log", xlabel="flops (M)", ylabel="error (%)", title="a panel")
        ax.axhline(90, linestyle="--", label="chance")
        ax.legend()
    return fig


@pytest.mark.parametrize("name", sorted(_package_figures()))
def test_package_figures_are_readable_on_a_phone(name: str) -> None:
    png, metadata = figure_png(_package_figures()[name]())
    px = smallest_text_css_px(png, min(metadata["width"], PHONE_COLUMN))
    assert px >= MIN_TEXT, f"{name}: smallest text {px:.1f} CSS px on a {PHONE_COLUMN} px phone column"
    assert metadata["width"] <= 700, f"{name}: {metadata['width']} CSS px is wider than the desktop column"
