"""speech inject_noise: mix every clean clip with real or generated noise at exact SNRs.

Writes ``data/interim/speech``: noisy mixtures ``audio/<split>/<id>.wav`` + ``mixtures.csv`` with the
target and the measured SNR of each. Also how later steps read them back (:func:`load_mixtures`,
:class:`CleanClips`).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from aeflow.errors import DataError
from aeflow.io import atomic_dir, atomic_file, write_json

if TYPE_CHECKING:
    from aeflow.config import Params

SPLIT_STREAM = {"train": 0, "val": 1, "test": 2}
METHODS = ("noisy", "autoencoder", "spectral_subtraction", "spectral_gating")


def _safe(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9.-]+", "-", text).strip("-")


def _read_csv(path: Path, what: str) -> Any:
    import pandas as pd

    if not path.is_file():
        raise DataError(f"{path}: missing. Fix: run the {what} stage first (dvc repro).")
    return pd.read_csv(path, keep_default_na=False)


# ------------------------------------------------------------------------------------------ inject_noise
def inject_noise(params: Params, data: Path, out: Path) -> dict[str, Any]:
    """Mix every clean clip with noise at the configured SNRs; write WAVs and ``mixtures.csv``."""
    import pandas as pd

    from aeflow.usecases.speech.audio import write_wav
    from aeflow.usecases.speech.noise import NoiseBank, mix_at_snr, vary_noise
    from aeflow.usecases.speech.sources import load_split

    cfg, rate = params.speech.noise, params.speech.ingest.sample_rate
    bank = NoiseBank(rate, Path(cfg.noise_dir) if cfg.noise_dir else None)
    rows: list[dict[str, Any]] = []
    with atomic_dir(out) as tmp:
        for split, stream in SPLIT_STREAM.items():
            rng = np.random.default_rng([params.seed, stream, 11])
            sources = cfg.test_sources if split == "test" else cfg.train_sources
            for clip_id, speaker, clean in load_split(data, split):
                if split == "test":
                    combos = [(s, snr) for s in sources for snr in cfg.snrs_db]
                else:
                    combos = [
                        (sources[rng.integers(len(sources))], cfg.snrs_db[rng.integers(len(cfg.snrs_db))])
                        for _ in range(cfg.mixtures_per_clip)
                    ]
                for k, (source, snr) in enumerate(combos):
                    noise = bank.make(source, len(clean), rng)
                    if split != "test":  # the test keeps the noise as recorded: it scores the real thing
                        noise = vary_noise(
                            noise, rate, rng, cfg.train_tilt_db_per_octave, cfg.train_level_wander_db
                        )
                    noisy, measured = mix_at_snr(clean, noise, snr)
                    mix_id = f"{clip_id}__{k:02d}_{_safe(source)}_{snr:g}dB"
                    rel = Path("audio") / split / f"{mix_id}.wav"
                    write_wav(tmp / rel, noisy, rate, subtype="FLOAT")
                    rows.append(
                        {
                            "id": mix_id,
                            "clean_id": clip_id,
                            "speaker": speaker,
                            "split": split,
                            "source": source,
                            "snr_db": float(snr),
                            "measured_snr_db": round(float(measured), 4),
                            "path": rel.as_posix(),
                        }
                    )
        frame = pd.DataFrame(rows)
        with atomic_file(tmp / "mixtures.csv") as f:
            frame.to_csv(f, index=False)
        err = (frame["measured_snr_db"] - frame["snr_db"]).abs() if len(frame) else frame
        info = {
            "seed": params.seed,
            "sample_rate": rate,
            "mixtures": {s: int((frame["split"] == s).sum()) for s in SPLIT_STREAM} if len(frame) else {},
            "train_sources": cfg.train_sources,
            "test_sources": cfg.test_sources,
            "snrs_db": cfg.snrs_db,
            "train_tilt_db_per_octave": cfg.train_tilt_db_per_octave,
            "train_level_wander_db": cfg.train_level_wander_db,
            "max_abs_snr_error_db": float(err.max()) if len(frame) else None,
        }
        write_json(tmp / "info.json", info)
    return info


def load_mixtures(noisy: Path, split: str | None = None) -> Any:
    """``mixtures.csv`` of ``noisy`` (optionally one split)."""
    frame = _read_csv(noisy / "mixtures.csv", "inject_noise")
    return frame if split is None else frame[frame["split"] == split].reset_index(drop=True)


class CleanClips:
    """Clean references by id, read once (several mixtures share one clean clip)."""

    def __init__(self, data: Path) -> None:
        from aeflow.usecases.speech.sources import read_manifest

        manifest = read_manifest(data)
        self.paths = {row.id: data / row.path for row in manifest.itertuples()}
        self.cache: dict[str, np.ndarray] = {}

    def __getitem__(self, clip_id: str) -> np.ndarray:
        from aeflow.usecases.speech.audio import read_audio

        if clip_id not in self.cache:
            if clip_id not in self.paths:
                raise DataError(f"clean clip {clip_id!r} is not in the manifest. Fix: dvc repro from ingest.")
            self.cache[clip_id] = read_audio(self.paths[clip_id])[0]
        return self.cache[clip_id]
