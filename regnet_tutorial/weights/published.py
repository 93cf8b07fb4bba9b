"""Published numbers for RegNet models, as data that carries its source.

Three sources, all readable offline:

* **pycls** (the paper's code): the RegNetX/RegNetY tables of its ``MODEL_ZOO.md`` at the
  revision that printed the paper's numbers (pinned commit), shipped as
  ``regnet_tutorial/weights/published_data/pycls_model_zoo.csv`` with the values as printed
  (flops in billions of multiply-adds, params and acts in millions, top-1 error).
* **the paper's Table 4**: RegNetY against EfficientNet under the same recipe, with inference
  time and top-1 error, shipped as ``regnet_tutorial/weights/published_data/paper_table4.csv``.
* **mmclassification** (OpenMMLab): the results table of ``configs/regnet/README.md``,
  shipped verbatim as ``regnet_tutorial/weights/published_data/mmcls_regnet_README.md``. Params and flops
  are kept as the printed strings, so their precision is the printed number of decimals.
  Rows marked ``*`` are the paper's own (pycls) weights converted and re-evaluated.
  mmcls counts flops with mmcv's ``get_model_complexity_info`` on the feature extractor
  only (no classifier), and that counter also counts batch norm, ReLU and pooling; the
  paper does not (see :func:`mmcls_convention_flops` and :mod:`regnet_tutorial.complexity`).
* **torchvision**: the metadata of the installed weights enums (``num_params``, ``_ops``
  in multiply-adds at the weights' evaluation crop size despite the "GFLOPS" label,
  accuracy and training recipe).

These numbers describe other people's models and runs; nothing in the package uses them
as expected values for its own computation. The tests compare against them.
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from importlib import resources
from typing import Any

from ..errors import RegNetTutorialError
from ..models import MODEL_CARDS, get_card

MMCLS_README_URL = "https://github.com/open-mmlab/mmclassification/blob/master/configs/regnet/README.md"
MMCLS_README_FILE = "published_data/mmcls_regnet_README.md"
"""The shipped copy of the mmcls README, relative to the package."""

PYCLS_ZOO_FILE = "published_data/pycls_model_zoo.csv"
"""The shipped copy of pycls's model-zoo numbers; its first comment line names the source."""

PAPER_TABLE4_FILE = "published_data/paper_table4.csv"
"""The shipped copy of the paper's Table 4 (RegNetY against EfficientNet); its first comment
line names the source."""

TORCHVISION_DOCS_URL = "https://pytorch.org/vision/stable/models/regnet.html"

_MMCLS_HEADER = ("Model", "Params(M)", "Flops(G)", "Top-1 (%)", "Top-5 (%)", "Config", "Download")
_LINK = re.compile(r"\[(?P<text>[^\]]+)\]\((?P<url>[^)\s]+)\)")
_CELL_SEPARATOR = re.compile(r"(?<!\\)\|")  # "\|" inside a cell is an escaped bar


class PublishedTableError(RegNetTutorialError, ValueError):
    """A published table could not be read: the message names the file, line and problem."""


@dataclass(frozen=True)
class MmclsRow:
    """One row of the mmclassification RegNet results table.

    ``params_m`` and ``flops_g`` are the strings as printed (millions, billions).
    ``converted_from_pycls`` marks the ``*`` rows: the paper's weights, converted.
    """

    display_name: str
    params_m: str
    flops_g: str
    top1: float
    top5: float
    config_url: str
    checkpoint_url: str
    log_url: str | None
    converted_from_pycls: bool
    source: str

    @property
    def model_name(self) -> str:
        """Our registered name for this row's architecture, e.g. ``"regnetx_400mf"``."""
        return mmcls_model_name(self.display_name)


@dataclass(frozen=True)
class PublishedRow:
    """One model of a published complexity-and-accuracy table (pycls's model zoo, the paper's
    Table 4), numbers as printed (strings keep their precision).

    ``flops_b``: billions of multiply-adds at 224; ``params_m``, ``acts_m``: millions;
    ``top1_error``: ImageNet top-1 error in percent, averaged over 5 runs.
    """

    display_name: str
    flops_b: str
    params_m: str
    acts_m: str
    top1_error: float
    batch_size: int
    infer_ms: float
    train_hr: float
    source: str

    @classmethod
    def from_record(cls, record: dict[str, str], source: str, **extra: Any) -> PublishedRow:
        """The row of one CSV record (columns model, flops_b, ..., train_hr)."""
        return cls(
            display_name=record["model"], flops_b=record["flops_b"], params_m=record["params_m"],
            acts_m=record["acts_m"], top1_error=float(record["top1_error"]),
            batch_size=int(record["batch_size"]), infer_ms=float(record["infer_ms"]),
            train_hr=float(record["train_hr"]), source=source, **extra,
        )


@dataclass(frozen=True)
class PyclsRow(PublishedRow):
    """One model of the pycls model zoo."""

    @property
    def model_name(self) -> str:
        """Our registered name for this row's architecture, e.g. ``"regnety_800mf"``."""
        return get_card(self.display_name).name


@dataclass(frozen=True)
class TorchvisionWeights:
    """One torchvision weights entry for a RegNet builder, from its enum's ``meta``.

    ``gflops`` is ``meta["_ops"]``: billions of multiply-adds at ``resolution`` (the crop
    size of the weights' evaluation transforms).
    """

    builder: str
    weights: str
    num_params: int
    gflops: float
    resolution: int
    top1: float
    top5: float
    recipe: str
    checkpoint_url: str
    source: str

    @property
    def model_name(self) -> str:
        """Our registered name for this architecture, e.g. ``"regnetx_400mf_tv"``."""
        return torchvision_model_name(self.builder)


def printed_decimals(printed: str) -> int:
    """How many decimals a printed number shows (``"15.3"`` -> 1, ``"5"`` -> 0)."""
    return len(printed.split(".")[1]) if "." in printed else 0


def agrees_at_printed_precision(value: float, printed: str) -> bool:
    """Whether ``value`` rounded to the decimals of ``printed`` reads the same as ``printed``."""
    digits = printed_decimals(printed)
    return f"{value:.{digits}f}" == f"{float(printed):.{digits}f}"


def mmcls_model_name(display_name: str) -> str:
    """Our name for an mmcls model name: ``"RegNetX-400MF"`` or ``"RegNetX-400MF*"`` -> ``"regnetx_400mf"``.

    mmcls builds RegNets with the paper's rounding, so the row maps to the pycls-rounding model.
    """
    return get_card(display_name.rstrip("*").replace("\\", "").strip()).name


def _split_cells(line: str) -> list[str]:
    return [cell.strip() for cell in _CELL_SEPARATOR.split(line.strip())[1:-1]]


def _links(cell: str) -> dict[str, str]:
    return {m["text"]: m["url"] for m in _LINK.finditer(cell)}


def parse_mmcls_table(text: str, source: str = MMCLS_README_URL) -> list[MmclsRow]:
    """The rows of the results table in the text of an mmcls RegNet README."""
    lines = text.splitlines()
    header_at = next(
        (i for i, line in enumerate(lines) if line.startswith("|") and "Params(M)" in line), None
    )
    if header_at is None:
        raise PublishedTableError(
            f"{source}: no results table found (a markdown table whose header has 'Params(M)'). "
            "Is this the mmclassification configs/regnet/README.md?"
        )
    header = tuple(_split_cells(lines[header_at]))
    if header != _MMCLS_HEADER:
        raise PublishedTableError(
            f"{source}, line {header_at + 1}: table columns are {header}, expected {_MMCLS_HEADER}. "
            "The README format changed; update parse_mmcls_table."
        )
    rows = []
    for number, line in enumerate(lines[header_at + 2:], start=header_at + 3):
        if not line.startswith("|"):
            break
        cells = _split_cells(line)
        if len(cells) != len(_MMCLS_HEADER):
            raise PublishedTableError(
                f"{source}, line {number}: {len(cells)} cells, expected {len(_MMCLS_HEADER)}."
            )
        model, params_m, flops_g, top1, top5, config, download = cells
        config_links, download_links = _links(config), _links(download)
        if "config" not in config_links or "model" not in download_links:
            raise PublishedTableError(
                f"{source}, line {number}: expected a [config](...) link and a [model](...) link."
            )
        converted = model.endswith("\\*") or model.endswith("*")
        rows.append(MmclsRow(
            display_name=model.replace("\\*", "").rstrip("*").strip(),
            params_m=params_m, flops_g=flops_g, top1=float(top1), top5=float(top5),
            config_url=config_links["config"], checkpoint_url=download_links["model"],
            log_url=download_links.get("log"), converted_from_pycls=converted, source=source,
        ))
    return rows


def mmcls_table() -> list[MmclsRow]:
    """The mmclassification RegNet results table, read from the copy shipped with the package."""
    text = _read_shipped(MMCLS_README_FILE)
    source = f"{MMCLS_README_URL} (copy: regnet_tutorial/{MMCLS_README_FILE})"
    return parse_mmcls_table(text, source)


def mmcls_convention_flops(name: str, resolution: int = 224) -> int:
    """Flops of a registered model counted the way the mmclassification table counts them.

    mmclassification's ``tools/analysis_tools/get_flops.py`` replaces the classifier's
    forward with ``extract_feat`` (stem, stages, global pooling: no fully connected layer)
    and runs mmcv's flop counter, whose hooks are those of the ``ptflops`` package: conv
    multiply-adds (and bias adds) as the paper counts them, plus 2 operations per element
    through an affine batch norm, 1 per ReLU output element and 1 per pooled input element.
    We run ``ptflops`` on our network's feature extractor, built on the ``meta`` device
    (shapes only, nothing is computed).
    """
    import warnings

    import torch
    from torch import nn

    with warnings.catch_warnings():
        # ptflops imports tqdm.auto, which warns in a Jupyter kernel without ipywidgets.
        warnings.filterwarnings("ignore", message="IProgress not found")
        from ptflops import get_model_complexity_info

    from ..models import create_model

    with torch.device("meta"):
        model = create_model(name).eval()
    features = nn.Sequential(model.stem, model.stages, model.head.pool)
    macs, _ = get_model_complexity_info(
        features, (3, resolution, resolution), as_strings=False, print_per_layer_stat=False,
        backend="pytorch", backend_specific_config={"count_functional": False},
    )
    return int(macs)


def _read_shipped(relative_path: str) -> str:
    return resources.files(__package__).joinpath(*relative_path.split("/")).read_text(encoding="utf-8")


def _read_sourced_csv(relative_path: str) -> tuple[str, list[dict[str, str]]]:
    """``(source, records)`` of a shipped CSV whose first line is ``# Source: ...``."""
    lines = _read_shipped(relative_path).splitlines()
    comments = [line.lstrip("# ") for line in lines if line.startswith("#")]
    if not comments or not comments[0].startswith("Source:"):
        raise PublishedTableError(
            f"regnet_tutorial/{relative_path}: the first line must be '# Source: <where the numbers are from>'."
        )
    source = f"{comments[0].removeprefix('Source:').strip()} (copy: regnet_tutorial/{relative_path})"
    return source, list(csv.DictReader(line for line in lines if not line.startswith("#")))


def pycls_model_zoo() -> list[PyclsRow]:
    """The pycls model-zoo numbers for the 24 RegNetX/RegNetY models, from the shipped CSV."""
    source, records = _read_sourced_csv(PYCLS_ZOO_FILE)
    return [PyclsRow.from_record(record, source) for record in records]


@dataclass(frozen=True)
class Table4Row(PublishedRow):
    """One model of the paper's Table 4, and ``pair``: the RegNetY and the EfficientNet of similar
    flops that the table compares share it (1 to 6)."""

    pair: int


def paper_table4() -> list[Table4Row]:
    """The paper's Table 4, RegNetY against EfficientNet (six pairs), from the shipped CSV."""
    source, records = _read_sourced_csv(PAPER_TABLE4_FILE)
    return [Table4Row.from_record(r, source, pair=int(r["pair"])) for r in records]


def torchvision_builders() -> list[str]:
    """The torchvision RegNet builders we have a ``*_tv`` model for, e.g. ``"regnet_x_400mf"``."""
    return sorted({c.torchvision for c in MODEL_CARDS.values() if c.rounding == "torchvision"})


def torchvision_model_name(builder: str) -> str:
    """Our ``*_tv`` model with the same architecture as torchvision's ``builder``."""
    for card in MODEL_CARDS.values():
        if card.rounding == "torchvision" and card.torchvision == builder:
            return card.name
    raise KeyError(
        f"No registered model matches torchvision builder {builder!r}; "
        f"known builders: {torchvision_builders()}."
    )


def torchvision_weights(builder: str) -> list[TorchvisionWeights]:
    """Every weights entry torchvision publishes for ``builder``, read from the installed enum."""
    # Imported here: torchvision.models takes seconds to import and only this function needs it.
    import torchvision
    from torchvision.models import get_model_weights

    try:
        enum = get_model_weights(builder)
    except ValueError as err:
        raise KeyError(
            f"torchvision {torchvision.__version__} has no builder {builder!r}; "
            f"RegNet builders: {torchvision_builders()}."
        ) from err
    entries = []
    for weights in enum:
        meta = weights.meta
        metrics = meta["_metrics"]["ImageNet-1K"]
        entries.append(TorchvisionWeights(
            builder=builder, weights=f"{enum.__name__}.{weights.name}",
            num_params=meta["num_params"], gflops=meta["_ops"],
            resolution=weights.transforms().crop_size[0],
            top1=metrics["acc@1"], top5=metrics["acc@5"], recipe=meta["recipe"],
            checkpoint_url=weights.url,
            source=(
                f"torchvision {public_version(torchvision.__version__)}: torchvision.models.{enum.__name__}."
                f"{weights.name}.meta ({TORCHVISION_DOCS_URL})"
            ),
        ))
    return entries


def public_version(version: str) -> str:
    """A version without its local build tag (``"0.29.1+cu130"`` -> ``"0.29.1"``): the tag
    names the local build (CUDA or CPU wheel), not the published weights' metadata."""
    return version.split("+", 1)[0]


def torchvision_reference_weights(builder: str) -> TorchvisionWeights:
    """The torchvision weights the model zoo quotes for ``builder``.

    ``IMAGENET1K_V1`` where it exists (trained to reproduce the paper's results); otherwise
    the first entry evaluated at 224 (RegNetY-128GF: the SWAG linear-probe weights).
    """
    entries = torchvision_weights(builder)
    for entry in entries:
        if entry.weights.endswith(".IMAGENET1K_V1"):
            return entry
    return next((e for e in entries if e.resolution == 224), entries[0])
