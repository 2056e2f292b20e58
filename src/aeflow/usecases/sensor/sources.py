"""Multivariate sensor series for the ``sensor`` anomaly-detection use case: sources, repairs, splits, files.

Three sources give one result, a list of :class:`SensorSeries` (a frame with ``timestamp``, one float
column per sensor and ``label``, plus NAB-style anomaly windows):

- ``simulator`` (offline, default): a centrifugal pump, see :func:`simulate_pump` for the model;
- ``csv``: one file or a folder of files, NAB layout (``timestamp,value`` + ``labels_json``) or a wide
  layout (a time column, one column per sensor, an optional 0/1 ``label_column``), see
  :func:`read_csv_series` for what is repaired and what is an error;
- ``nab``: the listed NAB files and ``labels/combined_windows.json``, downloaded with bounded retries and
  then read like ``csv``.

Splits are contiguous in time (:func:`split_bounds`): an autoencoder must be trained on the past and judged
on the future, and shuffled rows would leak the test period's level into training through overlapping
windows.
"""

from __future__ import annotations

import csv
import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np
import pandas as pd

from aeflow.data.download import fetch
from aeflow.errors import DataError
from aeflow.io import atomic_dir, read_json, write_json
from aeflow.usecases.sensor.params import SensorIngestParams

SPLITS = ("train", "val", "test")
DELIMITERS = ",;\t|"
#: NAB's probationary period (nab/runner.py): the leading ``min(floor(0.15 n), 0.15 * 5000)`` rows are
#: not scored, so a detector may learn from them.
NAB_PROBATIONARY_PERCENT = 0.15
NAB_PROBATIONARY_CAP = 750
NAB_WINDOWS_FILE = "labels/combined_windows.json"


@dataclass
class SensorSeries:
    """One multivariate series, time-ordered, as every later stage sees it.

    ``frame`` has ``timestamp`` (datetime64, strictly increasing except NAB files' own clock artefacts),
    one float column per sensor (NaN where a reading is missing; the validate stage bounds the share, the
    windowing code interpolates) and ``label``
    (int, 1 = anomalous row). ``windows`` are NAB's labelled anomaly windows as ``[start, end]`` ISO
    strings (inclusive, NAB's convention), ``[]`` for other sources (a wide file's ``label_column`` marks
    rows, and scoring builds NAB-style windows around them). ``nab`` marks series read with an entry in NAB's
    windows, scored the NAB way (whole series, probationary period for training); it may be True with no
    windows (NAB's normal-only files). ``splits`` are the bounds of :func:`split_bounds`, set by
    :func:`ingest_sensor` and restored by :func:`read_series`. ``warnings`` lists repairs made while reading.
    """

    name: str
    frame: pd.DataFrame
    windows: list[tuple[str, str]]
    origin: str
    nab: bool = False
    warnings: list[str] = field(default_factory=list)
    splits: dict[str, tuple[int, int]] = field(default_factory=dict)

    @property
    def sensors(self) -> list[str]:
        """The sensor columns, in file order (every column except ``timestamp`` and ``label``)."""
        return [c for c in self.frame.columns if c not in ("timestamp", "label")]


# --------------------------------------------------------------------------------------------- simulator
@dataclass(frozen=True)
class _SensorModel:
    """How one pump sensor responds to the load ``L`` (0 = idle, 1 = full day-shift duty).

    The reading is ``offset + gain · ((1 − c) · L_lag^power + c · L_lag³) + noise`` with ``c =
    extra_cubic``, where ``L_lag`` is the load seen through a first-order lag of time constant ``tau_min``
    (exponential smoothing). ``span`` = gain, the reading's change from idle to full load, is the "full
    scale" the noise level refers to.
    """

    unit: str
    offset: float
    gain: float
    power: float
    tau_min: float
    extra_cubic: float = 0.0

    def response(self, load: np.ndarray) -> np.ndarray:
        base = np.clip(load, 0.0, None)
        return self.offset + self.gain * (
            (1.0 - self.extra_cubic) * base**self.power + self.extra_cubic * base**3
        )

    @property
    def span(self) -> float:
        return self.gain


#: The pump's sensors. Exponents follow the pump affinity laws with the load as relative speed (flow ∝
#: speed, pressure ∝ speed², shaft power ∝ speed³; the motor current, L^1.5, lies between flow and power);
#: vibration rises faster than linearly near full load (a cubic term); temperature is the load seen
#: through ~3 h of thermal inertia.
SENSOR_MODELS: dict[str, _SensorModel] = {
    "vibration_rms": _SensorModel("mm/s", 0.8, 3.5, 1.0, 2.0, extra_cubic=0.5),
    "motor_current": _SensorModel("A", 6.0, 34.0, 1.5, 0.0),
    "pressure": _SensorModel("bar", 1.0, 5.0, 2.0, 5.0),
    "temperature": _SensorModel("degC", 30.0, 35.0, 1.0, 180.0),
    "flow": _SensorModel("m3/h", 5.0, 115.0, 1.0, 10.0),
}


def _lag(x: np.ndarray, tau_min: float, step_min: float) -> np.ndarray:
    """First-order lag (exponential smoothing) with time constant ``tau_min``, started at ``x[0]``."""
    if tau_min <= 0:
        return x.copy()
    from scipy.signal import lfilter

    alpha = 1.0 - math.exp(-step_min / tau_min)
    y, _ = lfilter([alpha], [1.0, alpha - 1.0], x, zi=[(1.0 - alpha) * x[0]])
    return y


def _shift_pattern(hours: np.ndarray) -> np.ndarray:
    """Daily duty: 0.45 at night, 1.0 on the day shift 06:00–22:00, with ~30 min soft edges."""
    on = 1.0 / (1.0 + np.exp(-(hours - 6.0) / 0.5))
    off = 1.0 / (1.0 + np.exp(-(22.0 - hours) / 0.5))
    return 0.45 + 0.55 * on * off


def _regimes(n: int, step_min: float, rng: np.random.Generator) -> np.ndarray:
    """Piecewise-constant load levels (uniform in [0.7, 1.1]) lasting 3 h to 3 days (log-uniform each),
    smoothed by a 60 min lag so a change of regime ramps over about an hour instead of jumping."""
    levels = np.empty(n)
    i = 0
    while i < n:
        length = max(1, round(math.exp(rng.uniform(math.log(180.0), math.log(3 * 1440.0))) / step_min))
        levels[i : i + length] = rng.uniform(0.7, 1.1)
        i += length
    return _lag(levels, 60.0, step_min)


def simulate_pump(p: SensorIngestParams, seed: int) -> SensorSeries:
    """A pump's sensors over ``p.days`` at ``p.sample_minutes`` from ``p.start``; all labels 0.

    Model (why: realistic enough that a detector must learn the joint behaviour, simple enough to document):

    1. A latent load ``L(t) = shift(t) · regime(t) + w(t)``: ``shift`` is 0.45 at night and 1.0 on the day
       shift (06:00–22:00, soft edges); ``regime`` is a piecewise-constant level in [0.7, 1.1] held for 3 h
       to 3 days and changing over ~1 h (production orders, valve settings); ``w`` is a slow AR(1) wander
       (φ = 0.995, σ = 0.02 stationary). ``L`` is clipped to [0, 1.3].
    2. Each sensor sees ``L`` through its own first-order lag and responds nonlinearly
       (:data:`SENSOR_MODELS`): flow ∝ L (10 min lag), pressure ∝ L² (5 min), motor current ∝ L^1.5
       (instant), vibration = linear + cubic (2 min), temperature ∝ L lagged by 3 h of thermal inertia. The
       sensors are therefore correlated only through the load, with different shapes and delays.
    3. Independent Gaussian noise with std ``p.noise_level × span`` (span = the sensor's change from idle
       to full load, its "full scale") is added to each sensor.

    Random numbers come from independent streams of ``seed`` (one for the load, one per sensor's noise), so
    the same seed gives the same load for any ``noise_level`` or subset of ``p.sensors``.

    Raises:
        DataError: a sensor name the simulator does not model.
    """
    unknown = [s for s in p.sensors if s not in SENSOR_MODELS]
    if unknown:
        raise DataError(
            f"sensor.ingest.sensors names {', '.join(map(repr, unknown))}, which the pump simulator does not "
            f"model; it supports {', '.join(SENSOR_MODELS)}. Fix: use a subset of these names, or read your "
            "own data with sensor.ingest.source: csv."
        )
    if len(set(p.sensors)) != len(p.sensors):
        raise DataError("sensor.ingest.sensors lists a sensor twice. Fix: name each sensor once.")
    step = float(p.sample_minutes)
    n = round(p.days * 24 * 60 / step)
    if n < 2:
        raise DataError(
            f"sensor.ingest.days = {p.days:g} at sample_minutes = {step:g} gives {n} sample(s). "
            "Fix: simulate more days or sample more often."
        )
    try:
        start = pd.Timestamp(p.start)
    except (ValueError, TypeError) as exc:
        raise DataError(
            f"sensor.ingest.start = {p.start!r} is not a timestamp ({exc}). "
            "Fix: use e.g. '2026-01-05 00:00:00'."
        ) from None
    streams = np.random.SeedSequence(seed).spawn(1 + len(SENSOR_MODELS))
    load_rng = np.random.default_rng(streams[0])
    timestamps = start + pd.to_timedelta(np.arange(n) * step, unit="min")
    hours = (timestamps.hour + timestamps.minute / 60.0 + timestamps.second / 3600.0).to_numpy(float)
    phi = 0.995
    shocks = load_rng.normal(0.0, 0.02 * math.sqrt(1 - phi**2), n)
    from scipy.signal import lfilter

    wander = lfilter([1.0], [1.0, -phi], shocks)
    load = np.clip(_shift_pattern(hours) * _regimes(n, step, load_rng) + wander, 0.0, 1.3)

    columns: dict[str, Any] = {"timestamp": timestamps.astype("datetime64[ns]")}
    for name in p.sensors:
        model = SENSOR_MODELS[name]
        noise_rng = np.random.default_rng(streams[1 + list(SENSOR_MODELS).index(name)])
        clean = model.response(_lag(load, model.tau_min, step))
        columns[name] = clean + noise_rng.normal(0.0, p.noise_level * model.span, n)
    frame = pd.DataFrame(columns)
    frame["label"] = np.zeros(n, dtype=np.int64)
    return SensorSeries("pump", frame, [], "simulator")


# ----------------------------------------------------------------------------------------------- csv
def _lines(rows: pd.Index | np.ndarray | list[int]) -> str:
    return ", ".join(f"row {int(i)} (line {int(i) + 2})" for i in rows)


def _sniff(path: Path, p: SensorIngestParams) -> str:
    """``p.delimiter``, else csv.Sniffer's pick among ``,;\\t|`` on the first lines (``,`` if unsure)."""
    if p.delimiter:
        return p.delimiter
    try:
        with path.open(encoding="utf-8-sig", newline="") as fh:
            head = "".join(line for _, line in zip(range(20), fh, strict=False))
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"{path}: cannot read the file ({exc}). Fix: save it as UTF-8 text.") from None
    try:
        return csv.Sniffer().sniff(head, delimiters=DELIMITERS).delimiter
    except csv.Error:
        return ","


def load_windows(path: Path | str) -> dict[str, list[tuple[str, str]]]:
    """NAB's ``combined_windows.json``: ``{"<category>/<file>.csv": [[start, end], ...]}``.

    Raises:
        DataError: missing, not JSON, or not that shape.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(
            f"{path}: label windows not found (sensor.ingest.labels_json). Fix: point it at NAB's "
            "labels/combined_windows.json, or remove it to read the data without labels."
        )
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DataError(f"{path}: not readable JSON ({exc}). Fix: download the file again.") from None
    ok = isinstance(raw, dict) and all(
        isinstance(w, list) and all(isinstance(x, list) and len(x) == 2 for x in w) for w in raw.values()
    )
    if not ok:
        raise DataError(
            f"{path}: expected NAB's combined_windows.json layout, an object mapping "
            '"<category>/<file>.csv" to a list of [start, end] timestamps. Fix: use that file.'
        )
    out: dict[str, list[tuple[str, str]]] = {}
    for key, windows in raw.items():
        try:
            out[key] = [(str(pd.Timestamp(a)), str(pd.Timestamp(b))) for a, b in windows]
        except (ValueError, TypeError) as exc:
            raise DataError(f"{path}: windows of {key!r} are not timestamps ({exc}).") from None
    return out


def _label_key(path: Path, root: Path | None, labels: dict[str, Any]) -> str | None:
    """The key of ``path`` in the label windows: its path relative to the data folder, else the longest key
    that the path ends with (so ``.../data/realKnownCause/nyc_taxi.csv`` read alone still finds its
    windows)."""
    if root is not None:
        rel = path.relative_to(root).as_posix()
        if rel in labels:
            return rel
    posix = path.as_posix()
    matches = [k for k in labels if posix == k or posix.endswith("/" + k)]
    return max(matches, key=len) if matches else None


def _parse_timestamps(raw: pd.Series, path: Path, column: str) -> pd.Series:
    """Timestamps as naive datetime64[ns]: strings by pandas' inference, numbers as Unix seconds, aware
    ones converted to UTC (a series must have one time axis)."""
    if pd.api.types.is_numeric_dtype(raw) and not pd.api.types.is_bool_dtype(raw):
        ts = pd.to_datetime(raw, unit="s", errors="coerce")
    else:
        ts = pd.to_datetime(raw, errors="coerce", utc=True).dt.tz_localize(None)
    bad = np.flatnonzero(ts.isna().to_numpy())
    if len(bad):
        examples = ", ".join(f"{_lines([i])} = {str(raw.iloc[i])!r}" for i in bad[:5])
        raise DataError(
            f"{path}: column {column!r} has {len(bad)} of {len(raw)} value(s) that are not timestamps: "
            f"{examples}. pandas infers the format from the first value, so mixed formats fail as well. "
            f"Fix: correct or remove these lines, or set sensor.ingest.timestamp_column to the column that "
            "holds the time."
        )
    return ts.astype("datetime64[ns]")


def _numeric(col: pd.Series, path: Path, name: str) -> pd.Series:
    """A sensor column as float64 (NaN kept); text → DataError naming the column and example values."""
    if pd.api.types.is_numeric_dtype(col):
        return col.astype(np.float64)
    values = pd.to_numeric(col, errors="coerce")
    bad = np.flatnonzero((values.isna() & col.notna()).to_numpy())
    if len(bad):
        examples = ", ".join(f"{_lines([i])} = {str(col.iloc[i])!r}" for i in bad[:3])
        comma = any(re.fullmatch(r"\s*-?\d+,\d+\s*", str(col.iloc[i])) for i in bad[:3])
        fix = (
            "write the numbers with a decimal point instead of a decimal comma (1.5, not 1,5)"
            if comma
            else "drop the column from the file, or set sensor.ingest.label_column if it holds the 0/1 labels"
        )
        raise DataError(
            f"{path}: column {name!r} is not numeric ({len(bad)} of {len(col)} values are text, e.g. "
            f"{examples}). Every column besides the timestamp must be a sensor reading. Fix: {fix}."
        )
    return values.astype(np.float64)


def read_csv_series(
    path: Path,
    p: SensorIngestParams,
    *,
    root: Path | None = None,
    labels: dict[str, list[tuple[str, str]]] | None = None,
) -> SensorSeries:
    """Read one CSV file into a :class:`SensorSeries`.

    ``root`` is the data folder the file was found in (its relative path names the series and keys the NAB
    windows); ``labels`` are already-loaded windows (else ``p.labels_json`` is read when set).

    Layout: ``auto`` is NAB when the header is exactly ``timestamp,value``, else wide (``p.timestamp_column``
    plus one numeric column per sensor, except ``p.label_column``). ``p.sensors`` applies to the simulator
    only; here every non-time, non-label column is a sensor. Column names are stripped of spaces.

    Repairs (recorded in ``warnings`` and written to ``info.json``), because they lose nothing:

    - rows out of time order but with unique timestamps are sorted (stable): each line carries its own
      time, so line order holds no information; database exports and concatenated logs are often unsorted.

    Kept as is: missing sensor readings stay NaN, since how much is missing is a data-quality question for
    the validate stage (``max_missing_ratio``); modelling code interpolates in time. NAB-labelled files
    (NAB layout with an entry in ``labels_json``) keep their file order even where timestamps repeat or go
    back (a warning is recorded), because NAB scores rows in file order and real NAB files carry
    daylight-saving artefacts (see :func:`_keep_nab_order`).

    Errors (:class:`DataError` naming the file, the column and the first offending rows, with a fix),
    because any repair would guess:

    - a wrong delimiter (the file parses into one column whose header holds another delimiter);
    - a file cut mid-line (the last line has too few fields and no line break: a truncated copy);
    - no header row (the first line holds values, so no column can be the timestamp);
    - a missing or unparseable timestamp (which time would the row have?);
    - duplicate timestamps outside NAB-labelled files (which of two readings is right?);
    - a text column (a sensor or a stray comment column? drop it or declare it the label column);
    - a label column with text, blanks or fractions (labels 0/1; other integers are kept and reported by
      the validate stage);
    - a NAB file without an entry in ``labels_json`` (a wrong key would silently mean "no anomalies").
    """
    path = Path(path)
    delimiter = _sniff(path, p)
    try:
        df = pd.read_csv(path, sep=delimiter, encoding="utf-8-sig")
    except pd.errors.EmptyDataError:
        raise DataError(
            f"{path}: the file is empty ({path.stat().st_size} bytes, no header line and no readings); "
            "expected a header line and one line per reading. Fix: copy or export the file again, or "
            "remove it."
        ) from None
    except (pd.errors.ParserError, UnicodeDecodeError, ValueError) as exc:
        raise DataError(
            f"{path}: not a readable CSV with delimiter {delimiter!r} ({exc}). Fix: check the file, or set "
            "sensor.ingest.delimiter to the character that separates its columns."
        ) from None
    df.columns = [str(c).strip() for c in df.columns]
    if df.shape[1] == 1:
        header = df.columns[0]
        found = [d for d in DELIMITERS if d != delimiter and d in header]
        if found:
            raise DataError(
                f"{path}: with delimiter {delimiter!r} the file parses into a single column {header!r}, "
                f"which contains {found[0]!r}: the columns are probably separated by {found[0]!r}. Fix: set "
                f"sensor.ingest.delimiter: {found[0]!r} (or leave it unset so it is sniffed from the file)."
            )
    cut = _incomplete_last_line(path, delimiter, df.shape[1])
    if cut is not None:
        fields, text = cut
        raise DataError(
            f"{path}: the last line ({_lines([len(df) - 1])}) has {fields} of {df.shape[1]} fields "
            f"({text[:60]!r}) and the file does not end with a line break: the file looks truncated (cut "
            "mid-line, e.g. by an interrupted copy or download). Fix: copy or download the file again, or "
            "delete the incomplete last line."
        )
    is_nab_header = list(df.columns) == ["timestamp", "value"]
    layout = p.layout if p.layout != "auto" else ("nab" if is_nab_header else "wide")
    if layout == "nab" and not is_nab_header:
        raise DataError(
            f"{path}: sensor.ingest.layout is 'nab' but the header is {list(df.columns)}, not "
            "['timestamp', 'value']. Fix: set layout: wide (or auto) for files with other columns."
        )
    tcol = "timestamp" if layout == "nab" else p.timestamp_column
    if tcol not in df.columns and _looks_like_data(list(df.columns)):
        raise DataError(
            f"{path}: the first line {delimiter.join(df.columns)[:80]!r} holds values, not column names: the "
            f"file has no header row, so there is no timestamp column {tcol!r}. Fix: add a header line "
            f"naming the columns (the time column {tcol!r}, then one name per sensor), or set "
            "sensor.ingest.timestamp_column to the name the time column has."
        )
    if tcol not in df.columns:
        raise DataError(
            f"{path}: no timestamp column {tcol!r}; the columns are {list(df.columns)} (delimiter "
            f"{delimiter!r}). Fix: set sensor.ingest.timestamp_column to the column holding the time."
        )
    label_col = p.label_column if layout == "wide" else None
    if label_col is not None and label_col not in df.columns:
        raise DataError(
            f"{path}: no label column {label_col!r}; the columns are {list(df.columns)}. Fix: set "
            "sensor.ingest.label_column to the 0/1 column, or to null if the file has none."
        )
    ts = _parse_timestamps(df[tcol], path, tcol)
    sensors = [c for c in df.columns if c not in (tcol, label_col)]
    if not sensors:
        raise DataError(
            f"{path}: no sensor columns besides {tcol!r}{f' and {label_col!r}' if label_col else ''}. "
            "Fix: check the delimiter (sensor.ingest.delimiter) and the file's header."
        )
    if len(set(sensors)) != len(sensors) or {"timestamp", "label"} & set(sensors):
        raise DataError(
            f"{path}: sensor columns {sensors} repeat a name or use a reserved name ('timestamp', "
            "'label'). Fix: rename those columns in the header."
        )
    frame = pd.DataFrame({"timestamp": ts})
    for name in sensors:
        frame[name] = _numeric(df[name], path, name)
    if label_col is not None:
        frame["label"] = _labels(df[label_col], path, label_col)
    else:
        frame["label"] = np.zeros(len(frame), dtype=np.int64)

    if labels is None and p.labels_json:
        labels = load_windows(p.labels_json)
    key = _label_key(path, root, labels) if labels else None
    if labels and key is None:
        raise DataError(
            f"{path}: no entry in the label windows (sensor.ingest.labels_json) for this file; keys look "
            f"like {next(iter(labels))!r}. Fix: keep NAB's <category>/<file>.csv layout under "
            "sensor.ingest.path, or remove labels_json to read the file without labels."
        )
    nab = layout == "nab" and key is not None
    frame, warnings = (_keep_nab_order if nab else _check_order)(frame, path, tcol)

    windows: list[tuple[str, str]] = []
    if labels and key is not None:
        windows = list(labels[key])
        t = frame["timestamp"]
        for a, b in windows:
            inside = (t >= pd.Timestamp(a)) & (t <= pd.Timestamp(b))
            if not inside.any():
                warnings.append(f"{path}: label window [{a}, {b}] holds no rows of the file.")
            frame.loc[inside, "label"] = 1
    name = path.relative_to(root).as_posix() if root is not None and root.is_dir() else key or path.name
    return SensorSeries(name, frame, windows, str(path), nab=nab, warnings=warnings)


def _incomplete_last_line(path: Path, delimiter: str, columns: int) -> tuple[int, str] | None:
    """``(fields, text)`` of the last line when it has fewer than ``columns`` fields and no line break
    follows it (a file cut mid-line), else None.

    Why: pandas pads a short last line with NaN, so a truncated file would silently read as a last reading
    that is missing, or (cut inside a number) as a wrong one.
    """
    with path.open("rb") as fh:
        fh.seek(0, 2)
        size = fh.tell()
        fh.seek(max(0, size - 65536))
        tail = fh.read()
    if not tail or tail.endswith((b"\n", b"\r")):
        return None
    text = tail.rsplit(b"\n", 1)[-1].decode("utf-8", "replace")
    fields = len(next(csv.reader([text], delimiter=delimiter), []))
    return (fields, text) if fields < columns else None


def _looks_like_data(cells: list[str]) -> bool:
    """True when most header cells are numbers or timestamps, i.e. the first line is a row of data."""

    def is_value(cell: str) -> bool:
        try:
            float(cell)
            return True
        except ValueError:
            pass
        try:
            return pd.Timestamp(cell) is not pd.NaT
        except (ValueError, TypeError, OverflowError):
            return False

    return sum(is_value(c) for c in cells) > len(cells) / 2


def _check_order(frame: pd.DataFrame, path: Path, column: str) -> tuple[pd.DataFrame, list[str]]:
    """Duplicate timestamps → DataError; unique but unsorted ones → sorted (stable), with a warning."""
    ts = frame["timestamp"]
    dup = np.flatnonzero(ts.duplicated(keep=False).to_numpy())
    if len(dup):
        examples = ", ".join(f"{_lines([i])} = {ts.iloc[i]}" for i in dup[:6])
        raise DataError(
            f"{path}: {len(dup)} rows share a timestamp with another row (column {column!r}), e.g. "
            f"{examples}. Two readings at one time cannot both be right. Fix: remove or merge the duplicate "
            "lines (e.g. keep the last, or average them); if a clock change (daylight saving) caused them, "
            "write the timestamps with their UTC offset (e.g. 2014-03-09 03:00:00-04:00), which ingest "
            "converts to UTC."
        )
    if ts.is_monotonic_increasing:
        return frame, []
    back = np.flatnonzero(np.diff(ts.to_numpy()) < np.timedelta64(0)) + 1
    order = np.argsort(ts.to_numpy(), kind="stable")
    moved = int((order != np.arange(len(order))).sum())
    warning = (
        f"{path}: repaired: sorted {moved} rows that were out of time order (first at "
        f"{_lines(back[:3])}); each line keeps its own timestamp."
    )
    return frame.iloc[order].reset_index(drop=True), [warning]


def _keep_nab_order(frame: pd.DataFrame, path: Path, column: str) -> tuple[pd.DataFrame, list[str]]:
    """NAB files stay in file order; repeated or backward timestamps only give a warning.

    Why: NAB scores rows in file order (its results have one row per line), and its real files contain
    clock artefacts: machine_temperature_system_failure.csv repeats 02:00–02:55 of 2014-01-07 after
    02:55, and ec2_request_latency_system_failure.csv (like two realAWSCloudwatch files) has 12 rows
    stamped 2014-03-09 03:00:00, the US daylight-saving jump. The values run on continuously in file
    order, so sorting would interleave two different hours and dropping rows would break the row
    alignment with NAB's published detections and scores.
    """
    ts = frame["timestamp"]
    repeats = int(ts.duplicated().sum())
    steps = np.diff(ts.to_numpy())
    bad = np.flatnonzero(steps <= np.timedelta64(0)) + 1
    if not len(bad):
        return frame, []
    first = int(bad[0])
    return frame, [
        f"{path}: kept in file order as NAB scores it: {repeats} timestamp(s) repeat an earlier one and "
        f"{int((steps < np.timedelta64(0)).sum())} step(s) go back in time (first at {_lines([first])}: "
        f"{ts.iloc[first]} after {ts.iloc[first - 1]}), clock artefacts such as daylight-saving changes."
    ]


def _labels(col: pd.Series, path: Path, name: str) -> np.ndarray:
    """The label column as int64. Text, blanks and fractions are errors; other integers are kept for the
    validate stage to report (labels must be 0/1)."""
    values = pd.to_numeric(col, errors="coerce")
    bad = np.flatnonzero((values.isna() | (values != values.round())).to_numpy())
    if len(bad):
        examples = ", ".join(f"{_lines([i])} = {str(col.iloc[i])!r}" for i in bad[:3])
        raise DataError(
            f"{path}: label column {name!r} must hold 0 (normal) or 1 (anomaly) on every row; {len(bad)} "
            f"value(s) are not whole numbers, e.g. {examples}. Fix: correct these labels, or set "
            "sensor.ingest.label_column to null if the column is not a label."
        )
    return values.to_numpy().astype(np.int64)


def _csv_files(p: SensorIngestParams) -> tuple[list[Path], Path | None]:
    """The files to read and the data folder they are relative to (``None`` for a single file)."""
    path = Path(p.path or "")
    if path.is_file():
        if p.files:
            raise DataError(
                f"sensor.ingest.files only applies when sensor.ingest.path is a folder, but {path} is a "
                "file. Fix: point path at the data folder, or remove files."
            )
        return [path], None
    if not path.is_dir():
        raise DataError(
            f"{path}: not found (sensor.ingest.path). Fix: point it at a CSV file or a folder of CSV files."
        )
    if p.files:
        files = [path / f for f in p.files]
        missing = [f for f in p.files if not (path / f).is_file()]
        if missing:
            found = sorted(f.relative_to(path).as_posix() for f in path.rglob("*.csv"))[:5]
            raise DataError(
                f"{path}: sensor.ingest.files lists {', '.join(map(repr, missing))}, not found there; files "
                f"found look like {found}. Fix: give paths relative to sensor.ingest.path."
            )
        return files, path
    files = sorted(f for f in path.rglob("*") if f.is_file() and f.suffix.lower() == ".csv")
    if not files:
        raise DataError(
            f"{path}: no .csv files found (searched recursively). Fix: add files or fix the path."
        )
    return files, path


def download_nab(p: SensorIngestParams) -> tuple[list[Path], Path, Path]:
    """Download (or reuse) ``p.nab_files`` and the label windows; return the files, data folder and labels.

    Files keep NAB's layout under ``p.download_dir`` (``data/<category>/<file>.csv``,
    ``labels/combined_windows.json``) so their relative paths are the windows' keys.

    Raises:
        DownloadError: a file could not be downloaded after ``p.retries`` tries with ``p.timeout_s`` each.
        DataError: a listed key is not a relative ``<category>/<file>.csv`` path.
    """
    dest = Path(p.download_dir)
    hint = (
        "check the network or proxy and sensor.ingest.nab_base_url, or clone https://github.com/numenta/NAB "
        "and set sensor.ingest.source: csv, path: <NAB>/data, labels_json: "
        "<NAB>/labels/combined_windows.json, files: the keys you want."
    )
    for key in p.nab_files:
        parts = PurePosixPath(key).parts
        if PurePosixPath(key).is_absolute() or ".." in parts or not key.endswith(".csv"):
            raise DataError(
                f"sensor.ingest.nab_files entry {key!r} is not a NAB data file key. Fix: use keys like "
                "'realKnownCause/nyc_taxi.csv' (relative to NAB's data/ folder)."
            )
    base = p.nab_base_url
    files = [
        fetch(f"data/{key}", [base], dest, timeout_s=p.timeout_s, retries=p.retries, fallback_hint=hint)
        for key in p.nab_files
    ]
    labels = fetch(
        NAB_WINDOWS_FILE, [base], dest, timeout_s=p.timeout_s, retries=p.retries, fallback_hint=hint
    )
    return files, dest / "data", labels


def ingest_sensor(p: SensorIngestParams, seed: int) -> list[SensorSeries]:
    """Load the configured source (see the module doc); each series carries its split bounds.

    Raises:
        DataError: unknown simulator sensor, missing/malformed files (see :func:`read_csv_series`).
        DownloadError: NAB files could not be downloaded.
    """
    if p.source == "simulator":
        series = [simulate_pump(p, seed)]
    elif p.source == "csv":
        files, root = _csv_files(p)
        labels = load_windows(p.labels_json) if p.labels_json else None
        series = [read_csv_series(f, p, root=root, labels=labels) for f in files]
    else:
        files, root, labels_path = download_nab(p)
        labels = load_windows(labels_path)
        series = [read_csv_series(f, p, root=root, labels=labels) for f in files]
        for s in series:
            s.nab = True
            s.origin = p.nab_base_url.rstrip("/") + "/data/" + s.name
    for s in series:
        try:
            s.splits = split_bounds(len(s.frame), p, s.nab, s.frame["timestamp"])
        except DataError as exc:
            raise DataError(f"{s.origin or s.name}: {exc}") from None
    return series


# -------------------------------------------------------------------------------------------------- splits
def nab_probationary_rows(n_rows: int) -> int:
    """NAB's probationary period: ``min(floor(0.15 n), 0.15 · 5000)`` rows (nab/runner.py), so at most 750."""
    return int(min(math.floor(NAB_PROBATIONARY_PERCENT * n_rows), NAB_PROBATIONARY_CAP))


def split_bounds(
    n_rows: int, p: SensorIngestParams, nab: bool, timestamps: pd.Series | None = None
) -> dict[str, tuple[int, int]]:
    """Half-open row ranges ``{"train": (a, b), "val": (b, c), "test": (c, d)}`` in time order.

    Default: train = the first ``floor(train_fraction · n)`` rows, val = the next ``floor(val_fraction · n)``,
    test = the rest. A model learns the normal past, the threshold is set on the following stretch, and it
    is judged on the future it never saw.

    ``nab=True`` (a real series labelled by NAB's windows): NAB scores every row after its probationary
    period, which is ``min(floor(0.15 n), 750)`` rows (nab/runner.py caps it at 0.15 · 5000, so on files
    longer than 5,000 rows it is less than 15 %). Train + val are that period (val = its last 20 %, at least
    one row), and test is ``(0, n)``, the whole series, because NAB's scorer expects one score per row and
    drops the probationary rows itself; train and val therefore overlap test on purpose.

    ``train_rows`` / ``train_span`` (files as experiments, each starting normal): train = the first rows or
    the rows of the first span of time (``timestamps`` since the first one), val = the next ``val_rows``
    rows or ``val_span`` (empty by default), test = the rest.

    Raises:
        DataError: the series is too short for non-empty train and test ranges.
    """
    if not nab and p.split_by is not None:
        return _split_by_count_or_span(n_rows, p, timestamps)
    if nab:
        prob = nab_probationary_rows(n_rows)
        n_val = max(1, math.floor(0.2 * prob))
        if prob - n_val < 1:
            raise DataError(
                f"a NAB series of {n_rows} rows has a probationary period of {prob} rows, too short to hold "
                "training and validation rows. Fix: use a longer series (at least 14 rows, realistically "
                "thousands)."
            )
        return {"train": (0, prob - n_val), "val": (prob - n_val, prob), "test": (0, n_rows)}
    a = math.floor(p.train_fraction * n_rows)
    b = a + math.floor(p.val_fraction * n_rows)
    if a < 1 or b >= n_rows:
        raise DataError(
            f"a series of {n_rows} rows leaves an empty split with train_fraction = {p.train_fraction:g} and "
            f"val_fraction = {p.val_fraction:g}. Fix: use a longer series or change the fractions."
        )
    return {"train": (0, a), "val": (a, b), "test": (b, n_rows)}


def _split_by_count_or_span(
    n_rows: int, p: SensorIngestParams, timestamps: pd.Series | None
) -> dict[str, tuple[int, int]]:
    from aeflow.usecases.sensor.params import span_seconds

    def rows_within(start: int, text: str) -> int:
        if timestamps is None:
            raise DataError("a split by time span needs the series' timestamps")
        if start >= n_rows:
            return 0
        t = pd.to_datetime(timestamps).to_numpy()
        end = t[start] + np.timedelta64(int(span_seconds(text, "span") * 1e9), "ns")
        return int(np.searchsorted(t, end, side="left")) - start

    if p.split_by == "rows":
        a, field = int(p.train_rows or 0), f"sensor.ingest.train_rows ({p.train_rows})"
    else:
        a, field = rows_within(0, str(p.train_span)), f"sensor.ingest.train_span ({p.train_span})"
    if p.val_rows is not None:
        n_val = int(p.val_rows)
    elif p.val_span is not None:
        n_val = rows_within(a, p.val_span)
    else:
        n_val = 0
    b = a + n_val
    if a < 1 or b >= n_rows:
        raise DataError(
            f"{n_rows} rows, but {field} with {n_val} validation row(s) leaves "
            f"{'no training rows' if a < 1 else 'nothing to score'}. Fix: lower the training part "
            "(sensor.ingest.train_rows / train_span, val_rows / val_span) or drop this file."
        )
    return {"train": (0, a), "val": (a, b), "test": (b, n_rows)}


# --------------------------------------------------------------------------------------------------- files
def series_file_name(name: str) -> str:
    """``<name>.csv`` with the ``.csv`` suffix not doubled and every character outside ``[A-Za-z0-9._-]``
    (``/`` of NAB keys included) replaced by ``-``, so names stay valid and flat on every file system."""
    stem = name[:-4] if name.lower().endswith(".csv") else name
    safe = re.sub(r"[^A-Za-z0-9._-]", "-", stem)
    return ("_" + safe if safe.startswith(".") or not safe else safe) + ".csv"


def write_series(series: list[SensorSeries], out: Path, p: SensorIngestParams) -> None:
    """Write ``<safe name>.csv`` per series, ``series.json`` and ``info.json`` into ``out`` atomically.

    Each CSV has ``timestamp`` (``YYYY-MM-DD HH:MM:SS``, fractions only where present), the sensor columns
    (full float precision, empty where missing) and ``label``. ``series.json`` lists per series its name,
    file, sensors, windows, split bounds (half-open row ranges), origin, NAB flag and repairs; ``info.json``
    summarises the source.

    Raises:
        DataError: two series would get the same file name.
    """
    names = [series_file_name(s.name) for s in series]
    if len(set(names)) != len(names):
        raise DataError(
            f"series names {[s.name for s in series]} collide once made file-safe ({names}). "
            "Fix: rename the files so they differ in letters, digits, '.', '_' or '-'."
        )
    entries = []
    with atomic_dir(out) as tmp:
        for s, file in zip(series, names, strict=True):
            s.frame.to_csv(tmp / file, index=False)
            splits = s.splits or split_bounds(len(s.frame), p, s.nab, s.frame["timestamp"])
            entries.append(
                {
                    "name": s.name,
                    "file": file,
                    "sensors": s.sensors,
                    "rows": len(s.frame),
                    "start": str(s.frame["timestamp"].iloc[0]) if len(s.frame) else None,
                    "end": str(s.frame["timestamp"].iloc[-1]) if len(s.frame) else None,
                    "windows": [list(w) for w in s.windows],
                    "labelled_rows": int((s.frame["label"] == 1).sum()),
                    "splits": {k: list(v) for k, v in splits.items()},
                    "origin": s.origin,
                    "nab": s.nab,
                    "warnings": s.warnings,
                }
            )
        write_json(tmp / "series.json", {"series": entries})
        write_json(
            tmp / "info.json",
            {
                "source": p.source,
                "series": len(series),
                "rows": sum(e["rows"] for e in entries),
                "sensors": sorted({c for e in entries for c in e["sensors"]}),
                "windows": sum(len(e["windows"]) for e in entries),
                "labelled_rows": sum(e["labelled_rows"] for e in entries),
                "repairs": [w for e in entries for w in e["warnings"]],
                "params": p.model_dump(),
            },
        )


def read_series(folder: Path) -> list[SensorSeries]:
    """The series of a folder written by :func:`write_series` (split bounds restored from ``series.json``).

    Raises:
        DataError: ``series.json`` or a listed CSV is missing or unreadable.
    """
    folder = Path(folder)
    index = folder / "series.json"
    if not index.is_file():
        raise DataError(f"{index}: not found. Fix: run the sensor ingest stage first.")
    try:
        entries = read_json(index)["series"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise DataError(f"{index}: unreadable ({exc}). Fix: run the sensor ingest stage again.") from None
    out = []
    for e in entries:
        path = folder / e["file"]
        try:
            frame = pd.read_csv(path, dtype=dict.fromkeys(e["sensors"], np.float64) | {"label": np.int64})
            frame["timestamp"] = pd.to_datetime(frame["timestamp"], format="ISO8601").astype("datetime64[ns]")
        except (OSError, ValueError, KeyError, pd.errors.ParserError) as exc:
            raise DataError(f"{path}: unreadable ({exc}). Fix: run the sensor ingest stage again.") from None
        missing = [c for c in ("timestamp", *e["sensors"], "label") if c not in frame.columns]
        if missing:
            raise DataError(f"{path}: lacks column(s) {missing}. Fix: run the sensor ingest stage again.")
        out.append(
            SensorSeries(
                e["name"],
                frame[["timestamp", *e["sensors"], "label"]],
                [(a, b) for a, b in e["windows"]],
                e["origin"],
                nab=bool(e.get("nab", False)),
                warnings=list(e.get("warnings", [])),
                splits={k: (int(v[0]), int(v[1])) for k, v in e["splits"].items()},
            )
        )
    return out
