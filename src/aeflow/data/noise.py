"""Noise injection: pure, seeded functions that turn clean arrays into (noisy, clean) pairs.

Denoising is a property of the data pairing, not of a model: the noise stage writes the noisy inputs and
the denoising variant learns to map them back to the clean targets. Every function takes an explicit
``numpy.random.Generator`` so the same seed gives the same bytes.
"""

from __future__ import annotations

from typing import Literal

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
