"""Atomic writes: a failure mid-write leaves the previous output byte-for-byte intact."""

from __future__ import annotations

import numpy as np
import pytest

from aeflow.io import atomic_dir, atomic_file, load_arrays, save_arrays, write_json


def test_atomic_file_keeps_old_content_on_error(tmp_path):
    target = tmp_path / "m.json"
    write_json(target, {"a": 1})
    before = target.read_bytes()
    with pytest.raises(RuntimeError), atomic_file(target) as tmp:
        tmp.write_text("half")
        raise RuntimeError("killed")
    assert target.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["m.json"]  # no temp file left behind


def test_atomic_dir_replaces_whole_folder_only_on_success(tmp_path):
    out = tmp_path / "out"
    with atomic_dir(out) as tmp:
        (tmp / "a.txt").write_text("old")
    with pytest.raises(RuntimeError), atomic_dir(out) as tmp:
        (tmp / "b.txt").write_text("new")
        raise RuntimeError("killed")
    assert sorted(p.name for p in out.iterdir()) == ["a.txt"]
    with atomic_dir(out) as tmp:
        (tmp / "b.txt").write_text("new")
    assert sorted(p.name for p in out.iterdir()) == ["b.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_arrays_round_trip_and_refuse_pickles(tmp_path):
    save_arrays(tmp_path / "a.npz", {"x": np.arange(5), "y": np.ones((2, 2), np.float32)})
    got = load_arrays(tmp_path / "a.npz")
    assert got["x"].tolist() == [0, 1, 2, 3, 4] and got["y"].dtype == np.float32
    np.savez(tmp_path / "evil.npz", x=np.array([{"a": 1}], dtype=object))
    with pytest.raises(ValueError, match="allow_pickle"):
        load_arrays(tmp_path / "evil.npz")
