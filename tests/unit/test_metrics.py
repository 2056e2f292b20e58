"""Metrics and the PCA baseline against hand-computed numbers and scikit-learn."""

from __future__ import annotations

import math

import numpy as np
import pytest

from aeflow.evaluation.baselines import PCABaseline
from aeflow.evaluation.metrics import reconstruction_metrics


def test_known_values():
    target = np.zeros((2, 1, 8, 8))
    recon = np.full((2, 1, 8, 8), 0.1)
    m = reconstruction_metrics(recon, target)
    assert m["mse"] == pytest.approx(0.01)
    assert m["psnr_db"] == pytest.approx(20.0)
    assert m["bce_nats"] == pytest.approx(-64 * math.log(0.9))


def test_perfect_reconstruction():
    x = np.random.default_rng(0).random((3, 1, 16, 16))
    m = reconstruction_metrics(x, x)
    assert m["mse"] == 0 and m["psnr_db"] == 100.0 and m["ssim"] == pytest.approx(1.0, abs=1e-4)


def test_pca_matches_scikit_learn(shuffled):
    from sklearn.decomposition import PCA

    x = shuffled[0][:600, None] / 255.0
    ours = PCABaseline(10, clip=None).fit(x[:500]).reconstruct(x[500:])
    sk = PCA(10, svd_solver="full").fit(x[:500].reshape(500, -1))
    theirs = sk.inverse_transform(sk.transform(x[500:].reshape(100, -1))).reshape(ours.shape)
    assert np.allclose(ours, theirs, atol=1e-5)
    clipped = PCABaseline(10).fit(x[:500]).reconstruct(x[500:])
    assert clipped.min() >= 0 and clipped.max() <= 1
    assert np.mean((clipped - x[500:]) ** 2) <= np.mean((ours - x[500:]) ** 2)


def test_pca_error_falls_with_components(shuffled):
    x = shuffled[0][:700, None] / 255.0
    errs = [np.mean((PCABaseline(k).fit(x[:600]).reconstruct(x[600:]) - x[600:]) ** 2) for k in (2, 10, 32)]
    assert errs[0] > errs[1] > errs[2]
    assert 0.04 < errs[0] < 0.08  # ~0.056 on MNIST (README of shared/datasets)
