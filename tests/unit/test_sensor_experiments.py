"""Files as experiments: a folder of labelled wide files (one test-rig run per file, readings every second,
the first rows normal) goes through the sensor stages by params alone; each file is its own series, split by
its own first rows, and scored per file and pooled over every scored reading."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from aeflow.params import parse_params
from aeflow.stages.pipeline import run_use_case
from aeflow.usecases.sensor.params import SensorIngestParams
from aeflow.usecases.sensor.sources import simulate_pump

ROOT = Path(__file__).resolve().parents[2]
TRAIN_ROWS = 300


def rig(folder: Path) -> list[int]:
    """Two runs of 600 and 540 one-second readings; a 5 σ level shift on one sensor in each, labelled."""
    folder.mkdir(parents=True)
    lengths = []
    for i, (sensor, rows) in enumerate((("pressure", 600), ("flow", 540))):
        days = rows / 86400
        f = simulate_pump(SensorIngestParams(days=days, sample_minutes=1 / 60), seed=i).frame.head(rows)
        f = f.rename(columns={"timestamp": "datetime", "label": "anomaly"})
        f.loc[420:470, sensor] += 5 * f[sensor][:TRAIN_ROWS].std()
        f.loc[420:470, "anomaly"] = 1
        f.to_csv(folder / f"run-{i}.csv", sep=";", index=False)
        lengths.append(len(f))
    return lengths


def rig_params(tmp_path: Path) -> dict:
    """params.yaml pointed at the rig's folder by params alone (its own labels, no injected faults), a
    quick training, one baseline and a tracking store in ``tmp_path``."""
    data = yaml.safe_load((ROOT / "params.yaml").read_text())
    data["sensor"]["ingest"].update(
        source="csv",
        path=str(tmp_path / "rig"),
        timestamp_column="datetime",
        label_column="anomaly",
        train_rows=TRAIN_ROWS,
    )
    data["sensor"]["anomalies"]["inject"] = "never"  # the files' own labels
    data["sensor"]["train"].update(epochs=2, progress_bar=False)
    data["sensor"]["evaluate"]["baselines"] = ["rolling_zscore"]
    data["tracking"].update(
        tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}", artifact_location=str(tmp_path / "art")
    )
    return data


def test_a_folder_of_runs_is_scored_per_file_and_pooled(tmp_path: Path) -> None:
    lengths = rig(tmp_path / "rig")
    data = rig_params(tmp_path)
    report = run_use_case(parse_params(data), "sensor", tmp_path / "project")["evaluate"]

    assert list(report["series"]) == ["run-0.csv", "run-1.csv"]
    per_file = [report["series"][f]["autoencoder"] for f in ("run-0.csv", "run-1.csv")]
    scored = [n - TRAIN_ROWS for n in lengths]  # each file's own rows after its first 300
    assert [m["tp"] + m["fp"] + m["fn"] + m["tn"] for m in per_file] == scored
    assert [m["tp"] + m["fn"] for m in per_file] == [51, 51]  # the labelled readings of each run
    pooled = report["summary"]["autoencoder"]
    tp, fp, fn, tn = (sum(m[k] for m in per_file) for k in ("tp", "fp", "fn", "tn"))
    assert pooled["pooled_readings"] == sum(scored)
    assert pooled["pooled_f1"] == pytest.approx(2 * tp / (2 * tp + fp + fn), abs=1e-6)
    assert pooled["pooled_far_pct"] == pytest.approx(100 * fp / (fp + tn), abs=1e-4)
    assert pooled["pooled_mar_pct"] == pytest.approx(100 * fn / (fn + tp), abs=1e-4)
    events = sum(m["events_total"] for m in per_file)
    assert events == 2 and pooled["pooled_event_recall"] == pytest.approx(
        sum(m["events_detected"] for m in per_file) / events
    )
    assert np.isfinite(pooled["nab_standard"])
    series = pd.read_csv(tmp_path / "project" / "data" / "raw" / "sensor" / "run-1.csv")
    assert len(series) == 540


def test_a_detector_of_several_models_trains_scores_and_serves(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``sensor.model.members: 2`` trains two models per file through the same stages; each keeps its own
    normal error level (and ``history_outlier`` is carried into the registered detector), the registered
    pyfunc answers with the members' mean score, and the fault is found and named."""
    import mlflow

    from aeflow.models.ensemble import AutoencoderEnsemble
    from aeflow.models.registry import load_model
    from aeflow.usecases.sensor.detector import AnomalyDetector

    rig(tmp_path / "rig")
    data = rig_params(tmp_path)
    data["sensor"]["model"]["members"] = 2
    data["sensor"]["train"]["epochs"] = 3
    data["sensor"]["threshold"].update(
        history=100, smoothing=3, method="fixed", value=4.0, cooldown=30, history_outlier=30.0
    )
    uri = data["tracking"]["tracking_uri"]
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)  # MLflow keeps the last set URI in the environment
    report = run_use_case(parse_params(data), "sensor", tmp_path / "project")["evaluate"]

    model = load_model(str(tmp_path / "project" / "models" / "sensor" / "run-0" / "model.pt"))
    assert isinstance(model, AutoencoderEnsemble) and len(model.members) == 2
    refs = model.data_config["history_ref"]
    assert len(refs) == 2 and refs[0] != refs[1]  # each member's own normal level
    assert model.data_config["history_outlier"] == 30.0 and model.data_config["history_outlier_rows"] == 500
    frame = pd.read_csv(tmp_path / "project" / "data" / "interim" / "sensor" / "series" / "run-0.csv")
    d = AnomalyDetector.from_model(model)
    values = frame[d.sensors].to_numpy(np.float32)
    alone = [
        AnomalyDetector(m, {**d.config, "history_ref": r}).score(values)
        for m, r in zip(model.members, refs, strict=True)
    ]
    np.testing.assert_allclose(d.score(values), np.mean(alone, axis=0), rtol=1e-5, atol=1e-5)

    mlflow.set_tracking_uri(uri)
    pyfunc = mlflow.pyfunc.load_model(
        json.loads((tmp_path / "project/models/sensor/run.json").read_text())["series"][0]["model_uri"]
    )
    answer = pyfunc.predict(frame[d.sensors])
    np.testing.assert_allclose(answer["score"], d.score(values), rtol=1e-5, atol=1e-5)
    fault = answer.iloc[420:471]
    assert fault["flag"].any() and not answer["flag"].iloc[TRAIN_ROWS:410].any()
    assert (fault.loc[fault["flag"], "top_sensor"] == "pressure").mean() >= 0.9
    assert report["series"]["run-0.csv"]["autoencoder"]["events_detected"] == 1


def test_readings_compared_with_a_season_back_are_trained_and_served(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``sensor.threshold.season_readings`` through the stages: training stores the reading difference's
    normal level with each detector (measured on its normal rows), the threshold's explanation says what is
    compared, and the registered pyfunc answers the scores the detector gives, readings included. The rig
    does not repeat at its season, so that takes ``season_readings_correlation: -1``; at the default the
    readings are not compared and the registered version's description says why, with the measured
    correlation."""
    import mlflow

    from aeflow.models.registry import load_model
    from aeflow.usecases.sensor.detector import AnomalyDetector

    rig(tmp_path / "rig")
    data = rig_params(tmp_path)
    data["sensor"]["threshold"].update(
        history=100,
        smoothing=3,
        method="fixed",
        value=4.0,
        cooldown=30,
        season="100s",
        season_readings=True,
        season_readings_correlation=-1.0,  # the rig's 10 minutes do not repeat at 100 s: compared anyway
    )
    uri = data["tracking"]["tracking_uri"]
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    run_use_case(parse_params(data), "sensor", tmp_path / "project")

    model = load_model(str(tmp_path / "project" / "models" / "sensor" / "run-0" / "model.pt"))
    mu, sd = model.data_config["season_readings_ref"]
    repeat = model.data_config["season_readings_repeat"]  # measured on the rows up to the normal ones' end
    assert abs(repeat) < 0.1  # the pump's noise at one-second readings: nothing repeats at 100 s
    assert model.data_config["season_rows"] == [100] and mu > 0 and sd > 0
    assert (
        "the readings' difference from the closest readings"
        in model.data_config["threshold_details"]["explanation"]
    )
    frame = pd.read_csv(tmp_path / "project" / "data" / "interim" / "sensor" / "series" / "run-0.csv")
    d = AnomalyDetector.from_model(model)
    values = frame[d.sensors].to_numpy(np.float32)
    readings, _ = d.reading_scores(d.scaled(values))
    assert np.isinf(readings[:98]).all() and np.isfinite(readings[98:]).all()  # 100 ± 2 rows back
    without = AnomalyDetector(model, {**d.config, "season_readings_ref": None}).score(values)
    np.testing.assert_allclose(d.score(values), np.maximum(without, readings), rtol=1e-6, atol=1e-6)

    mlflow.set_tracking_uri(uri)
    model_uri = json.loads((tmp_path / "project/models/sensor/run.json").read_text())["series"][0][
        "model_uri"
    ]
    pyfunc = mlflow.pyfunc.load_model(model_uri)
    np.testing.assert_allclose(
        pyfunc.predict(frame[d.sensors])["score"], d.score(values), rtol=1e-5, atol=1e-5
    )
    version = mlflow.MlflowClient().get_model_version(*model_uri.removeprefix("models:/").split("/"))
    assert f"Readings compared with a season earlier (they repeat at correlation {repeat:.2f})" in (
        version.description
    )

    # at the default season_readings_correlation (0.5) the rig's readings are not compared, and the
    # registered version says why
    data["sensor"]["threshold"]["season_readings_correlation"] = 0.5
    run_use_case(parse_params(data), "sensor", tmp_path / "default")
    model = load_model(str(tmp_path / "default" / "models" / "sensor" / "run-0" / "model.pt"))
    assert model.data_config["season_readings_ref"] is None
    assert "readings" not in model.data_config["threshold_details"]["explanation"]  # what this detector does
    assert model.data_config["season_readings_repeat"] == pytest.approx(repeat)
    np.testing.assert_allclose(
        AnomalyDetector.from_model(model).reading_scores(d.scaled(values))[0], -np.inf
    )  # nothing from the readings
    model_uri = json.loads((tmp_path / "default/models/sensor/run.json").read_text())["series"][0][
        "model_uri"
    ]
    version = mlflow.MlflowClient().get_model_version(*model_uri.removeprefix("models:/").split("/"))
    assert (
        f"Readings not compared: the normal data repeat at correlation {repeat:.2f} one season later, "
        "below season_readings_correlation 0.5." in version.description
    )
