"""Every published RegNet checkpoint by name: where it is, its checksum, its accuracy, its transform.

A weights entry is named ``SOURCE.TAG:MODEL``, e.g. ``mmcls.in1k:regnetx_400mf``:

* ``MODEL`` is the package model it loads into (:func:`regnet_tutorial.models.list_models`;
  torchvision's rounding gives the ``*_tv`` models);
* ``SOURCE`` is the library that published it: ``mmcls``, ``pycls``, ``torchvision``, ``timm``;
* ``TAG`` tells a source's checkpoints of one model apart: mmcls ``in1k`` (trained by mmcls)
  and ``from_pycls`` (the paper's weights, converted by mmcls: the ``*`` rows), pycls ``in1k``,
  torchvision the enum member in lower case (``imagenet1k_v1``, ``imagenet1k_v2``, ...), timm
  its pretrained tag (``ra3_in1k``, ``tv2_in1k``, ...).

``SOURCE`` alone picks the source's default: mmcls's own training, pycls's only entry,
torchvision's ``DEFAULT`` member.

Nothing is retyped. The mmcls entries are parsed from the seed's README
(:func:`regnet_tutorial.weights.published.mmcls_table`), the pycls entries from
``published_data/pycls_weights.csv`` (read from pycls's MODEL_ZOO.md at a pinned commit), the
torchvision entries from the installed torchvision's weights enums and the timm entries from
the installed timm's ``pretrained_cfg`` (those that give a download URL and 1000 classes, in a
layout we convert: timm's own ``.pth`` files or torchvision's, not SEER's VISSL ones), at run
time. timm's configs carry no accuracy, so its entries have none; many of them are
torchvision's files, evaluated with timm's transform (bicubic, ``crop_pct``).

Checksums: mmcls and torchvision put the first 8 hex digits of the file's SHA-256 in its name
(``...-89bfc226.pth``), which is what is checked after a download; pycls publishes none, so a
pycls download is checked only for its length. No full SHA-256 is published for any of them.
"""

from __future__ import annotations

import csv
import functools
import re
from dataclasses import dataclass
from importlib import resources
from urllib.parse import urlsplit

from ..errors import RegNetTutorialError
from ..models import MODEL_CARDS, get_card
from .published import (
    PublishedTableError,
    mmcls_table,
    public_version,
    torchvision_builders,
    torchvision_model_name,
)
from .transforms import MMCLS_EVAL, PYCLS_EVAL, EvalTransform, timm_eval, torchvision_eval

SOURCES = ("mmcls", "pycls", "torchvision", "timm")
"""The libraries whose RegNet checkpoints the registry lists (and their checkpoint layouts)."""

PYCLS_WEIGHTS_FILE = "published_data/pycls_weights.csv"

# torch.hub's rule: the hash prefix is the hex run after the last "-" before the extension.
HASH_IN_NAME = re.compile(r"-([a-f0-9]{6,64})\.")


class UnknownWeightsError(RegNetTutorialError, KeyError):
    """A weights name that is not in the registry; the message lists what there is."""

    def __str__(self) -> str:
        return str(self.args[0])


@dataclass(frozen=True)
class PublishedWeights:
    """One published checkpoint and everything needed to re-measure its accuracy.

    ``layout`` is the checkpoint layout of the file (:data:`regnet_tutorial.weights.convert.LAYOUTS`):
    the source's own, except for timm entries that point at torchvision's files.
    ``top1``/``top5`` are percent accuracies as published (``None`` where not published);
    ``accuracy_from`` says where they are printed. ``sha256_prefix`` is the checksum in the
    file name, ``sha256`` a full checksum where one is known. ``source_model`` is the source's
    own name for it (mmcls config, pycls model, torchvision enum member).
    """

    model: str
    source: str
    tag: str
    source_model: str
    url: str
    sha256_prefix: str | None
    sha256: str | None
    top1: float | None
    top5: float | None
    accuracy_from: str
    transform: EvalTransform
    num_classes: int = 1000
    log_url: str | None = None
    layout: str = ""

    def __post_init__(self) -> None:
        if not self.layout:
            object.__setattr__(self, "layout", self.source)

    @property
    def name(self) -> str:
        """``SOURCE.TAG:MODEL``, e.g. ``"mmcls.in1k:regnetx_400mf"``."""
        return f"{self.source}.{self.tag}:{self.model}"

    @property
    def filename(self) -> str:
        """The file name in the URL: the name the file is cached under."""
        return urlsplit(self.url).path.rsplit("/", 1)[-1]


def hash_prefix(url: str) -> str | None:
    """The SHA-256 prefix in a file name (torch.hub's convention), e.g. ``"89bfc226"``, or ``None``."""
    match = HASH_IN_NAME.search(urlsplit(url).path.rsplit("/", 1)[-1])
    return match[1] if match else None


def _mmcls_entries() -> list[PublishedWeights]:
    entries = []
    for row in mmcls_table():
        config = row.config_url.rstrip("/").rsplit("/", 1)[-1].removesuffix(".py")
        entries.append(PublishedWeights(
            model=row.model_name, source="mmcls", tag="from_pycls" if row.converted_from_pycls else "in1k",
            source_model=config, url=row.checkpoint_url, sha256_prefix=hash_prefix(row.checkpoint_url),
            sha256=None, top1=row.top1, top5=row.top5, accuracy_from=row.source, transform=MMCLS_EVAL,
            log_url=row.log_url,
        ))
    return entries


def _pycls_entries() -> list[PublishedWeights]:
    text = resources.files(__package__).joinpath(*PYCLS_WEIGHTS_FILE.split("/")).read_text(encoding="utf-8")
    lines = text.splitlines()
    if not lines or not lines[0].startswith("# Source:"):
        raise PublishedTableError(
            f"regnet_tutorial/weights/{PYCLS_WEIGHTS_FILE}: the first line must be '# Source: ...'."
        )
    source = f"{lines[0].removeprefix('# Source:').strip()} (copy: regnet_tutorial/weights/{PYCLS_WEIGHTS_FILE})"
    entries = []
    for record in csv.DictReader(line for line in lines if not line.startswith("#")):
        error = float(record["top1_error"])
        entries.append(PublishedWeights(
            model=get_card(record["model"]).name, source="pycls", tag="in1k", source_model=record["model"],
            url=record["url"], sha256_prefix=hash_prefix(record["url"]), sha256=None,
            top1=round(100.0 - error, 6), top5=None, accuracy_from=f"{source}: top-1 error {record['top1_error']}%",
            transform=PYCLS_EVAL,
        ))
    return entries


def _torchvision_entries() -> list[PublishedWeights]:
    # torchvision.models takes seconds to import: only when torchvision entries are asked for.
    import torchvision
    from torchvision.models import get_model_weights

    version = public_version(torchvision.__version__)
    entries = []
    for builder in torchvision_builders():
        enum = get_model_weights(builder)
        for weights in enum:
            metrics = weights.meta["_metrics"]["ImageNet-1K"]
            entries.append(PublishedWeights(
                model=torchvision_model_name(builder), source="torchvision", tag=weights.name.lower(),
                source_model=f"{enum.__name__}.{weights.name}", url=weights.url,
                sha256_prefix=hash_prefix(weights.url), sha256=None,
                top1=metrics["acc@1"], top5=metrics["acc@5"],
                accuracy_from=f"torchvision {version}: torchvision.models.{enum.__name__}.{weights.name}.meta",
                transform=torchvision_eval(weights),
                num_classes=len(weights.meta["categories"]),
            ))
    return entries


def _timm_entries() -> list[PublishedWeights]:
    import timm
    from timm.data import resolve_data_config
    from timm.models import get_pretrained_cfg

    torchvision_files = {e.url: e for e in source_entries("torchvision")}
    by_timm_name = {card.timm: card.name for card in MODEL_CARDS.values() if card.timm}
    version = public_version(timm.__version__)
    entries = []
    for name in timm.list_pretrained("regnet[xy]_*"):
        cfg = get_pretrained_cfg(name)
        arch, tag = name.split(".", 1)
        if not cfg.url or cfg.num_classes != 1000:
            continue  # weights only on the Hugging Face Hub, or without a classifier
        twin = torchvision_files.get(cfg.url)
        if twin is None and not urlsplit(cfg.url).path.endswith(".pth"):
            continue  # SEER's VISSL checkpoints (.torch): a layout not converted here
        model = twin.model if twin else by_timm_name.get(arch)
        if model is None:
            continue  # an architecture this package does not build (e.g. RegNetY-256GF)
        config = resolve_data_config({}, pretrained_cfg=cfg.to_dict())
        entries.append(PublishedWeights(
            model=model, source="timm", tag=tag, source_model=name, url=cfg.url,
            sha256_prefix=hash_prefix(cfg.url), sha256=None, top1=None, top5=None,
            accuracy_from=f"timm {version}: pretrained_cfg of {name} (no accuracy in it)",
            transform=timm_eval(config, name), layout="torchvision" if twin else "timm",
        ))
    return entries


_LOADERS = {"mmcls": _mmcls_entries, "pycls": _pycls_entries, "torchvision": _torchvision_entries,
            "timm": _timm_entries}


@functools.cache
def source_entries(source: str) -> tuple[PublishedWeights, ...]:
    """The registry's entries from one source, in the source's own order."""
    if source not in _LOADERS:
        raise UnknownWeightsError(f"Unknown weights source {source!r}; the sources are {', '.join(SOURCES)}.")
    return tuple(_LOADERS[source]())


def list_weights(source: str | None = None, model: str | None = None) -> list[PublishedWeights]:
    """Registry entries, optionally only one source's and/or only one model's."""
    sources = SOURCES if source is None else (source,)
    return [e for s in sources for e in source_entries(s) if model is None or e.model == model]


def default_tag(source: str, model: str) -> str | None:
    """The tag ``SOURCE`` alone means for ``model``: mmcls ``in1k``, pycls ``in1k``, torchvision ``DEFAULT``,
    timm its first listed weights for the model."""
    if source == "torchvision":
        builder = MODEL_CARDS[model].torchvision if model in MODEL_CARDS else None
        if builder is None or MODEL_CARDS[model].rounding != "torchvision":
            return None
        from torchvision.models import get_model_weights

        return get_model_weights(builder).DEFAULT.name.lower()
    if source == "timm":
        return next((e.tag for e in source_entries("timm") if e.model == model), None)
    return "in1k"


def split_weights_spec(spec: str) -> tuple[str, str | None]:
    """``"mmcls"`` -> ``("mmcls", None)``; ``"torchvision.imagenet1k_v2"`` -> ``("torchvision", "imagenet1k_v2")``."""
    source, _, tag = spec.strip().partition(".")
    return source.lower(), (tag.lower() or None)


def get_weights(model: str, weights: str) -> PublishedWeights:
    """The entry for ``model`` named by ``weights`` (``SOURCE`` or ``SOURCE.TAG``).

    An unknown combination raises :class:`UnknownWeightsError` naming what the model does have.
    """
    try:
        model = get_card(model).name
    except KeyError as err:
        raise UnknownWeightsError(str(err.args[0])) from None
    source, tag = split_weights_spec(weights)
    if source not in SOURCES:
        raise UnknownWeightsError(
            f"weights={weights!r}: unknown source {source!r}; use one of {', '.join(SOURCES)}, "
            f"optionally with a tag (e.g. 'torchvision.imagenet1k_v2')."
        )
    tag = tag or default_tag(source, model)
    for entry in source_entries(source):
        if entry.model == model and entry.tag == tag:
            return entry
    raise UnknownWeightsError(f"No {weights!r} weights for {model}. {_available(model, source)}")


def parse_weights_name(name: str) -> PublishedWeights:
    """The entry named ``SOURCE[.TAG]:MODEL`` (the ``--weights`` syntax), e.g. ``"mmcls:regnetx_400mf"``."""
    spec, colon, model = name.partition(":")
    if not colon or not spec or not model:
        raise UnknownWeightsError(
            f"--weights {name!r}: expected SOURCE[.TAG]:MODEL, e.g. 'mmcls:regnetx_400mf' or "
            "'torchvision.imagenet1k_v2:regnetx_400mf_tv' (python -m regnet_tutorial.weights list prints them)."
        )
    return get_weights(model, spec)


def _available(model: str, source: str) -> str:
    here = [e.name for s in SOURCES for e in source_entries(s) if e.model == model]
    twin = f"{model}_tv"
    note = ""
    if twin in MODEL_CARDS and any(e.model == twin for e in source_entries("torchvision")):
        note = (f" torchvision's weights are for {twin} (torchvision's group-width rounding): "
                f"create_model({twin!r}, weights='torchvision').")
    if here or note:
        return (f"Published weights for {model}: {', '.join(here)}." if here else "") + note
    sources = sorted({e.source for s in SOURCES for e in source_entries(s)})
    have = sorted({e.model for e in list_weights(source)}) if source in SOURCES else []
    return f"{model} has no published weights in {', '.join(sources)}; {source} publishes {', '.join(have)}."


def format_registry(entries: list[PublishedWeights]) -> str:
    """A plain-text listing: name, published top-1/top-5, checksum, URL."""
    lines = []
    for e in entries:
        top1 = f"{e.top1:.2f}" if e.top1 is not None else "-"
        top5 = f"{e.top5:.2f}" if e.top5 is not None else "-"
        lines.append(f"{e.name:48s} top-1 {top1:>6s} top-5 {top5:>6s}  sha256 {e.sha256_prefix or '-':8s}  {e.url}")
    return "\n".join(lines)


if __name__ == "__main__":
    print(format_registry(list_weights()))
