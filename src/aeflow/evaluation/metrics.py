"""Reconstruction metrics for data in [0, 1].

* ``mse`` – mean squared error per pixel (the number PCA comparisons use).
* ``bce_nats`` – binary cross-entropy summed over pixels, averaged over images, in nats: the negative
  log-likelihood of the targets under independent Bernoulli pixels with the reconstruction as mean. For
  grey (non-binary) targets it is a cross-entropy, not a likelihood, and is reported as such.
* ``psnr_db`` – peak signal-to-noise ratio with peak 1, averaged over images (per-image PSNR, capped at
  100 dB for perfect reconstructions).
* ``ssim`` – structural similarity (11×11 Gaussian window, σ = 1.5), averaged over images.
"""

from __future__ import annotations

import numpy as np
import torch

EPS = 1e-6


def reconstruction_metrics(recon: np.ndarray, target: np.ndarray) -> dict[str, float]:
    """All four metrics for reconstructions ``recon`` of ``target`` (both (N, C, H, W) in [0, 1])."""
    from torchmetrics.functional.image import structural_similarity_index_measure

    r = torch.from_numpy(np.asarray(recon, dtype=np.float64))
    t = torch.from_numpy(np.asarray(target, dtype=np.float64))
    n = r.shape[0]
    err = (r - t).pow(2).reshape(n, -1).mean(dim=1)
    p = r.clamp(EPS, 1 - EPS)
    bce = -(t * p.log() + (1 - t) * (1 - p).log()).reshape(n, -1).sum(dim=1)
    psnr = (10 * torch.log10(1.0 / err.clamp_min(1e-10))).clamp(max=100.0)
    ssim = structural_similarity_index_measure(r.float(), t.float(), data_range=1.0) if r.dim() == 4 else None
    out = {
        "mse": float(err.mean()),
        "bce_nats": float(bce.mean()),
        "psnr_db": float(psnr.mean()),
    }
    if ssim is not None:
        out["ssim"] = float(ssim)
    return out
