"""Exclusive file locks (``fcntl.flock``): the kernel drops one when its process exits, however
it exits, so a crashed run never leaves a stale lock behind."""

from __future__ import annotations

import fcntl
import os


def lock_file(path: str | os.PathLike, wait: bool = False, flags: int = os.O_RDWR) -> int | None:
    """Open ``path`` (created if missing, with ``flags``) and take an exclusive lock on it.

    Returns the open descriptor, which holds the lock until it is closed (:func:`unlock`). When
    another process holds the lock: wait for it with ``wait``, else return ``None`` at once.
    """
    fd = os.open(path, flags | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
    except BlockingIOError:
        os.close(fd)
        return None
    except BaseException:
        os.close(fd)
        raise
    return fd


def unlock(fd: int) -> None:
    """Release the lock ``fd`` holds and close it."""
    fcntl.flock(fd, fcntl.LOCK_UN)
    os.close(fd)
