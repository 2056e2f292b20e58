"""Noise injection: pure, seeded functions that turn clean arrays into (noisy, clean) pairs.

Denoising is a property of the data pairing, not of a model: the noise stage writes the noisy inputs and
the denoising variant learns to map them back to the clean targets. Every function takes an explicit
``numpy.random.Generator`` so the same seed gives the same bytes.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import numpy as np

ImageNoiseKind = Literal["gaussian", "masking", "salt_pepper"]


def gaussian(x: np.ndarray, sigma: float, rng: np.random.Generator) -> np.ndarray:
    """Additive white Gaussian noise of standard deviation ``sigma``, clipped back to [0, 1]."""
    noisy = x + rng.normal(0.0, sigma, size=x.shape).astype(np.float32)
    return np.clip(noisy, 0.0, 1.0).astype(np.float32)


def masking(x: np.ndarray, p: float, rng: np.random.Generator) -> np.ndarray:
    """Drop (zero) a random fraction ``p`` of the pixels: masking noise in Vincent et al. (2008)."""
    keep = rng.random(x.shape) >= p
    return (x * keep).astype(np.float32)


def salt_pepper(x: np.ndarray, p: float, rng: np.random.Generator) -> np.ndarray:
    """Set a random fraction ``p`` of the pixels to 0 or 1 with equal probability."""
    hit = rng.random(x.shape) < p
    salt = rng.random(x.shape) < 0.5
    out = x.copy()
    out[hit] = salt[hit].astype(np.float32)
    return out.astype(np.float32)


def corrupt_images(x: np.ndarray, kind: ImageNoiseKind, level: float, rng: np.random.Generator) -> np.ndarray:
    """Apply one image noise ``kind`` at ``level`` (σ for gaussian, fraction of pixels otherwise)."""
    if kind == "gaussian":
        return gaussian(x, level, rng)
    if kind == "masking":
        return masking(x, level, rng)
    if kind == "salt_pepper":
        return salt_pepper(x, level, rng)
    raise ValueError(f"unknown image noise {kind!r}; available: gaussian, masking, salt_pepper")


# ------------------------------------------------------------------------------------------ the stage
SPLIT_STREAM = {"train": 0, "val": 1, "test": 2}


def inject_noise(params: Any, data: Path, out: Path) -> dict[str, Any]:
    """Corrupt every split of ``data`` and write the noisy arrays to ``out``.

    ``<out>/{train,val,test}.npz`` hold ``noisy`` (float32 in [0, 1], shaped like the unit-scaled clean
    images, same row order as ``data/raw``) and ``info.json`` records the noise and the measured MSE
    between noisy and clean per split. Each split gets its own seeded stream, so the bytes depend only on
    the seed, the noise settings and the clean data.
    """
    from aeflow.data.images import load_image_splits
    from aeflow.io import atomic_dir, save_arrays, write_json

    cfg = params.mnist.noise
    splits = load_image_splits(data)
    info: dict[str, Any] = {
        "kind": cfg.kind,
        "level": cfg.level,
        "seed": params.seed,
        "mse_noisy_vs_clean": {},
    }
    with atomic_dir(out) as tmp:
        for name, (clean, _) in splits.items():
            rng = np.random.default_rng([params.seed, SPLIT_STREAM[name]])
            noisy = corrupt_images(clean, cfg.kind, cfg.level, rng)
            save_arrays(tmp / f"{name}.npz", {"noisy": noisy})
            info["mse_noisy_vs_clean"][name] = float(np.mean((noisy - clean) ** 2)) if len(clean) else None
        write_json(tmp / "info.json", info)
    return info


def load_noisy(folder: Path) -> dict[str, np.ndarray]:
    """The noisy arrays written by :func:`inject_noise`, by split."""
    from aeflow.io import load_arrays

    return {name: load_arrays(Path(folder) / f"{name}.npz")["noisy"] for name in SPLIT_STREAM}
