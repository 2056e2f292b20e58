"""Image arrays as models see them, and their random affine augmentation.

Raw splits hold 0–255 pixel values; models see float32 in [0, 1] with a channel axis (N, 1, H, W).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from aeflow.io import load_arrays
from aeflow.sections import AugmentParams

SPLITS = ("train", "val", "test")


def to_unit(images: np.ndarray) -> np.ndarray:
    """Raw 0–255 pixels (any dtype) → float32 in [0, 1] with a channel axis."""
    x = images.astype(np.float32) / 255.0
    return x[:, None] if x.ndim == 3 else x


def load_image_splits(folder: Path | str) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Read ``train/val/test.npz`` written by the ingest stage as unit-scaled images and labels."""
    out = {}
    for name in SPLITS:
        arrays = load_arrays(Path(folder) / f"{name}.npz")
        out[name] = (to_unit(arrays["images"]), arrays["labels"])
    return out


def model_inputs(
    splits: dict[str, tuple[np.ndarray, np.ndarray]], noisy: dict[str, np.ndarray] | None, needs_noisy: bool
) -> dict[str, tuple[np.ndarray, np.ndarray | None]]:
    """Per split, ``(input, target)`` for a model: ``target`` is ``None`` when it is the input itself.

    A variant that ``needs_noisy`` pairs gets the noise stage's corrupted images as inputs and the clean
    images as targets.
    """
    if not needs_noisy:
        return {name: (x, None) for name, (x, _) in splits.items()}
    if noisy is None:
        from aeflow.errors import DataError

        raise DataError(
            "this variant trains on (noisy, clean) pairs but no noisy data was given. "
            "Fix: run the inject_noise stage (dvc repro) and pass its folder with --noisy."
        )
    return {name: (noisy[name], x) for name, (x, _) in splits.items()}


def random_affine(
    x: torch.Tensor, params: AugmentParams, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Apply one random rotation/zoom/shift per image (same transform to every channel).

    Callers that need an (input, target) pair to move together concatenate them along the channel axis.
    """
    if not params.enabled:
        return x
    n, _, h, w = x.shape
    dev = x.device

    def uniform(scale: float) -> torch.Tensor:
        return (torch.rand(n, device=dev, generator=generator) * 2 - 1) * scale

    angle = uniform(math.radians(params.rotation_deg))
    zoom = 1 + uniform(params.scale)
    theta = torch.zeros(n, 2, 3, device=dev, dtype=x.dtype)
    theta[:, 0, 0] = torch.cos(angle) * zoom
    theta[:, 0, 1] = -torch.sin(angle) * zoom
    theta[:, 1, 0] = torch.sin(angle) * zoom
    theta[:, 1, 1] = torch.cos(angle) * zoom
    theta[:, 0, 2] = uniform(2 * params.translate_px / w)
    theta[:, 1, 2] = uniform(2 * params.translate_px / h)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, align_corners=False, padding_mode="zeros")


def fixed_indices(labels: np.ndarray, n: int) -> np.ndarray:
    """Indices of ``n`` examples ordered by class (0, 1, …, 9, 0, …): the same digits every epoch/run."""
    order: list[int] = []
    by_class = {c: list(np.flatnonzero(labels == c)) for c in np.unique(labels)}
    while len(order) < min(n, len(labels)):
        for c in sorted(by_class):
            if by_class[c] and len(order) < n:
                order.append(by_class[c].pop(0))
    return np.array(order, dtype=np.int64)
