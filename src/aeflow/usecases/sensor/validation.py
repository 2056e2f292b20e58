"""The expectation suites for ingested sensor series.

Per series three frames are checked, each built so that a failure names the file and what to fix:

- ``rows``: one row per reading with ``timestamp``, ``dt_seconds`` (time since the previous reading) and
  ``label``: timestamps present, unique and strictly increasing (``dt_seconds`` > 0; windows and lags
  assume time order; NAB-labelled series, kept in NAB's file order, may break this on up to 1 % of rows,
  their daylight-saving artefacts), labels in {0, 1}, and at least ``min_rows`` rows;
- ``columns``: one row per sensor with ``is_numeric`` and ``missing_ratio``; one check per sensor (a pandas
  ``row_condition`` picks its row), so the report names the sensor column that fails;
- ``gaps``: one row with the count of steps longer than ``max_gap_factor`` × the median step. Gaps are
  normal in real logs (maintenance, outages) and are only reported in the check's description, unless
  they affect more than ``sensor.validate.max_gap_ratio`` of the rows, when the regular time grid the
  windows assume no longer holds.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

from aeflow.usecases.sensor.params import SensorValidateParams
from aeflow.usecases.sensor.sources import SensorSeries
from aeflow.validation.core import Check, FrameSuite


def gap_summary(frame: pd.DataFrame, factor: float) -> dict[str, float]:
    """Median step (s), number and share of steps longer than ``factor`` × median, and the longest (s)."""
    dt = frame["timestamp"].diff().dt.total_seconds().to_numpy()[1:]
    dt = dt[np.isfinite(dt)]
    if len(dt) == 0:
        return {"median_dt_s": float("nan"), "gap_count": 0, "gap_ratio": 0.0, "max_dt_s": float("nan")}
    median = float(np.median(dt))
    gaps = int((dt > factor * median).sum()) if median > 0 else 0
    return {
        "median_dt_s": median,
        "gap_count": gaps,
        "gap_ratio": gaps / max(len(frame), 1),
        "max_dt_s": float(dt.max()),
    }


def _asset(name: str, i: int) -> str:
    return f"s{i}_" + re.sub(r"[^A-Za-z0-9_]", "_", name)[:60]


def sensor_suites(
    series: list[SensorSeries], files: dict[str, str], p: SensorValidateParams
) -> list[FrameSuite]:
    """Suites for every series; ``files`` maps a series name to the file named in error messages."""
    suites: list[FrameSuite] = []
    for i, s in enumerate(series):
        file = files.get(s.name, s.name)
        frame = s.frame
        sensors = s.sensors
        ts = frame["timestamp"]
        # NAB files keep their file order, clock artefacts included (see sources._keep_nab_order):
        # tolerate up to 1 % of such rows there rather than fail the benchmark's own data.
        order = {"mostly": 1.0 - p.nab_order_tolerance} if s.nab else {}
        order_what = (
            f" (NAB file order: up to {p.nab_order_tolerance:.0%} clock artefacts allowed)" if s.nab else ""
        )
        rows = pd.DataFrame(
            {
                "timestamp": ts,
                "dt_seconds": ts.diff().dt.total_seconds(),
                "label": frame["label"] if "label" in frame.columns else pd.Series(np.nan, index=frame.index),
            }
        )
        suites.append(
            FrameSuite(
                f"{_asset(s.name, i)}_rows",
                file,
                rows,
                [
                    Check(
                        "ExpectColumnValuesToNotBeNull",
                        {"column": "timestamp"},
                        "every reading needs a parseable timestamp; correct or remove these lines and re-run "
                        "ingest",
                        "timestamps present",
                    ),
                    Check(
                        "ExpectColumnValuesToBeUnique",
                        {"column": "timestamp", **order},
                        "two readings share a time; remove or merge the duplicates and re-run ingest",
                        "unique timestamps" + order_what,
                    ),
                    Check(
                        "ExpectColumnValuesToBeBetween",
                        {"column": "dt_seconds", "min_value": 1e-9, **order},
                        "timestamps must strictly increase (windows and lags assume time order); sort the "
                        "file by time and remove duplicates, then re-run ingest",
                        "strictly increasing timestamps" + order_what,
                    ),
                    Check(
                        "ExpectColumnValuesToBeInSet",
                        {"column": "label", "value_set": [0, 1]},
                        "labels must be 0 (normal) or 1 (anomaly); fix the label column "
                        "(sensor.ingest.label_column)",
                        "labels in {0, 1}",
                    ),
                    Check(
                        "ExpectTableRowCountToBeBetween",
                        {"min_value": p.min_rows},
                        "the series is too short to train and score a detector; use a longer recording or "
                        "lower sensor.validate.min_rows",
                        f"≥ {p.min_rows} rows",
                    ),
                ],
            )
        )
        columns = pd.DataFrame(
            {
                "sensor": sensors,
                "is_numeric": [
                    bool(pd.api.types.is_numeric_dtype(frame[c]) and not pd.api.types.is_bool_dtype(frame[c]))
                    for c in sensors
                ],
                "missing_ratio": [float(frame[c].isna().mean()) if len(frame) else 0.0 for c in sensors],
            }
        )
        # great-expectations returns results grouped by column (in order of first appearance) and
        # run_suites pairs them with the checks in order, so all is_numeric checks come before all
        # missing_ratio checks; one check per sensor (a pandas row_condition picks its row) so the report
        # names the failing sensor, not a row number.
        conditions = {c: {"row_condition": f"sensor=={c!r}", "condition_parser": "pandas"} for c in sensors}
        checks = [
            Check(
                "ExpectColumnValuesToBeInSet",
                {"column": "is_numeric", "value_set": [True], **conditions[c]},
                f"sensor column {c!r} must hold numbers; drop it or fix the values and re-run ingest",
                f"column {c!r} numeric",
            )
            for c in sensors
        ]
        checks += [
            Check(
                "ExpectColumnValuesToBeBetween",
                {
                    "column": "missing_ratio",
                    "min_value": 0.0,
                    "max_value": p.max_missing_ratio,
                    **conditions[c],
                },
                f"too many readings of {c!r} are missing; repair the recording, drop the column, or raise "
                "sensor.validate.max_missing_ratio if interpolating over the gaps is acceptable",
                f"missing ratio of column {c!r} is {ratio:.4f}, at most {p.max_missing_ratio:g} allowed",
            )
            for c, ratio in zip(sensors, columns["missing_ratio"], strict=True)
        ]
        suites.append(FrameSuite(f"{_asset(s.name, i)}_columns", file, columns, checks, row_label="sensor"))
        gaps = gap_summary(frame, p.max_gap_factor)
        suites.append(
            FrameSuite(
                f"{_asset(s.name, i)}_gaps",
                file,
                pd.DataFrame([gaps]),
                [
                    Check(
                        "ExpectColumnValuesToBeBetween",
                        {"column": "gap_ratio", "min_value": 0.0, "max_value": p.max_gap_ratio},
                        f"more than {p.max_gap_ratio:.0%} of the steps are gaps, so the series is not on a "
                        "regular time grid; resample it to a fixed interval, or raise "
                        "sensor.validate.max_gap_factor or sensor.validate.max_gap_ratio",
                        f"{gaps['gap_count']} gap(s) longer than {p.max_gap_factor:g} × the median step of "
                        f"{gaps['median_dt_s']:g} s (longest {gaps['max_dt_s']:g} s); fails above "
                        f"{p.max_gap_ratio:.0%} of rows (sensor.validate.max_gap_ratio)",
                    )
                ],
                row_label="series",
            )
        )
    return suites
