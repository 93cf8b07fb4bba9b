"""The training recipe: config validation, YAML + overrides, the derived batch / lr / steps,
and the committed per-model recipe files checked against the published seed table."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest
import yaml
from conftest import ROOT

import regnet_tutorial
from regnet_tutorial.models import MODEL_CARDS
from regnet_tutorial.train.recipe import (
    ConfigError,
    TrainConfig,
    config_to_dict,
    describe,
    load_config,
    resolve_recipe,
    save_config,
    write_recipe_files,
)

REPO = ROOT
CONFIGS = REPO / "configs"
MMCLS_README = Path(regnet_tutorial.__file__).parent / "weights" / "published_data" / "mmcls_regnet_README.md"


def test_defaults_are_the_papers_recipe() -> None:
    """Paper, Section 5 / pycls dds_baselines: 100 epochs, SGD momentum 0.9 with Nesterov,
    wd 5e-5, 5 warmup epochs from 0.1x, lr 0.1 per 128 images, 224 crops, 256 eval resize,
    PCA lighting 0.1, no label smoothing."""
    cfg = TrainConfig()
    assert (cfg.epochs, cfg.warmup_epochs, cfg.warmup_factor) == (100, 5, 0.1)
    assert (cfg.momentum, cfg.nesterov, cfg.weight_decay, cfg.lr_per_128) == (0.9, True, 5e-5, 0.1)
    assert (cfg.crop_size, cfg.eval_resize, cfg.lighting_std, cfg.label_smoothing) == (224, 256, 0.1, 0.0)


def test_overrides_are_parsed_to_the_field_types(tmp_path: Path) -> None:
    path = tmp_path / "run.yaml"
    path.write_text("model: regnety_400mf\nepochs: 3\nwarmup_epochs: 1\nweight_decay: 5e-5\nmixed_precision: no\n")
    cfg = load_config(path, ["epochs=2", "warmup_epochs=1", "lr_per_128=0.2", "nesterov=false", "weight_decay=1e-4",
                             "max_steps_per_epoch=7", "mixed_precision=bf16", "data=/data/in1k"])
    assert cfg.model == "regnety_400mf" and cfg.epochs == 2 and cfg.nesterov is False
    assert cfg.weight_decay == 1e-4 and isinstance(cfg.lr_per_128, float) and cfg.lr_per_128 == 0.2
    assert cfg.max_steps_per_epoch == 7 and cfg.mixed_precision == "bf16" and cfg.data == "/data/in1k"
    assert load_config(path).mixed_precision == "no"  # unquoted YAML `no` is not False here
    assert load_config(path).weight_decay == 5e-5  # YAML 1.1 reads 5e-5 as a string
    assert load_config(None, {"max_steps_per_epoch": "null", "warmup_factor": 1}).max_steps_per_epoch is None
    assert load_config(None, {"warmup_factor": 1}).warmup_factor == 1.0


def test_mixed_precision_defaults_to_the_launchers_setting() -> None:
    assert load_config(None).mixed_precision is None  # Accelerate then reads accelerate launch / config
    recipes = sorted((ROOT / "configs").glob("*.yaml"))
    assert len(recipes) == 24
    for path in recipes:
        assert load_config(path).mixed_precision is None, path


def test_unknown_keys_are_reported_with_a_suggestion(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"Unknown config key 'epoch' \(in the overrides\)\. "
                                          r"Did you mean 'epochs'\? Valid keys: model, data, .*resume"):
        load_config(None, ["epoch=2"])
    with pytest.raises(ConfigError, match=r"Unknown config key 'lr' .*Did you mean 'lr_per_128'\?"):
        load_config(None, ["lr=0.1"])  # a prefix of the key, too short for a spelling match
    path = tmp_path / "bad.yaml"
    path.write_text("model: regnetx_400mf\nwieght_decay: 0.0001\n")
    where = re.escape(str(path))
    with pytest.raises(ConfigError, match=rf"'wieght_decay' \(in {where}\)\. Did you mean 'weight_decay'"):
        load_config(path)
    with pytest.raises(ConfigError, match="look like key=value"):
        load_config(None, ["epochs"])
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "missing.yaml")
    path.write_text("- a list\n")
    with pytest.raises(ConfigError, match="must hold a mapping"):
        load_config(path)


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("epochs=two", r"epochs='two' is invalid: epochs must be an integer \(got str\)"),
        ("batch_size=1.5", r"batch_size=1.5 is invalid: batch_size must be an integer"),
        ("nesterov=maybe", r"nesterov='maybe' is invalid: nesterov must be true or false"),
        ("mixed_precision=fp8", r"mixed_precision='fp8' is invalid: .*one of 'no', 'fp16', 'bf16'"),
        ("momentum=1.5", r"momentum=1.5 is invalid: momentum must be a number in \[0, 1\)"),
        ("batch_size=0", r"batch_size=0 is invalid: batch_size must be an integer >= 1"),
        ("warmup_epochs=100", r"warmup_epochs=100 is invalid: it must be smaller than epochs=100.*lower warmup_epochs"),
        ("eval_resize=200", r"eval_resize=200 is invalid: it must be >= crop_size=224"),
        ("model=regnetx_400", r"model='regnetx_400' is invalid.*Did you mean regnetx_400mf"),
        ("max_steps_per_epoch=0", r"max_steps_per_epoch=0 is invalid: .*>= 1, or null"),
        ("stem_stride=4", r"stem_stride=4 is invalid: stem_stride must be 1 \(the small skeleton"),
        ("augmentation=autoaugment", r"augmentation='autoaugment' is invalid: .*one of 'inception', 'pad_crop'"),
    ],
)
def test_bad_values_name_the_field_the_value_and_what_is_allowed(override: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_config(None, [override])


def test_wrong_type_in_yaml_and_in_code(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("batch_size: [64]\n")
    with pytest.raises(ConfigError, match=r"batch_size=\[64\] is invalid: batch_size must be an integer \(got list\)"):
        load_config(path)
    with pytest.raises(ConfigError, match="nesterov=1 is invalid"):
        TrainConfig(nesterov=1)  # type: ignore[arg-type]
    assert isinstance(ConfigError("x"), ValueError)


def test_save_and_load_round_trip(tmp_path: Path) -> None:
    cfg = TrainConfig(model="regnety_200mf", epochs=3, warmup_epochs=1, weight_decay=1e-4,
                      max_steps_per_epoch=2, mixed_precision="bf16", resume="latest")
    path = save_config(cfg, tmp_path / "out" / "config.yaml", comment="a run\nsecond line")
    assert load_config(path) == cfg
    assert path.read_text().startswith("# a run\n# second line\nmodel: regnety_200mf\n")
    assert [p.name for p in path.parent.iterdir()] == ["config.yaml"]  # no temporary file left behind
    assert list(config_to_dict(cfg)) == [f.name for f in dataclasses.fields(TrainConfig)]


def test_resolve_recipe_scales_the_batch_and_lr_and_counts_optimizer_steps() -> None:
    cfg = TrainConfig(batch_size=32, epochs=10, warmup_epochs=2)
    r = resolve_recipe(cfg, num_processes=4, dataset_size=1000)
    assert (r.total_batch, r.steps_per_epoch, r.total_steps, r.warmup_steps) == (128, 7, 70, 14)
    assert r.lr == pytest.approx(0.1)
    # One process accumulating 4 micro-batches takes the same optimizer steps with the same lr.
    r1 = resolve_recipe(dataclasses.replace(cfg, grad_accum_steps=4), num_processes=1, dataset_size=1000)
    assert (r1.total_batch, r1.lr, r1.total_steps) == (r.total_batch, r.lr, r.total_steps)
    capped = resolve_recipe(dataclasses.replace(cfg, max_steps_per_epoch=3), 4, 1000)
    assert (capped.steps_per_epoch, capped.total_steps, capped.warmup_steps) == (3, 30, 6)
    text = describe(r)
    assert "128 = 32 per process x 4 process(es) x 1 accumulation step(s)" in text
    assert "0.1 = 0.1 x 128 / 128" in text and "70 = 7 per epoch x 10 epochs" in text


def test_resolve_recipe_rejects_a_dataset_smaller_than_one_batch() -> None:
    with pytest.raises(ConfigError, match=r"has 100 images, fewer than one total batch of 1024.*Lower batch_size"):
        resolve_recipe(TrainConfig(), num_processes=8, dataset_size=100)
    with pytest.raises(ConfigError, match="num_processes=0"):
        resolve_recipe(TrainConfig(), num_processes=0, dataset_size=100)


def test_committed_recipe_files_are_what_write_recipe_files_writes(tmp_path: Path) -> None:
    written = write_recipe_files(tmp_path)
    pycls_models = sorted(n for n, c in MODEL_CARDS.items() if c.rounding == "pycls")
    assert sorted(p.stem for p in written) == pycls_models and len(written) == 24
    committed = sorted(p.name for p in CONFIGS.glob("*.yaml"))
    assert committed == sorted(p.name for p in written), "run: python -m regnet_tutorial.train configs"
    for path in written:
        assert (CONFIGS / path.name).read_text() == path.read_text(), f"configs/{path.name} is stale"


def seed_table_configs() -> list[tuple[str, int, int]]:
    """(model name, GPUs, images per GPU) from the config links of the mmclassification table,
    e.g. ``regnetx-3.2gf_8xb64_in1k`` -> ("regnetx_3_2gf", 8, 64)."""
    names = re.findall(r"configs/regnet/(regnet[xy]-[\d.]+[mg]f)_(\d+)xb(\d+)_in1k", MMCLS_README.read_text())
    return sorted({(m.replace("-", "_").replace(".", "_"), int(g), int(b)) for m, g, b in names})


def test_recipe_files_match_the_published_seed_table() -> None:
    rows = seed_table_configs()
    assert len(rows) == 8  # RegNetX 400MF .. 12GF
    for model, gpus, per_gpu in rows:
        cfg = load_config(CONFIGS / f"{model}.yaml")
        assert cfg.model == model
        r = resolve_recipe(cfg, num_processes=gpus, dataset_size=1_281_167)  # ImageNet-1k train
        assert r.total_batch == gpus * per_gpu
        assert r.lr == pytest.approx(0.1 * gpus * per_gpu / 128)  # 0.8 for 8xb128, 0.4 for 8xb64
        assert r.steps_per_epoch == 1_281_167 // (gpus * per_gpu)


def test_largest_models_use_the_papers_smallest_batch() -> None:
    """pycls RegNetX-32GF and RegNetY-{16,32}GF_dds_8gpu.yaml: batch 256, lr 0.2, i.e. 8 x 32;
    RegNetX-16GF_dds_8gpu.yaml: batch 512, lr 0.4 (tests/test_recipe_constants.py has every model)."""
    for name in ("regnetx_32gf", "regnety_16gf", "regnety_32gf"):
        r = resolve_recipe(load_config(CONFIGS / f"{name}.yaml"), 8, 1_281_167)
        assert (r.total_batch, r.lr) == (256, pytest.approx(0.2))
    r = resolve_recipe(load_config(CONFIGS / "regnetx_16gf.yaml"), 8, 1_281_167)
    assert (r.total_batch, r.lr) == (512, pytest.approx(0.4))
    raw = yaml.safe_load((CONFIGS / "regnety_200mf.yaml").read_text())
    assert raw["batch_size"] == 128 and raw["epochs"] == 100


def test_the_old_precise_bn_batches_key_names_its_replacement(tmp_path: Path) -> None:
    """``precise_bn_batches`` (per process) became ``precise_bn_samples`` (over all processes): an old
    ``0`` still means off; any other value is one error line that says what to write instead."""
    path = tmp_path / "old.yaml"
    path.write_text("model: regnetx_200mf\nprecise_bn_batches: 0\n")
    assert load_config(path).precise_bn_samples == 0
    assert load_config(None, ["precise_bn_batches=0"]).precise_bn_samples == 0
    where = re.escape(str(path))
    path.write_text("precise_bn_batches: 4\n")
    with pytest.raises(ConfigError, match=rf"'precise_bn_batches' \(in {where}\) was replaced by "
                                          r"'precise_bn_samples': .*precise_bn_samples=8192"):
        load_config(path)
    with pytest.raises(ConfigError, match=r"'precise_bn_batches' \(in the overrides\) was replaced"):
        load_config(None, ["precise_bn_batches=2"])


def test_a_yaml_syntax_error_names_the_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text("model: regnetx_400mf\nepochs: [1, 2\nbatch_size: 64\n")
    with pytest.raises(ConfigError) as err:
        load_config(path)
    message = str(err.value)
    assert message.startswith(f"Config file {path} is not valid YAML at line ") and "\n" not in message
    mark = None
    try:
        yaml.safe_load(path.read_text())
    except yaml.YAMLError as raw:  # the line PyYAML itself reports, as the independent source
        mark = raw.problem_mark
    assert f"at line {mark.line + 1}, column {mark.column + 1}:" in message


@pytest.mark.parametrize("text", ["", "\n\n", "# only a comment\n"])
def test_an_empty_recipe_is_refused_not_trained_with_the_defaults(tmp_path: Path, text: str) -> None:
    path = tmp_path / "empty.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=rf"Config file {re.escape(str(path))} is empty.*configs/regnetx_400mf\.yaml"):
        load_config(path)


@pytest.mark.parametrize("epochs", [1, 2, 3])
def test_the_suggested_warmup_fix_is_valid(epochs: int) -> None:
    """A shortened run of the paper's recipe (5 warmup epochs): the error suggests a warmup_epochs
    value, and applying exactly that suggestion gives a valid config."""
    overrides = [f"epochs={epochs}"]
    with pytest.raises(ConfigError) as err:
        load_config(CONFIGS / "regnetx_200mf.yaml", overrides)
    suggestion = re.search(r"\(e\.g\. (warmup_epochs=\d+)\)", str(err.value)).group(1)
    cfg = load_config(CONFIGS / "regnetx_200mf.yaml", [*overrides, suggestion])
    assert cfg.warmup_epochs < cfg.epochs == epochs
