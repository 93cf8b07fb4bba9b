"""All 24 models against the pycls model zoo (the paper's own published complexity)."""

from __future__ import annotations

import csv

import pytest
from conftest import ROOT

from regnet_tutorial import get_card
from regnet_tutorial.complexity import model_complexity

ZOO = ROOT / "regnet_tutorial" / "weights" / "published_data" / "pycls_model_zoo.csv"
ROWS = list(csv.DictReader(line for line in ZOO.read_text().splitlines() if not line.startswith("#")))


def _at_printed_precision(value: float, printed: str) -> str:
    decimals = len(printed.split(".")[1]) if "." in printed else 0
    return f"{value:.{decimals}f}"


def test_table_has_all_24_models() -> None:
    assert len(ROWS) == 24
    assert {get_card(r["model"]).name for r in ROWS} == {
        n for n in __import__("regnet_tutorial").list_models() if not n.endswith("_tv")
    }


@pytest.mark.parametrize("row", ROWS, ids=[r["model"] for r in ROWS])
def test_flops_params_acts_equal_pycls_model_zoo(row: dict[str, str]) -> None:
    c = model_complexity(get_card(row["model"]).name, resolution=224)
    assert _at_printed_precision(c.flops / 1e9, row["flops_b"]) == row["flops_b"]
    assert _at_printed_precision(c.params / 1e6, row["params_m"]) == row["params_m"]
    assert _at_printed_precision(c.acts / 1e6, row["acts_m"]) == row["acts_m"]
