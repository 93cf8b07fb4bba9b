"""The weights registry against its sources: the installed torchvision's enums, the seed's
mmcls README (read here with its own small parser), pycls's MODEL_ZOO data and URL pattern."""

from __future__ import annotations

import csv
import functools
import re
from importlib import resources

import pytest
import torch
import torchvision
from torchvision.models import get_model_weights

from regnet_tutorial import create_model, get_card, list_models
from regnet_tutorial.weights import registry
from regnet_tutorial.weights.registry import UnknownWeightsError, get_weights, list_weights, parse_weights_name
from regnet_tutorial.weights.transforms import MMCLS_EVAL, PYCLS_EVAL


def _shipped(name: str) -> str:
    return resources.files("regnet_tutorial.weights").joinpath("published_data", name).read_text(encoding="utf-8")


def test_every_entry_names_a_model_the_package_builds() -> None:
    entries = list_weights()
    torchvision_count = sum(len(get_model_weights(b)) for b in registry.torchvision_builders())
    assert len(entries) == 16 + 24 + torchvision_count + len(list_weights("timm"))
    assert len({e.name for e in entries}) == len(entries), "weights names must be unique"
    known = set(list_models())
    for model in sorted({e.model for e in entries}):
        assert model in known
        get_card(model).stages()  # the design-space point generates (building it is checked below)


def test_torchvision_entries_are_the_installed_enums() -> None:
    entries = {e.source_model: e for e in list_weights("torchvision")}
    seen = set()
    for builder in (b for b in torchvision.models.list_models() if b.startswith("regnet_")):
        for weights in get_model_weights(builder):
            entry = entries[f"{type(weights).__name__}.{weights.name}"]
            seen.add(entry.source_model)
            preset = weights.transforms()
            assert entry.url == weights.url
            assert entry.sha256_prefix == re.search(r"-([0-9a-f]+)\.pth$", weights.url)[1]
            metrics = weights.meta["_metrics"]["ImageNet-1K"]
            assert (entry.top1, entry.top5) == (metrics["acc@1"], metrics["acc@5"])
            t = entry.transform
            assert (t.resize, t.crop) == (preset.resize_size[0], preset.crop_size[0])
            assert t.interpolation == preset.interpolation.value and t.backend == "pillow"
            assert (list(t.mean), list(t.std)) == (list(preset.mean), list(preset.std))
            assert t.channel_order == "RGB"
            assert get_card(entry.model).torchvision == builder and entry.model.endswith("_tv")
            # The architecture is torchvision's: same parameter count as the enum states.
            assert _parameter_count(entry.model) == weights.meta["num_params"]
    assert seen == set(entries), "every torchvision entry comes from an installed enum"
    v1 = get_weights("regnetx_400mf_tv", "torchvision.imagenet1k_v1").transform
    v2 = get_weights("regnetx_400mf_tv", "torchvision.imagenet1k_v2").transform
    assert (v1.resize, v2.resize) == (256, 232)


@functools.cache
def _parameter_count(model: str) -> int:
    with torch.device("meta"):
        return sum(p.numel() for p in create_model(model).parameters())


def _readme_rows() -> list[tuple[str, float, float, str, str | None]]:
    """(model, top-1, top-5, checkpoint URL, log URL) from the README's table rows."""
    rows = []
    for line in _shipped("mmcls_regnet_README.md").splitlines():
        if not re.match(r"\|\s*RegNet", line):
            continue
        cells = [c.strip() for c in re.split(r"(?<!\\)\|", line)[1:-1]]
        model = re.search(r"\((https://\S+?\.pth)\)", cells[6])[1]
        log = re.search(r"\((https://\S+?\.log\.json)\)", cells[6])
        rows.append((cells[0], float(cells[3]), float(cells[4]), model, log[1] if log else None))
    return rows


def test_mmcls_entries_are_the_readme_table() -> None:
    rows = _readme_rows()
    entries = list_weights("mmcls")
    assert len(rows) == len(entries) == 16
    for (name, top1, top5, url, log), entry in zip(rows, entries, strict=True):
        converted = name.endswith("\\*")
        assert entry.model == name.removesuffix("\\*").lower().replace("-", "_").replace(".", "_")
        assert entry.tag == ("from_pycls" if converted else "in1k")
        assert (entry.top1, entry.top5, entry.url, entry.log_url) == (top1, top5, url, log)
        assert entry.sha256_prefix == url.rsplit("-", 1)[1].removesuffix(".pth")
        assert entry.transform is MMCLS_EVAL


def test_pycls_entries_are_the_shipped_model_zoo_data() -> None:
    lines = _shipped("pycls_weights.csv").splitlines()
    assert "facebookresearch/pycls@5719de641657c251f807c20a1fcf8ef6f4b60144" in lines[0]
    records = list(csv.DictReader(line for line in lines if not line.startswith("#")))
    entries = list_weights("pycls")
    assert len(records) == len(entries) == 24
    for record, entry in zip(records, entries, strict=True):
        # pycls/models/model_zoo.py: _URL_WEIGHTS + "dds_baselines/<model id>/<model>_dds_8gpu.pyth"
        assert entry.url == (f"https://dl.fbaipublicfiles.com/pycls/dds_baselines/"
                             f"{record['model_id']}/{record['model']}_dds_8gpu.pyth")
        assert entry.top1 == pytest.approx(100 - float(record["top1_error"]))
        assert entry.top5 is None and entry.sha256_prefix is None
        assert entry.model == get_card(record["model"]).name and entry.transform is PYCLS_EVAL
    # The older table shipped for the zoo agrees to within its printed 0.1.
    older = {r["model"]: float(r["top1_error"]) for r in csv.DictReader(
        line for line in _shipped("pycls_model_zoo.csv").splitlines() if not line.startswith("#"))}
    differ = [r["model"] for r in records if older[r["model"]] != float(r["top1_error"])]
    assert all(abs(older[m] - float(r["top1_error"])) <= 0.1 + 1e-9 for r in records for m in [r["model"]])
    assert differ == ["RegNetX-400MF", "RegNetY-200MF", "RegNetY-1.6GF", "RegNetY-3.2GF", "RegNetY-32GF"]


def test_names_and_defaults() -> None:
    assert get_weights("regnetx_400mf", "mmcls").name == "mmcls.in1k:regnetx_400mf"
    assert get_weights("RegNetX-400MF", "mmcls.from_pycls").url.endswith("/convert/RegNetX-400MF-0db9f35c.pth")
    default = get_model_weights("regnet_y_400mf").DEFAULT.name.lower()
    assert get_weights("regnety_400mf_tv", "torchvision").tag == default
    assert parse_weights_name("pycls:regnety_200mf").source_model == "RegNetY-200MF"


@pytest.mark.parametrize(("model", "weights", "message"), [
    ("regnetx_200mf", "mmcls", r"Published weights for regnetx_200mf: pycls.in1k:regnetx_200mf"),
    ("regnetx_400mf", "torchvision", r"create_model\('regnetx_400mf_tv', weights='torchvision'\)"),
    ("regnetx_400mf", "timmm", r"unknown source 'timmm'"),
    ("regnetx_400mf", "mmcls.v9", r"No 'mmcls.v9' weights for regnetx_400mf"),
    ("regnetz_1gf", "mmcls", r"Unknown model"),
])
def test_unknown_weights_say_what_exists(model: str, weights: str, message: str) -> None:
    with pytest.raises(UnknownWeightsError, match=message):
        get_weights(model, weights)


def test_a_weights_name_needs_source_and_model() -> None:
    with pytest.raises(UnknownWeightsError, match="expected SOURCE"):
        parse_weights_name("regnetx_400mf")


def test_timm_entries_are_its_pretrained_cfgs_and_its_architectures() -> None:
    import timm
    from timm.models import get_pretrained_cfg

    from regnet_tutorial.weights.convert import convert_state_dict

    entries = list_weights("timm")
    tv_urls = {e.url: e.model for e in list_weights("torchvision")}
    assert {e.source_model for e in entries} == {
        n for n in timm.list_pretrained("regnet[xy]_*")
        if get_pretrained_cfg(n).url and get_pretrained_cfg(n).num_classes == 1000
        and (get_pretrained_cfg(n).url in tv_urls or get_pretrained_cfg(n).url.endswith(".pth"))
    }
    for entry in entries:
        cfg = get_pretrained_cfg(entry.source_model)
        assert entry.url == cfg.url and entry.top1 is None
        if entry.layout == "torchvision":
            assert entry.model == tv_urls[entry.url]  # the same file as a torchvision entry, same model
        else:
            # timm's own file: our model has exactly the shapes of timm's model, renamed.
            with torch.device("meta"):
                theirs = timm.create_model(entry.source_model.split(".")[0], pretrained=False).state_dict()
                ours = create_model(entry.model).state_dict()
            converted = convert_state_dict(theirs, "timm")
            assert {k: v.shape for k, v in converted.items()} == {k: v.shape for k, v in ours.items()}
