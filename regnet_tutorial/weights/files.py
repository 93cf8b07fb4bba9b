"""Reading and writing checkpoint files without ever running code stored in them.

Two formats are read: PyTorch files written by ``torch.save`` (``.pth``, ``.pt``,
pycls's ``.pyth``), opened with ``torch.load(..., weights_only=True)`` so that a pickle
can only rebuild tensors and plain containers, and safetensors files, which hold
nothing but tensors and a string-to-string metadata table. Writing is safetensors only,
and atomic: a crash mid-write leaves any earlier file at that path untouched.
"""

from __future__ import annotations

import json
import os
import pickle
import re
from collections.abc import Mapping
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file
from safetensors.torch import save as safetensors_bytes
from torch import nn

from ..errors import RegNetTutorialError
from ..util.atomic import atomic_path, write_error

EXPECTED = (
    "a PyTorch checkpoint written by torch.save (.pth, .pt, .pyth) or a .safetensors file"
)


class CheckpointFormatError(RegNetTutorialError, ValueError):
    """A file or object that is not a usable checkpoint (corrupt, wrong kind, unsafe, ...)."""


def read_checkpoint(path: str | os.PathLike) -> object:
    """The object stored in a checkpoint file, loaded on the CPU without executing code.

    A safetensors file gives its ``dict[str, Tensor]``; a ``torch.save`` file gives
    whatever it holds (a state dict or a training checkpoint dict).
    """
    path = _existing_file(path)
    kind = _sniff(path)
    if kind == "safetensors":
        return load_safetensors(path)
    if kind not in ("torch zip", "torch pickle"):
        raise CheckpointFormatError(f"{path} is not a checkpoint: it looks like {kind}. Expected {EXPECTED}.")
    if path.suffix == ".safetensors":  # torch.load would hand the file to safetensors by its name
        raise CheckpointFormatError(
            f"{path} is named .safetensors but holds a torch.save pickle ({kind}), so it was not read. "
            "Rename it to .pth to load it with weights_only=True (which refuses anything but tensors), "
            "or use the real .safetensors file."
        )
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        if "weights only" in str(err).lower():
            blocked = re.search(r"GLOBAL ([\w.]+)", str(err))
            found = f" (it refers to {blocked[1]})" if blocked else ""
            raise CheckpointFormatError(
                f"{path} was refused: besides tensors it stores Python objects{found}, and "
                "unpickling them could run arbitrary code, so weights_only=True loading stops. "
                "Ask its author for a plain state dict or a .safetensors file; if you trust the "
                "file, convert it once in a separate session with save_safetensors."
            ) from err
        raise _corrupt(path, err) from err
    except (RuntimeError, EOFError, KeyError, ValueError, OSError, SafetensorError) as err:
        raise _corrupt(path, err) from err


def save_safetensors(
    state_dict_or_model: Mapping[str, torch.Tensor] | nn.Module,
    path: str | os.PathLike,
    metadata: Mapping[str, str] | None = None,
) -> Path:
    """Write a model's (or a state dict's) tensors to ``path`` as safetensors, atomically.

    ``metadata`` (strings only) is stored in the file header; read it back with
    :func:`load_safetensors_metadata`. The header is written in a fixed order, so the same tensors
    and metadata always give the same bytes (``sha256sum`` can check a "bitwise" claim). A failed
    write (disk full) raises :class:`~regnet_tutorial.util.atomic.WriteError` and leaves any
    earlier file at ``path`` intact. Returns the path written.
    """
    path = Path(path)
    if isinstance(state_dict_or_model, nn.Module):
        state_dict: Mapping[str, object] = state_dict_or_model.state_dict()
    elif isinstance(state_dict_or_model, Mapping):
        state_dict = state_dict_or_model
    else:
        raise TypeError(
            f"save_safetensors needs an nn.Module or a state dict, not {type(state_dict_or_model).__name__}."
        )
    not_tensors = [k for k, v in state_dict.items() if not isinstance(v, torch.Tensor)]
    if not_tensors:
        raise TypeError(
            f"safetensors stores tensors only; these entries are not tensors: {_preview(not_tensors)}. "
            "Put numbers and strings into metadata (as strings) instead."
        )
    metadata = dict(metadata or {})
    bad = {k: type(v).__name__ for k, v in metadata.items() if not (isinstance(k, str) and isinstance(v, str))}
    if bad:
        raise TypeError(f"safetensors metadata must map strings to strings; convert these with str(): {bad}.")
    if not path.parent.is_dir():
        raise FileNotFoundError(f"Cannot write {path}: the folder {path.parent} does not exist.")
    tensors = {k: v.detach().to("cpu").contiguous() for k, v in state_dict.items()}
    try:
        data = canonical_header(safetensors_bytes(tensors, metadata={"format": "pt", **metadata}))
    except SafetensorError as err:  # e.g. out of memory for the serialised file
        raise write_error(path, err) from err
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    return path


def canonical_header(data: bytes) -> bytes:
    """Serialised safetensors ``data`` with its JSON header rewritten in a fixed order: the
    ``__metadata__`` table sorted by key (the Rust writer emits it in hash-map order, which
    changes from process to process), the tensors in the order the writer chose (sorted by
    dtype and name, already deterministic). The data offsets are relative to the end of the
    header, so only the header changes; it is padded with spaces to a multiple of 8 bytes, as
    the format asks."""
    size = int.from_bytes(data[:8], "little")
    header = json.loads(data[8:8 + size])
    if "__metadata__" in header:
        header["__metadata__"] = dict(sorted(header["__metadata__"].items()))
    text = json.dumps(header, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    text += b" " * (-len(text) % 8)
    return len(text).to_bytes(8, "little") + text + data[8 + size:]


def load_safetensors(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """The tensors of a safetensors file, on the CPU."""
    path = _existing_file(path)
    try:
        return load_file(path, device="cpu")
    except (SafetensorError, OSError, ValueError) as err:
        raise _corrupt(path, err) from err


def load_safetensors_metadata(path: str | os.PathLike) -> dict[str, str]:
    """The string metadata stored in a safetensors file's header."""
    path = _existing_file(path)
    try:
        with safe_open(path, framework="pt") as f:
            return dict(f.metadata() or {})
    except (SafetensorError, OSError, ValueError) as err:
        raise _corrupt(path, err) from err


def _existing_file(path: str | os.PathLike) -> Path:
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"No checkpoint file at {path} (resolved: {path.resolve()}). Check the path.")
    if not path.is_file():
        raise CheckpointFormatError(f"{path} is a folder, not a checkpoint file. Expected {EXPECTED}.")
    return path


def _sniff(path: Path) -> str:
    """What the first bytes of ``path`` say it is."""
    with open(path, "rb") as f:
        head = f.read(16)
    if head.startswith(b"PK\x03\x04"):
        return "torch zip"
    if len(head) >= 2 and head[0] == 0x80 and 2 <= head[1] <= 5:
        return "torch pickle"  # torch.save's legacy (pre-1.6) format
    if len(head) >= 9 and head[8:9] == b"{" and int.from_bytes(head[:8], "little") > 1:
        return "safetensors"  # an 8-byte header length, then the JSON header
    if not head:
        return "an empty file"
    for magic, what in (
        (b"\xff\xd8\xff", "a JPEG image"), (b"\x89PNG", "a PNG image"), (b"GIF8", "a GIF image"),
        (b"\x1f\x8b", "a gzip archive"), (b"%PDF", "a PDF document"), (b"\x93NUMPY", "a NumPy .npy array"),
        (b"\x89HDF", "an HDF5 file (Keras?)"),
    ):
        if head.startswith(magic):
            return what
    try:
        head.decode("utf-8")
        return "a text file"
    except UnicodeDecodeError:
        return "an unknown binary file"


def _corrupt(path: Path, err: BaseException) -> CheckpointFormatError:
    first_line = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
    return CheckpointFormatError(
        f"{path} could not be read as {EXPECTED}: it looks truncated or corrupt ({first_line}). "
        "Download or copy it again and compare its size or checksum with the source."
    )


def _preview(items: list[str], limit: int = 5) -> str:
    shown = ", ".join(repr(i) for i in items[:limit])
    return shown + (f" ... and {len(items) - limit} more" if len(items) > limit else "")
