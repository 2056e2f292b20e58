"""Inference on a trained autoencoder: reconstructions and codes of an array, batched, without gradients.

It sits with the models, below training and evaluation, because evaluation, baselines and every use case's
scoring need it, and none of them should depend on how a model was trained.
"""

from __future__ import annotations

import numpy as np
import torch

from aeflow.models.base import BaseAutoencoder


def predict(model: BaseAutoencoder, x: np.ndarray, batch_size: int = 1000) -> np.ndarray:
    """Reconstructions of ``x`` in data space, batched, without gradients."""
    model.eval()
    out = []
    with torch.no_grad():
        for i in range(0, len(x), batch_size):
            out.append(model(torch.from_numpy(np.ascontiguousarray(x[i : i + batch_size]))).cpu().numpy())
    return np.concatenate(out) if out else np.zeros_like(x)


def encode(model: BaseAutoencoder, x: np.ndarray, batch_size: int = 1000) -> np.ndarray:
    """Codes of ``x``, batched, without gradients."""
    model.eval()
    out = []
    with torch.no_grad():
        for i in range(0, len(x), batch_size):
            out.append(
                model.encode(torch.from_numpy(np.ascontiguousarray(x[i : i + batch_size]))).cpu().numpy()
            )
    return np.concatenate(out)
