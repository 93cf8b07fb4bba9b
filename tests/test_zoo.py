"""The model-zoo table and its command line."""

from __future__ import annotations

import csv
import io
import subprocess
import sys

import pytest

from regnet_tutorial import MODEL_CARDS, get_card
from regnet_tutorial.complexity import model_complexity
from regnet_tutorial.published import mmcls_table, pycls_model_zoo
from regnet_tutorial.zoo import COLUMNS, SUMMARY_COLUMNS, main, zoo_table


def _run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    assert main(argv) == 0
    return capsys.readouterr().out


def _csv_rows(text: str) -> list[dict[str, str]]:
    reader = csv.DictReader(io.StringIO(text))
    assert tuple(reader.fieldnames or ()) == COLUMNS
    return list(reader)


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
    with_pycls = {n for n, r in table.items() if r["pycls_top1_error"] is not None}
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
    assert (table["regnety_800mf"]["pycls_flops_b"], table["regnety_800mf"]["pycls_top1_error"]) == (
        y800.flops_b, y800.top1_error,
    )
    assert table["regnety_800mf_tv"]["pycls_flops_b"] is None  # a different architecture
    for row in table.values():  # every published number comes with its source
        assert (row["pycls_params_m"] is None) == (row["pycls_source"] is None)
        assert (row["mmcls_params_m"] is None) == (row["mmcls_source"] is None)
        assert (row["tv_gflops"] is None) == (row["tv_source"] is None)


def test_resolution_changes_our_flops_only(capsys: pytest.CaptureFixture[str]) -> None:
    at_224 = _csv_rows(_run(["--format", "csv"], capsys))
    at_160 = _csv_rows(_run(["--format", "csv", "--resolution", "160"], capsys))
    for a, b in zip(at_224, at_160):
        assert b["resolution"] == "160"
        assert float(b["flops_g"]) < float(a["flops_g"])
        assert float(b["flops_g"]) * 1e9 == pytest.approx(model_complexity(b["name"], 160).flops)
        assert b["params_m"] == a["params_m"]
        assert (b["pycls_flops_b"], b["mmcls_flops_g"], b["tv_gflops"]) == (
            a["pycls_flops_b"], a["mmcls_flops_g"], a["tv_gflops"],
        )


def test_markdown_is_the_default_with_every_column_on_request(capsys: pytest.CaptureFixture[str]) -> None:
    lines = _run(["--columns", "all"], capsys).splitlines()
    assert len(lines) == 2 + 39
    assert lines[0] == "| " + " | ".join(COLUMNS) + " |"
    assert all(line.startswith("|") and line.endswith("|") for line in lines)
    # Every row has as many cells as the header: no stray "|" inside a value.
    assert {line.replace("\\|", "").count("|") for line in lines} == {len(COLUMNS) + 1}
    x400 = next(line for line in lines if line.startswith("| regnetx_400mf |"))
    assert "[link](https://download.openmmlab.com/" in x400


def test_markdown_summary_cites_each_source_once(capsys: pytest.CaptureFixture[str]) -> None:
    text = _run([], capsys)
    table, notes = text.split("\nSources of the published numbers:\n")
    rows = table.strip().splitlines()
    assert rows[0] == "| " + " | ".join(SUMMARY_COLUMNS) + " |" and len(rows) == 2 + 39
    footnotes = dict(line.split(" ", 1) for line in notes.strip().splitlines())
    # pycls, mmcls, and one torchvision weights entry per torchvision builder (15).
    assert len(footnotes) == 2 + 15
    cited = {ref for row in rows[2:] for ref in row.rstrip(" |").rsplit("|", 1)[1].split()}
    assert cited == set(footnotes)
    x400 = next(r for r in rows if r.startswith("| regnetx_400mf |"))
    assert "MODEL_ZOO.md" in footnotes[x400.rstrip(" |").rsplit("|", 1)[1].split()[0]]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--format", "json"], "invalid choice: 'json'"),
        (["--columns", "some"], "invalid choice: 'some'"),
        (["--resolution", "0"], "not a positive integer"),
        (["--resolution", "-5"], "not a positive integer"),
        (["--resolution", "abc"], "not a positive integer"),
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
        [sys.executable, "-m", "regnet_tutorial.zoo", "--format", "csv", "--resolution", "192"],
        capture_output=True, text=True, check=True, timeout=120,
    )
    rows = _csv_rows(done.stdout)
    assert len(rows) == 39 and {r["resolution"] for r in rows} == {"192"}
