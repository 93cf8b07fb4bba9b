"""Re-measure published accuracies: each checkpoint on ImageNet val, under its own source's transform.

    python -m regnet_tutorial.weights reproduce --data /data/imagenet --source mmcls
    accelerate launch -m regnet_tutorial.weights reproduce --data /data/imagenet --source pycls,torchvision

For every listed checkpoint (:mod:`regnet_tutorial.weights.registry`) the file is fetched and
checked (:mod:`~regnet_tutorial.weights.download`), converted, loaded strictly, and evaluated
with the package's evaluation loop (:func:`regnet_tutorial.train.evaluation.evaluate`) on images
prepared the way its source prepared them (:mod:`~regnet_tutorial.weights.transforms`). The
result is a table, CSV and Markdown, of published and measured top-1/top-5 and their
difference Δ = measured − published, flagged where |Δ| exceeds ``--tolerance`` percentage
points (default :data:`DEFAULT_TOLERANCE`: JPEG decoders and resize code differ slightly
between the original runs and this one, and the printed numbers are rounded).

ImageNet val is read either as class folders (``DATA/<wnid>/*.JPEG`` or ``DATA/val/<wnid>/``),
or from the official archives through ``torchvision.datasets.ImageNet`` (``DATA`` holding
``ILSVRC2012_devkit_t12.tar.gz`` and ``ILSVRC2012_img_val.tar``; the first run sorts the images
into ``DATA/val/<wnid>/``). Labels are the sorted folder names' indices, as in pycls, mmcls and
torchvision.

Rows are written as they finish, atomically, so a run that is stopped (even by SIGKILL) keeps
them; running the same command again evaluates only the missing rows.
"""

from __future__ import annotations

import argparse
import csv
import io
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from ..errors import RegNetTutorialError
from .registry import SOURCES, PublishedWeights, UnknownWeightsError, list_weights, parse_weights_name

DEFAULT_TOLERANCE = 0.3
"""Percentage points of top-1/top-5 a measurement may differ from the published number unflagged."""

DEVKIT = "ILSVRC2012_devkit_t12.tar.gz"
VAL_TAR = "ILSVRC2012_img_val.tar"

COLUMNS = (
    "weights", "model", "source", "source_model", "published_top1", "measured_top1", "delta_top1",
    "published_top5", "measured_top5", "delta_top5", "flag", "images", "classes", "transform",
)
_MARKDOWN = (
    ("weights", "weights"), ("published_top1", "published top-1"), ("measured_top1", "measured top-1"),
    ("delta_top1", "Δ top-1"), ("published_top5", "published top-5"), ("measured_top5", "measured top-5"),
    ("delta_top5", "Δ top-5"), ("flag", "flag"),
)


class ReproduceError(RegNetTutorialError, ValueError):
    """Bad input to the reproduce command: the message names the problem and the fix."""


def _data_error(message: str) -> Exception:
    from ..train.loaders import DataError

    return DataError(message)


def imagenet_val(root: str | os.PathLike, transform: object) -> object:
    """ImageNet val under ``root`` as a labelled dataset whose images go through ``transform``."""
    from torchvision.datasets import ImageFolder, ImageNet

    from ..train.loaders import load_rgb_image

    root = Path(root)
    expected = (f"class folders {root}/<wnid>/*.JPEG or {root}/val/<wnid>/*.JPEG, or the official archives "
                f"{root}/{DEVKIT} and {root}/{VAL_TAR}")
    if not root.is_dir():
        raise _data_error(f"--data {root}: no such folder. Expected {expected}.")
    if (root / DEVKIT).is_file() and ((root / VAL_TAR).is_file() or (root / "val").is_dir()):
        try:
            return ImageNet(str(root), split="val", transform=transform, loader=load_rgb_image)
        except ImportError as err:  # torchvision reads the devkit's meta.mat with scipy
            raise _data_error(f"--data {root}: reading {DEVKIT} needs {err.name or 'scipy'} (pip install scipy), "
                              "or sort the val images into class folders yourself.") from None
        except RuntimeError as err:  # torchvision checks the archives' MD5
            first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
            raise _data_error(f"--data {root}: {first} Expected {DEVKIT} and {VAL_TAR} exactly as "
                              "image-net.org distributes them.") from None
    folder = root / "val" if (root / "val").is_dir() else root
    classes = sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))
    loose = [p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in (".jpeg", ".jpg", ".png")]
    if not classes:
        if loose:
            raise _data_error(
                f"--data {folder} holds {len(loose)} images but no class folders: the val images must be sorted "
                f"into one folder per class. Put {DEVKIT} and {VAL_TAR} in {root} to have torchvision sort them."
            )
        raise _data_error(f"--data {root}: found neither class folders nor the archives. Expected {expected}.")
    empty = [c.name for c in classes if not any(c.iterdir())]
    if empty:
        raise _data_error(f"--data {folder}: class folders {', '.join(empty[:5])} are empty. Expected {expected}.")
    return ImageFolder(str(folder), transform=transform, loader=load_rgb_image)


def select_weights(sources: Sequence[str], models: Sequence[str], names: Sequence[str]) -> list[PublishedWeights]:
    """The registry entries to evaluate: ``names`` if given, else those of ``sources`` (optionally only ``models``)."""
    if names:
        return [parse_weights_name(name) for name in names]
    bad = [s for s in sources if s not in SOURCES]
    if bad:
        raise ReproduceError(f"--source {','.join(bad)}: unknown; use one or more of {', '.join(SOURCES)}.")
    entries = [e for s in sources for e in list_weights(s)]
    if models:
        entries = [e for e in entries if e.model in set(models)]
        if not entries:
            raise ReproduceError(f"--models {','.join(models)}: none has weights from {', '.join(sources)}.")
    return entries


def read_rows(path: Path) -> dict[str, dict[str, str]]:
    """Finished rows of an earlier run, keyed by weights name (empty if there is none)."""
    if not path.is_file():
        return {}
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        if tuple(reader.fieldnames or ()) != COLUMNS:
            raise ReproduceError(
                f"{path} has columns {reader.fieldnames}, not this command's: move it away or pick another --out."
            )
        return {row["weights"]: row for row in reader}


def _number(value: float | None) -> str:
    return "" if value is None else f"{value:.2f}"


def result_row(entry: PublishedWeights, metrics: dict[str, float], classes: int, tolerance: float) -> dict[str, str]:
    """One table row: published and measured accuracy, Δ, and the flag."""
    row = {"weights": entry.name, "model": entry.model, "source": entry.source, "source_model": entry.source_model,
           "images": str(int(metrics["count"])), "classes": str(classes), "transform": entry.transform.describe()}
    flags = []
    for k in ("top1", "top5"):
        published, measured = getattr(entry, k), metrics[k]
        delta = None if published is None else measured - published
        row.update({f"published_{k}": _number(published), f"measured_{k}": _number(measured),
                    f"delta_{k}": "" if delta is None else f"{delta:+.2f}"})
        if delta is not None and abs(delta) > tolerance:
            flags.append(f"|Δ top-{k[3:]}| > {tolerance:g}")
    if classes != entry.num_classes:
        flags.append(f"{classes} classes, not ImageNet's {entry.num_classes}")
    row["flag"] = "; ".join(flags)
    return row


def format_csv(rows: Sequence[dict[str, str]]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()


def format_markdown(rows: Sequence[dict[str, str]], tolerance: float) -> str:
    """The table as Markdown, with a note on the tolerance and the transforms used."""
    lines = ["| " + " | ".join(title for _, title in _MARKDOWN) + " |",
             "|" + "|".join(":--" if key == "weights" else "--:" for key, _ in _MARKDOWN) + "|"]
    lines += ["| " + " | ".join((row[key] or "-").replace("|", "\\|") for key, _ in _MARKDOWN) + " |"
              for row in rows]
    transforms = sorted({row["transform"] for row in rows})
    lines += ["", f"Δ = measured − published (percentage points); flagged where |Δ| > {tolerance:g}.",
              "Transforms: " + " / ".join(transforms) + "."]
    return "\n".join(lines) + "\n"


def add_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """The reproduce command's flags (``--kebab-case``; the ``--snake_case`` spellings work too)."""
    from ..util.cli import int_at_least

    parser.add_argument("--data", required=True, help=f"ImageNet val: class folders, or a folder with {DEVKIT} "
                                                      f"and {VAL_TAR}")
    parser.add_argument("--source", default="mmcls", help=f"comma-separated, from {', '.join(SOURCES)} (default mmcls)")
    parser.add_argument("--models", default="", help="comma-separated model names (default: all of the sources')")
    parser.add_argument("--weights", action="append", default=[],
                        help="one weights name SOURCE[.TAG]:MODEL instead of --source (repeatable)")
    parser.add_argument("--out", default="reproduce", help="folder for reproduce.csv and reproduce.md "
                                                           "(default ./reproduce)")
    parser.add_argument("--tolerance", type=float, default=DEFAULT_TOLERANCE,
                        help=f"flag |Δ| above this many percentage points (default {DEFAULT_TOLERANCE})")
    parser.add_argument("--batch-size", type=int_at_least(1), default=100, help="images per process and step")
    parser.add_argument("--num-workers", type=int_at_least(0), default=4)
    return parser


def build_parser() -> argparse.ArgumentParser:
    """The stand-alone parser (``python -m regnet_tutorial.weights.reproduce``)."""
    from ..util.cli import ArgumentParser

    return add_arguments(ArgumentParser(prog="python -m regnet_tutorial.weights reproduce", description=DESCRIPTION))


DESCRIPTION = ("Evaluate published RegNet checkpoints on ImageNet val, each with its source's transform, "
               "and write a published-vs-measured table (CSV and Markdown).")


def reproduce(argv: Sequence[str] | None = None) -> list[dict[str, str]]:
    """Run the command; returns all rows of the table (earlier ones included)."""
    return run_reproduce(build_parser().parse_args(argv))


def run_reproduce(args: argparse.Namespace) -> list[dict[str, str]]:
    """The command on parsed arguments (the ``reproduce`` subcommand calls this)."""
    import torch
    from accelerate import Accelerator

    from ..models import create_model
    from ..train.evaluation import evaluate
    from ..train.loaders import build_dataloader
    from ..util.atomic import write_text_atomic
    from .convert import load_state_dict_strict
    from .download import published_state_dict

    try:
        entries = select_weights([s.strip() for s in args.source.split(",") if s.strip()],
                                 [m.strip() for m in args.models.split(",") if m.strip()], args.weights)
    except UnknownWeightsError as err:
        raise ReproduceError(str(err)) from None
    out = Path(args.out)
    csv_path, md_path = out / "reproduce.csv", out / "reproduce.md"
    done = read_rows(csv_path)
    accelerator = Accelerator()
    say = accelerator.print
    show_progress = accelerator.is_main_process and sys.stderr.isatty()  # no bars in logs and notebooks
    if done:
        todo = sum(e.name not in done for e in entries)
        say(f"{csv_path}: keeping {len(done)} finished row(s); evaluating the other {todo}.")
    if accelerator.is_main_process and out.is_dir():  # a run killed mid-write leaves its temporary file
        for stale in [*out.glob(f".{csv_path.name}.*.tmp"), *out.glob(f".{md_path.name}.*.tmp")]:
            stale.unlink(missing_ok=True)
    rows = dict(done)
    for entry in entries:
        if entry.name in done:
            continue
        dataset = imagenet_val(args.data, entry.transform.build())
        classes = len(dataset.classes)  # type: ignore[attr-defined]
        if classes > entry.num_classes:
            raise _data_error(f"--data {args.data} has {classes} classes, more than {entry.name}'s "
                              f"{entry.num_classes}: is it ImageNet val?")
        with accelerator.main_process_first():  # one download; the other processes read the cache
            state_dict = published_state_dict(entry, progress=show_progress)
        model = load_state_dict_strict(create_model(entry.model, entry.num_classes), state_dict, entry.model)
        loader = build_dataloader(dataset, args.batch_size, train=False, num_workers=args.num_workers)
        model, loader = accelerator.prepare(model, loader)
        start = time.monotonic()
        metrics = evaluate(model, loader, accelerator, entry.num_classes, show_progress=show_progress)
        row = result_row(entry, metrics, classes, args.tolerance)
        rows[entry.name] = row
        say(f"{entry.name}: top-1 {row['measured_top1']} (published {row['published_top1'] or '-'}, "
            f"Δ {row['delta_top1'] or '-'}) on {row['images']} images, {time.monotonic() - start:.0f} s"
            + (f"  [{row['flag']}]" if row["flag"] else ""))
        if accelerator.is_main_process:
            ordered = [rows[e.name] for e in entries if e.name in rows]
            ordered += [r for name, r in rows.items() if name not in {e.name for e in entries}]
            out.mkdir(parents=True, exist_ok=True)
            write_text_atomic(csv_path, format_csv(ordered))
            write_text_atomic(md_path, format_markdown(ordered, args.tolerance))
        accelerator.free_memory()
        del model, loader, state_dict
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
    say(f"wrote {csv_path} and {md_path}")
    return [rows[e.name] for e in entries]


def main(argv: Sequence[str] | None = None) -> None:
    """The command line; bad input is one ``error:`` line (exit status 2)."""
    from ..util.cli import run_main

    run_main(reproduce, argv)


if __name__ == "__main__":
    main(sys.argv[1:])
