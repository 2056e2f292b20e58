"""Classical baselines fitted on the same training data as the autoencoder."""

from __future__ import annotations

from typing import Any

import numpy as np


class PCABaseline:
    """PCA with ``k`` components: the linear autoencoder an AE must beat to be worth its cost.

    An undercomplete linear autoencoder trained with MSE spans the same subspace as PCA, so "AE MSE /
    PCA MSE at the same k" measures exactly what the non-linearity buys. Reconstructions are optionally
    clipped to the valid data range, which only helps PCA (a stricter baseline).
    """

    def __init__(self, k: int, clip: tuple[float, float] | None = (0.0, 1.0)) -> None:
        self.k = k
        self.clip = clip
        self.mean_: np.ndarray | None = None
        self.components_: np.ndarray | None = None

    def fit(self, x: np.ndarray) -> PCABaseline:
        flat = x.reshape(len(x), -1).astype(np.float64)
        if self.k > min(flat.shape):
            raise ValueError(f"PCA with k={self.k} needs at least {self.k} training rows and features")
        self.mean_ = flat.mean(axis=0)
        # Exact SVD: the training sets here are at most a few thousand rows × 784 features.
        _, _, vt = np.linalg.svd(flat - self.mean_, full_matrices=False)
        self.components_ = vt[: self.k]
        return self

    def encode(self, x: np.ndarray) -> np.ndarray:
        assert self.mean_ is not None and self.components_ is not None, "fit first"
        return (x.reshape(len(x), -1).astype(np.float64) - self.mean_) @ self.components_.T

    def decode(self, codes: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
        assert self.mean_ is not None and self.components_ is not None, "fit first"
        out = codes @ self.components_ + self.mean_
        if self.clip is not None:
            out = np.clip(out, *self.clip)
        return out.reshape(len(codes), *shape).astype(np.float32)

    def reconstruct(self, x: np.ndarray) -> np.ndarray:
        return self.decode(self.encode(x), x.shape[1:])


def compare_with_pca(
    model: Any, train_x: Any, test_x: Any, batch_size: int, clip_pca: bool, test_target: Any = None
) -> dict[str, Any]:
    """Metrics of the AE and of PCA (same k, fitted on the same clean training images) on ``test_x``.

    ``test_target`` (default: ``test_x``) is what reconstructions are scored against: the clean images
    when ``test_x`` are their noisy versions.
    """
    from aeflow.evaluation.metrics import reconstruction_metrics
    from aeflow.models.inference import predict

    target = test_x if test_target is None else test_target
    ae_recon = predict(model, test_x, batch_size)
    pca = PCABaseline(model.latent_dim, clip=(0.0, 1.0) if clip_pca else None).fit(train_x)
    pca_recon = pca.reconstruct(test_x)
    ae = reconstruction_metrics(ae_recon, target)
    base = reconstruction_metrics(pca_recon, target)
    return {
        "ae": ae,
        "pca": base,
        "ae_over_pca_mse": ae["mse"] / base["mse"] if base["mse"] > 0 else None,
        "_recon": {"ae": ae_recon, "pca": pca_recon},
    }
