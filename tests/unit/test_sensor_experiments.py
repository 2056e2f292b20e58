"""Files as experiments: a folder of labelled wide files (one test-rig run per file, readings every second,
the first rows normal) goes through the sensor stages by params alone; each file is its own series, split by
its own first rows, and scored per file and pooled over every scored reading."""

from __future__ import annotations

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


def test_a_folder_of_runs_is_scored_per_file_and_pooled(tmp_path: Path) -> None:
    lengths = rig(tmp_path / "rig")
    data = yaml.safe_load((ROOT / "params.yaml").read_text())
    data["sensor"]["ingest"].update(
        source="csv",
        path=str(tmp_path / "rig"),
        timestamp_column="datetime",
        label_column="anomaly",
        train_rows=TRAIN_ROWS,
    )
    data["sensor"]["anomalies"]["inject"] = "never"  # the files' own labels
    data["sensor"]["train"]["epochs"] = 2
    data["sensor"]["evaluate"]["baselines"] = ["rolling_zscore"]
    data["tracking"].update(
        tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}", artifact_location=str(tmp_path / "art")
    )
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
