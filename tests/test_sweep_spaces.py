"""The design-space samplers against the paper's definitions (Section 3, Table 1; Section 4).

Each space's constraints are written out again here from the paper's text (and, for the limits
of RegNetX constrained, from pycls's sweep config), independently of the sampler's own checks,
and every sample of many seeds must satisfy them, lie in its flops band (recounted by
:func:`model_complexity` and by the built network's parameters) and rebuild the same network
from its JSON line. The committed results files must be drawn again, line for line, under the
paper's names.
"""

from __future__ import annotations

import json
import math
import random
import subprocess
import sys

import pytest
import torch
from conftest import ROOT

from regnet_tutorial import AnyNet, RegNetParams, StageSpec, generate_stages, make_compatible
from regnet_tutorial.complexity import band_flops, model_complexity
from regnet_tutorial.sweep import (
    SAMPLE_KEYS,
    SPACES,
    SamplerConfig,
    SamplingError,
    sample_from_json,
    sample_space,
    sample_to_json,
    spec_from_sample,
)
from regnet_tutorial.sweep.__main__ import main as sweep_main
from regnet_tutorial.sweep.spaces import REGNET_KEYS, _log_uniform, check_space_names

SEEDS = range(12)
N = 8


def _nondecreasing(xs: list[int]) -> bool:
    return all(a <= b for a, b in zip(xs, xs[1:]))


REGNETX_SPACES = ("regnetx", "regnetx_constrained_nolimits", "regnetx_constrained")


def imagenet_equivalent(s: dict) -> tuple[int, int, int]:
    """(flops, params, acts) of a sample's stages on the paper's ImageNet skeleton: stem stride 2,
    224 px, RGB, 1000 classes (where the paper's complexity fits were made)."""
    spec = StageSpec(
        tuple(s["depths"]), tuple(s["widths"]), tuple(s["group_widths"]),
        tuple(1 / b for b in s["bottleneck_ratios"]), tuple(s["strides"]), stem_width=s["stem_width"], stem_stride=2,
    )
    cx = model_complexity(spec, 224, 1000, 3)
    return cx.flops, cx.params, cx.acts


def over_limits(s: dict) -> tuple[bool, bool]:
    """Whether a sample's ImageNet equivalent has more parameters, and more activations, than
    RegNetX constrained allows: pycls's RegNet limits for flops F in GF, params < 3 + 5.5 F and
    acts < 6.5 sqrt(F), in millions (``pycls/sweep/config.py``), the fits of the paper's Figure 12
    (bottom)."""
    flops, params, acts = imagenet_equivalent(s)
    f = flops / 1e9
    return params > (3 + 5.5 * f) * 1e6, acts > 6.5 * math.sqrt(f) * 1e6


def check_paper_constraints(s: dict) -> None:
    """The paper's constraints on one (compatibility-adjusted) sample of ``s["space"]``."""
    space, d, w, b, g = s["space"], s["depths"], s["widths"], s["bottleneck_ratios"], s["group_widths"]
    n = len(d)
    assert len(w) == len(b) == len(g) == len(s["strides"]) == n
    assert s["strides"] == [2] * n and s["se_ratio"] == 0.0  # X blocks, every stage halves
    for wi, bi, gi in zip(w, b, g):
        assert wi % 8 == 0 and wi >= 8 and (wi <= 1024 or not space.startswith("anynetx"))
        assert bi in (1, 2, 4)
        inner = wi // bi
        assert inner * bi == wi and inner % gi == 0
        # g is drawn from 1..32 (powers of two); compatibility may lower it to the inner width.
        assert gi in (1, 2, 4, 8, 16, 32) or (gi == inner and gi < 32)
    if space.startswith("anynetx"):
        assert all(1 <= di <= 16 for di in d)
    if space != "anynetx_a":
        assert len(set(b)) == 1  # B: shared bottleneck ratio
    if space in ("anynetx_d", "anynetx_e", *REGNETX_SPACES):
        assert _nondecreasing(w)  # D: w_{i+1} >= w_i
    if space == "anynetx_e":
        assert _nondecreasing(d)  # E: d_{i+1} >= d_i
    if space not in ("anynetx_a", "anynetx_b"):
        # C: one shared g, lowered only in stages whose inner width w/b is smaller than it.
        assert all(gi == min(max(g), wi // bi) for wi, bi, gi in zip(w, b, g))
    if space in REGNETX_SPACES:
        assert sum(d) == s["d"] < 64 and s["w0"] < 256 and 0 < s["wa"] < 256 and 1.5 <= s["wm"] <= 3
        assert s["w0"] % 8 == 0
        if space.startswith("regnetx_constrained"):  # Section 4: b = 1, d <= 40, w_m >= 2
            assert b == [1] * n and s["d"] <= 40 and s["wm"] >= 2
        if space == "regnetx_constrained":  # ... and the parameter and activation limits
            assert over_limits(s) == (False, False)
        # The stages are exactly those of the quantized linear function (Eq. 2-4).
        spec = generate_stages(RegNetParams(s["d"], s["w0"], s["wa"], s["wm"], g[-1], 1 / b[0]))
        assert (list(spec.depths), list(spec.widths), list(spec.group_widths)) == (d, w, g)


@pytest.mark.parametrize("space", SPACES)
def test_every_sample_lies_in_its_space_and_band(space: str) -> None:
    lo, hi = 360e6, 400e6
    for seed in SEEDS:
        for s in sample_space(space, N, seed):
            assert list(s)[: len(SAMPLE_KEYS)] == list(SAMPLE_KEYS)
            assert s["space"] == space and s["seed"] == seed and s["space_names"] == "paper"
            check_paper_constraints(s)
            cx = model_complexity(spec_from_sample(s), s["resolution"], s["num_classes"], s["in_channels"])
            assert (cx.flops, cx.params, cx.acts) == (s["flops"], s["params"], s["acts"])
            assert lo <= s["flops"] <= hi
        assert [s["index"] for s in sample_space(space, N, seed)] == list(range(N))


@pytest.mark.parametrize("space", ["AnyNetX_C", "ANYNETX_E", "RegNetX", "RegNetX_Constrained"])
def test_space_names_are_case_insensitive(space: str) -> None:
    assert sample_space(space, 2, 5) == sample_space(space.lower(), 2, 5)


@pytest.mark.parametrize("space", SPACES)
def test_same_seed_same_samples_and_a_longer_stream_extends_a_shorter_one(space: str) -> None:
    first = sample_space(space, 6, 3)
    assert sample_space(space, 6, 3) == first
    assert sample_space(space, 9, 3)[:6] == first
    assert sample_space(space, 6, 4) != first


def test_spaces_get_independent_streams() -> None:
    a, b = sample_space("anynetx_b", 5, 0), sample_space("anynetx_c", 5, 0)
    assert [s["widths"] for s in a] != [s["widths"] for s in b]


@pytest.mark.parametrize("space", SPACES)
def test_a_json_line_rebuilds_the_same_network(space: str) -> None:
    for s in sample_space(space, 3, 1):
        line = sample_to_json(s)
        assert "\n" not in line
        again = sample_from_json(line)
        assert again == s
        spec = spec_from_sample(again)
        assert spec == spec_from_sample(s)
        with torch.device("meta"):
            a, b = AnyNet(spec_from_sample(s)), AnyNet(spec)
        shapes = {k: tuple(v.shape) for k, v in a.state_dict().items()}
        assert shapes == {k: tuple(v.shape) for k, v in b.state_dict().items()}
        assert sum(p.numel() for p in b.parameters()) == s["params"]
        # The paper's ratio b is the package's multiplier 1/b: inner width w / b.
        for i, ratio in enumerate(s["bottleneck_ratios"]):
            assert a.stages[i].b1.f.a.conv.out_channels == s["widths"][i] // ratio


@pytest.mark.parametrize("space", ["anynetx_a", "anynetx_e", "regnetx", "regnetx_constrained"])
@pytest.mark.parametrize("stages", [1, 2, 3, 4])
def test_small_skeleton_for_28_px_images(space: str, stages: int) -> None:
    if space.startswith("regnetx") and stages == 1:
        pytest.skip("one RegNet stage needs every block in one width: wa below the sampled range")
    cfg = SamplerConfig(flops=(5e6, 50e6), resolution=28, skeleton="small", stages=stages, num_classes=10,
                        in_channels=1)
    for s in sample_space(space, 5, 2, cfg):
        assert len(s["depths"]) == stages and s["stem_stride"] == 1 and s["resolution"] == 28
        check_paper_constraints(s)
        spec = spec_from_sample(s)
        assert 5e6 <= model_complexity(spec, 28, 10, 1).flops == s["flops"] <= 50e6
        # On the CPU: at 28 px a real forward pass is cheaper than the meta device's shape inference.
        with torch.no_grad():
            out = AnyNet(spec, num_classes=10, in_channels=1).forward_features(torch.zeros(1, 1, 28, 28))
        side = 28
        for _ in range(stages):
            side = (side - 1) // 2 + 1
        assert out.shape[-1] == side  # the stem keeps 28 px; each stage halves


def test_log_uniform_draws_match_the_analytic_distribution() -> None:
    """Depth d_i: log-uniform on (0.5, 16], rounded up, so P(d <= k) = log(k / 0.5) / log(16 / 0.5)."""
    rng = random.Random(0)
    draws = [_log_uniform(rng, 1, 16, 1) for _ in range(20000)]
    assert set(draws) == set(range(1, 17))
    for k in (1, 2, 4, 8):
        expected = math.log(k / 0.5) / math.log(32)
        assert abs(sum(d <= k for d in draws) / len(draws) - expected) < 0.015
    widths = [_log_uniform(rng, 8, 1024, 8) for _ in range(20000)]
    assert all(w % 8 == 0 for w in widths) and min(widths) == 8 and max(widths) == 1024


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"flops": (4e8, 3e8)}, "flops band"),
        ({"skeleton": "cifar"}, "skeleton"),
        ({"stages": 2}, "--skeleton small"),
        ({"skeleton": "small", "stages": 5}, "1 to 4 stages"),
        ({"resolution": 0}, "resolution"),
    ],
)
def test_bad_sampler_config_is_named(kwargs: dict, fragment: str) -> None:
    with pytest.raises(SamplingError, match=fragment):
        SamplerConfig(**kwargs)


def test_bad_space_count_and_unreachable_band_are_named() -> None:
    with pytest.raises(SamplingError, match="unknown space 'anynetx_f'"):
        sample_space("anynetx_f", 1)
    with pytest.raises(SamplingError, match="number of samples"):
        sample_space("regnetx", 0)
    with pytest.raises(SamplingError, match="widen the band"):
        sample_space("anynetx_a", 1, config=SamplerConfig(flops=(1, 2)), max_draws=500)
    with pytest.raises(SamplingError, match="lacks"):
        sample_from_json(json.dumps({"space": "anynetx_a"}))


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "regnet_tutorial.sweep", *args], capture_output=True, text=True, timeout=120
    )


def test_cli_writes_one_json_line_per_sample() -> None:
    out = _cli("sample", "--space", "RegNetX", "--n", "3", "--seed", "7", "--flops", "360e6:400e6")
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert len(lines) == 3
    samples = [json.loads(line) for line in lines]
    for s in samples:
        assert set(SAMPLE_KEYS) | {"d", "w0", "wa", "wm"} == set(s)
    assert samples == sample_space("regnetx", 3, 7)
    small = _cli("sample", "--space", "anynetx_c", "--n", "2", "--flops", "1e6:30e6", "--resolution", "28",
                 "--skeleton", "small", "--stages", "3", "--num-classes", "10", "--in-channels", "1")
    assert small.returncode == 0, small.stderr
    assert [len(json.loads(x)["depths"]) for x in small.stdout.splitlines()] == [3, 3]


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["--space", "resnet", "--n", "2"], "unknown space 'resnet'"),
        (["--space", "regnetx", "--n", "0"], "--n"),
        (["--space", "regnetx", "--n", "two"], "--n"),
        (["--space", "regnetx", "--n", "2", "--flops", "400e6:360e6"], "flops band"),
        (["--space", "regnetx", "--n", "2", "--flops", "400e6"], "LOW:HIGH"),
        (["--space", "regnet", "--n", "2"], "renamed to the paper's name: use regnetx"),
    ],
)
def test_cli_bad_input_is_one_line(args: list[str], fragment: str, capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit) as exit_info:
        sweep_main(["sample", *args])  # in-process: the same entry point as python -m
    assert exit_info.value.code == 2
    out = capsys.readouterr()
    assert out.out == ""
    assert len(out.err.strip().splitlines()) == 1
    assert out.err.startswith("error: ") and fragment in out.err


def test_cli_error_through_python_m() -> None:
    out = _cli("sample", "--space", "resnet", "--n", "2")
    assert (out.returncode, out.stdout) == (2, "")
    assert out.stderr.startswith("error: unknown space") and len(out.stderr.strip().splitlines()) == 1


def test_stem_stride_is_one_or_two() -> None:
    from regnet_tutorial import DesignSpaceError, StageSpec

    with pytest.raises(DesignSpaceError, match="stem_stride"):
        StageSpec((1,), (8,), (8,), (1.0,), (2,), stem_stride=3)
    assert StageSpec((1,), (8,), (8,), (1.0,), (2,)).stem_stride == 2  # the paper's skeleton by default


# ---------------------------------------------------------------- the committed files' samples

SWEEP = ROOT / "results" / "sweep_fashion_mnist"
PILOT = ROOT / "results" / "pilot"
COMMITTED = [SWEEP.with_suffix(".jsonl"), *sorted(PILOT.glob("pilot_*.jsonl")),
             *sorted((ROOT / "results" / "sweep_15k").glob("*.jsonl"))]


def _committed_lines(path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _config_of(row: dict) -> SamplerConfig:
    """The sampler config a results line states (its settings and its input)."""
    settings = row["settings"]
    return SamplerConfig(
        flops=tuple(settings["flops_band"]), resolution=row["resolution"], skeleton=settings["skeleton"],
        stages=settings["stages"], num_classes=row["num_classes"], in_channels=row["in_channels"],
    )


@pytest.mark.parametrize("path", COMMITTED, ids=lambda p: p.name)
def test_resampling_reproduces_the_committed_files(path) -> None:
    """Every committed line, under the paper's space names, is the sample its (space, seed, index)
    draws now, and was trained from the seed its (seed, space, index, replicate) gives now: the
    renamed spaces keep their random-stream names. Chapters 01 and 04 plot these models, and the
    pilot's driver resumes its files with the new keys."""
    from regnet_tutorial.sweep.runner import model_seed

    rows = _committed_lines(path)
    assert {r["space_names"] for r in rows} == {"paper"}
    assert {r["space"] for r in rows} <= set(SPACES)
    by_stream: dict[tuple, list[dict]] = {}
    for r in rows:
        by_stream.setdefault((r["space"], r["seed"], json.dumps(r["settings"], sort_keys=True)), []).append(r)
    for (space, seed, _), group in by_stream.items():
        n = max(r["index"] for r in group) + 1
        again = sample_space(space, n, seed, _config_of(group[0]))
        for r in group:
            keys = [k for k in (*SAMPLE_KEYS, *REGNET_KEYS) if k in again[r["index"]]]
            assert {k: r[k] for k in keys} == {k: again[r["index"]][k] for k in keys}
            assert r["model_seed"] == model_seed(seed, space, r["index"], r.get("replicate", 0))
    if path == SWEEP.with_suffix(".jsonl"):
        record = json.loads(SWEEP.with_suffix(".json").read_text())
        assert all("--n 100 --seed 0" in c for c in record["commands"]) and record["seed"] == 0
        assert {s: sum(r["space"] == s for r in rows) for s in record["models_per_space"]} == record["models_per_space"]


def test_old_space_keys_are_refused_with_the_new_ones() -> None:
    """No alias: ``regnet`` names the new key, and a line under the old names (where ``regnetx``
    meant the constrained space) cannot be read as RegNetX."""
    with pytest.raises(SamplingError, match="use regnetx"):
        sample_space("regnet", 1)
    old = {"space": "regnetx", "seed": 0, "index": 0}
    with pytest.raises(SamplingError, match="migrate_space_names"):
        check_space_names(old)
    check_space_names({**old, "space_names": "paper"})
    check_space_names({"space": "anynetx_a", "seed": 0, "index": 0})  # unchanged keys pass either way


def test_the_limits_reject_regnetx_samples() -> None:
    """The parameter and activation limits bind: at the paper's ImageNet band each of them rejects
    some samples of RegNetX constrained without limits, and at our 28 px band the activation limit
    rejects some RegNetX samples (so the constrained space's check above can fail)."""
    wide = sample_space("regnetx_constrained_nolimits", 60, 0)
    over = [over_limits(s) for s in wide]
    assert any(p for p, _ in over) and any(a for _, a in over) and not all(p or a for p, a in over)
    small = SamplerConfig(flops=(2e6, 4e6), resolution=28, skeleton="small", num_classes=10, in_channels=1)
    over_small = [over_limits(s) for s in sample_space("regnetx", 60, 0, small)]
    assert any(a for _, a in over_small)
    # The constrained stream keeps exactly the draws within the limits: none of its samples is over.
    assert not any(p or a for p, a in map(over_limits, sample_space("regnetx_constrained", 60, 0, small)))


def test_migration_renames_old_lines_once(tmp_path) -> None:
    """``results/migrate_space_names.py`` turns the old form of a committed file (old keys, no
    ``space_names``) into the committed file, byte for byte, and leaves a migrated file alone."""
    migrate = subprocess.run  # the script as a user runs it, from the repository root
    back = {"regnetx": "regnet", "regnetx_constrained_nolimits": "regnetx"}
    committed = SWEEP.with_suffix(".jsonl").read_text()
    old_lines = []
    for line in committed.splitlines()[::50]:
        row = json.loads(line)
        del row["space_names"]
        row["space"] = back.get(row["space"], row["space"])
        old_lines.append(json.dumps(row, sort_keys=True))
    old = tmp_path / "old.jsonl"
    old.write_text("".join(x + "\n" for x in old_lines))
    for expected in ("renamed 14 of 14 lines", "already migrated"):
        out = migrate([sys.executable, "results/migrate_space_names.py", str(old)], cwd=ROOT, capture_output=True,
                      text=True, timeout=120)
        assert out.returncode == 0 and expected in out.stdout, out.stderr
        assert old.read_text() == "".join(x + "\n" for x in committed.splitlines()[::50])


# ---------------------------------------------------------------- the sampler's closed-form band check


def _random_spec(rng: random.Random) -> tuple[StageSpec, int, int, int]:
    """A random compatible spec of 1-4 stages on either skeleton, SE on or off, with an input."""
    n = rng.randint(1, 4)
    b_mul = [1 / rng.choice((1, 2, 4)) for _ in range(n)]
    widths, gs = make_compatible(
        [8 * rng.randint(1, 128) for _ in range(n)], b_mul, [rng.choice((1, 2, 4, 8, 16, 32)) for _ in range(n)]
    )
    spec = StageSpec(
        depths=tuple(rng.randint(1, 16) for _ in range(n)), widths=tuple(widths), group_widths=tuple(gs),
        bottleneck_multipliers=tuple(b_mul), strides=tuple(rng.choice((1, 2)) for _ in range(n)),
        se_ratio=rng.choice((0.0, 0.25, 0.5)), stem_width=rng.choice((16, 24, 32)), stem_stride=rng.choice((1, 2)),
    )
    return spec, rng.choice((28, 32, 64, 224, 225)), rng.choice((10, 1000)), rng.choice((1, 3))


def _band_flops_of(spec: StageSpec, resolution: int, num_classes: int, in_channels: int) -> int:
    return band_flops(
        list(spec.depths), list(spec.widths), list(spec.group_widths), list(spec.bottleneck_multipliers),
        list(spec.strides), spec.se_ratio, spec.stem_width, spec.stem_stride, resolution, num_classes, in_channels,
    )


def test_closed_form_flops_equal_the_per_layer_count() -> None:
    rng = random.Random(8)
    seen = set()
    for _ in range(400):
        spec, res, classes, channels = _random_spec(rng)
        seen.add((spec.num_stages, spec.stem_stride, spec.se_ratio > 0))
        flops = _band_flops_of(spec, res, classes, channels)
        assert isinstance(flops, int)
        assert flops == model_complexity(spec, res, classes, channels).flops
    assert len(seen) == 4 * 2 * 2  # every stage count, both skeletons, SE on and off


def test_closed_form_flops_of_a_hand_counted_net() -> None:
    # 4x4 RGB input, stem stride 1 (3x3, 3->32), one stage of one block 32->8, stride 2, b=1, g=8.
    spec = StageSpec((1,), (8,), (8,), (1.0,), (2,), stem_width=32, stem_stride=1)
    stem = 9 * 3 * 32 * 16
    block = 32 * 8 * 16 + 9 * 8 * 8 * 4 + 8 * 8 * 4 + 32 * 8 * 4  # 1x1, 3x3 /2, 1x1, projection /2
    assert _band_flops_of(spec, 4, 10, 3) == stem + block + (8 * 10 + 10) == 21594
