"""Lightning training on real digits: it learns, it is deterministic, callbacks write their files."""

from __future__ import annotations

import numpy as np

from aeflow.evaluation.baselines import PCABaseline
from aeflow.models.inference import predict
from aeflow.sections import AugmentParams, TrainParams
from aeflow.tracking.callbacks import EpochHistory, ReconstructionGrid
from aeflow.training import fit_autoencoder

MODEL = {"variant": "vanilla", "architecture": "conv", "channels": [16, 32], "hidden_dims": [128]}


def _data(shuffled, n=1200):
    x = shuffled[0][:, None] / 255.0
    return x[:n].astype(np.float32), x[n : n + 300].astype(np.float32), x[4000:4500].astype(np.float32)


def test_autoencoder_beats_pca_at_same_k_on_held_out_digits(shuffled, tmp_path):
    train, val, test = _data(shuffled)
    params = TrainParams(
        epochs=8,
        batch_size=32,
        progress_bar=False,
        augment=AugmentParams(rotation_deg=0, translate_px=0, scale=0),
    )
    res = fit_autoencoder(
        MODEL,
        train,
        val,
        params,
        seed=0,
        checkpoint_dir=tmp_path / "ck",
        callbacks=[ReconstructionGrid(val[:8], tmp_path / "recon"), EpochHistory(tmp_path / "loss.csv")],
    )
    ae = float(np.mean((predict(res.model, test) - test) ** 2))
    pca = float(np.mean((PCABaseline(10).fit(train).reconstruct(test) - test) ** 2))
    print(f"AE {ae:.4f} PCA {pca:.4f}")
    assert ae < 0.9 * pca, (ae, pca)
    assert res.epochs == 8 and res.best_val_loss is not None
    assert sorted(p.name for p in (tmp_path / "recon").iterdir())[0] == "epoch_001.png"
    assert len(list((tmp_path / "recon").iterdir())) == 8
    lines = (tmp_path / "loss.csv").read_text().splitlines()
    assert lines[0].startswith("epoch,") and "val_loss" in lines[0] and len(lines) == 9
    losses = [float(r.split(",")[lines[0].split(",").index("train_loss")]) for r in lines[1:]]
    assert losses[-1] < losses[0]


def test_same_seed_same_weights(shuffled):
    train, val, _ = _data(shuffled, 300)
    params = TrainParams(epochs=1, progress_bar=False)
    a = fit_autoencoder(MODEL, train, val, params, seed=3).model.state_dict()
    b = fit_autoencoder(MODEL, train, val, params, seed=3).model.state_dict()
    assert all(np.array_equal(a[k].numpy(), b[k].numpy()) for k in a)
