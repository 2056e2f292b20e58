"""What the sensor train stage fits: one detector per series, each on its normal training segment, with a
threshold fitted on the validation segment scored in context, registered as a pyfunc (``aeflow-sensor``)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from aeflow.errors import DataError
from aeflow.training.service import TrainingJob, TrainingPlan
from aeflow.usecases.sensor.series import normal_rows, safe_name, season_rows, segments, sensor_columns

if TYPE_CHECKING:
    from aeflow.config import Params

#: How the pyfunc detector is registered, here and by ``aeflow sync`` for a detector trained offline.
REGISTRAR = "aeflow.usecases.sensor.serving:register_detector_file"


def _job(params: Params, s: Any) -> TrainingJob:
    from aeflow.evaluation.thresholds import choose_threshold, history_stats
    from aeflow.usecases.sensor.detector import (
        AnomalyDetector,
        flat_limits,
        season_readings_ref,
        sensor_error_scale,
    )
    from aeflow.usecases.sensor.windows import Scaler, fill_missing, make_windows

    cfg = params.sensor
    w = cfg.windows
    sensors = sensor_columns(s.frame)
    bounds = segments(s, params)
    values = s.frame[sensors].to_numpy(dtype=np.float32)
    (t0, t1), (v0, v1) = bounds["train"], bounds["val"]
    scaler = Scaler.fit(values[t0:t1], w.scaler)  # the training segment only
    filled = scaler.transform(fill_missing(values, scaler.center))
    train_x = make_windows(filled[t0:t1], w.length, w.train_stride)
    val_x = make_windows(filled[v0:v1], w.length, 1)
    if len(train_x) < 8:
        raise DataError(
            f"{s.name}: the training segment has {t1 - t0} rows, too few for windows of {w.length}. "
            "Fix: raise sensor.ingest.train_fraction or lower sensor.windows.length."
        )
    name = safe_name(s.name)
    season = season_rows(s, cfg.threshold)  # a bad season stops here, before any MLflow run exists

    def finish(model: Any, result: Any) -> tuple[dict[str, Any], dict[str, float]]:
        model.data_config = {
            "use_case": "sensor",
            "series": s.name,
            "sensors": sensors,
            "window_length": w.length,
            "score_steps": w.score_steps,
            "smoothing": cfg.threshold.smoothing,
            "history": cfg.threshold.history,
            "history_ref": None,
            "history_outlier": cfg.threshold.history_outlier,
            "history_outlier_rows": cfg.threshold.history_outlier_rows,
            "cooldown": cfg.threshold.cooldown,
            "season_rows": season,
            "season_tolerance": cfg.threshold.season_tolerance,
            "flat_limits": flat_limits(
                values[t0:t1], cfg.threshold.flatline_min_run, cfg.threshold.flatline_risk
            ),
            "scaler": scaler.to_json(),
            "threshold": None,
        }
        # Threshold from normal validation data (the training segment if there is no validation segment),
        # scored with the readings before it as context, as it will be in use.
        ref = normal_rows(bounds, w.length)
        plain = AnomalyDetector(model, {**model.data_config, "history": 0})
        # per-sensor errors of normal readings, by member (one for a single model)
        by_member = plain.member_errors(plain.windows_of(values[: ref.stop]))[:, ref]
        model.data_config["sensor_error_scale"] = sensor_error_scale(by_member.mean(axis=0))  # a share's unit
        if cfg.threshold.history:
            refs = [list(history_stats(m.mean(axis=1, dtype=np.float64))) for m in by_member]
            model.data_config["history_ref"] = refs if len(refs) > 1 else refs[0]
        if cfg.threshold.season_readings:  # the difference from a season back, on the same normal rows
            (
                model.data_config["season_readings_ref"],
                model.data_config["season_readings_repeat"],
            ) = season_readings_ref(
                filled, season, cfg.threshold.season_tolerance, ref, cfg.threshold.season_readings_correlation
            )
        detector = AnomalyDetector.from_model(model)
        # the threshold's explanation names the reading comparison only where this detector makes it
        rule = cfg.threshold.model_copy(update={"season_readings": detector.reading_ref is not None})
        threshold, details = choose_threshold(detector.score(values[: ref.stop])[ref], rule)
        model.data_config["threshold"] = float(threshold)
        model.data_config["threshold_details"] = details
        summary = {
            "threshold": float(threshold),
            "threshold_details": details,
            "train_windows": len(train_x),
            # what the report says about the detector (it reads files, not params)
            "architecture": cfg.model.architecture,
            "members": cfg.model.members,
            "window_length": w.length,
            "cooldown": cfg.threshold.cooldown,
        }
        return summary, {"threshold/value": float(threshold), "train/windows": float(len(train_x))}

    def describe(model: Any, result: Any) -> str:
        c = model.data_config
        explanation = c["threshold_details"].get("explanation", cfg.threshold.method)
        several = f" ({cfg.model.members} models, scores averaged)" if cfg.model.members > 1 else ""
        readings = ""
        if cfg.threshold.season_readings:
            repeat, least = c.get("season_readings_repeat"), cfg.threshold.season_readings_correlation
            if c.get("season_readings_ref"):
                readings = (
                    f" Readings compared with a season earlier (they repeat at correlation {repeat:.2f})."
                )
            elif repeat is not None and repeat < least:
                readings = (
                    f" Readings not compared: the normal data repeat at correlation {repeat:.2f} one season "
                    f"later, below season_readings_correlation {least:g}."
                )
            else:
                readings = (
                    " Readings not compared: the normal data hold less than two seasons, or do not vary."
                )
        return (
            f"{model.variant_name} {cfg.model.architecture} detector{several} for {s.name}: "
            f"windows of {w.length}, threshold {c['threshold']:.4g} ({explanation}).{readings}"
        )

    return TrainingJob(
        model=cfg.model,
        train=cfg.train,
        input_shape=list(train_x.shape[1:]),
        run_name=f"sensor-{name}-{cfg.model.variant}-train",
        description=describe,
        key=s.name,
        folder=name,
        output="identity",
        arrays=(train_x, None, val_x, None),
        data_digest=[train_x, val_x, values],
        finish=finish,
        hparams={
            "seed": params.seed,
            "series": s.name,
            **cfg.model_dump(include={"model", "train", "windows", "threshold"}),
        },
        tags={"aeflow.series": s.name},
        registrar=REGISTRAR,
        unit="windows",
    )


def training_plan(params: Params, data: Path, inputs: Path) -> TrainingPlan:
    """One job per series of ``inputs`` (the series with injected faults; training reads only the normal
    training segment of each)."""
    from aeflow.usecases.sensor.sources import read_series

    series = read_series(inputs / "series")
    return TrainingPlan("sensor", [_job(params, s) for s in series], group_key="series")
