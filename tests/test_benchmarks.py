"""``python -m benchmarks.speed`` on tiny settings: it runs and writes the expected files.

No timing is asserted (speed targets live in the benchmark and its committed results). What is
asserted: the files and columns, the ratio bookkeeping (a contender against itself is 1), the
fit against hand-computed cases, and the published V100 numbers against the shipped pycls table.
"""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path

import pytest
import torch
from conftest import ROOT

from benchmarks import harness, report, speed
from regnet_tutorial.sweep.images import FASHION_MNIST_DIR
from regnet_tutorial.weights.published import PYCLS_ZOO_FILE, paper_table4

TINY = ["--batch", "2", "--resolution", "32", "--rounds", "2", "--warmup", "1", "--min-run-time", "0",
        "--device", "cpu"]


def read(out: Path, name: str) -> tuple[list[dict], dict]:
    with open(out / f"{name}.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    return rows, json.loads((out / f"{name}.json").read_text())


@pytest.mark.slow  # every suite, peak included: ~35 s on 2 cores
def test_all_suites_write_csv_and_json_with_the_expected_columns(tmp_path: Path) -> None:
    results = speed.main([
        "all", *TINY, "--out", str(tmp_path), "--models", "regnetx_400mf", "--memory", "off",
        "--pairs", "regnety_400mf", "--table4-batch", "1", "--scaling-models", "regnetx_200mf", "regnety_200mf",
        "regnetx_400mf",
    ])
    rows, payload = read(tmp_path, "compare")
    assert {"impl", "arch", "mode", "batch", "resolution", "precision", "memory_format", "compile", "fused",
            "ms_median", "ms_q1", "ms_q3", "img_per_s", "x_torchvision", "x_timm", "achieved_gflops",
            "pct_of_peak", "peak_mem_mib", "mem_kind"} <= set(rows[0])
    assert {"command", "git_commit", "device_name", "torch", "OMP_NUM_THREADS", "peak_gflops"} <= set(payload["meta"])
    peaks = payload["meta"]["peak_gflops_by_kernel"]
    assert set(peaks) == set(harness.PEAK_KERNELS) and payload["meta"]["peak_gflops"] == max(peaks.values())
    # RegNetX-400MF differs between the rounding rules, so ours runs twice: the timm twin and the
    # torchvision twin; each library's eager run is its own reference (ratio exactly 1).
    assert {(r["impl"], r["arch"]) for r in rows if r["mode"] == "train"} == {
        ("ours", "regnetx_400mf"), ("ours", "regnetx_400mf_tv"), ("torchvision", "regnet_x_400mf"),
        ("timm", "regnetx_004")}
    tv_eager = [r for r in rows if r["impl"] == "torchvision" and r["settings"] == "eager"]
    assert tv_eager and all(float(r["x_torchvision"]) == 1.0 for r in tv_eager)
    assert any(r["settings"] == "fused+cl" and r["x_torchvision"] for r in rows)
    t4, t4_payload = read(tmp_path, "table4")
    assert t4[0]["regnet"] == "RegNetY-400MF" and t4[0]["efficientnet"] == "efficientnet_b0"
    assert float(t4[0]["paper_regnet_ms_v100"]) == 19 and float(t4[0]["paper_efficientnet_ms_v100"]) == 34
    assert t4_payload["source"] == speed.PAPER_TABLE4_SOURCE
    sc, sc_payload = read(tmp_path, "scaling")
    assert [r["model"] for r in sc] == ["RegNetX-200MF", "RegNetY-200MF", "RegNetX-400MF"]
    assert set(sc_payload["fits"]) == {"flops", "acts"} and "r2" in sc_payload["fits"]["acts"]
    assert set(results) >= {"compare", "table4", "scaling"}
    # The chapter's readers of these files: parity keys, speed-ups and the three figures.
    loaded = report.load(tmp_path)
    assert set(report.parity(loaded["compare"]["rows"])) == {
        ("RegNetX-400MF", mode, lib) for mode in ("infer", "train") for lib in ("torchvision", "timm")}
    speedups = report.inference_speedups(loaded["compare"]["rows"])["RegNetX-400MF"]
    assert speedups["torchvision eager"] == 1.0 and "ours fused+cl / torchvision best" in speedups
    for fig in (report.plot_ratios(loaded["compare"]["rows"]), report.plot_table4(loaded["table4"]["rows"]),
                report.plot_scaling(loaded["scaling"]["rows"], loaded["scaling"]["fits"])):
        assert fig.axes


@pytest.mark.slow  # a child interpreter per contender: ~30 s
def test_peak_memory_is_measured_per_contender_on_the_cpu(tmp_path: Path) -> None:
    speed.main(["compare", *TINY, "--out", str(tmp_path), "--models", "regnetx_200mf", "--impls", "ours",
                "--modes", "infer", "train"])
    rows, _ = read(tmp_path, "compare")
    by_mode = {r["mode"]: float(r["peak_mem_mib"]) for r in rows}
    assert all(r["mem_kind"] == "cpu_peak_rss_rise" for r in rows)
    # A training step keeps activations, gradients and momentum: more than inference needs.
    assert 0 < by_mode["infer"] < by_mode["train"]


def test_fit_against_hand_computed_cases() -> None:
    exact = speed.fit([1, 2, 3, 4], [3, 5, 7, 9])  # y = 2x + 1
    assert exact["slope"] == pytest.approx(2) and exact["intercept"] == pytest.approx(1)
    assert exact["r2"] == pytest.approx(1) and exact["pearson_r"] == pytest.approx(1)
    # y = (1, 3, 2) on x = (1, 2, 3): slope 0.5, R^2 = 0.25 (SS_res 1.5, SS_tot 2), Spearman 0.5.
    noisy = speed.fit([1, 2, 3], [1, 3, 2])
    assert noisy["slope"] == pytest.approx(0.5) and noisy["r2"] == pytest.approx(0.25)
    assert noisy["spearman_r"] == pytest.approx(0.5)


def test_table4_times_are_the_shipped_paper_table4_numbers() -> None:
    """The V100 times in TABLE4_PAIRS equal the paper's Table 4 shipped with the package, and the
    RegNetY times the pinned pycls MODEL_ZOO copy."""
    text = (ROOT / "regnet_tutorial" / "weights" / PYCLS_ZOO_FILE).read_text()
    zoo = {r["model"]: r for r in csv.DictReader(line for line in text.splitlines() if not line.startswith("#"))}
    table4 = {r.display_name: r for r in paper_table4()}
    for ours, effnet, _, regnet_ms, effnet_ms in speed.TABLE4_PAIRS:
        regnet = speed.get_card(ours).display_name
        assert float(zoo[regnet]["infer_ms"]) == regnet_ms == table4[regnet].infer_ms
        assert table4[f"EfficientNet-B{effnet[-1]}"].infer_ms == effnet_ms
        assert table4[regnet].pair == table4[f"EfficientNet-B{effnet[-1]}"].pair


def test_bad_settings_fail_early_with_the_fix(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(ValueError, match="inference only"):
        harness.validate(harness.Contender("ours", "regnetx_200mf", mode="train", fused=True))
    with pytest.raises(SystemExit) as exit_info:
        speed.main(["compare", "--models", "regnetx_999mf"])
    assert exit_info.value.code == 2  # a bad command line, not a crash (1) or success (0)
    assert "unknown model 'regnetx_999mf'" in capsys.readouterr().err


def test_module_entry_point_prints_help(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        speed.main(["--help"])
    out = capsys.readouterr().out
    assert exit_info.value.code == 0 and out.startswith("usage: python -m benchmarks.speed")
    assert "table4" in out and "scaling" in out


@pytest.mark.parametrize("mode", ["infer", "train"])
def test_in_place_residual_allocates_one_block_output_less_per_block_than_torchvision(mode: str) -> None:
    """Ours adds the shortcut into f(x)'s output; torchvision's identical RegNetX-400MF allocates a
    new tensor for the sum. The allocation traffic must differ by exactly the bytes of every
    block's output (counted here by forward hooks), and by nothing else."""
    from regnet_tutorial import create_model
    from regnet_tutorial.blocks import ResBottleneckBlock

    allocated = {impl: harness.allocated_bytes_per_step(harness.Contender(impl, arch, mode, batch=2, resolution=64),
                                                        torch.device("cpu"))
                 for impl, arch in (("ours", "regnetx_400mf_tv"), ("torchvision", "regnet_x_400mf"))}
    model = create_model("regnetx_400mf_tv").eval()
    block_outputs: list[int] = []
    for block in model.modules():
        if isinstance(block, ResBottleneckBlock):
            block.register_forward_hook(lambda m, i, out: block_outputs.append(out.numel() * out.element_size()))
    with torch.no_grad():
        model(torch.randn(2, 3, 64, 64))
    assert len(block_outputs) == 22 and allocated["ours"] > 0
    assert allocated["torchvision"] - allocated["ours"] == sum(block_outputs)


def test_peak_is_the_fastest_kernel_and_keeps_the_best_of_two_measurements() -> None:
    peaks = harness.peak_flops(torch.device("cpu"), repeats=1, min_run_time=0, small=True)
    assert set(peaks) == set(harness.PEAK_KERNELS) and all(v > 0 for v in peaks.values())
    assert harness.best_peak(peaks) == max(peaks.values()) and harness.best_peak(None) is None
    assert harness.merge_peaks({"matmul": 3.0, "conv3x3": 1.0}, {"matmul": 2.0, "conv3x3": 4.0}) == {
        "matmul": 3.0, "conv3x3": 4.0}


def test_the_readme_quotes_the_committed_cpu_results() -> None:
    """The README's speed summary copies numbers from ``benchmarks/results/cpu``; re-running the
    benchmark without updating it fails here. (Measured numbers live in results files, the README
    and the chapters, never in docstrings.)"""
    cpu = ROOT / "benchmarks" / "results" / "cpu"
    readme = " ".join((ROOT / "README.md").read_text().split())
    main = report.inference_speedups(report.load(cpu)["compare"]["rows"])
    x, y = main["RegNetX-400MF"], main["RegNetY-1.6GF"]
    b1 = report.inference_speedups(report.load(cpu / "batch1")["compare"]["rows"])["RegNetX-400MF"]
    b64 = report.inference_speedups(report.load(cpu / "batch64")["compare"]["rows"])["RegNetX-400MF"]
    plain = readme.replace(" (RegNetX-400MF)", "").replace(" (RegNetY-1.6GF)", "")
    assert f"{x['ours fused+cl']:.2f}x (RegNetX-400MF) and {y['ours fused+cl']:.2f}x (RegNetY-1.6GF)" in readme
    assert f"{x['ours fused+cl / torchvision best']:.2f}x and {y['ours fused+cl / torchvision best']:.2f}x" in plain
    assert f"{b1['ours fused+cl']:.2f}x at batch 1 and {b64['ours fused+cl']:.2f}x at batch 64" in readme
    t4 = report.load(cpu)["table4"]["rows"]
    here = [r["speedup_median"] for r in t4]
    assert f"{min(here):.1f}x to {max(here):.1f}x as long" in readme
    fits = report.load(cpu)["scaling"]["fits"]
    assert f"R^2 {fits['flops']['r2']:.2f} against flops, {fits['acts']['r2']:.2f} against activations" in readme
    compiled = {(r["impl"], r["settings"]): r["x_torchvision"]
                for r in report.load(cpu / "train_compile")["compare"]["rows"] if r["x_torchvision"]}
    assert f"{compiled[('torchvision', 'compile')]:.2f}x torchvision's eager step" in readme


def test_chapter07_exercise_on_activations_quotes_model_complexity_and_table4() -> None:
    """Exercise 3 of chapter 07 quotes our RegNetY partners' activations, EfficientNet's ratio to
    them and the V100 speed-ups; each must follow from model_complexity and the Table 4 pairs."""
    import nbformat

    from regnet_tutorial.complexity import model_complexity

    nb = nbformat.read(ROOT / "notebooks" / "07_speed.ipynb", as_version=4)
    cell = next(c.source for c in nb.cells if "lists EfficientNet's activations" in c.source)
    text = " ".join(cell.split())

    def numbers(pattern: str) -> list[float]:
        found = re.search(pattern, text)
        assert found, pattern
        return [float(v) for v in re.findall(r"\d+\.\d", found.group(1))]

    effnet = numbers(r"activations: ([\d., and]+) million for B0 to B5")
    ours = numbers(r"gives about ([\d., and]+) million")
    ratios = numbers(r"EfficientNet has ([\d., and]+) times more")
    v100 = numbers(r"V100 speed-ups \(([\d., and]+)\)")
    computed = [model_complexity(p[0]).acts / 1e6 for p in speed.TABLE4_PAIRS]
    assert ours == [round(a, 1) for a in computed]
    assert ratios == [round(e / a, 1) for e, a in zip(effnet, computed, strict=True)]
    assert v100 == [round(p[4] / p[3], 1) for p in speed.TABLE4_PAIRS]
    table4 = [float(r.acts_m) for r in paper_table4() if r.display_name.startswith("EfficientNet")]
    assert effnet == table4


@pytest.mark.slow
@pytest.mark.skipif(not (FASHION_MNIST_DIR / "train-images-idx3-ubyte.gz").exists(),
                    reason="needs dataset-fashion-mnist")
def test_sweep_trainer_benchmark_reports_consistent_ratios(tmp_path):
    """The sweep-trainer benchmark on one model per space, one short round: its per-image ratio is
    the ratio of the two images/s it reports, and no model exceeds the measured peak."""
    from benchmarks.sweep_trainer import main

    out = tmp_path / "trainer.json"
    result = main(["--models", "1", "--rounds", "1", "--min-run-time", "0.05", "--out", str(out)])
    assert json.loads(out.read_text()) == json.loads(json.dumps(result))
    assert {r["space"] for r in result["models"]} == {"regnetx", "anynetx_e"}
    for r in result["models"]:
        assert r["ratio"] == pytest.approx(r["proxy_images_per_s"] / r["before_images_per_s"])
        assert 0 < r["before_peak_fraction"] < 1 and 0 < r["proxy_peak_fraction"] < 1
        shares = r["proxy_time_shares"]
        assert sum(shares.values()) == pytest.approx(1) and all(0 <= v <= 1 for v in shares.values())
        # a training step's backward convolution costs more than its forward one
        assert shares["convolution backward"] > shares["convolution forward"] > 0
