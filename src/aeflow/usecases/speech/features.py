"""speech featurize: STFT features of the mixtures, normalised with train statistics.

Writes ``data/processed/speech``: ``{train,val}.npz`` model inputs/targets (time-concatenated log features)
and ``stats.json`` (normalisation fitted on train only).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from aeflow.errors import DataError
from aeflow.io import atomic_dir, save_arrays, write_json
from aeflow.usecases.speech.corrupt import CleanClips, load_mixtures

if TYPE_CHECKING:
    from aeflow.config import Params


# ------------------------------------------------------------------------------------- make_spectrograms
def make_spectrograms(params: Params, data: Path, noisy: Path, out: Path) -> dict[str, Any]:
    """Log features of train/val mixtures and their clean references, normalised with train statistics."""
    from aeflow.usecases.speech.audio import read_audio
    from aeflow.usecases.speech.spectrogram import (
        SpectrogramCodec,
        fit_stats,
        loss_weights,
        model_input,
        model_target,
        phase_projected,
    )

    p, rate = params.speech.spectrogram, params.speech.ingest.sample_rate
    codec = SpectrogramCodec(p, rate)
    clean = CleanClips(data)
    feats: dict[str, tuple[list[np.ndarray], list[np.ndarray]]] = {}
    for split in ("train", "val"):
        mixtures = load_mixtures(noisy, split)
        noisy_logs, clean_logs = [], []
        for row in mixtures.itertuples():
            noisy_log, noisy_phase = codec.analyse(read_audio(noisy / row.path)[0])
            clean_log, clean_phase = codec.analyse(clean[row.clean_id])
            if p.phase_sensitive:  # the target (and its statistics) aim at |S|·cos(θS − θY)
                clean_log = phase_projected(clean_log, clean_phase, noisy_phase)
            noisy_logs.append(noisy_log)
            clean_logs.append(clean_log)
        feats[split] = (noisy_logs, clean_logs)
    if not feats["train"][0]:
        raise DataError(f"{noisy / 'mixtures.csv'}: no training mixtures. Fix: check the speaker split.")
    stats = fit_stats(*feats["train"], p, rate)
    info: dict[str, Any] = {
        "sample_rate": rate,
        "bins": codec.bins,
        "spectrogram": p.model_dump(),
        "stats": stats.to_json(),
        "frames": {},
    }
    with atomic_dir(out) as tmp:
        for split, (noisy_logs, clean_logs) in feats.items():
            lengths = np.array([f.shape[1] for f in noisy_logs], dtype=np.int64)
            pairs = list(zip(noisy_logs, clean_logs, strict=True))
            empty = np.zeros((codec.bins, 0), dtype=np.float32)
            arrays = {"inputs": empty, "targets": empty, "lengths": lengths}
            if pairs:
                arrays["inputs"] = np.concatenate(
                    [model_input(n, stats, p, rate) for n in noisy_logs], axis=1
                )
                arrays["targets"] = np.concatenate(
                    [model_target(n, c, stats, p.target, p.mask_floor_db) for n, c in pairs], axis=1
                )
            if p.loss_weight != "uniform":  # uniform: plain MSE, no third array to carry
                arrays["weights"] = (
                    np.concatenate([loss_weights(n, c, p) for n, c in pairs], axis=1) if pairs else empty
                )
            save_arrays(tmp / f"{split}.npz", arrays)
            info["frames"][split] = int(lengths.sum())
        write_json(tmp / "stats.json", info)
    return {k: v for k, v in info.items() if k != "stats"}
