"""What every sensor step needs to know about a series: its sensors, its segments, its season in rows."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from aeflow.errors import DataError
from aeflow.sections import ThresholdParams

if TYPE_CHECKING:
    from aeflow.config import Params


def safe_name(name: str) -> str:
    """A folder-safe version of a series name ("realKnownCause/nyc_taxi.csv" → "realKnownCause-nyc_taxi")."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", name.removesuffix(".csv")).strip("-")


def sensor_columns(frame: Any) -> list[str]:
    return [c for c in frame.columns if c not in ("timestamp", "label")]


def segments(series: Any, params: Params) -> dict[str, tuple[int, int]]:
    """Train/val/test row ranges of a series (NAB-labelled real data: probationary period, whole scored)."""
    from aeflow.usecases.sensor.sources import split_bounds

    if series.splits:
        return {k: (int(a), int(b)) for k, (a, b) in series.splits.items()}
    return split_bounds(len(series.frame), params.sensor.ingest, series.nab, series.frame["timestamp"])


def normal_rows(bounds: dict[str, tuple[int, int]], length: int) -> slice:
    """The rows a detector's normal levels (its threshold, the history references) are measured on: the
    validation segment, or the training segment where the validation segment is shorter than a window."""
    (t0, t1), (v0, v1) = bounds["train"], bounds["val"]
    return slice(v0, v1) if v1 - v0 >= length else slice(t0, t1)


def season_rows(series: Any, p: ThresholdParams) -> list[int]:
    """Each of ``sensor.threshold.season`` in rows of this series (its median sampling interval); empty
    when off."""
    all_seconds = p.season_seconds()
    if not all_seconds:
        return []
    import pandas as pd

    ts = pd.to_datetime(series.frame["timestamp"])
    step = ts.diff().dt.total_seconds().median() if len(ts) > 1 else float("nan")
    out = []
    for season, seconds in zip(p.seasons, all_seconds, strict=True):
        rows = round(seconds / step) if step > 0 else 0  # NaN (one row) compares False
        if rows <= p.season_tolerance:
            raise DataError(
                f"{series.name}: sensor.threshold.season {season!r} is {rows} row(s) at this series' "
                f"sampling interval ({step:g} s), not more than season_tolerance ({p.season_tolerance}). "
                "Fix: lengthen the season, lower season_tolerance, or set season: null."
            )
        out.append(rows)
    return out
