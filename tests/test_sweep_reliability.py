"""The pilot's reliability statistics against closed forms and constructed data."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from regnet_tutorial.sweep.reliability import (
    binomial_sd,
    budget_table,
    choose_budget,
    corrected_validity,
    seed_sd,
    spearman,
    spearman_brown,
    spearman_ci,
)


def test_spearman_equals_the_closed_form_for_untied_ranks():
    rng = np.random.default_rng(0)
    for _ in range(20):
        a, b = rng.normal(size=12), rng.normal(size=12)
        d = np.argsort(np.argsort(a)) - np.argsort(np.argsort(b))
        n = len(a)
        assert spearman(a, b) == pytest.approx(1 - 6 * np.sum(d * d) / (n * (n * n - 1)))
    x = np.arange(10.0)
    assert spearman(x, np.exp(x)) == pytest.approx(1.0)  # any monotone map
    assert spearman(x, -x**3) == pytest.approx(-1.0)
    with pytest.raises(ValueError, match="at least 3"):
        spearman([1, 2], [1, 2])


def test_spearman_interval_covers_the_estimate_and_narrows_with_more_models():
    rng = np.random.default_rng(1)
    q = rng.normal(size=200)
    a, b = q + 0.5 * rng.normal(size=200), q + 0.5 * rng.normal(size=200)
    lo10, hi10 = spearman_ci(a[:10], b[:10])
    lo200, hi200 = spearman_ci(a, b)
    assert lo200 <= spearman(a, b) <= hi200
    rows = np.random.default_rng(0).integers(0, 10, (2000, 10))  # the resamples spearman_ci draws
    loop = [spearman(a[:10][r], b[:10][r]) for r in rows if np.ptp(a[:10][r]) > 0]
    assert (lo10, hi10) == pytest.approx(tuple(np.quantile(loop, [0.025, 0.975])))  # vectorised = looped
    assert hi200 - lo200 < (hi10 - lo10) / 2


def test_seed_sd_and_binomial_sd_closed_forms():
    assert seed_sd([10, 20], [12, 18]) == pytest.approx(math.sqrt(2))  # each pair differs by 2
    rng = np.random.default_rng(2)
    q = rng.uniform(10, 30, size=20000)
    assert seed_sd(q + rng.normal(0, 0.8, q.size), q + rng.normal(0, 0.8, q.size)) == pytest.approx(0.8, rel=0.03)
    assert binomial_sd(50, 10_000) == pytest.approx(0.5)
    assert binomial_sd(20, 500) == pytest.approx(100 * math.sqrt(0.16 / 500))


def _pilot_file(train_images: int, noise: float, quality: np.ndarray, rng) -> pd.DataFrame:
    rows = [{"space": space, "space_names": "paper", "index": i, "replicate": r,
             "top1_error": 20 + 5 * quality[k] + rng.normal(0, noise),
             "wall_time_s": train_images / 1000, "params": 1, "flops": 1,
             "train_images": train_images, "epochs": 1, "val_images": 10_000}
            for k, (space, i) in enumerate((s, i) for s in ("regnetx", "anynetx_e") for i in range(12))
            for r in (0, 1)]
    return pd.DataFrame(rows)


def test_budget_table_ranks_budgets_and_choice_rule_picks_the_cheapest_reliable_one():
    """Constructed pilot: errors = model quality + seed noise that shrinks with the budget, so
    test-retest reliability rises with the budget; the rule must pick the cheapest budget that
    clears 0.7 on both criteria."""
    rng = np.random.default_rng(3)
    quality = rng.normal(size=24)
    frames = [_pilot_file(3000, 20.0, quality, rng), _pilot_file(15000, 0.5, quality, rng),
              _pilot_file(60000, 0.2, quality, rng)]
    table = budget_table(frames[::-1], ["regnetx", "anynetx_e"])
    assert table["images_seen"].tolist() == [3000, 15000, 60000]  # sorted, cheapest first
    assert table["models"].tolist() == [24, 24, 24]
    assert table["vs_longest_regnetx"].iloc[-1] == pytest.approx(1.0)  # the longest against itself
    assert table["retest_regnetx"].iloc[0] < 0.7 <= table["retest_regnetx"].iloc[1]
    assert table["seed_sd"].iloc[0] > 10 > 1 > table["seed_sd"].iloc[1]
    assert choose_budget(table, "regnetx")["images_seen"] == 15000
    assert choose_budget(table, "regnetx", threshold=1.01) is None  # nothing reaches it: say so


def _write_jsonl(path, frame: pd.DataFrame) -> None:
    import json

    with open(path, "w") as f:
        for r in frame.to_dict(orient="records"):
            settings = {"train_images": r.pop("train_images"), "epochs": r.pop("epochs"),
                        "val_images": r.pop("val_images")}
            f.write(json.dumps({**r, "settings": settings}) + "\n")


def test_reliability_command_prints_the_table_writes_the_summary_and_refuses_bad_files(tmp_path, capsys):
    import json

    from regnet_tutorial.sweep.__main__ import main

    rng = np.random.default_rng(4)
    quality = rng.normal(size=24)
    paths = []
    for images, noise in ((3000, 20.0), (15000, 0.5)):
        paths.append(tmp_path / f"pilot_{images}.jsonl")
        _write_jsonl(paths[-1], _pilot_file(images, noise, quality, rng))
    out = tmp_path / "summary.json"
    assert main(["reliability", *map(str, paths), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    summary = json.loads(out.read_text())
    assert summary["chosen"] == "15k x 1" and "chosen budget (regnetx, Spearman >= 0.7): 15k x 1" in printed
    assert summary["chosen_is_longest"] and "its validity needs a longer one" in printed
    assert summary["chosen_corrected"] == "15k x 1"
    assert "corrected for the longest budget's own noise: 15k x 1" in printed
    retest = [row["retest_regnetx"] for row in summary["table"]]
    assert f"{retest[0]:.2f}" in printed and retest[1] > 0.9
    lo, hi = summary["retest_ci95"]["15k x 1"]["regnetx"]
    assert lo <= retest[1] <= hi
    (tmp_path / "bad.jsonl").write_text("not json\n")
    with pytest.raises(SystemExit) as exit:
        main(["reliability", str(tmp_path / "bad.jsonl")])
    assert exit.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "line 1 is not a sweep result line" in err
    # A file under the old space names (regnet for RegNetX) is refused with the migration to run.
    old = [json.loads(line) for line in paths[0].read_text().splitlines()]
    (tmp_path / "old.jsonl").write_text("".join(
        json.dumps({k: v for k, v in {**r, "space": r["space"].replace("regnetx", "regnet")}.items()
                    if k != "space_names"}) + "\n" for r in old))
    with pytest.raises(SystemExit) as exit:
        main(["reliability", str(tmp_path / "old.jsonl")])
    assert exit.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "migrate_space_names.py" in err
    with pytest.raises(SystemExit):
        main(["reliability", *map(str, paths), "--reference", "regnet"])
    assert "use regnetx" in capsys.readouterr().err


def test_reliability_figure_draws_the_summary_numbers():
    from regnet_tutorial.figures.proxy import reliability_figure

    rng = np.random.default_rng(5)
    quality = rng.normal(size=24)
    frames = [_pilot_file(3000, 20.0, quality, rng), _pilot_file(15000, 0.5, quality, rng)]
    table = budget_table(frames, ["regnetx", "anynetx_e"])
    summary = {"table": table.to_dict(orient="records"),
               "retest_ci95": {"3k x 1": {"regnetx": (-0.5, 0.5), "anynetx_e": (-0.5, 0.5)},
                               "15k x 1": {"regnetx": (0.9, 1.0), "anynetx_e": (0.9, 1.0)}}}
    ax = reliability_figure(summary, ["regnetx", "anynetx_e"]).axes[0]
    dashed = [line for line in ax.get_lines() if line.get_linestyle() == "--"]
    np.testing.assert_allclose(dashed[0].get_ydata(), table["vs_longest_regnetx"])
    assert ax.get_xscale() == "log" and any(line.get_ydata()[0] == 0.7 for line in ax.get_lines())


def test_spearman_brown_and_the_attenuation_ceiling_closed_forms():
    assert spearman_brown(0.5) == pytest.approx(2 / 3)  # two runs averaged: 2r / (1 + r)
    assert spearman_brown(0.5, k=4) == pytest.approx(0.8)
    assert spearman_brown(1.0) == 1.0 and spearman_brown(0.0) == 0.0
    # validity 0.4 between means of reliability 2/3 and 3/5 (single runs 0.5 and 3/7)
    assert corrected_validity(0.4, 0.5, 3 / 7) == pytest.approx(0.4 / math.sqrt(2 / 3 * 3 / 5))
    assert math.isnan(corrected_validity(0.4, 0.8, -0.1))  # no ceiling to divide by


def test_a_noisy_longest_budget_caps_the_raw_validity_and_the_correction_recovers_it():
    """Both budgets rank the same true quality; only the longest is measured with large seed noise
    (single-run reliability about 0.3). The raw validity of the short, reliable budget then falls
    below 0.7 while its corrected validity is near 1: the rule as written picks nothing, the
    corrected rule picks the short budget."""
    rng = np.random.default_rng(5)
    n = 400
    quality = rng.normal(size=2 * n)

    def budget(train_images: int, noise: float) -> pd.DataFrame:
        return pd.DataFrame([
            {"space": space, "index": i, "replicate": r, "top1_error": 20 + 5 * quality[k] + rng.normal(0, noise),
             "wall_time_s": 1.0, "params": 1, "flops": 1, "train_images": train_images, "epochs": 1,
             "val_images": 10_000}
            for k, (space, i) in enumerate((s, i) for s in ("regnetx", "anynetx_e") for i in range(n))
            for r in (0, 1)])

    table = budget_table([budget(15000, 0.5), budget(30000, 5 * math.sqrt(0.7 / 0.3))], ["regnetx", "anynetx_e"])
    short = table.iloc[0]
    assert table["retest_regnetx"].tolist() == pytest.approx([0.99, 0.3], abs=0.08)
    assert short["vs_longest_regnetx"] < 0.7  # capped by the longest budget's noise
    assert short["vs_longest_corrected_regnetx"] == pytest.approx(1.0, abs=0.08)
    assert table["vs_longest_corrected_regnetx"].iloc[-1] == pytest.approx(1.0)  # the reference itself
    assert choose_budget(table, "regnetx") is None
    assert choose_budget(table, "regnetx", corrected=True)["budget"] == "15k x 1"


def test_retest_figure_draws_each_space_s_spearman_and_centred_errors():
    from regnet_tutorial.figures.proxy import retest_figure

    rng = np.random.default_rng(6)
    q = rng.normal(20, 2, size=30)
    pairs = {"anynetx_a": (q, q + rng.normal(0, 0.1, 30)), "regnetx": (q, rng.permutation(q))}
    top, bottom = retest_figure(pairs).axes
    points = [line.get_xdata()[0] for line in top.get_lines() if line.get_marker() == "o"]
    assert points == pytest.approx([spearman(*pairs["anynetx_a"]), spearman(*pairs["regnetx"])])
    assert points[0] > 0.95 and [t.get_text() for t in top.get_yticklabels()] == ["A", "RegNetX"]
    first = bottom.collections[0].get_offsets()
    centre = np.median(np.concatenate(pairs["anynetx_a"]))
    np.testing.assert_allclose(first[:, 0], q - centre)  # centred on the space's median


def test_a_failed_run_is_drawn_on_the_frame_s_edge_not_stretching_it():
    from regnet_tutorial.figures.proxy import off_frame, retest_figure

    rng = np.random.default_rng(7)
    q = rng.normal(20, 1, size=40)
    second = q + rng.normal(0, 0.2, 40)
    second[3] = 60.0  # a run that barely trained
    bottom = retest_figure({"anynetx_d": (q, second)}).axes[1]
    centre = np.median(np.concatenate([q, second]))
    limit = off_frame(np.stack([q - centre, second - centre], axis=1))
    assert bottom.get_xlim() == pytest.approx((-limit, limit)) and limit < 10
    inside, edge = (c.get_offsets() for c in bottom.collections)
    assert len(inside) == 39 and edge.tolist() == [[pytest.approx(q[3] - centre), pytest.approx(limit)]]
