"""Sensor data: the pump simulator, fault injection, CSV/NAB reading (repairs vs errors), the suite."""

from __future__ import annotations

import itertools
import json
import socket
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from aeflow.errors import DataError, DownloadError, ValidationFailed
from aeflow.io import read_json
from aeflow.usecases.sensor.faults import inject_anomalies, sensor_scale
from aeflow.usecases.sensor.params import (
    ANOMALY_KINDS,
    AnomalyParams,
    SensorIngestParams,
    SensorValidateParams,
)
from aeflow.usecases.sensor.sources import (
    SENSOR_MODELS,
    SensorSeries,
    ingest_sensor,
    read_csv_series,
    read_series,
    simulate_pump,
    split_bounds,
    write_series,
)
from aeflow.usecases.sensor.validation import sensor_suites
from aeflow.validation.core import raise_on_failure, run_suites

DAY = 288  # samples per day at the default 5 min


def autocorr(x: np.ndarray, lag: int) -> float:
    x = x - x.mean()
    return float((x[:-lag] * x[lag:]).sum() / (x * x).sum())


@pytest.fixture(scope="module")
def pump() -> SensorSeries:
    return simulate_pump(SensorIngestParams(), seed=7)


# ------------------------------------------------------------------------------------------------ simulator
def test_simulator_is_deterministic_with_the_right_length(pump):
    p = SensorIngestParams()
    again = simulate_pump(p, seed=7)
    pd.testing.assert_frame_equal(pump.frame, again.frame)
    assert not simulate_pump(p, seed=8).frame["flow"].equals(pump.frame["flow"])
    assert len(pump.frame) == 21 * 24 * 60 / 5 == 6048
    assert list(pump.frame.columns) == ["timestamp", *p.sensors, "label"]
    assert pump.frame["timestamp"].iloc[0] == pd.Timestamp("2026-01-05 00:00:00")
    assert (pump.frame["timestamp"].diff().iloc[1:] == pd.Timedelta(minutes=5)).all()
    assert pump.frame["label"].eq(0).all() and pump.windows == [] and pump.origin == "simulator"
    short = simulate_pump(SensorIngestParams(days=1.5, sample_minutes=10, sensors=["flow", "pressure"]), 7)
    assert len(short.frame) == 216 and short.sensors == ["flow", "pressure"]


def test_sensors_follow_the_load_with_lags_and_a_daily_cycle(pump):
    f = pump.frame
    corr = f[pump.sensors].corr()
    assert abs(corr.loc["motor_current", "flow"]) > 0.9
    assert corr.loc["temperature", "flow"] > 0.5
    # Temperature follows the load through thermal inertia: its best match with the current is later.
    x = f["motor_current"].to_numpy() - f["motor_current"].mean()
    y = f["temperature"].to_numpy() - f["temperature"].mean()
    cc = [np.corrcoef(x[: len(x) - k], y[k:])[0, 1] for k in range(0, 72)]
    peak = int(np.argmax(cc))
    assert 6 <= peak <= 48, peak  # 30 min .. 4 h (3 h time constant → ~2 h phase lag of the daily cycle)
    assert cc[peak] > cc[0] + 0.1
    # Motor current has no lag, flow a 10 min one: its peak is at 0..1 samples.
    z = f["flow"].to_numpy() - f["flow"].mean()
    assert int(np.argmax([np.corrcoef(x[: len(x) - k], z[k:])[0, 1] for k in range(6)])) <= 2
    for sensor in pump.sensors:
        assert autocorr(f[sensor].to_numpy(), DAY) > 0.5, sensor
        # a day apart resembles more than half a day apart (the shift pattern)
        assert autocorr(f[sensor].to_numpy(), DAY) > autocorr(f[sensor].to_numpy(), DAY // 2) + 0.3


def test_noise_level_is_relative_to_full_scale(pump):
    clean = simulate_pump(SensorIngestParams(noise_level=0.0), seed=7).frame
    for sensor, model in SENSOR_MODELS.items():
        rel = float((pump.frame[sensor] - clean[sensor]).std() / model.span)
        assert rel == pytest.approx(0.03, rel=0.06), (sensor, rel)
    # the same seed gives the same load whatever the subset of sensors
    sub = simulate_pump(SensorIngestParams(sensors=["temperature"]), seed=7).frame
    np.testing.assert_array_equal(sub["temperature"], pump.frame["temperature"])


def test_unknown_simulator_sensor_lists_the_supported_ones():
    with pytest.raises(DataError, match="bearing_temp") as exc:
        simulate_pump(SensorIngestParams(sensors=["flow", "bearing_temp"]), 0)
    for name in SENSOR_MODELS:
        assert name in str(exc.value)


def test_split_bounds():
    p = SensorIngestParams(train_fraction=0.5, val_fraction=0.15)
    assert split_bounds(6048, p, nab=False) == {"train": (0, 3024), "val": (3024, 3931), "test": (3931, 6048)}
    # NAB: probationary period min(floor(0.15 n), 750); val = its last 20 %; the whole series is scored
    assert split_bounds(10320, p, nab=True) == {"train": (0, 600), "val": (600, 750), "test": (0, 10320)}
    assert split_bounds(4032, p, nab=True) == {"train": (0, 484), "val": (484, 604), "test": (0, 4032)}
    with pytest.raises(DataError, match="empty split"):
        split_bounds(1, p, nab=False)


# ------------------------------------------------------------------------------------------------ anomalies
@pytest.fixture(scope="module")
def injected(pump):
    p = AnomalyParams()
    splits = split_bounds(len(pump.frame), SensorIngestParams(), nab=False)
    scale = sensor_scale(pump.frame, pump.sensors, splits["train"])
    out, events = inject_anomalies(
        pump.frame, pump.sensors, splits["test"], p, scale, np.random.default_rng(3)
    )
    return p, splits["test"], scale, out, events


def test_events_lie_in_the_segment_apart_and_exactly_labelled(pump, injected):
    p, (a, b), _, out, events = injected
    assert len(events) == len(ANOMALY_KINDS) * p.events_per_kind == 18
    assert sorted({e.kind for e in events}) == sorted(ANOMALY_KINDS)
    for e in events:
        assert a <= e.start < e.end <= b
        length = e.end - e.start
        assert (
            (1 <= length <= 3)
            if e.kind in ("spike", "drop")
            else (p.min_duration <= length <= p.max_duration)
        )
    for prev, nxt in itertools.pairwise(events):
        assert nxt.start - prev.end >= p.min_gap
    expected = np.zeros(len(out), dtype=int)
    for e in events:
        expected[e.start : e.end] = 1
    np.testing.assert_array_equal(out["label"].to_numpy(), expected)
    # nothing changes outside the events; the input frame is untouched
    untouched = expected == 0
    for s in pump.sensors:
        np.testing.assert_array_equal(out[s].to_numpy()[untouched], pump.frame[s].to_numpy()[untouched])
    assert pump.frame["label"].eq(0).all()


def test_each_kind_changes_the_data_as_documented(pump, injected):
    p, _, scale, out, events = injected
    m = p.magnitude
    for e in events:
        before = pump.frame[e.sensor].to_numpy()[e.start : e.end]
        after = out[e.sensor].to_numpy()[e.start : e.end]
        delta = (after - before) / scale[e.sensor]
        if e.kind == "spike":
            np.testing.assert_allclose(delta, m)
        elif e.kind == "drop":
            np.testing.assert_allclose(delta, -m)
        elif e.kind == "level_shift":
            np.testing.assert_allclose(np.abs(delta), m)
            assert len(set(np.sign(delta))) == 1
        elif e.kind == "drift":
            assert np.all(np.diff(delta * np.sign(e.magnitude)) > 0)  # monotone ramp
            assert abs(delta[-1]) == pytest.approx(m)
        elif e.kind == "noise_burst":
            assert 0.25 * m / 2 < delta.std() < 2.5 * m / 2
        elif e.kind == "stuck":
            assert np.ptp(after) == 0.0 and after[0] == before[0]
    bursts = np.concatenate(
        [
            (out[e.sensor] - pump.frame[e.sensor]).to_numpy()[e.start : e.end] / scale[e.sensor]
            for e in events
            if e.kind == "noise_burst"
        ]
    )
    assert bursts.std() == pytest.approx(m / 2, rel=0.25)


def test_injection_is_deterministic_and_errors_when_events_do_not_fit(pump, injected):
    p, segment, scale, out, events = injected
    again, events2 = inject_anomalies(pump.frame, pump.sensors, segment, p, scale, np.random.default_rng(3))
    assert events == events2
    pd.testing.assert_frame_equal(out, again)
    _, other = inject_anomalies(pump.frame, pump.sensors, segment, p, scale, np.random.default_rng(4))
    assert [e.start for e in other] != [e.start for e in events]
    crowded = AnomalyParams(events_per_kind=20, min_gap=48)
    with pytest.raises(DataError, match=r"at most \d+ fit") as exc:
        inject_anomalies(pump.frame, pump.sensors, segment, crowded, scale, np.random.default_rng(3))
    assert "events_per_kind" in str(exc.value)


# ----------------------------------------------------------------------------------------------------- csv
@pytest.mark.shared_data
def test_reads_real_nab_file_with_its_windows(shared_datasets):
    nab = shared_datasets / "nab"
    p = SensorIngestParams(
        source="csv",
        path=str(nab / "data" / "realKnownCause" / "nyc_taxi.csv"),
        labels_json=str(nab / "labels" / "combined_windows.json"),
    )
    [s] = ingest_sensor(p, 0)
    assert s.name == "realKnownCause/nyc_taxi.csv" and s.nab
    assert s.sensors == ["value"] and len(s.frame) == 10320
    assert len(s.windows) == 5 and s.windows[0] == ("2014-10-30 15:30:00", "2014-11-03 22:30:00")
    assert int(s.frame["label"].sum()) == 1035
    assert s.frame["value"].iloc[0] == 10844.0
    assert s.splits == {"train": (0, 600), "val": (600, 750), "test": (0, 10320)}
    # the folder form: keys relative to the data folder, only the listed files. Real NAB files carry
    # daylight-saving artefacts; NAB-labelled files keep their file order (NAB scores rows in that order).
    q = SensorIngestParams(
        source="csv",
        path=str(nab / "data"),
        files=["realKnownCause/nyc_taxi.csv", "realKnownCause/machine_temperature_system_failure.csv"],
        labels_json=p.labels_json,
    )
    taxi, machine = ingest_sensor(q, 0)
    assert (taxi.name, len(taxi.windows), taxi.warnings) == ("realKnownCause/nyc_taxi.csv", 5, [])
    assert machine.name == "realKnownCause/machine_temperature_system_failure.csv"
    assert len(machine.frame) == 22695 and len(machine.windows) == 4 and machine.nab
    raw = pd.read_csv(nab / "data" / "realKnownCause" / "machine_temperature_system_failure.csv")
    np.testing.assert_array_equal(machine.frame["value"], raw["value"])  # not sorted, nothing dropped
    [warning] = machine.warnings
    assert "12 timestamp(s) repeat" in warning and "2014-01-07 02:00:00 after 2014-01-07 02:55:00" in warning
    # the same file without NAB labels follows the general rule: duplicate timestamps are an error
    with pytest.raises(DataError, match="share a timestamp"):
        read_csv_series(
            nab / "data" / "realKnownCause" / "machine_temperature_system_failure.csv", SensorIngestParams()
        )


def write_wide(path: Path, frame: pd.DataFrame, sep: str = ";") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(path, sep=sep, index=False)
    return path


@pytest.fixture(scope="module")
def wide_frame() -> pd.DataFrame:
    f = simulate_pump(SensorIngestParams(days=2), seed=1).frame.drop(columns="label")
    f = f.rename(columns={"timestamp": "time"})
    f["state"] = 0
    f.loc[200:211, "state"] = 1
    return f


def wide_params(path: Path, **kw: object) -> SensorIngestParams:
    return SensorIngestParams(source="csv", path=str(path), timestamp_column="time", **kw)


def test_wide_csv_with_semicolons_is_sniffed(tmp_path, wide_frame):
    path = write_wide(tmp_path / "plant" / "pump_a.csv", wide_frame)
    [s] = ingest_sensor(wide_params(tmp_path / "plant", label_column="state"), 0)
    assert s.name == "pump_a.csv" and not s.nab
    assert s.sensors == list(SENSOR_MODELS)
    np.testing.assert_allclose(s.frame["flow"], wide_frame["flow"], rtol=1e-12)
    assert int(s.frame["label"].sum()) == 12
    assert s.windows == [] and s.splits == {"train": (0, 288), "val": (288, 374), "test": (374, 576)}
    # forcing the wrong delimiter is an error that says which one the file uses
    with pytest.raises(DataError, match="delimiter") as exc:
        read_csv_series(path, wide_params(path, delimiter=","))
    assert "';'" in str(exc.value) and "sensor.ingest.delimiter" in str(exc.value)


def test_files_as_experiments_split_each_file_by_rows_or_by_time(tmp_path, wide_frame):
    """A folder of labelled wide files (a test rig: one experiment per file, 1 s readings, the first rows
    normal): each file its own series, trained on its own first rows, set by params alone."""
    rig = tmp_path / "rig"
    for i, rows in enumerate((576, 500)):
        f = wide_frame.head(rows).copy()
        f["time"] = pd.date_range("2026-03-01 10:00:00", periods=rows, freq="1s") + pd.Timedelta(days=i)
        write_wide(rig / f"run-{i}.csv", f)
    by_rows = ingest_sensor(wide_params(rig, label_column="state", train_rows=400), 0)
    assert [s.name for s in by_rows] == ["run-0.csv", "run-1.csv"]
    assert [s.splits for s in by_rows] == [
        {"train": (0, 400), "val": (400, 400), "test": (400, 576)},
        {"train": (0, 400), "val": (400, 400), "test": (400, 500)},
    ]
    with_val = ingest_sensor(wide_params(rig, label_column="state", train_rows=300, val_rows=50), 0)
    assert with_val[1].splits == {"train": (0, 300), "val": (300, 350), "test": (350, 500)}
    # 6 min 40 s of 1 s readings = 400 rows; then 1 min of validation = 60 rows
    by_span = ingest_sensor(wide_params(rig, label_column="state", train_span="400s", val_span="1min"), 0)
    assert [s.splits for s in by_span] == [
        {"train": (0, 400), "val": (400, 460), "test": (460, 576)},
        {"train": (0, 400), "val": (400, 460), "test": (460, 500)},
    ]
    with pytest.raises(DataError, match="train_rows") as exc:  # the short file is named
        ingest_sensor(wide_params(rig, label_column="state", train_rows=520), 0)
    assert "run-1.csv" in str(exc.value) and "500 rows" in str(exc.value)
    with pytest.raises(ValueError, match="train_span '400 apples' is not a time span"):
        wide_params(rig, train_span="400 apples")
    with pytest.raises(ValueError, match="train_rows or train_span, not both"):
        wide_params(rig, train_rows=4, train_span="4s")
    with pytest.raises(ValueError, match="need train_rows or train_span"):
        wide_params(rig, val_rows=4)


def test_text_column_is_an_error_naming_it(tmp_path, wide_frame):
    f = wide_frame.copy()
    f["operator"] = "anna"
    path = write_wide(tmp_path / "x.csv", f, sep=",")
    with pytest.raises(DataError, match="'operator'") as exc:
        read_csv_series(path, wide_params(path, label_column="state"))
    assert "'anna'" in str(exc.value) and "label_column" in str(exc.value) and str(path) in str(exc.value)


def test_unsorted_rows_are_sorted_and_recorded(tmp_path, wide_frame):
    f = wide_frame.copy()
    f.iloc[[10, 11]] = f.iloc[[11, 10]].to_numpy()
    path = write_wide(tmp_path / "x.csv", f)
    p = wide_params(path, label_column="state")
    s = read_csv_series(path, p)
    assert s.frame["timestamp"].is_monotonic_increasing
    np.testing.assert_allclose(s.frame["flow"], wide_frame["flow"], rtol=1e-12)
    assert len(s.warnings) == 1 and "repaired: sorted 2 rows" in s.warnings[0] and "row 11" in s.warnings[0]
    s.splits = split_bounds(len(s.frame), p, nab=False)
    write_series([s], tmp_path / "out", p)
    info = read_json(tmp_path / "out" / "info.json")
    assert info["repairs"] == s.warnings
    [back] = read_series(tmp_path / "out")
    pd.testing.assert_frame_equal(back.frame, s.frame)
    assert back.windows == s.windows and back.splits == s.splits and back.warnings == s.warnings


def test_duplicate_and_unparseable_timestamps_are_errors(tmp_path, wide_frame):
    f = wide_frame.copy()
    f.loc[20, "time"] = f.loc[19, "time"]
    path = write_wide(tmp_path / "dup.csv", f)
    with pytest.raises(DataError, match="share a timestamp") as exc:
        read_csv_series(path, wide_params(path))
    assert "row 19 (line 21)" in str(exc.value)
    g = wide_frame.copy().astype({"time": str})
    g.loc[33, "time"] = "yesterday"
    path = write_wide(tmp_path / "bad.csv", g)
    with pytest.raises(DataError, match="'time'") as exc:
        read_csv_series(path, wide_params(path))
    assert "row 33 (line 35) = 'yesterday'" in str(exc.value)


def test_write_and_read_the_simulated_series(tmp_path, pump):
    p = SensorIngestParams()
    [s] = ingest_sensor(p, 7)
    write_series([s], tmp_path / "raw", p)
    meta = read_json(tmp_path / "raw" / "series.json")["series"][0]
    assert meta["file"] == "pump.csv" and meta["splits"] == {
        "train": [0, 3024],
        "val": [3024, 3931],
        "test": [3931, 6048],
    }
    [back] = read_series(tmp_path / "raw")
    pd.testing.assert_frame_equal(back.frame, pump.frame)
    assert (tmp_path / "raw" / "pump.csv").read_text().startswith("timestamp,vibration_rms,")


# -------------------------------------------------------------------------------------------------- suite
def test_suite_passes_clean_and_reports_missing_and_disorder(tmp_path, pump, wide_frame):
    f = wide_frame.copy()
    f.loc[100:179, "pressure"] = np.nan  # 80 of 576 = 13.9 % missing
    path = write_wide(tmp_path / "pump_b.csv", f)
    holey = read_csv_series(path, wide_params(path, label_column="state"))
    assert int(holey.frame["pressure"].isna().sum()) == 80  # NaNs are kept, not filled
    broken = pd.DataFrame(
        {
            "timestamp": pd.to_datetime(["2026-01-01 00:00", "2026-01-01 00:05", "2026-01-01 00:05"] * 40),
            "x": np.arange(120.0),
            "label": [0, 2, 0] * 40,
        }
    )
    # a NAB-labelled series keeps its file order: a repeated half hour (6 of 2,000 rows) is tolerated there
    stamps = pd.date_range("2014-01-01", periods=2000, freq="5min").to_series().reset_index(drop=True)
    stamps.iloc[1000:1006] = stamps.iloc[994:1000].to_numpy()
    nab_like = pd.DataFrame({"timestamp": stamps, "value": np.arange(2000.0), "label": 0})
    series = [
        pump,
        holey,
        SensorSeries("broken", broken, [], "test"),
        SensorSeries("nab", nab_like, [], "", nab=True),
    ]
    files = {
        "pump": "data/raw/sensor/pump.csv",
        holey.name: str(path),
        "broken": "broken.csv",
        "nab": "nab.csv",
    }
    report = run_suites(sensor_suites(series, files, SensorValidateParams()), "sensor")
    failed = {
        (e["file"], e["expectation"], e["kwargs"].get("column"))
        for e in report["results"]
        if not e["success"]
    }
    assert failed == {
        (str(path), "expect_column_values_to_be_between", "missing_ratio"),
        ("broken.csv", "expect_column_values_to_be_unique", "timestamp"),
        ("broken.csv", "expect_column_values_to_be_between", "dt_seconds"),
        ("broken.csv", "expect_column_values_to_be_in_set", "label"),
    }
    gaps = [
        e["what"] for e in report["results"] if e["file"] == "data/raw/sensor/pump.csv" and "gap" in e["what"]
    ]
    assert gaps == [
        "0 gap(s) longer than 10 × the median step of 300 s (longest 300 s); fails above 5% of rows "
        "(sensor.validate.max_gap_ratio)"
    ]
    with pytest.raises(ValidationFailed) as exc:
        raise_on_failure(report)
    msg = str(exc.value)
    line = next(x for x in msg.splitlines() if str(path) in x)
    assert "'pressure'" in line and "0.1389" in line and "max_missing_ratio" in line
    assert "data/raw/sensor/pump.csv" not in msg


# ----------------------------------------------------------------------------------------------------- nab
@pytest.mark.shared_data
def test_nab_download_from_a_local_server(tmp_path, http_server, shared_datasets):
    served = tmp_path / "served"
    (served / "data" / "realKnownCause").mkdir(parents=True)
    (served / "labels").mkdir()
    real = pd.read_csv(shared_datasets / "nab" / "data" / "realKnownCause" / "nyc_taxi.csv", nrows=800)
    real.to_csv(served / "data" / "realKnownCause" / "x.csv", index=False)
    window = [real["timestamp"][500] + ".000000", real["timestamp"][540] + ".000000"]
    (served / "labels" / "combined_windows.json").write_text(json.dumps({"realKnownCause/x.csv": [window]}))
    p = SensorIngestParams(
        source="nab",
        nab_base_url=http_server(served),
        nab_files=["realKnownCause/x.csv"],
        download_dir=str(tmp_path / "dl"),
        timeout_s=5,
        retries=1,
    )
    [s] = ingest_sensor(p, 0)
    assert (tmp_path / "dl" / "data" / "realKnownCause" / "x.csv").is_file()
    assert (tmp_path / "dl" / "labels" / "combined_windows.json").is_file()
    assert s.name == "realKnownCause/x.csv" and s.nab and s.origin.endswith("/data/realKnownCause/x.csv")
    assert len(s.frame) == 800 and int(s.frame["label"].sum()) == 41
    assert s.splits == {"train": (0, 96), "val": (96, 120), "test": (0, 800)}


def test_unreachable_nab_is_a_quick_download_error(tmp_path):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    p = SensorIngestParams(
        source="nab",
        nab_base_url=f"http://127.0.0.1:{port}/",
        download_dir=str(tmp_path),
        timeout_s=1,
        retries=1,
    )
    t0 = time.monotonic()
    with pytest.raises(DownloadError, match=r"machine_temperature_system_failure\.csv") as exc:
        ingest_sensor(p, 0)
    assert time.monotonic() - t0 < 5
    assert "source: csv" in str(exc.value)
