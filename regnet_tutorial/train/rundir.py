"""A training run's output folder: checked writable first, and locked for the run's lifetime.

Two runs writing the same folder corrupt each other's checkpoints (one deletes what the other
is renaming), so :class:`RunLock` takes an exclusive ``fcntl.flock`` on ``<output_dir>/.lock``,
held until the run ends. The lock file records who holds it (pid, host, start time); a second
run reads that and stops with a one-line error. The kernel drops a ``flock`` when its process
dies, so a crashed or SIGKILLed run never leaves a stale lock behind. A run that stops with an
error before writing anything removes its lock file, and the folder if that leaves it empty, so
that a failed first try leaves no folder holding only ``.lock``.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import tempfile
import time
from pathlib import Path

from ..util.cli import CliError
from ..util.locking import lock_file, unlock

LOCK_FILE = ".lock"


def check_writable(output_dir: str | os.PathLike) -> Path:
    """Create ``output_dir`` if needed and prove a file can be written in it; raises
    :class:`CliError` naming the folder otherwise. Returns the folder."""
    out = Path(output_dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=out, prefix=".write-test-"):
            pass
    except OSError as err:
        raise CliError(
            f"output_dir {out} is not writable ({err.strerror or err}). Choose another --output-dir, "
            "or fix its permissions or free space."
        ) from err
    return out


class RunLock:
    """An exclusive lock on ``<output_dir>/.lock`` (use as a context manager, or
    :meth:`acquire`/:meth:`release`); :meth:`acquire` raises :class:`CliError` naming the run
    that holds it."""

    def __init__(self, output_dir: str | os.PathLike) -> None:
        self.path = Path(output_dir) / LOCK_FILE
        self._fd: int | None = None

    def acquire(self) -> RunLock:
        while True:
            fd = lock_file(self.path)
            if fd is None:
                raise CliError(
                    f"output_dir {self.path.parent} is in use by another run ({_read_holder(self.path)}). Wait "
                    "for it to finish, or choose another --output-dir."
                )
            if _same_file(fd, self.path):
                break
            unlock(fd)  # a failed run removed the file between our open and flock: lock the new one
        os.ftruncate(fd, 0)
        os.write(fd, json.dumps({
            "pid": os.getpid(), "host": socket.gethostname(),
            "started": time.strftime("%Y-%m-%d %H:%M:%S %Z", time.localtime()),
        }).encode())
        os.fsync(fd)
        self._fd = fd
        return self

    def release(self) -> None:
        if self._fd is not None:
            unlock(self._fd)
            self._fd = None

    def release_unused(self) -> None:
        """Release the lock; remove the lock file if the folder holds nothing else, and then the
        folder if it is empty (a run that failed before writing anything leaves nothing behind)."""
        folder = self.path.parent
        if self._fd is not None and [p.name for p in folder.iterdir()] == [LOCK_FILE]:
            self.path.unlink(missing_ok=True)  # while still locked: no other run holds this file
            self.release()
            with contextlib.suppress(OSError):  # something appeared meanwhile: keep the folder
                folder.rmdir()
        self.release()

    def __enter__(self) -> RunLock:
        return self.acquire()

    def __exit__(self, exc_type: object, *exc: object) -> None:
        if exc_type is not None:
            self.release_unused()
        self.release()


def _same_file(fd: int, path: Path) -> bool:
    """Whether the open ``fd`` is still the file at ``path`` (not unlinked or replaced)."""
    try:
        return os.path.samestat(os.fstat(fd), os.stat(path))
    except FileNotFoundError:
        return False


def _read_holder(path: Path) -> str:
    try:
        info = json.loads(path.read_text() or "{}")
        return f"pid {info['pid']} on host {info['host']}, started {info['started']}"
    except (OSError, ValueError, KeyError):
        return "its pid is not recorded yet"
