"""IDX parsing: round trips, and clear errors for truncated, empty and foreign files."""

from __future__ import annotations

import gzip

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from aeflow.errors import DataError
from aeflow.usecases.mnist.idx import encode_idx, parse_idx, read_idx, write_idx_gz


@settings(max_examples=50, deadline=None)
@given(arrays(np.uint8, st.tuples(st.integers(0, 5), st.integers(1, 6), st.integers(1, 6))))
def test_round_trip(images):
    assert np.array_equal(parse_idx(encode_idx(images)), images)


def test_gz_file_round_trip_is_byte_stable(tmp_path):
    x = np.arange(2 * 28 * 28, dtype=np.uint8).reshape(2, 28, 28)
    write_idx_gz(tmp_path / "a.gz", x)
    write_idx_gz(tmp_path / "b.gz", x)
    assert (tmp_path / "a.gz").read_bytes() == (tmp_path / "b.gz").read_bytes()
    assert np.array_equal(read_idx(tmp_path / "a.gz"), x)


def test_zero_byte_file(tmp_path):
    (tmp_path / "x.gz").write_bytes(b"")
    with pytest.raises(DataError, match=r"x\.gz: the file is empty \(0 bytes\)"):
        read_idx(tmp_path / "x.gz")


def test_truncated_payload_names_shape_and_sizes(tmp_path):
    raw = encode_idx(np.zeros((10, 28, 28), np.uint8))[:-100]
    path = tmp_path / "train-images-idx3-ubyte"
    path.write_bytes(raw)
    with pytest.raises(DataError) as exc:
        read_idx(path)
    assert str(path) in str(exc.value)
    assert "(10, 28, 28)" in str(exc.value) and "truncated" in str(exc.value)


def test_truncated_gzip_stream(tmp_path):
    blob = gzip.compress(encode_idx(np.zeros((50, 28, 28), np.uint8)))
    path = tmp_path / "t.gz"
    path.write_bytes(blob[: len(blob) // 2])
    with pytest.raises(DataError, match="gzip stream is truncated or corrupt"):
        read_idx(path)


def test_foreign_file(tmp_path):
    path = tmp_path / "t"
    path.write_bytes(b"PK\x03\x04 this is a zip file, not IDX")
    with pytest.raises(DataError, match="not an IDX file"):
        read_idx(path)
