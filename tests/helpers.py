"""Helpers shared by tests (importable, unlike conftest fixtures)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from aeflow.data.idx import write_idx_gz


def write_idx_folder(folder: Path, images: np.ndarray, labels: np.ndarray, prefix: str = "train") -> Path:
    """Write an images/labels IDX .gz pair as torchvision stores MNIST."""
    folder.mkdir(parents=True, exist_ok=True)
    write_idx_gz(folder / f"{prefix}-images-idx3-ubyte.gz", images.astype(np.uint8))
    write_idx_gz(folder / f"{prefix}-labels-idx1-ubyte.gz", labels.astype(np.uint8))
    return folder
