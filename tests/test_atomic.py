"""Atomic writes: the old file survives a failed write, and no temporary file is left."""

from __future__ import annotations

from pathlib import Path

import pytest

from regnet_tutorial.util.atomic import atomic_path, write_text_atomic


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
