"""The sweep's results file: one JSON object per line, appended safely by several processes.

* Each line is written by one ``os.write`` on a file opened with ``O_APPEND`` (under an
  exclusive ``flock`` of that file), then ``fsync``-ed: processes never interleave, and a
  finished line survives a crash.
* A kill can still cut the *last* line short. :meth:`ResultsFile.repair` drops such a partial
  line (and any duplicate key) before a sweep resumes, rewriting the file atomically.
* A sweep holds ``<file>.lock`` for its whole run, so two sweeps cannot write one file.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ..errors import RegNetTutorialError
from ..util.atomic import write_text_atomic
from ..util.locking import lock_file, unlock


class ResultsFileError(RegNetTutorialError, RuntimeError):
    """The results file is locked by another sweep or does not hold sweep results."""


def result_key(record: dict[str, Any], replicate: int | None = None) -> str:
    """The stable identity of one training run of a sweep: its space, sweep seed, index and
    replicate (the training seed's number; replicate 0, the first run of a model, adds nothing)."""
    r = record.get("replicate", 0) if replicate is None else replicate
    return f"{record['space']}/seed{record['seed']}/{record['index']}" + (f"/r{r}" if r else "")


class ResultsFile:
    """A JSON-lines results file at ``path``."""

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        self.lock_path = self.path.with_name(self.path.name + ".lock")

    @contextmanager
    def exclusive(self) -> Iterator[None]:
        """Hold ``<file>.lock`` for the block; raise at once if another sweep holds it.

        The lock file is removed at the end. A sweep that locked a file just removed by
        another one sees that its inode is no longer at the path, and tries again.
        """
        self.path.parent.mkdir(parents=True, exist_ok=True)
        while True:
            fd = lock_file(self.lock_path)
            if fd is None:
                raise ResultsFileError(
                    f"another sweep is writing {self.path} (it holds {self.lock_path}); "
                    "wait for it to finish or choose another --out"
                )
            try:
                if os.stat(self.lock_path).st_ino == os.fstat(fd).st_ino:
                    break
            except FileNotFoundError:
                pass
            os.close(fd)
        try:
            yield
        finally:
            self.lock_path.unlink(missing_ok=True)
            os.close(fd)  # closing releases the lock

    def _read_lines(self) -> tuple[list[str], bool]:
        """The complete lines, and whether a partial last line (no newline) follows them."""
        if not self.path.exists():
            return [], False
        text = self.path.read_bytes().decode("utf-8", errors="replace")
        lines = text.split("\n")
        partial = lines.pop() != ""  # the text after the last newline
        return [line for line in lines if line.strip()], partial

    def load(self) -> list[dict[str, Any]]:
        """Every complete record, in file order (a partial last line is ignored)."""
        records = []
        for number, line in enumerate(self._read_lines()[0], start=1):
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                raise ResultsFileError(
                    f"{self.path} line {number} is not JSON: it is not a sweep results file; choose another --out"
                ) from None
            if not isinstance(record, dict) or not {"space", "seed", "index"} <= record.keys():
                raise ResultsFileError(
                    f"{self.path} line {number} is not a sweep result (it lacks space, seed or index); "
                    "choose another --out"
                )
            records.append(record)
        return records

    def repair(self) -> int:
        """Drop a partial last line and repeated keys (keeping the first); returns how many
        lines were dropped. Call only while holding :meth:`exclusive`."""
        lines, partial = self._read_lines()
        records = self.load()
        seen: set[str] = set()
        keep = []
        for line, record in zip(lines, records):
            key = result_key(record)
            if key not in seen:
                seen.add(key)
                keep.append(line)
        dropped = len(lines) - len(keep) + int(partial)
        if dropped:
            write_text_atomic(self.path, "".join(line + "\n" for line in keep))
        return dropped

    def append(self, record: dict[str, Any]) -> None:
        """Append ``record`` as one line: a single write, flushed to disk before returning."""
        data = (json.dumps(record, sort_keys=True, allow_nan=True) + "\n").encode("utf-8")
        fd = lock_file(self.path, wait=True, flags=os.O_WRONLY | os.O_APPEND)
        assert fd is not None  # a waiting lock_file always returns a descriptor
        try:
            written = os.write(fd, data)
            if written != len(data):  # only a full disk does this; repair() drops the stub
                raise OSError(f"short write to {self.path}: {written} of {len(data)} bytes (disk full?)")
            os.fsync(fd)
        finally:
            unlock(fd)
