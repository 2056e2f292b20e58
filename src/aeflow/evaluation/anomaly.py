"""Scoring anomaly detectors on labelled series, classical baselines, and window-to-point score mapping.

Three views of the same detector, because each hides something the others show:

* :func:`point_metrics` – per-point confusion counts; the false-alarm rate (FAR) on normal points is what an
  operator pays for, the missed-alarm rate (MAR) what the plant pays for.
* :func:`event_metrics` – anomalies come as contiguous events; one flag inside an event is enough to send
  someone to look, so event recall and detection delay matter more than point recall on long events.
* :func:`ranking_metrics` – threshold-free ROC-AUC / average precision, to compare scores before any
  threshold is chosen.

The baselines (IsolationForest, causal rolling z-score, PCA reconstruction error) each produce one score
per point (higher = more anomalous) and are fitted on the normal training segment only, exactly like the
autoencoder, so the comparison is fair. All functions are pure: NumPy arrays in, numbers out.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import numpy as np

from aeflow.errors import DataError, ParamsError
from aeflow.evaluation.thresholds import detection_events

__all__ = [
    "event_metrics",
    "isolation_forest_scores",
    "pca_scores",
    "point_metrics",
    "ranking_metrics",
    "rolling_zscore_scores",
    "window_errors_to_points",
]


# ------------------------------------------------------------------------------------------------ helpers
def _ratio(num: int, den: int) -> float | None:
    """``num / den``, or None when the ratio is undefined (0/0) rather than a misleading 0 or NaN."""
    return float(num) / den if den else None


def _bools(x: np.ndarray, what: str) -> np.ndarray:
    a = np.asarray(x)
    if a.ndim != 1:
        raise ValueError(f"{what} must be 1-D (one value per point), got shape {a.shape}")
    return a.astype(bool)


def _same_length(a: np.ndarray, b: np.ndarray, what: str) -> None:
    if len(a) != len(b):
        raise ValueError(f"{what}: lengths differ ({len(a)} vs {len(b)}); both must have one value per point")


def _matrix(x: np.ndarray, what: str) -> np.ndarray:
    """Readings as float64 (rows × sensors); a 1-D series is one sensor. NaNs are refused, not guessed."""
    a = np.asarray(x, dtype=np.float64)
    if a.ndim == 1:
        a = a[:, None]
    if a.ndim != 2:
        raise ValueError(f"{what} must be (rows × sensors), got shape {np.shape(x)}")
    if len(a) == 0:
        raise DataError(f"{what} is empty")
    if not np.isfinite(a).all():
        raise DataError(
            f"{what} contains {int(np.count_nonzero(~np.isfinite(a)))} NaN/inf reading(s). Fix: fill missing "
            "readings first (e.g. carry the last reading forward, as the sensor windows do)."
        )
    return a


# ------------------------------------------------------------------------------------------------ metrics
def point_metrics(labels: np.ndarray, flags: np.ndarray) -> dict[str, Any]:
    """Per-point confusion counts and rates of boolean ``flags`` against boolean ``labels`` (True = anomaly).

    Returns:
        ``tp``, ``fp``, ``fn``, ``tn`` (ints); ``precision`` = TP/(TP+FP); ``recall`` = TP/(TP+FN);
        ``f1`` = 2TP/(2TP+FP+FN); ``far`` (false-alarm rate on normal points) = FP/(FP+TN);
        ``mar`` (missed-alarm rate on anomalous points) = FN/(FN+TP). A rate whose denominator is 0 (e.g.
        precision when nothing is flagged, recall on a segment without anomalies) is None, not 0: the
        detector did nothing wrong there, there is just nothing to measure.
    """
    y = _bools(labels, "labels")
    f = _bools(flags, "flags")
    _same_length(y, f, "point_metrics")
    tp = int(np.count_nonzero(y & f))
    fp = int(np.count_nonzero(~y & f))
    fn = int(np.count_nonzero(y & ~f))
    tn = int(np.count_nonzero(~y & ~f))
    return {
        "precision": _ratio(tp, tp + fp),
        "recall": _ratio(tp, tp + fn),
        "f1": _ratio(2 * tp, 2 * tp + fp + fn),
        "far": _ratio(fp, fp + tn),
        "mar": _ratio(fn, fn + tp),
        "tp": tp,
        "fp": fp,
        "fn": fn,
        "tn": tn,
    }


def event_metrics(labels: np.ndarray, flags: np.ndarray, tolerance: int = 0) -> dict[str, Any]:
    """Event-level recall and detection delay.

    True events are the contiguous runs of ``labels``. An event ``[start, end)`` counts as detected if any
    flag falls in ``[start, end + tolerance)`` (clipped to the series): flags before the start are not
    credited (they were not caused by the event), and ``tolerance`` allows for detectors whose smoothing or
    windowing fires a little after the event. The delay is the number of samples from ``start`` to the first
    flag in that window (0 = flagged at once).

    Args:
        labels: Boolean ground truth per point.
        flags: Boolean alarms per point.
        tolerance: Extra samples after each event's end in which a flag still counts.

    Returns:
        ``events_total``, ``events_detected``, ``event_recall`` (None without events),
        ``mean_detection_delay`` (over detected events; None if none), ``false_alarm_events`` (alarm runs
        that touch no event window: what operators would chase for nothing), ``alarm_events`` (all alarm
        runs) and ``events``: one dict per true event with ``start``, ``end``, ``length``, ``detected``,
        ``delay`` (None if missed).
    """
    if int(tolerance) != tolerance or tolerance < 0:
        raise ValueError(f"tolerance must be a whole number >= 0, got {tolerance!r}")
    y = _bools(labels, "labels")
    f = _bools(flags, "flags")
    _same_length(y, f, "event_metrics")
    n = len(y)
    credited = np.zeros(n, dtype=bool)
    per_event: list[dict[str, Any]] = []
    for start, end in detection_events(y):
        stop = min(n, end + int(tolerance))
        credited[start:stop] = True
        hits = np.flatnonzero(f[start:stop])
        delay = int(hits[0]) if hits.size else None
        per_event.append(
            {"start": start, "end": end, "length": end - start, "detected": delay is not None, "delay": delay}
        )
    alarms = detection_events(f)
    false_alarms = sum(1 for a, b in alarms if not credited[a:b].any())
    detected = [e for e in per_event if e["detected"]]
    delays = [e["delay"] for e in detected]
    return {
        "events_total": len(per_event),
        "events_detected": len(detected),
        "event_recall": _ratio(len(detected), len(per_event)),
        "mean_detection_delay": float(np.mean(delays)) if delays else None,
        "false_alarm_events": int(false_alarms),
        "alarm_events": len(alarms),
        "tolerance": int(tolerance),
        "events": per_event,
    }


def ranking_metrics(labels: np.ndarray, scores: np.ndarray) -> dict[str, float | None]:
    """Threshold-free ``roc_auc`` and ``pr_auc`` (average precision) of ``scores`` for ``labels``.

    ROC-AUC is the chance a random anomalous point scores above a random normal one (0.5 = chance); average
    precision is more telling when anomalies are rare (its chance level is the anomaly fraction, reported as
    ``pr_auc_chance``). Both are None when only one class is present, where they are undefined.
    """
    from sklearn.metrics import average_precision_score, roc_auc_score

    y = _bools(labels, "labels")
    s = np.asarray(scores, dtype=np.float64).reshape(-1)
    _same_length(y, s, "ranking_metrics")
    if not np.isfinite(s).all():
        raise DataError(f"scores contain {int(np.count_nonzero(~np.isfinite(s)))} NaN/inf value(s)")
    positives = int(y.sum())
    if positives == 0 or positives == len(y):
        return {"roc_auc": None, "pr_auc": None, "pr_auc_chance": _ratio(positives, len(y))}
    return {
        "roc_auc": float(roc_auc_score(y, s)),
        "pr_auc": float(average_precision_score(y, s)),
        "pr_auc_chance": positives / len(y),
    }


# ---------------------------------------------------------------------------------------------- baselines
def _trailing_windows(x: np.ndarray, window: int) -> np.ndarray:
    """Flattened trailing windows, shape (rows − window + 1, window · sensors); row i ends at reading
    i + window − 1."""
    view = np.lib.stride_tricks.sliding_window_view(x, window, axis=0)  # (R - w + 1, C, w)
    return view.reshape(len(view), -1)


def isolation_forest_scores(
    train: np.ndarray, series: np.ndarray, seed: int, window: int = 1, n_estimators: int = 100
) -> np.ndarray:
    """IsolationForest anomaly score of every point of ``series``, fitted on ``train`` only.

    With ``window = 1`` each point's sensor vector is scored; with ``window > 1`` the flattened trailing
    window ending at each point, so the forest sees short temporal context (still causal). Points before the
    first full window get the first window's score. The score is ``−score_samples`` (higher = easier to
    isolate = more anomalous); a fixed ``seed`` makes it deterministic.

    Args:
        train: Normal training readings (N × C, or N for one sensor).
        series: Readings to score (M × C).
        seed: ``random_state`` of the forest.
        window: Trailing window length in readings.
        n_estimators: Number of trees.

    Returns:
        Scores, shape ``(M,)``.
    """
    from sklearn.ensemble import IsolationForest

    tr = _matrix(train, "isolation forest training data")
    x = _matrix(series, "isolation forest series")
    if tr.shape[1] != x.shape[1]:
        raise ValueError(f"train has {tr.shape[1]} sensors but series has {x.shape[1]}")
    if int(window) != window or window < 1:
        raise ParamsError(f"isolation forest window must be a whole number >= 1, got {window!r}")
    window = int(window)
    if len(tr) < window or len(x) < window:
        raise DataError(
            f"isolation forest window ({window}) is longer than the training ({len(tr)}) or scored "
            f"({len(x)}) segment. Fix: use a shorter window or longer segments."
        )
    forest = IsolationForest(n_estimators=n_estimators, random_state=seed)
    forest.fit(_trailing_windows(tr, window))
    scores = -forest.score_samples(_trailing_windows(x, window))
    return np.concatenate([np.full(window - 1, scores[0]), scores])


def rolling_zscore_scores(series: np.ndarray, window: int) -> np.ndarray:
    """Causal rolling z-score: ``max over sensors of |x_t − mean| / std`` of the previous ``window`` readings.

    Needs no training (it adapts to the recent past), which makes it the simplest sensible baseline; it uses
    only readings strictly before ``t``, so a spike cannot dampen its own score and scores never change when
    later readings arrive. Before ``window`` readings exist the statistics expand over all earlier readings;
    the first two points (fewer than two past readings, no spread to compare with) score 0. A zero spread is
    floored at 1e-12 so a sensor stuck at one value that then moves scores very high but finite.

    Args:
        series: Readings (M × C, or M for one sensor).
        window: Number of past readings in the rolling statistics.

    Returns:
        Scores, shape ``(M,)``.
    """
    if int(window) != window or window < 2:
        raise ParamsError(f"evaluate.zscore_window must be a whole number >= 2, got {window!r}")
    window = int(window)
    x = _matrix(series, "rolling z-score series")
    m = len(x)
    # Shifting by the first reading keeps the prefix sums small, so differences of them lose no precision
    # on sensors with a large offset (e.g. 1000 ± 1); the shift cancels in |x − mean| / std.
    xs = x - x[0]
    p1 = np.vstack([np.zeros((1, x.shape[1])), np.cumsum(xs, axis=0)])
    p2 = np.vstack([np.zeros((1, x.shape[1])), np.cumsum(xs * xs, axis=0)])
    t = np.arange(m)
    lo = np.maximum(0, t - window)
    count = (t - lo)[:, None].astype(np.float64)  # past readings used at t (0 at t = 0)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = (p1[t] - p1[lo]) / count
        var = (p2[t] - p2[lo]) / count - mean * mean
    std = np.sqrt(np.clip(var, 0.0, None))
    z = np.abs(xs - mean) / np.maximum(std, 1e-12)
    z[t < 2] = 0.0
    return z.max(axis=1)


def pca_scores(train: np.ndarray, series: np.ndarray, n_components: int) -> np.ndarray:
    """Squared reconstruction error per point of standardised sensor vectors, with PCA fitted on ``train``.

    The linear counterpart of the autoencoder: a point is anomalous when it leaves the subspace normal data
    spans. Sensors are standardised with the training mean/std (a constant sensor gets unit scale), so no
    sensor dominates by its units. The error is the mean over sensors of the squared residual.

    Args:
        train: Normal training readings (N × C), C ≥ 2.
        series: Readings to score (M × C).
        n_components: Principal components kept; must be below C, or every point reconstructs exactly.

    Returns:
        Scores, shape ``(M,)``.
    """
    from sklearn.decomposition import PCA

    tr = _matrix(train, "PCA training data")
    x = _matrix(series, "PCA series")
    c = tr.shape[1]
    if x.shape[1] != c:
        raise ValueError(f"train has {c} sensors but series has {x.shape[1]}")
    if not 1 <= n_components < c:
        fix = (
            f"set evaluate.pca_components between 1 and {c - 1}"
            if c >= 2
            else "remove pca from evaluate.baselines (one sensor has no cross-sensor structure to model)"
        )
        raise ParamsError(
            f"evaluate.pca_components is {n_components}, but the data has {c} sensor(s): PCA needs fewer "
            f"components than sensors to leave a residual to score. Fix: {fix}."
        )
    if n_components > len(tr):
        raise DataError(
            f"PCA with {n_components} components needs at least that many training rows ({len(tr)})"
        )
    mean = tr.mean(axis=0)
    std = tr.std(axis=0)
    std = np.where(std > 1e-12, std, 1.0)
    pca = PCA(n_components=n_components, svd_solver="full").fit((tr - mean) / std)
    z = (x - mean) / std
    recon = pca.inverse_transform(pca.transform(z))
    return np.mean((z - recon) ** 2, axis=1)


# ------------------------------------------------------------------------------------- windows to points
def window_errors_to_points(
    window_errors: np.ndarray,
    n_points: int,
    length: int,
    stride: int = 1,
    reduce: Literal["last", "mean"] = "last",
) -> np.ndarray:
    """Per-point scores from per-window reconstruction errors.

    Window ``j`` covers points ``[j · stride, j · stride + length)`` (as sliding windows with that stride
    are built). Per-sensor errors ``(W, C)`` are first averaged over sensors.

    * ``"last"`` gives each window's error to its last point, the newest reading it contains: that is what an
      online monitor knows at that moment, so the mapping is causal. With ``stride > 1`` points between window
      ends keep the most recent window's error.
    * ``"mean"`` averages the errors of all windows covering each point: smoother and better aligned with
      where the anomaly is, but it looks up to ``length − 1`` points ahead, so it is for offline analysis.

    Points before the first window's end (``"last"``) and points after the last window (``stride`` not
    dividing ``n_points − length``) get the nearest available value: the first window's error before, the
    last available value after.

    Args:
        window_errors: Errors per window, shape ``(W,)`` or ``(W, C)``.
        n_points: Length of the underlying series.
        length: Window length in points.
        stride: Step between window starts.
        reduce: ``"last"`` or ``"mean"``.

    Returns:
        Scores, shape ``(n_points,)``, float64.
    """
    e = np.asarray(window_errors, dtype=np.float64)
    if e.ndim == 2:
        e = e.mean(axis=1)
    if e.ndim != 1:
        raise ValueError(f"window_errors must be (W,) or (W, C), got shape {np.shape(window_errors)}")
    if length < 1 or stride < 1:
        raise ValueError(f"length and stride must be >= 1, got length={length}, stride={stride}")
    w = len(e)
    if w == 0:
        raise DataError(
            f"no windows to map: the series ({n_points} points) is shorter than one window ({length})"
        )
    if (w - 1) * stride + length > n_points:
        raise ValueError(
            f"{w} windows of length {length} at stride {stride} span {(w - 1) * stride + length} points, "
            f"more than n_points={n_points}"
        )
    starts = np.arange(w) * stride
    if reduce == "last":
        ends = starts + length - 1
        # Index of the newest window that has ended at or before each point (-1 before the first one).
        idx = np.searchsorted(ends, np.arange(n_points), side="right") - 1
        return e[np.maximum(idx, 0)]
    if reduce == "mean":
        total = np.zeros(n_points + 1)
        count = np.zeros(n_points + 1)
        np.add.at(total, starts, e)
        np.add.at(total, starts + length, -e)
        np.add.at(count, starts, 1.0)
        np.add.at(count, starts + length, -1.0)
        total, count = np.cumsum(total)[:n_points], np.rint(np.cumsum(count)[:n_points])
        covered = count > 0
        out = np.where(covered, total / np.where(covered, count, 1.0), np.nan)
        # Uncovered points (only a tail, since window 0 starts at point 0) take the last covered value.
        last = np.maximum.accumulate(np.where(covered, np.arange(n_points), 0))
        return out[last]
    raise ValueError(f"reduce must be 'last' or 'mean', got {reduce!r}")


def false_alarm_rate(labels: np.ndarray, flags: np.ndarray, grace: int) -> float | None:
    """Flags per normal reading, not counting the ``grace`` readings after each anomaly.

    A windowed detector scores the window that ends at each reading: for ``length - 1`` readings after a
    fault ends, that window still contains faulty readings, so flags there are the fault being seen, not
    false alarms. With ``grace = 0`` this is the plain point false-alarm rate.
    """
    y = np.asarray(labels).astype(bool)
    f = np.asarray(flags).astype(bool)
    recovering = np.zeros_like(y)
    from aeflow.evaluation.thresholds import detection_events

    for _, end in detection_events(y):
        recovering[end : min(len(y), end + grace)] = True
    normal = ~y & ~recovering
    return float(f[normal].mean()) if normal.any() else None


def write_pr_curve(path: Path, labels: np.ndarray, scores: np.ndarray, points: int = 200) -> None:
    """Precision against recall over every threshold (at most ``points`` rows) as CSV for ``dvc plots``."""
    from sklearn.metrics import precision_recall_curve

    if not labels.any() or labels.all():
        path.write_text("recall,precision\n", encoding="utf-8")
        return
    precision, recall, _ = precision_recall_curve(labels, scores)
    keep = np.unique(np.linspace(0, len(recall) - 1, min(points, len(recall))).round().astype(int))
    rows = "".join(f"{recall[i]:.5f},{precision[i]:.5f}\n" for i in keep[::-1])
    path.write_text("recall,precision\n" + rows, encoding="utf-8")
