"""Our analytic counts against published numbers, and the readers of those numbers.

The published numbers are independent sources: mmclassification's results table (the
shipped README) and torchvision's weights metadata. Nothing here is copied from our output.
"""

from __future__ import annotations

import re

import pytest

from regnet_tutorial import get_card, list_models
from regnet_tutorial.complexity import model_complexity, stage_complexity
from regnet_tutorial.weights.published import (
    MmclsRow,
    PublishedTableError,
    agrees_at_printed_precision,
    mmcls_convention_flops,
    mmcls_model_name,
    mmcls_table,
    paper_table4,
    parse_mmcls_table,
    printed_decimals,
    pycls_model_zoo,
    torchvision_builders,
    torchvision_model_name,
    torchvision_reference_weights,
    torchvision_weights,
)

SEED_MODELS = (
    "RegNetX-400MF", "RegNetX-800MF", "RegNetX-1.6GF", "RegNetX-3.2GF",
    "RegNetX-4.0GF", "RegNetX-6.4GF", "RegNetX-8.0GF", "RegNetX-12GF",
)


def _trained_rows() -> list[MmclsRow]:
    return [r for r in mmcls_table() if not r.converted_from_pycls]


# --- the mmcls table reader ------------------------------------------------------------


def test_shipped_table_has_16_rows_8_of_them_converted() -> None:
    rows = mmcls_table()
    assert len(rows) == 16
    converted = [r for r in rows if r.converted_from_pycls]
    trained = [r for r in rows if not r.converted_from_pycls]
    assert [r.display_name for r in converted] == list(SEED_MODELS)
    assert [r.display_name for r in trained] == list(SEED_MODELS)
    for r in rows:
        assert r.config_url.startswith("https://github.com/open-mmlab/mmclassification/")
        assert r.checkpoint_url.startswith("https://download.openmmlab.com/") and r.checkpoint_url.endswith(".pth")
        assert ("/convert/" in r.checkpoint_url) == r.converted_from_pycls
        assert "mmclassification" in r.source and "mmcls_regnet_README.md" in r.source
        assert 70 < r.top1 < r.top5 < 100
    assert all(r.log_url and r.log_url.endswith(".log.json") for r in trained)
    assert all(r.log_url is None for r in converted)
    # The same architecture has the same printed complexity in both rows.
    for t, c in zip(trained, converted):
        assert (t.params_m, t.flops_g) == (c.params_m, c.flops_g)


def test_rows_keep_the_printed_strings() -> None:
    row = next(r for r in mmcls_table() if r.display_name == "RegNetX-3.2GF" and r.converted_from_pycls)
    assert (row.params_m, row.flops_g, row.top1, row.top5) == ("15.3", "3.21", 78.26, 94.20)
    assert printed_decimals("15.3") == 1 and printed_decimals("0.41") == 2 and printed_decimals("5") == 0


def test_rows_map_to_our_pycls_rounding_models() -> None:
    assert [r.model_name for r in _trained_rows()] == [
        "regnetx_400mf", "regnetx_800mf", "regnetx_1_6gf", "regnetx_3_2gf",
        "regnetx_4_0gf", "regnetx_6_4gf", "regnetx_8_0gf", "regnetx_12gf",
    ]
    assert mmcls_model_name("RegNetX-400MF\\*") == "regnetx_400mf"


def test_agrees_at_printed_precision() -> None:
    assert agrees_at_printed_precision(15.296552, "15.3")
    assert agrees_at_printed_precision(3.96, "4.0")
    assert not agrees_at_printed_precision(3.94, "4.0")
    assert not agrees_at_printed_precision(0.3977, "0.41")


def test_parser_names_the_problem() -> None:
    with pytest.raises(PublishedTableError, match="no results table"):
        parse_mmcls_table("# RegNet\n\nno table here\n", source="x.md")
    bad_header = "| Model | Params(M) | Flops(G) | Top-1 (%) |\n| :-: | :-: | :-: | :-: |\n"
    with pytest.raises(PublishedTableError, match="columns"):
        parse_mmcls_table(bad_header, source="x.md")
    header = "| Model | Params(M) | Flops(G) | Top-1 (%) | Top-5 (%) | Config | Download |\n|-|-|-|-|-|-|-|\n"
    with pytest.raises(PublishedTableError, match=r"line 3.*\[config\]"):
        parse_mmcls_table(header + "| RegNetX-400MF | 5.16 | 0.41 | 72.56 | 90.78 | none | none |\n", "x.md")
    with pytest.raises(PublishedTableError, match="line 3: 3 cells"):
        parse_mmcls_table(header + "| RegNetX-400MF | 5.16 | 0.41 |\n", "x.md")


# --- the pycls model-zoo reader (its numbers against ours: tests/test_pycls_zoo.py) ----------


def test_pycls_zoo_has_the_24_paper_models_with_a_source() -> None:
    rows = pycls_model_zoo()
    assert sorted(r.model_name for r in rows) == sorted(list_models("regnet[xy]_*[fg]"))
    assert len(rows) == 24
    for r in rows:
        assert "github.com/facebookresearch/pycls" in r.source and "pycls_model_zoo.csv" in r.source
        # Pinned: MODEL_ZOO.md on pycls's main branch now lists re-measured values (RegNetY-8.0GF 115 ms).
        assert re.search(r"pycls/blob/[0-9a-f]{40}/MODEL_ZOO\.md", r.source), r.source
        assert 15 < r.top1_error < 35
    y32 = rows[-1]
    assert (y32.display_name, y32.flops_b, y32.params_m, y32.acts_m) == ("RegNetY-32GF", "32.3", "145.0", "30.3")


# --- the paper's Table 4 (RegNetY against EfficientNet) ---------------------------------

# Top-1 error (%) of each Table 4 pair, (RegNetY, EfficientNet), typed in from pycls MODEL_ZOO.md at
# commit 1caf15bbefeecd6d4df74075f293592b504069d2, the revision that printed the paper's numbers.
TABLE4_ERRORS = {
    ("RegNetY-400MF", "EfficientNet-B0"): (25.9, 24.9), ("RegNetY-600MF", "EfficientNet-B1"): (24.5, 24.1),
    ("RegNetY-800MF", "EfficientNet-B2"): (23.7, 23.4), ("RegNetY-1.6GF", "EfficientNet-B3"): (22.0, 22.5),
    ("RegNetY-4.0GF", "EfficientNet-B4"): (20.6, 21.2), ("RegNetY-8.0GF", "EfficientNet-B5"): (20.1, 21.5),
}


def test_paper_table4_pairs_each_efficientnet_with_a_regnety_and_cites_the_paper() -> None:
    rows = paper_table4()
    assert len(rows) == 12
    pairs = {}
    for r in rows:
        pairs.setdefault(r.pair, []).append(r)
        assert "Table 4" in r.source and "arxiv.org/abs/2003.13678" in r.source and "paper_table4.csv" in r.source
    errors = {tuple(r.display_name for r in pair): tuple(r.top1_error for r in pair) for pair in pairs.values()}
    assert errors == TABLE4_ERRORS
    # The paper's reading of the table (Section 5.2): EfficientNet is better at low flops (the first three
    # pairs), RegNetY at intermediate and high flops (the last three).
    assert [y > e for y, e in errors.values()] == [True] * 3 + [False] * 3
    # The headline: RegNetY-8.0GF infers 64 images in 113 ms on a V100, EfficientNet-B5 in 504 ms.
    infer = {r.display_name: r.infer_ms for r in rows}
    assert (infer["RegNetY-8.0GF"], infer["EfficientNet-B5"]) == (113, 504)


def test_paper_table4_regnety_rows_equal_the_pinned_pycls_zoo() -> None:
    """pycls's model zoo at the pinned revision printed the same numbers as the paper's Table 4."""
    zoo = {r.display_name: r for r in pycls_model_zoo()}
    for r in paper_table4():
        if r.display_name.startswith("RegNetY"):
            z = zoo[r.display_name]
            assert (r.flops_b, r.params_m, r.acts_m, r.batch_size, r.infer_ms, r.train_hr, r.top1_error) == (
                z.flops_b, z.params_m, z.acts_m, z.batch_size, z.infer_ms, z.train_hr, z.top1_error)
            assert agrees_at_printed_precision(model_complexity(get_card(r.display_name).name).flops / 1e9, r.flops_b)


def test_paper_table4_efficientnet_flops_are_near_torchvisions() -> None:
    """A second source for the EfficientNet rows: torchvision's weights metadata counts the same
    networks' multiply-adds at the same image sizes; the paper's (pycls's) EfficientNet differs only in
    details, so the two agree within 10%."""
    torchvision_models = pytest.importorskip("torchvision.models")
    for r in paper_table4():
        if r.display_name.startswith("EfficientNet"):
            b = r.display_name[-1]
            ops = getattr(torchvision_models, f"EfficientNet_B{b}_Weights").IMAGENET1K_V1.meta["_ops"]
            assert abs(ops / float(r.flops_b) - 1) < 0.10, (r.display_name, ops, r.flops_b)


# --- mmcls numbers against our counts ---------------------------------------------------


@pytest.mark.parametrize("row", _trained_rows(), ids=lambda r: r.display_name)
def test_mmcls_params_match_ours(row: MmclsRow) -> None:
    ours = model_complexity(row.model_name)
    assert agrees_at_printed_precision(ours.params / 1e6, row.params_m), (ours.params, row.params_m)


def _extra_ops_mmcv_counts(name: str) -> int:
    """What mmcv's counter adds to the paper's count of the feature extractor, derived by
    hand from the stage spec: 2 per batch-norm element (every conv of an X network is
    followed by BN), 1 per ReLU output (stem; f.a, f.b and the block output of every
    block), 1 per element entering the global pooling."""
    spec = get_card(name).stages()
    size = (224 - 1) // 2 + 1
    bn = relu = spec.stem_width * size * size
    w_in = spec.stem_width
    for depth, w, stride in zip(spec.depths, spec.widths, spec.strides):
        for i in range(depth):
            s = stride if i == 0 else 1
            out = (size - 1) // s + 1
            a, b, c = w * size * size, w * out * out, w * out * out  # b = 1 for every RegNetX
            proj = w * out * out if (i == 0 and (w_in != w or s != 1)) else 0
            bn += a + b + c + proj
            relu += a + b + c
            size, w_in = out, w
    return 2 * bn + relu + w_in * size * size


@pytest.mark.parametrize("row", _trained_rows(), ids=lambda r: r.display_name)
def test_mmcls_flops_match_in_mmcls_convention(row: MmclsRow) -> None:
    # The table's flops are not the paper's count (RegNetX-400MF: 0.398 G multiply-adds vs a
    # printed 0.41): mmcls counts its feature extractor (no classifier) with mmcv's counter,
    # which also counts batch norm, ReLU and pooling. Counted that way, ours equal the table.
    paper = model_complexity(row.model_name)
    assert paper.flops / 1e9 < float(row.flops_g)
    counted = mmcls_convention_flops(row.model_name)
    assert agrees_at_printed_precision(counted / 1e9, row.flops_g), (counted, row.flops_g)
    # ptflops (a second counter) against the analytic count: the paper's flops without the
    # classifier, plus what mmcv adds, derived by hand from the stage spec.
    classifier = stage_complexity(row.model_name)["head"].flops
    assert counted == paper.flops - classifier + _extra_ops_mmcv_counts(row.model_name)


# --- torchvision numbers against our counts ---------------------------------------------


def test_torchvision_builders_and_names() -> None:
    builders = torchvision_builders()
    assert len(builders) == 15
    assert torchvision_model_name("regnet_x_400mf") == "regnetx_400mf_tv"
    assert torchvision_model_name("regnet_y_128gf") == "regnety_128gf_tv"
    with pytest.raises(KeyError, match="known builders"):
        torchvision_model_name("resnet50")
    with pytest.raises(KeyError, match="no builder"):
        torchvision_weights("regnet_z_400mf")


@pytest.mark.parametrize("builder", torchvision_builders())
def test_torchvision_params_and_gflops_match_ours(builder: str) -> None:
    entries = torchvision_weights(builder)
    assert entries
    for tv in entries:
        assert "torchvision" in tv.source and tv.weights in tv.source
        ours = model_complexity(tv.model_name, resolution=tv.resolution)
        assert ours.params == tv.num_params, tv.weights
        # torchvision's "GFLOPS" are multiply-adds (the paper's unit), rounded to 3 decimals,
        # at the crop size of the weights' own transforms (384 for the SWAG end-to-end weights).
        # Bias adds are below 1e-3 G for every RegNet, so they cannot show at this precision.
        assert printed_decimals(repr(tv.gflops)) <= 3
        assert round(ours.flops / 1e9, 3) == tv.gflops, (tv.weights, ours.flops)


@pytest.mark.parametrize(
    ("pycls_name", "builder"),
    [("regnetx_400mf", "regnet_x_400mf"), ("regnety_800mf", "regnet_y_800mf"), ("regnety_8_0gf", "regnet_y_8gf")],
)
def test_the_paper_rounding_is_not_torchvisions_architecture(pycls_name: str, builder: str) -> None:
    # The three models where the rounding rules differ: only the *_tv variant matches torchvision.
    tv = torchvision_reference_weights(builder)
    assert model_complexity(pycls_name).params != tv.num_params
    assert model_complexity(tv.model_name).params == tv.num_params


def test_reference_weights_are_the_paper_recipe_where_available() -> None:
    assert torchvision_reference_weights("regnet_x_400mf").weights.endswith(".IMAGENET1K_V1")
    big = torchvision_reference_weights("regnet_y_128gf")
    assert big.resolution == 224 and "SWAG_LINEAR" in big.weights


def test_torchvision_source_names_the_release_without_the_local_build_tag(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import torchvision

    # A CUDA wheel's "+cu130" (or a CPU wheel's "+cpu") names the local build, not the weights.
    monkeypatch.setattr(torchvision, "__version__", "0.29.1+cu130")
    source = torchvision_reference_weights("regnet_x_400mf").source
    assert source.startswith("torchvision 0.29.1: torchvision.models.RegNet_X_400MF_Weights.IMAGENET1K_V1.meta")
    assert "+" not in source and "cu130" not in source
    monkeypatch.setattr(torchvision, "__version__", "0.30.0")
    assert torchvision_reference_weights("regnet_x_400mf").source.startswith("torchvision 0.30.0: ")
