"""Synthetic faults injected into the scored segment of a sensor series, with exact row labels.

Real labelled multivariate sensor data is rare, so the simulator's series get known faults of six kinds
(:data:`aeflow.config.ANOMALY_KINDS`), each a common failure of real sensors or machines:

- ``spike``: 1–3 samples at ``+magnitude·σ`` (an electrical transient, a loose contact);
- ``drop``: 1–3 samples at ``−magnitude·σ`` (a dropout or a brief blockage). A fixed ``magnitude·σ`` rather
  than "drop to zero" keeps every kind equally hard across sensors: a drop to zero is trivial for a sensor
  with a large offset (temperature, 30 °C → 0 °C) and invisible for one near zero;
- ``level_shift``: ``±magnitude·σ`` for the whole event (a bumped or re-calibrated sensor, a changed valve);
- ``drift``: a linear ramp from ~0 to ``±magnitude·σ`` over the event (fouling, wear, a drifting sensor);
- ``noise_burst``: added Gaussian noise with std ``magnitude·σ / 2`` ("irregular behaviour": cavitation,
  a failing bearing, interference);
- ``stuck``: the value frozen at its reading at the event's start (a frozen sensor or a dead data link).

σ is the affected sensor's standard deviation on the training segment, so a magnitude means the same for
every sensor whatever its unit. Events are placed only in the scored segment, never overlapping, at least
``min_gap`` samples apart, which keeps every labelled event separately countable by event-level metrics.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from aeflow.errors import DataError
from aeflow.usecases.sensor.params import AnomalyParams

SHORT_KINDS = ("spike", "drop")
SHORT_MAX = 3


@dataclass
class AnomalyEvent:
    """One injected fault on one sensor over rows ``[start, end)``.

    ``magnitude`` is the signed size in units of the sensor's training σ: the offset for spike (+), drop
    (−), level_shift and drift (its final value), the burst's std × 2 for noise_burst, and 0 for stuck
    (the value freezes, nothing is added).
    """

    kind: str
    sensor: str
    start: int
    end: int
    magnitude: float


def sensor_scale(frame: pd.DataFrame, sensors: list[str], segment: tuple[int, int]) -> dict[str, float]:
    """Per-sensor standard deviation over rows ``segment`` (NaN ignored), the σ that
    :func:`inject_anomalies` scales faults by."""
    a, b = segment
    return {s: float(np.nanstd(frame[s].to_numpy(np.float64)[a:b])) for s in sensors}


def _durations(kinds: list[str], p: AnomalyParams, rng: np.random.Generator) -> np.ndarray:
    short = np.array([k in SHORT_KINDS for k in kinds])
    out = rng.integers(p.min_duration, p.max_duration + 1, size=len(kinds))
    out[short] = rng.integers(1, SHORT_MAX + 1, size=int(short.sum()))
    return out


def _how_many_fit(durations: np.ndarray, length: int, gap: int) -> int:
    """The most of these events that fit into ``length`` samples (the shortest first, ``gap`` apart)."""
    used, count = 0, 0
    for d in np.sort(durations):
        need = int(d) + (gap if count else 0)
        if used + need > length:
            break
        used += need
        count += 1
    return count


def _place(durations: np.ndarray, segment: tuple[int, int], gap: int, rng: np.random.Generator) -> np.ndarray:
    """Start rows for events of ``durations`` in this order, uniformly at random among all placements
    that keep them inside ``segment`` and ``gap`` apart: the slack (free samples) is split into
    ``len + 1`` random parts (stars and bars), one before each event and one at the end."""
    a, b = segment
    slack = (b - a) - int(durations.sum()) - gap * (len(durations) - 1)
    cuts = np.sort(rng.integers(0, slack + 1, size=len(durations)))
    extra = np.diff(np.concatenate([[0], cuts]))  # free samples before each event
    starts = np.empty(len(durations), dtype=np.int64)
    pos = a
    for i, (d, e) in enumerate(zip(durations, extra, strict=True)):
        pos += int(e)
        starts[i] = pos
        pos += int(d) + gap
    return starts


def inject_anomalies(
    frame: pd.DataFrame,
    sensors: list[str],
    segment: tuple[int, int],
    p: AnomalyParams,
    scale: dict[str, float],
    rng: np.random.Generator,
) -> tuple[pd.DataFrame, list[AnomalyEvent]]:
    """A copy of ``frame`` with ``p.events_per_kind`` events of each kind in ``p.kinds`` injected into rows
    ``segment`` (half-open, positional) and ``label`` set to 1 on exactly the affected rows.

    The time order of kinds, each event's sensor (uniform over ``sensors``), duration (spike/drop 1–3
    samples, others ``min_duration``–``max_duration``), sign and start are drawn from ``rng``, so the same
    generator state gives the same faults. Rows keep their existing labels elsewhere.

    Raises:
        DataError: the events (with ``min_gap`` between them) do not fit into the segment; an unknown
            sensor; a sensor whose σ is zero or missing (a fault of magnitude·σ would change nothing).
    """
    a, b = int(segment[0]), int(segment[1])
    if not 0 <= a < b <= len(frame):
        raise DataError(f"anomaly segment rows [{a}, {b}) is not inside the series' {len(frame)} rows.")
    unknown = [s for s in sensors if s not in frame.columns]
    if unknown:
        raise DataError(f"cannot inject faults into {unknown}: no such column(s) in {list(frame.columns)}.")
    for s in sensors:
        sigma = scale.get(s)
        if sigma is None or not np.isfinite(sigma) or sigma <= 0:
            raise DataError(
                f"sensor {s!r} has σ = {sigma} on the training segment, so a fault of magnitude·σ would "
                "not change it. Fix: drop the constant sensor from the data, or set "
                "sensor.anomalies.inject: never."
            )
    out = frame.copy()
    if "label" not in out.columns:
        out["label"] = np.zeros(len(out), dtype=np.int64)
    kinds = [k for k in p.kinds for _ in range(p.events_per_kind)]
    if not kinds or not sensors:
        return out, []
    kinds = [kinds[i] for i in rng.permutation(len(kinds))]
    durations = _durations(kinds, p, rng)
    length = b - a
    needed = int(durations.sum()) + p.min_gap * (len(kinds) - 1)
    if needed > length:
        fit = _how_many_fit(durations, length, p.min_gap)
        raise DataError(
            f"{len(kinds)} anomaly events ({p.events_per_kind} per kind × {len(p.kinds)} kinds, "
            f"{int(durations.sum())} samples plus {p.min_gap} between each = {needed} samples) do not fit "
            f"into the scored segment rows [{a}, {b}) ({length} samples); at most {fit} fit. Fix: lower "
            "sensor.anomalies.events_per_kind, max_duration or min_gap, or score more rows (a longer "
            "series via sensor.ingest.days, or smaller train_fraction / val_fraction)."
        )
    starts = _place(durations, (a, b), p.min_gap, rng)
    chosen = rng.integers(0, len(sensors), size=len(kinds))
    signs = rng.choice(np.array([-1.0, 1.0]), size=len(kinds))

    columns = {s: out[s].to_numpy(np.float64, copy=True) for s in sensors}
    labels = out["label"].to_numpy(copy=True)
    events = []
    for kind, start, dur, k, sign in zip(kinds, starts, durations, chosen, signs, strict=True):
        sensor = sensors[int(k)]
        x, sigma, m = columns[sensor], scale[sensor], p.magnitude
        start, end = int(start), int(start) + int(dur)
        rows = slice(start, end)
        if kind == "spike":
            magnitude = m
            x[rows] += m * sigma
        elif kind == "drop":
            magnitude = -m
            x[rows] -= m * sigma
        elif kind == "level_shift":
            magnitude = sign * m
            x[rows] += magnitude * sigma
        elif kind == "drift":
            magnitude = sign * m
            x[rows] += magnitude * sigma * np.arange(1, dur + 1) / dur
        elif kind == "noise_burst":
            magnitude = m
            x[rows] += rng.normal(0.0, m * sigma / 2.0, int(dur))
        elif kind == "stuck":
            magnitude = 0.0
            before = x[: start + 1][~np.isnan(x[: start + 1])]
            x[rows] = before[-1] if len(before) else np.nan
        else:  # pragma: no cover - AnomalyParams only admits the kinds above
            raise DataError(f"unknown anomaly kind {kind!r}")
        labels[rows] = 1
        events.append(AnomalyEvent(kind, sensor, start, end, float(magnitude)))
    for s in sensors:
        out[s] = columns[s]
    out["label"] = labels.astype(np.int64)
    events.sort(key=lambda e: e.start)
    return out, events
