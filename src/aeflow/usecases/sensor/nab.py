"""NAB (Numenta Anomaly Benchmark) scoring, re-implemented from NAB's documented rules.

NAB scores a detector by *windows* rather than by points, because the labels of real anomalies are
fuzzy in time and an operator cares about the first useful alarm, not about every flagged row:

* Each labelled anomaly is surrounded by a window (``windows_from_labels``). The first
  ``probationary_length`` rows of a file are a warm-up period that is not scored at all.
* A row is a *detection* when its anomaly score is ``>= threshold``.
* A window earns ``tpWeight * sigma(y) / sigma(-1)`` for its **earliest** detection (later ones in the
  same window add nothing), where ``y = -(right - i + 1) / width`` runs from ``-1`` at the window's first
  row to ``-1/width`` at its last, and ``sigma(y) = 2 / (1 + exp(5 y)) - 1`` (``-1`` for ``y > 3``).
  Dividing by ``sigma(-1)`` makes a detection on the first row of a window worth exactly ``tpWeight``.
  A window without a detection costs ``-fnWeight``.
* Every detection outside a window costs ``fpWeight * sigma(y)`` (negative), with
  ``y = (i - right_prev) / (right_prev - left_prev)`` measured from the end of the preceding window, so
  alarms just after a window are barely punished and distant ones cost the full ``fpWeight``; a
  detection before any window costs the full ``fpWeight``.
* Corpus scores are normalised so that the null detector (no detections) scores 0 and a perfect one
  (each window detected on its first row, nothing else) scores 100:
  ``100 * (S - S_null) / (S_perfect - S_null)``.

These are the rules of ``nab/sweeper.py`` / ``nab/runner.py`` / ``nab/labeler.py`` (NAB v1.1). This
module reproduces NAB's published per-file scores and per-row ``S(t)_<profile>`` columns for the
numenta, windowedGaussian and randomCutForest detectors (see ``tests/unit/test_nab.py``).

Everything here is a pure function over arrays, apart from the small JSON loaders.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

PROBATION_PERCENT = 0.15
"""Share of each file's leading rows that is not scored (NAB ``runner.probationPercent``)."""
PROBATION_CAP_ROWS = 5000
"""The probationary period is at most ``PROBATION_PERCENT * PROBATION_CAP_ROWS`` (= 750) rows."""
WINDOW_FRACTION = 0.10
"""Total window length, as a share of the file, shared out between its anomalies (NAB labeler)."""

Window = tuple[int, int]
"""Inclusive (first row, last row) of an anomaly window."""


def scaled_sigmoid(y: float | np.ndarray) -> float | np.ndarray:
    """NAB's ``2 * sigmoid(-5 y) - 1``, clamped to ``-1`` for ``y > 3``.

    Positive inside a window (``y < 0``), zero at its right edge, negative after it; the clamp only
    matters for bit-level agreement with NAB (``sigma(3) = -0.9999997``).
    """
    y_arr = np.asarray(y, dtype=np.float64)
    out = np.where(y_arr > 3.0, -1.0, 2.0 / (1.0 + np.exp(5.0 * np.minimum(y_arr, 3.0))) - 1.0)
    return float(out) if out.ndim == 0 else out


MAX_TP = float(scaled_sigmoid(-1.0))
"""``sigma(-1) = 0.98661``: the unweighted score of a detection on a window's first row."""


def probationary_length(n_rows: int, percent: float = PROBATION_PERCENT) -> int:
    """Number of leading rows NAB leaves unscored: ``min(floor(percent * n), percent * 5000)``.

    Detectors need a warm-up before their scores mean anything, so NAB ignores detections (and window
    rows) there. The cap means long files get 750 rows, not 15 %.
    """
    return int(min(math.floor(percent * n_rows), percent * PROBATION_CAP_ROWS))


#: NAB's application profiles (``config/profiles.json``), built in so scoring works without NAB's files;
#: a test checks them against the file.
PROFILES: dict[str, dict[str, float]] = {
    "standard": {"tpWeight": 1.0, "fnWeight": 1.0, "fpWeight": 0.11, "tnWeight": 1.0},
    "reward_low_FP_rate": {"tpWeight": 1.0, "fnWeight": 1.0, "fpWeight": 0.22, "tnWeight": 1.0},
    "reward_low_FN_rate": {"tpWeight": 1.0, "fnWeight": 2.0, "fpWeight": 0.11, "tnWeight": 1.0},
}


def load_profiles(path: Path) -> dict[str, dict[str, float]]:
    """Read NAB's ``config/profiles.json`` into ``{profile: {tpWeight, fpWeight, fnWeight, tnWeight}}``.

    The file nests the weights under ``CostMatrix``; flattening keeps call sites short.
    """
    raw = json.loads(Path(path).read_text())
    return {name: {k: float(v) for k, v in spec["CostMatrix"].items()} for name, spec in raw.items()}


def load_thresholds(path: Path) -> dict[str, dict[str, float]]:
    """Read NAB's ``config/thresholds.json`` into ``{detector: {profile: threshold}}``.

    Only the thresholds are kept: the ``score`` fields there are stale for some detectors.
    """
    raw = json.loads(Path(path).read_text())
    return {det: {prof: float(v["threshold"]) for prof, v in spec.items()} for det, spec in raw.items()}


def load_windows(labels_json: Path, key: str, timestamps: pd.Series) -> list[Window]:
    """Row-index windows of file ``key`` (e.g. ``"realKnownCause/nyc_taxi.csv"``) from NAB's windows JSON.

    NAB stores windows as timestamp pairs; scoring works on row positions (window widths and distances
    are counted in rows, not in time). A window covers every row whose timestamp lies within
    ``[start, end]`` — for NAB's own files the limits are always exact timestamps of the data. Windows
    holding no row are dropped.

    Args:
        labels_json: ``labels/combined_windows.json``.
        key: the file's key in that JSON (``"<category>/<file>.csv"``).
        timestamps: the file's timestamp column (strings or datetimes), sorted ascending.

    Returns:
        Inclusive ``(first_row, last_row)`` pairs in time order.
    """
    limits = json.loads(Path(labels_json).read_text())[key]
    ts = pd.to_datetime(pd.Series(timestamps)).to_numpy()
    windows = []
    for start, end in limits:
        first = int(np.searchsorted(ts, np.datetime64(pd.Timestamp(start)), side="left"))
        last = int(np.searchsorted(ts, np.datetime64(pd.Timestamp(end)), side="right")) - 1
        if first <= last:
            windows.append((first, last))
    return sorted(windows)


def windows_from_labels(
    labels: np.ndarray, fraction: float = WINDOW_FRACTION, probation_percent: float = PROBATION_PERCENT
) -> list[Window]:
    """NAB-style windows around the anomalies marked in a boolean per-row label array.

    NAB's labeler gives each file a total window budget of ``fraction`` (10 %) of its rows, shared
    equally between its anomalies, so files with many anomalies get narrow windows: each window is
    ``int(fraction * n / n_anomalies)`` rows long, centred on the anomaly (``a ± length // 2``, clipped
    to the file). Windows starting inside the probationary period are dropped (they could never be
    scored fairly) and overlapping windows are merged. Applied to NAB's own labels this reproduces
    ``labels/combined_windows.json``.

    Unlike NAB's ``checkWindows`` — which merges only neighbouring pairs in one pass and drops only the
    first window — every overlap is merged and every window starting in probation is dropped; the two
    agree whenever at most two windows overlap, which covers all NAB files.

    Args:
        labels: ``(n,)`` booleans, true on each anomaly's row (a run of true rows is several anomalies).
        fraction: total window length as a share of ``n``.
        probation_percent: as in ``probationary_length``; 0 keeps windows at the very start.

    Returns:
        Inclusive ``(first_row, last_row)`` windows in time order.
    """
    labels = np.asarray(labels, dtype=bool)
    n = len(labels)
    anomalies = np.flatnonzero(labels)
    if len(anomalies) == 0:
        return []
    half = int(fraction * n / len(anomalies)) // 2
    probation = probationary_length(n, probation_percent)
    windows: list[list[int]] = []
    for a in anomalies:
        first, last = max(int(a) - half, 0), min(int(a) + half, n - 1)
        if first < probation:
            continue
        if windows and first <= windows[-1][1]:
            windows[-1][1] = max(windows[-1][1], last)
        else:
            windows.append([first, last])
    return [(w[0], w[1]) for w in windows]


def _check_windows(windows: Sequence[Window], n: int) -> list[Window]:
    """Sorted windows, validated: inside ``[0, n)``, non-empty, not overlapping (NAB assumes all three)."""
    ordered = sorted((int(a), int(b)) for a, b in windows)
    for k, (first, last) in enumerate(ordered):
        if not 0 <= first <= last < n:
            raise ValueError(f"window {(first, last)} is empty or outside rows [0, {n})")
        if k and first <= ordered[k - 1][1]:
            raise ValueError(f"windows {ordered[k - 1]} and {(first, last)} overlap")
    return ordered


def row_contributions(
    detections: np.ndarray, windows: Sequence[Window], profile: Mapping[str, float], probation: int
) -> np.ndarray:
    """Each row's contribution to the file score, laid out like NAB's ``S(t)_<profile>`` result columns.

    The layout is the one NAB publishes: a window's whole contribution (its earliest detection's
    reward, or ``-fnWeight`` when missed) sits on the window's first scored row, each false positive's
    cost on its own row, and every other row is 0. Summing gives the file's raw score. This makes a
    detector's score auditable row by row.

    Args:
        detections: ``(n,)`` booleans, true where the anomaly score is ``>= threshold``.
        windows: inclusive ``(first_row, last_row)`` anomaly windows, not overlapping.
        profile: weights with keys ``tpWeight``, ``fpWeight``, ``fnWeight``.
        probation: number of leading rows that are not scored (``probationary_length``).

    Returns:
        ``(n,)`` float64 contributions.
    """
    det = np.asarray(detections, dtype=bool)
    n = len(det)
    wins = _check_windows(windows, n)
    probation = max(int(probation), 0)
    out = np.zeros(n, dtype=np.float64)
    in_window = np.zeros(n, dtype=bool)
    for first, last in wins:
        in_window[first : last + 1] = True
        scored_first = max(first, probation)
        if scored_first > last:
            continue  # wholly inside the probationary period: neither rewarded nor missed
        hits = np.flatnonzero(det[scored_first : last + 1])
        if len(hits):
            i = scored_first + int(hits[0])
            width = last - first + 1
            out[scored_first] = profile["tpWeight"] * scaled_sigmoid(-(last - i + 1) / width) / MAX_TP
        else:
            out[scored_first] = -profile["fnWeight"]

    fps = np.flatnonzero(det & ~in_window)
    fps = fps[fps >= probation]
    if len(fps):
        ends = np.array([w[1] for w in wins], dtype=np.int64)
        starts = np.array([w[0] for w in wins], dtype=np.int64)
        prev = np.searchsorted(ends, fps, side="left") - 1  # last window ending before the row
        sigma = np.full(len(fps), -1.0)
        has_prev = prev >= 0
        if has_prev.any():
            p = prev[has_prev]
            # NAB divides by (width - 1); a one-row window would divide by zero there, so use 1 instead.
            span = np.maximum(ends[p] - starts[p], 1)
            sigma[has_prev] = scaled_sigmoid((fps[has_prev] - ends[p]) / span)
        out[fps] = profile["fpWeight"] * sigma
    return out


def score_file(
    detections: np.ndarray, windows: Sequence[Window], profile: Mapping[str, float], probation: int
) -> tuple[float, dict[str, int]]:
    """NAB raw score of one file, and NAB's confusion counts.

    Args:
        detections: ``(n,)`` booleans, true where the anomaly score is ``>= threshold``.
        windows: inclusive ``(first_row, last_row)`` anomaly windows, not overlapping.
        profile: weights with keys ``tpWeight``, ``fpWeight``, ``fnWeight``.
        probation: number of leading rows that are not scored.

    Returns:
        ``(score, counts)``. ``counts`` has NAB's *row-level* ``tp`` (detected rows inside windows),
        ``fp`` (detected rows outside), ``fn`` (undetected rows inside) and ``tn`` (undetected rows
        outside), all over the scored rows only — these are the columns of NAB's ``*_scores.csv`` — plus
        ``windows_detected`` and ``windows_missed``, the window-level counts that the score rewards.
    """
    det = np.asarray(detections, dtype=bool)
    contrib = row_contributions(det, windows, profile, probation)
    n = len(det)
    probation = max(int(probation), 0)
    in_window = np.zeros(n, dtype=bool)
    detected = missed = 0
    for first, last in _check_windows(windows, n):
        in_window[first : last + 1] = True
        if max(first, probation) <= last:
            if det[max(first, probation) : last + 1].any():
                detected += 1
            else:
                missed += 1
    d, w = det[probation:], in_window[probation:]
    counts = {
        "tp": int(np.sum(d & w)),
        "fp": int(np.sum(d & ~w)),
        "fn": int(np.sum(~d & w)),
        "tn": int(np.sum(~d & ~w)),
        "windows_detected": detected,
        "windows_missed": missed,
    }
    return float(contrib.sum()), counts


def _scored_windows(windows: Sequence[Window], probation: int) -> int:
    """Windows with at least one row after the probationary period (the ones that can be hit or missed)."""
    return sum(1 for _, last in windows if last >= probation)


def null_score(windows: Sequence[Window], profile: Mapping[str, float], probation: int = 0) -> float:
    """Raw score of the null detector (never detects): ``-fnWeight`` per scored window.

    It is the zero point of NAB's normalised score.
    """
    return -profile["fnWeight"] * _scored_windows(windows, probation)


def perfect_score(windows: Sequence[Window], profile: Mapping[str, float], probation: int = 0) -> float:
    """Raw score of a perfect detector (one detection on each window's first row): ``tpWeight`` per window.

    It is the 100 point of NAB's normalised score. NAB counts every labelled window; the labeler never
    leaves a window inside the probationary period, so counting scored windows, as here, is the same.
    """
    return profile["tpWeight"] * _scored_windows(windows, probation)


def normalised_score(raw_sum: float, null_sum: float, perfect_sum: float) -> float:
    """``100 * (raw - null) / (perfect - null)``: 0 for the null detector, 100 for a perfect one.

    Sums are over the files of a corpus, so long files with many windows weigh more.
    """
    return 100.0 * (raw_sum - null_sum) / (perfect_sum - null_sum)


def score_corpus(
    scores_by_file: Mapping[str, np.ndarray],
    windows_by_file: Mapping[str, Sequence[Window]],
    threshold: float,
    profile_name: str,
    profiles: Mapping[str, Mapping[str, float]],
    probation_percent: float = PROBATION_PERCENT,
) -> dict:
    """Score a detector's anomaly scores over several files with one threshold and profile.

    Args:
        scores_by_file: per file, ``(n,)`` anomaly scores (a row is a detection when ``>= threshold``).
        windows_by_file: per file, its windows (files missing here have none).
        threshold: detection threshold, shared by all files as in NAB.
        profile_name: e.g. ``"standard"``.
        profiles: as returned by ``load_profiles``.
        probation_percent: see ``probationary_length``.

    Returns:
        ``{"profile", "threshold", "files": {name: {"score", "probation", tp, fp, fn, tn,
        windows_detected, windows_missed}}, "raw", "null", "perfect", "normalised"}`` where ``raw``,
        ``null`` and ``perfect`` are sums over files and ``normalised`` is NAB's 0–100 score
        (NaN when no file has a scored window).
    """
    profile = profiles[profile_name]
    files: dict[str, dict] = {}
    raw = null = perfect = 0.0
    for name, scores in scores_by_file.items():
        scores = np.asarray(scores, dtype=np.float64)
        windows = list(windows_by_file.get(name, []))
        probation = probationary_length(len(scores), probation_percent)
        score, counts = score_file(scores >= threshold, windows, profile, probation)
        files[name] = {"score": score, "probation": probation, **counts}
        raw += score
        null += null_score(windows, profile, probation)
        perfect += perfect_score(windows, profile, probation)
    normalised = normalised_score(raw, null, perfect) if perfect != null else float("nan")
    return {
        "profile": profile_name,
        "threshold": float(threshold),
        "files": files,
        "raw": raw,
        "null": null,
        "perfect": perfect,
        "normalised": normalised,
    }
