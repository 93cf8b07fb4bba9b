"""The model zoo: every registered RegNet with its design-space point, our complexity count
and the published numbers for it, each with its source.

Run ``python -m regnet_tutorial.weights zoo [--format markdown|csv] [--resolution N] [--columns summary|all]``
to print it. The markdown view shows a readable summary by default, with each published
number's source listed once below the table; ``--columns all`` (the csv default) has every column.
Our columns (``params_m``, ``flops_g``, ``acts_m``) are computed from the spec at the
chosen resolution; published columns are quoted as published (pycls and mmcls at 224,
torchvision at ``tv_resolution``) and never feed our computation. Flops are billions of
multiply-adds (``*_flops_g``) and accuracies top-1/top-5 in percent in every column; pycls
publishes top-1 *error*, so ``pycls_top1`` is 100 minus it.

Flops and activations depend on the input size, so the printed headers carry it
(``flops_g@32px`` beside ``pycls_flops_g@224px``) and the markdown view opens with a line
saying at which resolution each group of numbers was computed.

Published numbers are attached to the architecture they were measured on: pycls and mmcls
build the paper's rounding, so theirs go to the pycls-rounding models; torchvision's go to
the ``*_tv`` models.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence

from ..complexity import model_complexity
from ..models import MODEL_CARDS, ModelCard
from .published import (
    MmclsRow,
    PyclsRow,
    TorchvisionWeights,
    mmcls_table,
    pycls_model_zoo,
    torchvision_reference_weights,
)

COLUMNS: tuple[str, ...] = (
    "name", "display_name", "family", "rounding",
    "d", "w0", "wa", "wm", "g", "b", "se", "depths", "widths",
    "resolution", "params_m", "flops_g", "acts_m",
    "pycls_params_m", "pycls_flops_g", "pycls_acts_m", "pycls_top1", "pycls_source",
    "mmcls_params_m", "mmcls_flops_g", "mmcls_top1", "mmcls_top5", "mmcls_config",
    "mmcls_checkpoint", "mmcls_pycls_top1", "mmcls_pycls_top5", "mmcls_pycls_checkpoint",
    "mmcls_source",
    "tv_weights", "tv_params_m", "tv_flops_g", "tv_resolution", "tv_top1", "tv_top5", "tv_source",
)
"""The table's columns. ``pycls_*`` are the paper's own numbers (pycls model zoo; ``pycls_top1``
is 100 minus its published top-1 error); ``mmcls_pycls_*`` quote mmcls's re-evaluation of the
paper's weights."""

PUBLISHED_RESOLUTION = 224
"""The input side at which pycls and mmcls publish flops and activations."""

_OURS_AT_RESOLUTION = ("flops_g", "acts_m")
_PUBLISHED_AT_224 = ("pycls_flops_g", "pycls_acts_m", "mmcls_flops_g")

SUMMARY_COLUMNS: tuple[str, ...] = (
    "name", "rounding", "d", "w0", "wa", "wm", "g", "depths", "widths",
    "params_m", "flops_g", "acts_m",
    "pycls_params_m", "pycls_flops_g", "pycls_top1", "mmcls_top1",
    "tv_params_m", "tv_flops_g", "tv_top1", "sources",
)
"""The markdown default: design, our counts, the headline published numbers and, in
``sources``, the numbers of the footnotes that give where each published number comes from."""

_SOURCE_COLUMNS = ("pycls_source", "mmcls_source", "tv_source")

FORMATS = ("markdown", "csv")
COLUMN_SETS = ("summary", "all")

# Decimals shown in the markdown table; csv keeps full precision.
_MARKDOWN_DECIMALS = {"params_m": 2, "flops_g": 3, "acts_m": 2, "tv_params_m": 2}


def _design_columns(card: ModelCard) -> dict[str, object]:
    p, spec = card.params, card.stages()
    return {
        "name": card.name, "display_name": card.display_name, "family": card.family,
        "rounding": card.rounding, "d": p.depth, "w0": p.w0, "wa": p.wa, "wm": p.wm,
        "g": p.group_width, "b": p.bottleneck_multiplier, "se": p.se_ratio,
        "depths": spec.depths, "widths": spec.widths,
    }


def _complexity_columns(card: ModelCard, resolution: int) -> dict[str, object]:
    cx = model_complexity(card.stages(), resolution)
    return {
        "resolution": resolution, "params_m": cx.params / 1e6, "flops_g": cx.flops / 1e9,
        "acts_m": cx.acts / 1e6,
    }


def _pycls_columns(row: PyclsRow) -> dict[str, object]:
    return {
        "pycls_params_m": row.params_m, "pycls_flops_g": row.flops_b, "pycls_acts_m": row.acts_m,
        # pycls prints the error with one decimal; the accuracy keeps that precision.
        "pycls_top1": round(100.0 - row.top1_error, 1), "pycls_source": row.source,
    }


def _mmcls_columns(trained: MmclsRow | None, converted: MmclsRow | None) -> dict[str, object]:
    row = trained or converted
    if row is None:
        return {}
    return {
        "mmcls_params_m": row.params_m, "mmcls_flops_g": row.flops_g,
        "mmcls_top1": trained.top1 if trained else None,
        "mmcls_top5": trained.top5 if trained else None,
        "mmcls_config": row.config_url,
        "mmcls_checkpoint": trained.checkpoint_url if trained else None,
        "mmcls_pycls_top1": converted.top1 if converted else None,
        "mmcls_pycls_top5": converted.top5 if converted else None,
        "mmcls_pycls_checkpoint": converted.checkpoint_url if converted else None,
        "mmcls_source": row.source,
    }


def _torchvision_columns(tv: TorchvisionWeights) -> dict[str, object]:
    return {
        "tv_weights": tv.weights, "tv_params_m": tv.num_params / 1e6, "tv_flops_g": tv.gflops,
        "tv_resolution": tv.resolution, "tv_top1": tv.top1, "tv_top5": tv.top5,
        "tv_source": tv.source,
    }


def zoo_table(resolution: int = 224) -> list[dict[str, object]]:
    """One row per registered model, with every column of :data:`COLUMNS` (``None`` where unknown)."""
    pycls = {row.model_name: row for row in pycls_model_zoo()}
    mmcls: dict[str, dict[bool, MmclsRow]] = {}
    for entry in mmcls_table():
        mmcls.setdefault(entry.model_name, {})[entry.converted_from_pycls] = entry
    table = []
    for card in MODEL_CARDS.values():
        row: dict[str, object] = dict.fromkeys(COLUMNS)
        row.update(_design_columns(card))
        row.update(_complexity_columns(card, resolution))
        if card.rounding == "pycls" and card.name in pycls:
            row.update(_pycls_columns(pycls[card.name]))
        if card.rounding == "pycls" and card.name in mmcls:
            rows = mmcls[card.name]
            row.update(_mmcls_columns(rows.get(False), rows.get(True)))
        if card.rounding == "torchvision" and card.torchvision:
            row.update(_torchvision_columns(torchvision_reference_weights(card.torchvision)))
        table.append(row)
    return table


def _cell(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, tuple):
        return " ".join(str(v) for v in value)
    return str(value)


def header(column: str, table: list[dict[str, object]]) -> str:
    """The printed name of ``column``: resolution-dependent counts carry their input side,
    e.g. ``flops_g@32px`` (ours, at the table's resolution) or ``pycls_flops_g@224px``."""
    if column in _OURS_AT_RESOLUTION:
        sides = {row["resolution"] for row in table}
    elif column in _PUBLISHED_AT_224:
        sides = {PUBLISHED_RESOLUTION}
    elif column == "tv_flops_g":
        sides = {row["tv_resolution"] for row in table if row["tv_resolution"] is not None}
    else:
        return column
    return f"{column}@{sides.pop()}px" if len(sides) == 1 else column


def resolution_note(table: list[dict[str, object]]) -> str:
    """One line saying at which input side our and the published numbers were computed."""
    ours = {row["resolution"] for row in table}
    side = ours.pop() if len(ours) == 1 else "various"
    note = (f"Resolution: our flops_g and acts_m at {side} px input; published numbers "
            f"(pycls_*, mmcls_*, tv_*) at {PUBLISHED_RESOLUTION} px.")
    if side != PUBLISHED_RESOLUTION:
        note += f" Compare flops and activations only at --resolution {PUBLISHED_RESOLUTION}."
    return note


def format_csv(table: list[dict[str, object]]) -> str:
    """The table as CSV with a header row (full precision; tuples as space-separated numbers).

    Headers of resolution-dependent columns carry the input side (see :func:`header`).
    """
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow([header(c, table) for c in COLUMNS])
    for row in table:
        writer.writerow([_cell(row[c]) for c in COLUMNS])
    return out.getvalue()


def _markdown_cell(column: str, value: object) -> str:
    if value is None:
        return ""
    if column in _MARKDOWN_DECIMALS:
        return f"{value:.{_MARKDOWN_DECIMALS[column]}f}"
    text = _cell(value)
    if text.startswith("https://") and not any(ch.isspace() for ch in text):
        return f"[link]({text})"
    return text.replace("|", "\\|")


def format_markdown(table: list[dict[str, object]], columns: Sequence[str] = COLUMNS) -> str:
    """The table as a GitHub-flavoured markdown table with ``columns``.

    A line above the table gives the resolution of our and the published numbers
    (:func:`resolution_note`). A ``sources`` column holds footnote numbers; the footnotes, one
    per distinct source of a published number, follow the table.
    """
    footnotes: dict[str, int] = {}
    lines = [
        resolution_note(table),
        "",
        "| " + " | ".join(header(c, table) for c in columns) + " |",
        "|" + "|".join("---" for _ in columns) + "|",
    ]
    for row in table:
        refs = [footnotes.setdefault(str(row[c]), len(footnotes) + 1) for c in _SOURCE_COLUMNS if row[c]]
        cells = {**row, "sources": " ".join(f"[{n}]" for n in refs)}
        lines.append("| " + " | ".join(_markdown_cell(c, cells[c]) for c in columns) + " |")
    if "pycls_top1" in columns:
        lines += ["", "pycls_top1 is 100 minus the top-1 error that pycls publishes."]
    if "sources" in columns:
        lines += ["", "Sources of the published numbers:", ""]
        lines += [f"[{n}] {source}" for source, n in footnotes.items()]
    return "\n".join(lines) + "\n"
