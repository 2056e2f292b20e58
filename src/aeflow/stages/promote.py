"""promote: score the challenger and the champion on the same evaluation set, then let the gate decide.

The evaluation set is each use case's DVC-tracked test data (its hash from ``dvc.lock`` goes into the
decision record, so a decision can be traced to the exact bytes it was made on):

* ``mnist`` – test images of ``data/raw/mnist`` (the noisy test inputs of ``data/interim/mnist`` for a
  denoising model), scored by per-pixel MSE against the clean images;
* ``speech`` – the test mixtures of ``data/interim/speech`` against their clean clips in
  ``data/raw/speech``, scored by the SI-SDR gain over the noisy input;
* ``sensor`` – the test segment of ``data/interim/sensor`` for the series the detector was trained on,
  scored by PR-AUC (also point F1, event recall and false-alarm rate).

Both models come from the registry (``models:/<name>/<version>``), not from ``models/``, so what is
compared is exactly what ``@champion`` serves.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from aeflow.config import Params
from aeflow.errors import AeflowError, DataError


class GateError(AeflowError):
    """The gate could not decide (no challenger, unfinished run, missing evaluation data)."""


# Each use case's fixed evaluation data (DVC outputs, relative to the repository root).
EVAL_PATHS: dict[str, list[str]] = {
    "mnist": ["data/raw/mnist", "data/interim/mnist"],
    "speech": ["data/raw/speech", "data/interim/speech"],
    "sensor": ["data/interim/sensor"],
}


def data_hash(use_case: str, root: Path = Path(".")) -> str:
    """The DVC hashes (from ``dvc.lock``) of the evaluation data, joined; "unknown" outside DVC."""
    from aeflow.tracking import dvc_data_hash

    parts = [dvc_data_hash(p, root / "dvc.lock") or "unknown" for p in EVAL_PATHS[use_case]]
    return "+".join(parts)


def _load_pytorch(uri: str) -> Any:
    import logging

    import mlflow.pytorch

    logging.getLogger("mlflow").setLevel(logging.ERROR)
    return mlflow.pytorch.load_model(uri, map_location="cpu").eval()


def score_mnist(model: Any, root: Path) -> dict[str, float]:
    """``test/mse`` (and PSNR/SSIM) of ``model`` on the MNIST test split."""
    from aeflow.data.images import load_image_splits, model_inputs
    from aeflow.evaluation.metrics import reconstruction_metrics
    from aeflow.stages.noise import load_noisy
    from aeflow.training import predict

    splits = load_image_splits(root / "data/raw/mnist")
    noisy = load_noisy(root / "data/interim/mnist") if model.needs_noisy_pairs else None
    test_in, _ = model_inputs(splits, noisy, model.needs_noisy_pairs)["test"]
    metrics = reconstruction_metrics(predict(model, test_in), splits["test"][0])
    return {f"test/{k}": float(v) for k, v in metrics.items()}


def score_speech(model: Any, root: Path) -> dict[str, float]:
    """Mean SI-SDR of the denoised test mixtures and its gain over the noisy input (PESQ/STOI are left to
    the evaluate stage: the gate needs one reliable number, fast)."""
    from aeflow.data.audio import read_audio
    from aeflow.evaluation.enhance import SpeechDenoiser
    from aeflow.evaluation.speech import si_sdr
    from aeflow.stages.speech import CleanClips, load_mixtures

    denoiser = SpeechDenoiser(model)
    clean = CleanClips(root / "data/raw/speech")
    noisy_dir = root / "data/interim/speech"
    mixtures = load_mixtures(noisy_dir, "test")
    if not len(mixtures):
        raise GateError(f"{noisy_dir / 'mixtures.csv'}: no test mixtures to score on. Fix: dvc repro.")
    before, after = [], []
    for row in mixtures.itertuples():
        ref = clean[row.clean_id]
        mix = read_audio(noisy_dir / row.path)[0]
        before.append(si_sdr(ref, mix))
        after.append(si_sdr(ref, denoiser(mix)[: len(ref)]))
    return {
        "test/si_sdr": float(np.mean(after)),
        "test/si_sdr_improvement": float(np.mean(np.subtract(after, before))),
    }


def score_sensor(detector: Any, params: Params, root: Path) -> dict[str, float]:
    """PR-AUC, point F1, event recall and false-alarm rate of a detector on its series' test segment."""
    from aeflow.data.sensor import read_series
    from aeflow.evaluation import anomaly
    from aeflow.stages.sensor import segments

    folder = root / "data/interim/sensor/series"
    series = {s.name: s for s in read_series(folder)}
    name = detector.config.get("series")
    if name not in series:
        raise GateError(
            f"{folder}: no series {name!r} (the one this detector was trained on). Fix: dvc repro, or "
            "promote a version trained on the current data."
        )
    s = series[name]
    a0, a1 = segments(s, params)["test"]
    values = s.frame[detector.sensors].to_numpy(dtype=np.float32)
    labels = s.frame["label"].to_numpy().astype(bool)[a0:a1]
    scores = detector.score(values)[a0:a1]
    flags = detector.flags(scores)
    out: dict[str, float] = {}
    ranking = anomaly.ranking_metrics(labels, scores)
    points = anomaly.point_metrics(labels, flags)
    events = anomaly.event_metrics(labels, flags, tolerance=detector.length)
    for key, value in {
        "pr_auc": ranking["pr_auc"],
        "roc_auc": ranking["roc_auc"],
        "f1": points["f1"],
        "event_recall": events["event_recall"],
        "far": anomaly.false_alarm_rate(labels, flags, detector.length),
    }.items():
        if value is not None:
            out[f"test/{key}"] = float(value)
    return out


def score_version(params: Params, use_case: str, name: str, version: str, root: Path) -> dict[str, float]:
    """Every gate metric of one registered version on the use case's evaluation set."""
    uri = f"models:/{name}/{version}"
    if use_case == "sensor":
        import logging

        import mlflow.pyfunc

        logging.getLogger("mlflow").setLevel(logging.ERROR)
        detector = mlflow.pyfunc.load_model(uri).unwrap_python_model().detector
        return score_sensor(detector, params, root)
    model = _load_pytorch(uri)
    return score_mnist(model, root) if use_case == "mnist" else score_speech(model, root)


def run(params: Params, use_case: str, root: Path = Path("."), dry_run: bool = False) -> dict[str, Any]:
    """The gate for one use case: returns the decision record (also written on the model version).

    Raises:
        GateError: nothing to decide on (no challenger), the challenger's run did not finish, or the
            metric the gate is configured with is not one the scorer produces.
    """
    import mlflow

    from aeflow.tracking import registered_model_name
    from aeflow.tracking.promotion import (
        CHALLENGER,
        CHAMPION,
        _now,
        alias_version,
        decide,
        record_decision,
        run_status,
    )

    check_paths(use_case, root)
    tracking = params.tracking
    mlflow.set_tracking_uri(tracking.resolved_uri())
    gate = getattr(params.promotion, use_case)
    name = registered_model_name(tracking, use_case)
    challenger = alias_version(tracking, name, CHALLENGER)
    champion = alias_version(tracking, name, CHAMPION)
    if challenger is None:
        raise GateError(
            f"{name}: no '{CHALLENGER}' alias, so there is nothing to promote. Fix: train one first "
            f"(dvc repro train@{use_case}, or aeflow retrain --use-case {use_case})."
        )
    status = run_status(tracking, name, challenger)
    if status != "FINISHED":
        raise GateError(
            f"{name} version {challenger}: its training run is {status}, not FINISHED; a failed or "
            "incomplete run is never promoted. Fix: rerun training (dvc repro)."
        )
    record: dict[str, Any] = {
        "time": _now(),
        "metric": gate.metric,
        "mode": gate.mode,
        "margin": gate.margin,
        "margin_type": gate.margin_type,
        "champion_version": champion,
        "data_hash": data_hash(use_case, root),
    }
    if champion == challenger:
        record.update(decision="kept", reason=f"version {challenger} is already the champion")
        return {"use_case": use_case, "registered_model": name, "challenger_version": challenger, **record}

    scores = {"challenger": score_version(params, use_case, name, challenger, root)}
    if champion is not None:
        scores["champion"] = score_version(params, use_case, name, champion, root)
    for who, got in scores.items():
        if gate.metric not in got:
            raise GateError(
                f"params.yaml promotion.{use_case}.metric: {gate.metric!r} is not measured for the {who} "
                f"(available: {', '.join(sorted(got))}). Fix: pick one of those."
            )
    ch = scores["challenger"][gate.metric]
    cp = scores["champion"][gate.metric] if champion is not None else None
    verdict = decide(ch, cp, gate)
    record.update(
        decision="promoted" if verdict.promote else "kept",
        reason=verdict.reason,
        challenger_score=ch,
        champion_score=cp,
        improvement=verdict.improvement,
        required_improvement=verdict.required,
    )
    if not dry_run:
        record_decision(tracking, name, challenger, record, verdict.promote)
    return {
        "use_case": use_case,
        "registered_model": name,
        "challenger_version": challenger,
        "scores": scores,
        "dry_run": dry_run,
        **record,
    }


def check_paths(use_case: str, root: Path) -> None:
    """The evaluation data must exist before any model is loaded."""
    for p in EVAL_PATHS[use_case]:
        if not (root / p).exists():
            raise DataError(f"{root / p}: missing evaluation data for the gate. Fix: run dvc repro first.")
