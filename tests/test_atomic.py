"""Atomic writes: the old file survives a failed write, and no temporary file is left."""

from __future__ import annotations

import errno
import os
import re
import stat
from pathlib import Path

import pytest

from regnet_tutorial.util import atomic
from regnet_tutorial.util.atomic import WriteError, atomic_path, write_text_atomic


def test_write_replaces_the_file_and_creates_folders(tmp_path: Path) -> None:
    target = tmp_path / "a" / "b" / "config.yaml"
    write_text_atomic(target, "one")
    write_text_atomic(target, "two")
    assert target.read_text() == "two"
    assert [p.name for p in target.parent.iterdir()] == ["config.yaml"]


def test_a_failed_write_keeps_the_old_file_and_leaves_nothing(tmp_path: Path) -> None:
    target = tmp_path / "run.json"
    target.write_text("old")
    with pytest.raises(RuntimeError, match="disk full"), atomic_path(target) as tmp:
        tmp.write_text("half of the new")
        raise RuntimeError("disk full")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["run.json"]


@pytest.mark.parametrize(("umask", "mode"), [(0o022, 0o644), (0o027, 0o640), (0o077, 0o600)])
def test_a_written_file_gets_the_mode_open_would_give(tmp_path: Path, umask: int, mode: int) -> None:
    """mkstemp creates its file 0600; the written file must get 0666 less the umask, like open()."""
    previous = os.umask(umask)
    try:
        write_text_atomic(tmp_path / "run.json", "{}")
        with open(tmp_path / "plain.txt", "w") as f:  # the independent reference: what open() gives
            f.write("{}")
    finally:
        os.umask(previous)
    assert stat.S_IMODE((tmp_path / "run.json").stat().st_mode) == mode
    assert stat.S_IMODE((tmp_path / "plain.txt").stat().st_mode) == mode


def test_a_full_disk_is_a_write_error_naming_the_file(tmp_path: Path, monkeypatch) -> None:
    target = tmp_path / "final.json"
    target.write_text("old")

    def full(fd: int) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(atomic.os, "fsync", full)
    with pytest.raises(WriteError, match=rf"Cannot write {re.escape(str(target))}: No space left on device\. "
                                         r"Nothing was replaced"):
        write_text_atomic(target, "new")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["final.json"]
