"""Atomic file writes: a reader sees the old file or the new one, never half of either.

The new file gets the permissions an ordinary ``open(path, "w")`` would give (``0666`` less the
umask, so ``0644`` under the usual umask 022): ``mkstemp`` creates its file ``0600``, which would
hide a run from teammates on a shared filesystem. A write that fails (disk full, no permission)
raises :class:`WriteError`, naming the file, and leaves the old file as it was.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ..errors import RegNetTutorialError


class WriteError(RegNetTutorialError, OSError):
    """A file could not be written (disk full, no permission, ...); the file it would have
    replaced is intact. The message names the file and the reason."""


def current_umask() -> int:
    """The process's umask, read without changing it where Linux exposes it (``/proc``), else
    by setting and restoring it."""
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


@contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; when the block succeeds, its file is flushed
    to disk and renamed onto ``path``; when it raises, the temporary file is removed and
    ``path`` is left as it was. The file gets ``0666`` less the umask; an ``OSError`` while
    writing becomes a :class:`WriteError` naming ``path``."""
    path = Path(path)
    try:
        fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        os.close(fd)
    except OSError as err:
        raise write_error(path, err) from err
    tmp = Path(name)
    try:
        yield tmp
        os.chmod(tmp, 0o666 & ~current_umask())  # the block may have recreated the file: chmod last
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)  # same folder, so a rename: atomic on POSIX and Windows
    except WriteError:
        raise
    except OSError as err:
        raise write_error(path, err) from err
    finally:
        tmp.unlink(missing_ok=True)


def write_error(path: str | os.PathLike, err: BaseException) -> WriteError:
    """A :class:`WriteError` for ``path`` saying why (``err``'s reason, e.g. "No space left on device")."""
    reason = getattr(err, "strerror", None) or " ".join(str(err).split()) or type(err).__name__
    return WriteError(
        f"Cannot write {path}: {reason}. Nothing was replaced (the previous file, if any, is intact): "
        "free space or fix the folder's permissions, then run the command again."
    )


def write_text_atomic(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically, creating its folder if needed."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return path


def write_json_atomic(path: str | os.PathLike, data: Any) -> Path:
    """Write ``data`` as JSON to ``path`` through a temporary file and ``os.replace``."""
    return write_text_atomic(path, json.dumps(data, indent=2, sort_keys=True, default=_json_default))


def _json_default(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, Path):
        return str(value)
    if hasattr(value, "item"):
        return value.item()
    return str(value)
