"""Atomic file and folder writes: the target is whole or as it was, and no temporary name is left behind."""

from __future__ import annotations

import json

import pytest

from llmops import atomic


def _leftovers(folder):
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


def test_write_json_replaces_and_leaves_no_temporary(tmp_path):
    path = tmp_path / "sub" / "a.json"
    atomic.write_json(path, {"b": 1, "a": 2})
    atomic.write_json(path, {"a": 3})
    assert json.loads(path.read_text()) == {"a": 3}
    assert _leftovers(path.parent) == []


def test_a_failed_file_write_keeps_the_old_file(tmp_path):
    path = tmp_path / "a.txt"
    atomic.write_text(path, "old")
    with pytest.raises(RuntimeError), atomic.atomic_file(path) as tmp:
        tmp.write_text("half")
        raise RuntimeError("killed mid-write")
    assert path.read_text() == "old"
    assert _leftovers(tmp_path) == []


def test_file_suffix_ends_the_temporary_name(tmp_path):
    import numpy as np

    path = tmp_path / "order.npy"
    with atomic.atomic_file(path, suffix=".npy", fsync=True) as tmp:
        assert tmp.name.endswith(".npy") and tmp.name.startswith(".order.npy.")
        np.save(tmp, np.arange(3))
    assert np.load(path).tolist() == [0, 1, 2]
    assert _leftovers(tmp_path) == []


def test_dir_replace_swaps_an_earlier_try(tmp_path):
    target = tmp_path / "adapter"
    target.mkdir()
    (target / "stale.bin").write_text("from an earlier try")
    with atomic.atomic_dir(target) as built:
        assert not target.joinpath("new.bin").exists()
        (built.path / "new.bin").write_text("new")
    assert built.published
    assert sorted(p.name for p in target.iterdir()) == ["new.bin"]
    assert _leftovers(tmp_path) == []


def test_dir_keep_leaves_a_complete_target_and_drops_the_copy(tmp_path):
    target = tmp_path / "0123456789abcdef"
    with atomic.atomic_dir(target, exists="keep") as first:
        (first.path / "manifest.json").write_text("first")
    with atomic.atomic_dir(target, exists="keep", complete=lambda p: (p / "manifest.json").exists()) as second:
        (second.path / "manifest.json").write_text("second")
    assert first.published and not second.published
    assert (target / "manifest.json").read_text() == "first"
    assert _leftovers(tmp_path) == []


def test_dir_keep_refuses_an_incomplete_target(tmp_path):
    target = tmp_path / "snap"
    target.mkdir()
    (target / "part.parquet").write_text("half of someone else's write")
    with pytest.raises(OSError), atomic.atomic_dir(target, exists="keep",
                                                   complete=lambda p: (p / "manifest.json").exists()) as built:
        (built.path / "manifest.json").write_text("mine")
    assert sorted(p.name for p in target.iterdir()) == ["part.parquet"]
    assert _leftovers(tmp_path) == []


def test_a_failed_dir_build_leaves_nothing(tmp_path):
    target = tmp_path / "out"
    with pytest.raises(ValueError), atomic.atomic_dir(target) as built:
        (built.path / "x").write_text("x")
        raise ValueError("converter failed")
    assert not target.exists()
    assert _leftovers(tmp_path) == []
