"""The paper's training recipe, asserted as literal numbers copied from its sources.

The other recipe tests compare the committed ``configs/*.yaml`` with the generator that wrote
them, so a wrong constant in the generator would regenerate wrong files and pass. Here every
expected value is typed in from a published source instead:

* pycls ``configs/dds_baselines/regnet{x,y}/RegNet*_dds_8gpu.yaml`` (the paper's code):
  ``OPTIM.BASE_LR``, ``MOMENTUM``, ``WEIGHT_DECAY``, ``MAX_EPOCH``, ``WARMUP_EPOCHS`` and the total
  ``TRAIN.BATCH_SIZE`` over ``NUM_GPUS: 8``; ``NESTEROV: True`` and ``WARMUP_FACTOR: 0.1`` are
  pycls's defaults (spelled out in its ``*_dds_1gpu.yaml`` files); ``TRAIN.IM_SIZE: 224`` and
  ``TEST.IM_SIZE: 256``;
* pycls ``MODEL_ZOO.md``: "a *reference* learning rate of 0.1 and a weight decay of 5e-5 ...
  the actual learning rate for each model is computed as (batch-size / 128) * reference-lr";
* the mmclassification RegNet README (``../shared/reference/mmcls_regnet_README.md``, shipped in
  ``regnet_tutorial/weights/published_data/``): ``8xb128`` up to 1.6GF and ``8xb64`` from 3.2GF to 12GF;
* pycls ``core/config.py`` (``BN.USE_PRECISE_STATS: True``, ``BN.NUM_SAMPLES_PRECISE: 8192``) and
  ``core/net.py`` ``compute_precise_bn_stats`` (``num_iter = int(NUM_SAMPLES_PRECISE / batch_size /
  NUM_GPUS)`` batches per GPU); mmclassification ``configs/regnet/regnetx-*_in1k.py``
  (``PreciseBNHook`` with ``num_samples=8192, interval=1``);
* pycls ``datasets/imagenet.py`` and fb.resnet.torch ``datasets/imagenet.lua``: the AlexNet
  PCA lighting eigenvalues and eigenvectors; pycls ``TRAIN.PCA_STD: 0.1``.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch
import yaml
from conftest import ROOT
from torchvision.transforms import v2

import regnet_tutorial
from regnet_tutorial.train import loaders as data
from regnet_tutorial.train.recipe import ConfigError, TrainConfig, describe, load_config, resolve_recipe

REPO = ROOT
CONFIGS = REPO / "configs"
MMCLS_README = Path(regnet_tutorial.__file__).parent / "weights" / "published_data" / "mmcls_regnet_README.md"
IMAGENET_TRAIN_IMAGES = 1_281_167

# model: (TRAIN.BATCH_SIZE, OPTIM.BASE_LR) of pycls's <Model>_dds_8gpu.yaml, NUM_GPUS: 8.
# Read from the pycls configs as copied in JDAI-CV/fast-reid
# (fastreid/modeling/backbones/regnet/regnet{x,y}/*_dds_8gpu.yaml) and checked against
# pycls MODEL_ZOO.md's "batch size" column. One disagreement: MODEL_ZOO.md lists 512 for
# RegNetY-16GF, its config says 256 (lr 0.2); we follow the config, which is what ran.
PYCLS_8GPU = {
    "regnetx_200mf": (1024, 0.8),
    "regnetx_400mf": (1024, 0.8),
    "regnetx_600mf": (1024, 0.8),
    "regnetx_800mf": (1024, 0.8),
    "regnetx_1_6gf": (1024, 0.8),
    "regnetx_3_2gf": (512, 0.4),
    "regnetx_4_0gf": (512, 0.4),
    "regnetx_6_4gf": (512, 0.4),
    "regnetx_8_0gf": (512, 0.4),
    "regnetx_12gf": (512, 0.4),
    "regnetx_16gf": (512, 0.4),  # RegNetX-16GF_dds_8gpu.yaml: BATCH_SIZE 512, BASE_LR 0.4
    "regnetx_32gf": (256, 0.2),
    "regnety_200mf": (1024, 0.8),
    "regnety_400mf": (1024, 0.8),
    "regnety_600mf": (1024, 0.8),
    "regnety_800mf": (1024, 0.8),
    "regnety_1_6gf": (1024, 0.8),
    "regnety_3_2gf": (512, 0.4),
    "regnety_4_0gf": (512, 0.4),
    "regnety_6_4gf": (512, 0.4),
    "regnety_8_0gf": (512, 0.4),
    "regnety_12gf": (512, 0.4),
    "regnety_16gf": (256, 0.2),  # RegNetY-16GF_dds_8gpu.yaml: BATCH_SIZE 256, BASE_LR 0.2
    "regnety_32gf": (256, 0.2),
}
PAPER_GPUS = 8  # pycls NUM_GPUS: 8; MODEL_ZOO.md: "8 NVIDIA Tesla V100 GPUs"

# mmclassification README, one row per config link: (GPUs, images per GPU); lr from its configs'
# comments ("for batch_size 512, use lr = 0.4"; 0.8 for 8 x 128).
MMCLS = {
    "regnetx_400mf": (8, 128, 0.8),
    "regnetx_800mf": (8, 128, 0.8),
    "regnetx_1_6gf": (8, 128, 0.8),
    "regnetx_3_2gf": (8, 64, 0.4),
    "regnetx_4_0gf": (8, 64, 0.4),
    "regnetx_6_4gf": (8, 64, 0.4),
    "regnetx_8_0gf": (8, 64, 0.4),
    "regnetx_12gf": (8, 64, 0.4),
}

# The same for every model (pycls dds_baselines, MODEL_ZOO.md "Training Settings").
COMMON = {
    "epochs": 100,  # OPTIM.MAX_EPOCH
    "warmup_epochs": 5,  # OPTIM.WARMUP_EPOCHS
    "warmup_factor": 0.1,  # OPTIM.WARMUP_FACTOR (pycls default)
    "lr_per_128": 0.1,  # the reference lr: BASE_LR x 128 / BATCH_SIZE
    "momentum": 0.9,  # OPTIM.MOMENTUM
    "nesterov": True,  # OPTIM.NESTEROV (pycls default)
    "weight_decay": 5e-5,  # OPTIM.WEIGHT_DECAY
    "label_smoothing": 0.0,  # no training enhancements (MODEL_ZOO.md)
    "crop_size": 224,  # TRAIN.IM_SIZE
    "eval_resize": 256,  # TEST.IM_SIZE
    "lighting_std": 0.1,  # TRAIN.PCA_STD
    "grad_accum_steps": 1,
    # Precise BN before every evaluation on 8192 training images over all GPUs: pycls's default
    # BN.NUM_SAMPLES_PRECISE (with BN.USE_PRECISE_STATS: True), mmclassification's RegNet configs'
    # PreciseBNHook(num_samples=8192, interval=1).
    "precise_bn_samples": 8192,
}


def pycls_precise_bn_iters(num_samples_precise: int, batch_size_per_gpu: int, num_gpus: int) -> int:
    """pycls core/net.py compute_precise_bn_stats: ``int(NUM_SAMPLES_PRECISE / batch_size / NUM_GPUS)``."""
    return int(num_samples_precise / batch_size_per_gpu / num_gpus)

# fb.resnet.torch datasets/imagenet.lua `pca` and pycls datasets/imagenet.py _EIG_VALS/_EIG_VECS.
EIGVAL = (0.2175, 0.0188, 0.0045)
EIGVEC = (
    (-0.5675, 0.7192, 0.4009),
    (-0.5808, -0.0045, -0.8140),
    (-0.5836, -0.6948, 0.4203),
)
# torchvision / pycls (BGR-reversed) ImageNet mean and SD, RGB order.
MEAN = (0.485, 0.456, 0.406)
SD = (0.229, 0.224, 0.225)


def test_every_pycls_model_has_a_committed_config() -> None:
    assert sorted(p.stem for p in CONFIGS.glob("*.yaml")) == sorted(PYCLS_8GPU)


@pytest.mark.parametrize("name", sorted(PYCLS_8GPU))
def test_config_file_holds_the_papers_recipe(name: str) -> None:
    path = CONFIGS / f"{name}.yaml"
    raw = yaml.safe_load(path.read_text())
    cfg = load_config(path)
    assert cfg.model == raw["model"] == name
    for key, expected in COMMON.items():
        assert getattr(cfg, key) == expected, f"{path.name}: {key}={getattr(cfg, key)!r}, paper: {expected!r}"
        assert type(getattr(cfg, key)) is type(expected), key
    assert float(raw["weight_decay"]) == 5e-5 and raw["nesterov"] is True  # the file itself, not a default

    total, base_lr = PYCLS_8GPU[name]
    assert cfg.batch_size == total // PAPER_GPUS, f"{path.name}: batch_size per process"
    r = resolve_recipe(cfg, num_processes=PAPER_GPUS, dataset_size=IMAGENET_TRAIN_IMAGES)
    assert r.total_batch == total
    assert r.lr == pytest.approx(base_lr, rel=1e-12)
    assert r.warmup_steps == 5 * (IMAGENET_TRAIN_IMAGES // total)
    assert r.total_steps == 100 * (IMAGENET_TRAIN_IMAGES // total)
    assert raw["precise_bn_samples"] == 8192  # in the file itself, not only the default
    assert r.precise_bn_batches == pycls_precise_bn_iters(8192, total // PAPER_GPUS, PAPER_GPUS)


@pytest.mark.parametrize(
    ("num_processes", "batch_size", "expected"),
    [(8, 128, 8), (8, 64, 16), (8, 32, 32), (1, 16, 512), (2, 8, 512), (3, 100, 27)],
)
def test_precise_bn_batches_per_process_follow_pycls(num_processes: int, batch_size: int, expected: int) -> None:
    """8192 images over all processes, whatever the process count: 8 x 128 -> 8 batches each, 1 x 16 -> 512;
    3 x 100 does not divide: int(27.3) = 27 batches (8100 images), as in pycls."""
    assert pycls_precise_bn_iters(8192, batch_size, num_processes) == expected  # the formula as written above
    cfg = load_config(CONFIGS / "regnetx_400mf.yaml", [f"batch_size={batch_size}"])
    r = resolve_recipe(cfg, num_processes=num_processes, dataset_size=IMAGENET_TRAIN_IMAGES)
    assert r.precise_bn_batches == expected
    images = expected * batch_size * num_processes
    assert f"precise BN    {images} images = {expected} batches per process" in describe(r)


def test_precise_bn_with_fewer_images_than_one_batch_per_process_is_refused() -> None:
    """pycls would average over int(100 / 128 / 8) = 0 batches; we refuse it and say what to set."""
    with pytest.raises(ConfigError, match=r"precise_bn_samples=100 is fewer than one batch on every process "
                                          r"\(batch_size=128 x 8 processes = 1024 images\): raise it to at least 1024"):
        resolve_recipe(TrainConfig(precise_bn_samples=100), num_processes=8, dataset_size=IMAGENET_TRAIN_IMAGES)
    off = resolve_recipe(TrainConfig(precise_bn_samples=0), num_processes=8, dataset_size=IMAGENET_TRAIN_IMAGES)
    assert off.precise_bn_batches == 0 and "precise BN    off" in describe(off)


@pytest.mark.parametrize("name", sorted(PYCLS_8GPU))
def test_config_header_states_the_process_count_batch_and_lr(name: str) -> None:
    """The comment a user reads first: 'Total batch T = 8 processes x batch_size B; lr = ... = L'."""
    text = (CONFIGS / f"{name}.yaml").read_text()
    m = re.search(r"Total batch (\d+) = (\d+) processes x batch_size (\d+); lr = 0\.1 x \1 / 128 = ([\d.]+)\.", text)
    assert m, f"{name}.yaml: header line with the total batch is missing"
    total, gpus, per_gpu, lr = int(m[1]), int(m[2]), int(m[3]), float(m[4])
    assert (total, gpus, per_gpu, lr) == (PYCLS_8GPU[name][0], 8, PYCLS_8GPU[name][0] // 8, PYCLS_8GPU[name][1])


def test_mmcls_literal_table_is_the_readme() -> None:
    """The literal MMCLS table above is exactly the README's config links."""
    links = re.findall(r"configs/regnet/(regnet[xy]-[\d.]+[mg]f)_(\d+)xb(\d+)_in1k", MMCLS_README.read_text())
    readme = {m.replace("-", "_").replace(".", "_"): (int(g), int(b)) for m, g, b in links}
    assert readme == {k: (g, b) for k, (g, b, _) in MMCLS.items()}


@pytest.mark.parametrize("name", sorted(MMCLS))
def test_config_agrees_with_mmclassification(name: str) -> None:
    gpus, per_gpu, lr = MMCLS[name]
    cfg = load_config(CONFIGS / f"{name}.yaml")
    assert cfg.batch_size == per_gpu
    r = resolve_recipe(cfg, num_processes=gpus, dataset_size=IMAGENET_TRAIN_IMAGES)
    assert (r.total_batch, r.lr) == (gpus * per_gpu, pytest.approx(lr, rel=1e-12))


def _only(transform: v2.Compose, kind: type) -> object:
    found = [t for t in transform.transforms if isinstance(t, kind)]
    assert len(found) == 1, f"expected one {kind.__name__} in {transform}"
    return found[0]


def test_evaluation_resizes_to_256_and_crops_224() -> None:
    t = data.eval_transform()
    assert list(_only(t, v2.Resize).size) == [256]  # short side, as pycls's scale(256)
    assert list(_only(t, v2.CenterCrop).size) == [224, 224]
    norm = _only(t, v2.Normalize)
    assert tuple(norm.mean) == MEAN and tuple(norm.std) == SD


def test_lighting_and_normalisation_constants() -> None:
    assert data.IMAGENET_PCA_EIGVAL == EIGVAL
    assert data.IMAGENET_PCA_EIGVEC == EIGVEC
    assert (data.IMAGENET_MEAN, data.IMAGENET_STD) == (MEAN, SD)
    lighting = _only(data.train_transform(), data.PCALighting)
    assert lighting.alphastd == 0.1
    assert torch.equal(lighting.eigval, torch.tensor(EIGVAL))
    assert torch.equal(lighting.eigvec, torch.tensor(EIGVEC))
    norm = _only(data.train_transform(), v2.Normalize)
    assert tuple(norm.mean) == MEAN and tuple(norm.std) == SD


def test_precise_bn_stops_after_one_pass_over_a_small_training_set() -> None:
    """pycls caps its batches at len(loader): 5000 images in batches of 32 on one process give
    min(int(8192 / 32 / 1), 5000 // 32) = min(256, 156) = 156 batches."""
    cfg = load_config(CONFIGS / "regnetx_200mf.yaml", ["batch_size=32"])
    r = resolve_recipe(cfg, num_processes=1, dataset_size=5000)
    assert r.precise_bn_batches == min(pycls_precise_bn_iters(8192, 32, 1), 5000 // 32) == 156
    assert "precise BN    4992 images = 156 batches per process x 32 x 1 process(es)" in describe(r)


@pytest.mark.parametrize("name", sorted(PYCLS_8GPU))
def test_config_header_names_the_schedule_the_file_sets(name: str) -> None:
    """The header says which learning-rate schedule the file sets: mmclassification's for the seed
    table's models (the run the seed table reports), the paper's code's for the others."""
    text = (CONFIGS / f"{name}.yaml").read_text()
    header = " ".join(line.lstrip("# ") for line in text.splitlines() if line.startswith("#"))
    schedule = load_config(CONFIGS / f"{name}.yaml").schedule
    assert schedule == ("mmcls" if name in MMCLS else "pycls")
    assert f"(schedule: {schedule}," in header
    other = {"mmcls": "pycls", "pycls": "mmcls"}[schedule]
    assert f"schedule: {other}" not in header
