"""The speech use case's stages: inject_noise, make_spectrograms, train and evaluate.

The generic stage modules dispatch here for ``speech``. Files:

* ``data/raw/speech``: clean clips ``audio/<split>/<id>.wav`` + ``manifest.csv`` (ingest);
* ``data/interim/speech``: noisy mixtures ``audio/<split>/<id>.wav`` + ``mixtures.csv`` with the target
  and the measured SNR of each (inject_noise);
* ``data/processed/speech``: ``{train,val}.npz`` model inputs/targets (time-concatenated log features)
  and ``stats.json`` (normalisation fitted on train only) (make_spectrograms);
* ``models/speech``: ``model.pt`` (with its front-end settings), ``run.json`` (train);
* ``metrics/speech.json``, ``plots/speech/scores.csv`` and ``plots/speech/examples/`` (evaluate).
"""

from __future__ import annotations

import contextlib
import re
from pathlib import Path
from typing import Any

import numpy as np

from aeflow.config import Params
from aeflow.errors import DataError
from aeflow.io import atomic_dir, atomic_file, load_arrays, read_json, save_arrays, write_json

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

    from aeflow.data.audio import write_wav
    from aeflow.data.speech import load_split
    from aeflow.data.speech_noise import NoiseBank, mix_at_snr

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
                    noisy, measured = mix_at_snr(clean, bank.make(source, len(clean), rng), snr)
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
        from aeflow.data.speech import read_manifest

        manifest = read_manifest(data)
        self.paths = {row.id: data / row.path for row in manifest.itertuples()}
        self.cache: dict[str, np.ndarray] = {}

    def __getitem__(self, clip_id: str) -> np.ndarray:
        from aeflow.data.audio import read_audio

        if clip_id not in self.cache:
            if clip_id not in self.paths:
                raise DataError(f"clean clip {clip_id!r} is not in the manifest. Fix: dvc repro from ingest.")
            self.cache[clip_id] = read_audio(self.paths[clip_id])[0]
        return self.cache[clip_id]


# ------------------------------------------------------------------------------------- make_spectrograms
def make_spectrograms(params: Params, data: Path, noisy: Path, out: Path) -> dict[str, Any]:
    """Log features of train/val mixtures and their clean references, normalised with train statistics."""
    from aeflow.data.audio import read_audio
    from aeflow.data.spectrogram import (
        SpectrogramCodec,
        fit_stats,
        loss_weights,
        model_input,
        model_target,
    )

    p, rate = params.speech.spectrogram, params.speech.ingest.sample_rate
    codec = SpectrogramCodec(p, rate)
    clean = CleanClips(data)
    feats: dict[str, tuple[list[np.ndarray], list[np.ndarray]]] = {}
    for split in ("train", "val"):
        mixtures = load_mixtures(noisy, split)
        noisy_logs, clean_logs = [], []
        for row in mixtures.itertuples():
            noisy_logs.append(codec.analyse(read_audio(noisy / row.path)[0])[0])
            clean_logs.append(codec.analyse(clean[row.clean_id])[0])
        feats[split] = (noisy_logs, clean_logs)
    if not feats["train"][0]:
        raise DataError(f"{noisy / 'mixtures.csv'}: no training mixtures. Fix: check the speaker split.")
    stats = fit_stats(*feats["train"], p)
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
                arrays["inputs"] = np.concatenate([model_input(n, stats, p) for n in noisy_logs], axis=1)
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


# ----------------------------------------------------------------------------------------------- train
def _snapshot_callback(processed: Path, info: dict[str, Any], p: Any) -> Any:
    """Per-epoch spectrograms of the first validation utterance (train's if there is no validation)."""
    from aeflow.data.spectrogram import FeatureStats, estimate_from_output
    from aeflow.tracking.callbacks import SpectrogramSnapshots

    stats = FeatureStats.from_json(info["stats"])
    split = "val" if info["frames"].get("val") else "train"
    arrays = load_arrays(processed / f"{split}.npz")
    n = int(arrays["lengths"][0])
    inputs, targets = arrays["inputs"][:, :n], arrays["targets"][:, :n]
    noisy_log = inputs * stats.std[:, None] + stats.mean[:, None]
    clean_log = estimate_from_output(noisy_log, targets, stats, p.target, p.mask_floor_db)

    def to_panels(output: np.ndarray) -> list[tuple[str, np.ndarray]]:
        denoised = estimate_from_output(noisy_log, output, stats, p.target, p.mask_floor_db)
        return [
            ("noisy", noisy_log),
            ("denoised", denoised),
            ("clean" if p.target == "magnitude" else "target", clean_log),
        ]

    return SpectrogramSnapshots(
        inputs, to_panels, "", p.patch_frames, p.patch_hop, info["sample_rate"], p.hop_length
    )


def train(
    params: Params, processed: Path, validation: Path, models: Path, plots: Path, data_path: str
) -> dict[str, Any]:
    """Fit the spectrogram denoiser on patches; log to MLflow and register the model."""
    from aeflow import tracking
    from aeflow.data.datamodules import PatchDataModule, PatchDataset
    from aeflow.data.spectrogram import patch_starts
    from aeflow.models.registry import build_model, save_model
    from aeflow.stages.train import check_validation
    from aeflow.tracking.callbacks import EpochHistory
    from aeflow.training import fit_autoencoder

    check_validation(validation)
    cfg = params.speech
    p = cfg.spectrogram
    info = read_json(processed / "stats.json") if (processed / "stats.json").is_file() else None
    if info is None:
        raise DataError(f"{processed / 'stats.json'}: missing. Fix: run make_spectrograms (dvc repro).")
    sets = {}
    for split, hop in (("train", p.patch_hop), ("val", p.patch_frames)):
        arrays = load_arrays(processed / f"{split}.npz")
        starts = patch_starts(arrays["lengths"], p.patch_frames, hop)
        sets[split] = PatchDataset(
            arrays["inputs"], arrays["targets"], starts, p.patch_frames, weights=arrays.get("weights")
        )
    if not len(sets["train"]):
        raise DataError(
            f"{processed / 'train.npz'}: no training patch of {p.patch_frames} frames fits in the clips. "
            "Fix: lower speech.spectrogram.patch_frames or use longer clips."
        )
    dm = PatchDataModule(sets["train"], sets["val"], cfg.train.batch_size)

    # Bad model params stop here, before an MLflow run exists.
    build_model(
        cfg.model.model_dump(),
        [1, int(info["bins"]), p.patch_frames],
        output="identity",
        where="speech.model",
    )
    tags = tracking.lineage_tags("speech", "train", data_path, {tracking.TAG_VARIANT: cfg.model.variant})
    logger = tracking.make_logger(
        params.tracking, "speech", f"speech-{cfg.model.variant}-train", tags, params.dump()
    )
    logger.log_hyperparams(tracking.flatten({"seed": params.seed, **cfg.model_dump(by_alias=True)}))
    snapshot = _snapshot_callback(processed, info, p)
    with contextlib.ExitStack() as stack:
        models_tmp = stack.enter_context(atomic_dir(models))
        loss_tmp = stack.enter_context(atomic_file(plots / "loss.csv"))
        recon_tmp = stack.enter_context(atomic_dir(plots / "recon"))
        snapshot.out_dir = recon_tmp
        result = fit_autoencoder(
            cfg.model.model_dump(),
            None,
            None,
            cfg.train,
            params.seed,
            datamodule=dm,
            input_shape=[1, int(info["bins"]), p.patch_frames],
            output="identity",
            logger=logger,
            callbacks=[EpochHistory(loss_tmp), snapshot],
            checkpoint_dir=models_tmp / "checkpoints",
            where="speech.model",
        )
        model = result.model
        model.data_config = {
            "use_case": "speech",
            "sample_rate": info["sample_rate"],
            "spectrogram": info["spectrogram"],
            "stats": info["stats"],
        }
        save_model(model, str(models_tmp / "model.pt"))
        summary = {
            "variant": model.variant_name,
            "latent_dim": model.latent_dim,
            "input_shape": list(model.input_shape),
            "target": p.target,
            "epochs": result.epochs,
            "best_val_loss": result.best_val_loss,
            "train_patches": len(sets["train"]),
            "train_seconds": round(result.seconds, 2),
            "train_patches_per_second": round(result.images_per_second, 1),
        }
        logger.log_metrics({"train/patches_per_second": result.images_per_second})
        registration = tracking.log_and_register_model(
            params.tracking,
            logger.run_id,
            model,
            "speech",
            description=f"{model.variant_name} spectrogram autoencoder ({p.target} target), latent "
            f"{model.latent_dim}, {info['sample_rate']} Hz, trained {result.epochs} epochs on {data_path}.",
        )
        write_json(
            models_tmp / "run.json",
            {
                **tracking.run_record(params.tracking, logger, "speech"),
                **registration,
                **summary,
            },
        )
    logger.finalize("success")
    from aeflow.tracking.promotion import mark_candidate

    summary["aliases"] = mark_candidate(
        params.tracking, registration["registered_model"], registration["version"]
    )
    return summary


# -------------------------------------------------------------------------------------------- evaluate
def _summary(frame: Any, by: list[str]) -> dict[str, Any]:
    metrics = [c for c in ("si_sdr", "snr", "pesq", "stoi", "si_sdr_improvement") if c in frame]
    out: dict[str, Any] = {}
    for key, group in frame.groupby(by, sort=True):
        key = key if isinstance(key, tuple) else (key,)
        node = out
        for k in key[:-1]:
            node = node.setdefault(str(k), {})
        node[str(key[-1])] = {m: round(float(group[m].mean()), 4) for m in metrics}
    return out


def score_test(params: Params, data: Path, noisy: Path, models: Path) -> tuple[Any, list[dict[str, Any]]]:
    """Score every test mixture with every method; return the per-mixture frame and example signals."""
    import pandas as pd

    from aeflow.data.audio import read_audio
    from aeflow.evaluation.enhance import SpeechDenoiser
    from aeflow.evaluation.speech import score, spectral_gating, spectral_subtraction
    from aeflow.models.registry import load_model

    cfg = params.speech
    ev, sp = cfg.evaluate, cfg.spectrogram
    model_file = models / "model.pt"
    if not model_file.is_file():
        raise DataError(f"{model_file}: missing. Fix: run the train stage first (dvc repro).")
    denoiser = SpeechDenoiser(load_model(str(model_file)))
    rate = denoiser.rate
    clean_clips = CleanClips(data)
    mixtures = load_mixtures(noisy, "test")
    if not len(mixtures):
        raise DataError(f"{noisy / 'mixtures.csv'}: no test mixtures. Fix: check the speaker split.")
    # Examples: spread over the conditions (source × SNR) so the report plays different ones.
    picks = set(mixtures.groupby(["source", "snr_db"]).head(1).index[: ev.num_audio_examples])
    records, examples = [], []
    for i, row in enumerate(mixtures.itertuples()):
        clean = clean_clips[row.clean_id]
        mix = read_audio(noisy / row.path)[0]
        noisy_log, est_log, phase = denoiser.features(mix)
        outputs = {
            "noisy": mix,
            "autoencoder": denoiser.codec.synthesise(est_log, phase, len(mix)),
            "spectral_subtraction": spectral_subtraction(
                mix,
                rate,
                n_fft=sp.n_fft,
                hop=sp.hop_length,
                oversubtract=ev.subtraction_oversubtract,
                floor=ev.subtraction_floor,
                noise_quantile=ev.noise_quantile,
            ),
            "spectral_gating": spectral_gating(mix, rate, stationary=ev.noisereduce_stationary),
        }
        for method, estimate in outputs.items():
            records.append(
                {
                    "id": row.id,
                    "speaker": row.speaker,
                    "source": row.source,
                    "snr_db": row.snr_db,
                    "method": method,
                    **score(clean, estimate, rate, pesq=ev.pesq, stoi=ev.stoi),
                }
            )
        if i in picks:
            examples.append(
                {
                    "id": row.id,
                    "source": row.source,
                    "snr_db": row.snr_db,
                    "signals": {"clean": clean, **outputs},
                    "features": [
                        ("noisy", noisy_log),
                        ("autoencoder", est_log),
                        ("clean", denoiser.codec.analyse(clean)[0]),
                    ],
                }
            )
    frame = pd.DataFrame(records)
    base = frame[frame["method"] == "noisy"].set_index("id")["si_sdr"]
    frame["si_sdr_improvement"] = frame["si_sdr"] - frame["id"].map(base)
    return frame, examples


def evaluate(
    params: Params, data: Path, noisy: Path, models: Path, metrics: Path, plots: Path
) -> dict[str, Any]:
    """Score the denoiser and both classical baselines on held-out speakers and noise."""
    from aeflow import tracking
    from aeflow.data.audio import write_wav
    from aeflow.report.figures import spectrograms

    run_file = models / "run.json"
    if not run_file.is_file():
        raise DataError(f"{run_file}: missing. Fix: run the train stage first (dvc repro).")
    run_info = read_json(run_file)
    frame, examples = score_test(params, data, noisy, models)
    rate, hop = params.speech.ingest.sample_rate, params.speech.spectrogram.hop_length

    frame["input_snr"] = frame["snr_db"].map(lambda v: f"{v:g}dB")
    overall = _summary(frame, ["method"])
    best_classical = max(
        overall["spectral_subtraction"]["si_sdr_improvement"],
        overall["spectral_gating"]["si_sdr_improvement"],
    )
    report = {
        "test_mixtures": int(frame["id"].nunique()),
        "test_speakers": sorted(frame["speaker"].unique().tolist()),
        "test_sources": sorted(frame["source"].unique().tolist()),
        "test": overall,
        "by_snr": _summary(frame, ["input_snr", "method"]),
        "by_source": _summary(frame, ["source", "method"]),
        "ae_gain_over_best_classical_db": round(
            overall["autoencoder"]["si_sdr_improvement"] - best_classical, 4
        ),
        "train": {"epochs": run_info.get("epochs"), "best_val_loss": run_info.get("best_val_loss")},
    }
    with contextlib.ExitStack() as stack:
        ex_tmp = stack.enter_context(atomic_dir(plots / "examples"))
        scores_tmp = stack.enter_context(atomic_file(plots / "scores.csv"))
        # Wide (one row per input SNR, one column per method × metric) so dvc plots can draw one line
        # per method.
        wide = frame.pivot_table(
            index="snr_db", columns="method", values=[c for c in ("si_sdr", "pesq", "stoi") if c in frame]
        )
        wide.columns = [f"{method}_{metric}" for metric, method in wide.columns]
        wide.round(4).reset_index().to_csv(scores_tmp, index=False)
        listing = []
        for n, ex in enumerate(examples):
            stem = f"{n:02d}_{_safe(ex['source'])}_{ex['snr_db']:g}dB"
            files = {}
            for name, signal in ex["signals"].items():
                write_wav(
                    ex_tmp / f"{stem}_{name}.wav",
                    signal,
                    rate,
                    subtype="PCM_16" if name == "clean" else "FLOAT",
                )
                files[name] = f"{stem}_{name}.wav"
            png = spectrograms(ex["features"], rate, hop, f"{ex['id']} ({ex['source']}, {ex['snr_db']:g} dB)")
            with atomic_file(ex_tmp / f"{stem}_spectrograms.png") as f:
                f.write_bytes(png)
            listing.append(
                {
                    "id": ex["id"],
                    "source": ex["source"],
                    "snr_db": ex["snr_db"],
                    "audio": files,
                    "figure": f"{stem}_spectrograms.png",
                }
            )
        write_json(ex_tmp / "examples.json", listing)
        write_json(metrics, report)
        example_files = sorted(ex_tmp.iterdir())

    flat = {f"test/{m}/{k}": v for m, vals in overall.items() for k, v in vals.items()}
    flat["test/ae_gain_over_best_classical_db"] = report["ae_gain_over_best_classical_db"]
    artifacts = [(metrics, "evaluation"), (plots / "scores.csv", "evaluation")]
    for f in example_files:
        folder = "audio" if f.suffix == ".wav" else "figures"
        artifacts.append((plots / "examples" / f.name, folder))
    tracking.log_results(params.tracking, run_info, metrics=flat, artifacts=artifacts)
    return report
