"""speech evaluate: the denoiser and the classical baselines on held-out speakers and noise.

Writes ``results/speech/evaluation/scores.json`` and ``examples/`` (audio and
spectrograms the report plays).
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aeflow.errors import DataError
from aeflow.io import atomic_dir, atomic_file, read_json, write_json
from aeflow.layout import SCORES
from aeflow.usecases.speech.corrupt import CleanClips, _safe, load_mixtures

if TYPE_CHECKING:
    from aeflow.config import Params


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

    from aeflow.models.registry import load_model
    from aeflow.usecases.speech.audio import read_audio
    from aeflow.usecases.speech.enhance import SpeechDenoiser
    from aeflow.usecases.speech.metrics import score, spectral_gating, spectral_subtraction

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
    params: Params, data: Path, noisy: Path, models: Path, results: Path, plots: Path
) -> dict[str, Any]:
    """Score the denoiser and both classical baselines on held-out speakers and noise."""
    from aeflow import tracking
    from aeflow.report.figures import spectrograms
    from aeflow.usecases.speech.audio import write_wav

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
        ex_tmp = stack.enter_context(atomic_dir(results / "examples"))
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
        write_json(results / SCORES, report)
        example_files = sorted(ex_tmp.iterdir())

    flat = {f"test/{m}/{k}": v for m, vals in overall.items() for k, v in vals.items()}
    flat["test/ae_gain_over_best_classical_db"] = report["ae_gain_over_best_classical_db"]
    artifacts = [(results / SCORES, "evaluation"), (plots / "scores.csv", "evaluation")]
    for f in example_files:
        folder = "audio" if f.suffix == ".wav" else "figures"
        artifacts.append((results / "examples" / f.name, folder))
    tracking.log_results(params.tracking, run_info, metrics=flat, artifacts=artifacts)
    return report
