"""The model-zoo table and its command line."""

from __future__ import annotations

import csv
import io
import subprocess
import sys

import pytest

from regnet_tutorial import MODEL_CARDS, get_card
from regnet_tutorial.complexity import model_complexity
from regnet_tutorial.weights.__main__ import main as weights_main
from regnet_tutorial.weights.published import mmcls_table, pycls_model_zoo
from regnet_tutorial.weights.zoo import COLUMNS, SUMMARY_COLUMNS, zoo_table

# Columns whose value depends on the input side: ours at --resolution, published at 224.
OURS_AT_RESOLUTION = ("flops_g", "acts_m")
PUBLISHED_AT_224 = ("pycls_flops_g", "pycls_acts_m", "mmcls_flops_g", "tv_flops_g")


def main(argv: list[str]) -> int:
    """``python -m regnet_tutorial.weights zoo ARGV`` in this process."""
    return weights_main(["zoo", *argv])


def _headers(columns, resolution: int) -> list[str]:
    return [
        f"{c}@{resolution}px" if c in OURS_AT_RESOLUTION else f"{c}@224px" if c in PUBLISHED_AT_224 else c
        for c in columns
    ]


def _run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    assert main(argv) == 0
    return capsys.readouterr().out


def _csv_rows(text: str, resolution: int = 224) -> list[dict[str, str]]:
    """The rows keyed by column name, after checking the header names the resolutions."""
    reader = csv.reader(io.StringIO(text))
    assert next(reader) == _headers(COLUMNS, resolution)
    return [dict(zip(COLUMNS, row)) for row in reader]


def test_csv_has_one_row_per_model_with_every_column(capsys: pytest.CaptureFixture[str]) -> None:
    rows = _csv_rows(_run(["--format", "csv"], capsys))
    assert len(rows) == 39 == len(MODEL_CARDS)
    assert [r["name"] for r in rows] == list(MODEL_CARDS)
    x400 = next(r for r in rows if r["name"] == "regnetx_400mf")
    spec = get_card("regnetx_400mf").stages()
    assert x400["depths"] == " ".join(map(str, spec.depths))
    assert x400["widths"] == " ".join(map(str, spec.widths))
    assert (x400["d"], x400["w0"], x400["wa"], x400["wm"], x400["g"]) == ("22", "24", "24.48", "2.54", "16")
    assert x400["family"] == "RegNetX" and x400["rounding"] == "pycls"
    assert float(x400["params_m"]) * 1e6 == pytest.approx(model_complexity("regnetx_400mf").params)


def test_published_numbers_go_to_the_architecture_they_were_measured_on() -> None:
    table = {row["name"]: row for row in zoo_table()}
    with_mmcls = {n for n, r in table.items() if r["mmcls_top1"] is not None}
    with_tv = {n for n, r in table.items() if r["tv_weights"] is not None}
    with_pycls = {n for n, r in table.items() if r["pycls_top1"] is not None}
    assert with_pycls == {n for n, c in MODEL_CARDS.items() if c.rounding == "pycls"}
    assert with_mmcls == {r.model_name for r in mmcls_table()}
    assert with_tv == {n for n, c in MODEL_CARDS.items() if c.rounding == "torchvision"}
    x400 = table["regnetx_400mf"]
    trained, converted = (
        next(r for r in mmcls_table() if r.display_name == "RegNetX-400MF" and r.converted_from_pycls is c)
        for c in (False, True)
    )
    assert (x400["mmcls_top1"], x400["mmcls_pycls_top1"]) == (trained.top1, converted.top1)
    assert x400["mmcls_checkpoint"] == trained.checkpoint_url
    assert x400["mmcls_pycls_checkpoint"] == converted.checkpoint_url
    assert "mmcls_regnet_README.md" in str(x400["mmcls_source"])
    assert "torchvision" in str(table["regnetx_400mf_tv"]["tv_source"])
    y800 = next(r for r in pycls_model_zoo() if r.display_name == "RegNetY-800MF")
    assert table["regnety_800mf"]["pycls_flops_g"] == y800.flops_b
    assert table["regnety_800mf_tv"]["pycls_flops_g"] is None  # a different architecture
    for row in table.values():  # every published number comes with its source
        assert (row["pycls_params_m"] is None) == (row["pycls_source"] is None)
        assert (row["mmcls_params_m"] is None) == (row["mmcls_source"] is None)
        assert (row["tv_flops_g"] is None) == (row["tv_source"] is None)
        assert "+" not in str(row["tv_source"] or "")  # no local build tag such as "+cpu"


def test_resolution_changes_our_flops_only(capsys: pytest.CaptureFixture[str]) -> None:
    at_224 = _csv_rows(_run(["--format", "csv"], capsys))
    at_160 = _csv_rows(_run(["--format", "csv", "--resolution", "160"], capsys), resolution=160)
    for a, b in zip(at_224, at_160):
        assert b["resolution"] == "160"
        assert float(b["flops_g"]) < float(a["flops_g"])
        assert float(b["flops_g"]) * 1e9 == pytest.approx(model_complexity(b["name"], 160).flops)
        assert b["params_m"] == a["params_m"]
        assert (b["pycls_flops_g"], b["mmcls_flops_g"], b["tv_flops_g"]) == (
            a["pycls_flops_g"], a["mmcls_flops_g"], a["tv_flops_g"],
        )


def test_markdown_is_the_default_with_every_column_on_request(capsys: pytest.CaptureFixture[str]) -> None:
    note, blank, *lines = _run(["--columns", "all"], capsys).splitlines()
    assert note.startswith("Resolution: ") and blank == ""
    lines = lines[: 2 + 39]  # the table; notes and sources follow it
    assert lines[0] == "| " + " | ".join(_headers(COLUMNS, 224)) + " |"
    assert all(line.startswith("|") and line.endswith("|") for line in lines)
    # Every row has as many cells as the header: no stray "|" inside a value.
    assert {line.replace("\\|", "").count("|") for line in lines} == {len(COLUMNS) + 1}
    x400 = next(line for line in lines if line.startswith("| regnetx_400mf |"))
    assert "[link](https://download.openmmlab.com/" in x400


def test_markdown_summary_cites_each_source_once(capsys: pytest.CaptureFixture[str]) -> None:
    text = _run([], capsys)
    table, notes = text.split("\nSources of the published numbers:\n")
    rows = [line for line in table.strip().splitlines() if line.startswith("|")]
    assert rows[0] == "| " + " | ".join(_headers(SUMMARY_COLUMNS, 224)) + " |" and len(rows) == 2 + 39
    footnotes = dict(line.split(" ", 1) for line in notes.strip().splitlines())
    # pycls, mmcls, and one torchvision weights entry per torchvision builder (15).
    assert len(footnotes) == 2 + 15
    cited = {ref for row in rows[2:] for ref in row.rstrip(" |").rsplit("|", 1)[1].split()}
    assert cited == set(footnotes)
    x400 = next(r for r in rows if r.startswith("| regnetx_400mf |"))
    assert "MODEL_ZOO.md" in footnotes[x400.rstrip(" |").rsplit("|", 1)[1].split()[0]]


def test_resolution_32_says_its_numbers_are_not_at_224(capsys: pytest.CaptureFixture[str]) -> None:
    lines = _run(["--resolution", "32"], capsys).splitlines()
    assert lines[0] == (
        "Resolution: our flops_g and acts_m at 32 px input; published numbers (pycls_*, mmcls_*, tv_*) "
        "at 224 px. Compare flops and activations only at --resolution 224."
    )
    header = lines[2].strip("| ").split(" | ")
    assert header == _headers(SUMMARY_COLUMNS, 32)
    assert "flops_g@32px" in header and "pycls_flops_g@224px" in header and "tv_flops_g@224px" in header
    x400 = dict(zip(header, lines[2 + next(i for i, line in enumerate(lines[2:]) if "| regnetx_400mf |" in line)]
                    .strip("| ").split(" | ")))
    # At 32 px our count is about (32/224)^2 of the 224 px one: labelled apart from the 0.4 GF printed.
    assert float(x400["flops_g@32px"]) == pytest.approx(model_complexity("regnetx_400mf", 32).flops / 1e9, abs=5e-4)
    assert x400["pycls_flops_g@224px"] == "0.4"
    at_224 = _run([], capsys).splitlines()[0]
    assert "at 224 px input" in at_224 and "Compare" not in at_224


def test_accuracy_columns_are_accuracies_and_flops_columns_share_one_name() -> None:
    assert not [c for c in COLUMNS if "error" in c]
    assert [c for c in COLUMNS if "flops" in c] == ["flops_g", "pycls_flops_g", "mmcls_flops_g", "tv_flops_g"]
    table = {row["name"]: row for row in zoo_table()}
    # pycls publishes top-1 error: RegNetX-200MF 31.1 and RegNetY-800MF 23.7 in its MODEL_ZOO.md.
    assert table["regnetx_200mf"]["pycls_top1"] == 68.9 and table["regnety_800mf"]["pycls_top1"] == 76.3
    for row in table.values():
        if row["pycls_top1"] is not None:
            error = next(r.top1_error for r in pycls_model_zoo() if r.model_name == row["name"])
            assert row["pycls_top1"] == pytest.approx(100 - error)
        if row["mmcls_pycls_top1"] is not None:
            # mmcls re-evaluated the same pycls weights: an accuracy within a point of pycls's own.
            assert abs(row["pycls_top1"] - row["mmcls_pycls_top1"]) < 1.0, row["name"]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--format", "json"], "invalid choice: 'json'"),
        (["--columns", "some"], "invalid choice: 'some'"),
        (["--resolution", "0"], "not an integer >= 1"),
        (["--resolution", "-5"], "not an integer >= 1"),
        (["--resolution", "abc"], "not an integer >= 1"),
    ],
)
def test_bad_arguments_are_named(argv: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2
    assert message in capsys.readouterr().err


@pytest.mark.slow  # a fresh interpreter imports torch and torchvision: several seconds
def test_runs_as_a_module() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "regnet_tutorial.weights", "zoo", "--format", "csv", "--resolution", "192"],
        capture_output=True, text=True, check=True, timeout=120,
    )
    rows = _csv_rows(done.stdout, resolution=192)
    assert len(rows) == 39 and {r["resolution"] for r in rows} == {"192"}
