"""The sensor anomaly detector: scaler + windowing + autoencoder + threshold, batch and online.

One object serves the evaluate stage, the MLflow pyfunc model that ``mlflow models serve`` runs, and
``aeflow monitor``. Its settings travel with the model (``model.data_config``), so a registered version is
usable on its own.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterator
from typing import Any, NamedTuple

import numpy as np
import torch

from aeflow.errors import DataError
from aeflow.models.ensemble import member_outputs, members_of
from aeflow.usecases.sensor.windows import Scaler, fill_missing, make_windows, pad_front


class AnomalyDetector:
    """Scores readings (rows × sensors, in ``sensors`` order) by reconstruction error.

    A row's error is the mean squared reconstruction error, over sensors, of the newest ``score_steps``
    readings of the window that ends at that row. Its score is the trailing mean of the last ``smoothing``
    errors, or, with ``history`` > 0, that mean in standard deviations above the ``history`` errors before
    it (:func:`~aeflow.evaluation.thresholds.relative_to_history`; ``history_ref``, the validation
    segment's error mean and std, stands in while a series has too little past). With ``season_rows`` (a
    number of rows per season, e.g. a day's and a week's) the score is then reduced by the highest score
    that many rows earlier (± ``season_tolerance``; :func:`~aeflow.evaluation.thresholds.seasonal_excess`).
    With ``season_readings_ref`` as well (``sensor.threshold.season_readings``), each row's readings are also
    compared with the closest readings around one season earlier
    (:func:`~aeflow.evaluation.thresholds.seasonal_difference`, on scaled readings), that difference is
    measured against its own past as the errors are (its training level standing in while the past is short),
    and the row scores the higher of the two: a window that is easy to reconstruct can still be wrong for
    its time of day or week.
    A row is flagged when its score exceeds ``threshold``; a flagged row raises an alarm unless one was
    raised within the last ``cooldown`` rows. Every step only looks back, so batch and online scoring
    agree (to round-off).

    A model of several members (``model.members`` > 1, :mod:`aeflow.models.ensemble`) is scored member by
    member up to the history step (each relative to its own past, ``history_ref`` then holds one (μ, σ) per
    member) and the members' scores are averaged: how far a reading stands out is judged on each member's
    own scale, so a member with larger errors overall does not outvote the others.
    """

    def __init__(self, model: Any, config: dict[str, Any]) -> None:
        self.model = model.eval()
        self.sensors: list[str] = list(config["sensors"])
        self.length = int(config["window_length"])
        self.score_steps = int(config.get("score_steps", 1))
        self.smoothing = int(config.get("smoothing", 1))
        self.history = int(config.get("history") or 0)
        self.n_members = len(members_of(model))
        ref = config.get("history_ref")
        refs = ref if ref is not None and isinstance(ref[0], list | tuple) else [ref] * self.n_members
        if len(refs) != self.n_members:
            raise DataError(
                f"the detector's settings hold {len(refs)} history_ref pairs for a model of {self.n_members} "
                "members; the model file is inconsistent. Fix: retrain it (dvc repro train@sensor)."
            )
        #: each member's normal error level (μ, σ), or None without ``history``
        self.history_refs = [(float(r[0]), float(r[1])) if r is not None else None for r in refs]
        if self.history and any(r is None for r in self.history_refs):
            raise DataError(
                "the detector's settings have history > 0 but no history_ref (the normal error level); "
                "the model file is incomplete. Fix: retrain it (dvc repro train@sensor)."
            )
        outlier = config.get("history_outlier")  # absent in detectors trained before it: every error kept
        self.history_outlier = float(outlier) if outlier is not None else None
        self.history_outlier_rows = int(config.get("history_outlier_rows") or 0)
        self.cooldown = int(config.get("cooldown") or 0)
        rows = config.get("season_rows") or []  # one number in detectors trained before several seasons
        #: each season in rows (empty: no season step)
        self.seasons = [int(r) for r in rows] if isinstance(rows, list | tuple) else [int(rows)]
        self.season_tolerance = int(config.get("season_tolerance") or 0)
        ref = config.get("season_readings_ref")  # absent in detectors trained before it: off
        #: the seasonal reading difference's normal level (μ, σ), or None: readings not compared
        self.reading_ref = (
            (float(ref[0]), float(ref[1])) if ref is not None and self.seasons and self.history else None
        )
        self.threshold = float(config["threshold"]) if config.get("threshold") is not None else float("inf")
        self.scaler = Scaler.from_json(config["scaler"])
        scale = config.get("sensor_error_scale")  # absent in detectors trained before attribution
        self.error_scale = np.maximum(
            np.asarray(scale if scale is not None else [1.0] * len(self.sensors), dtype=np.float64), MIN_SCALE
        )
        self.config = config

    @classmethod
    def from_model(cls, model: Any) -> AnomalyDetector:
        cfg = getattr(model, "data_config", None)
        if not cfg or cfg.get("use_case") != "sensor":
            raise DataError(
                "this model carries no sensor detector settings (data_config); it was not trained by the "
                "sensor train stage. Fix: pass a model registered by `dvc repro` for the sensor use case."
            )
        return cls(model, cfg)

    # ------------------------------------------------------------------------------------------ batch
    def member_errors(self, windows: np.ndarray, batch_size: int = 4096) -> np.ndarray:
        """Per-sensor error of the newest ``score_steps`` readings of each window, by member:
        (members, W, sensors)."""
        out = np.empty((self.n_members, len(windows), len(self.sensors)), dtype=np.float32)
        k = self.score_steps
        with torch.inference_mode():
            for i in range(0, len(windows), batch_size):
                x = torch.from_numpy(windows[i : i + batch_size])
                err = (member_outputs(self.model, x)[..., -k:] - x[..., -k:]) ** 2
                out[:, i : i + len(x)] = err.mean(dim=-1).numpy()
        return out

    def window_errors(self, windows: np.ndarray, batch_size: int = 4096) -> np.ndarray:
        """Per-sensor error of the newest ``score_steps`` readings of each window, the members' mean:
        (W, sensors)."""
        return self.member_errors(windows, batch_size).mean(axis=0)

    def scaled(self, values: np.ndarray) -> np.ndarray:
        """Readings as the model sees them: missing ones carried forward, then scaled (rows × sensors)."""
        return self.scaler.transform(fill_missing(np.asarray(values, dtype=np.float32), self.scaler.center))

    def windows_of(self, values: np.ndarray) -> np.ndarray:
        """The window ending at every row, scaled (rows × sensors × length); early rows' windows are
        front-padded by repeating the first reading."""
        return make_windows(pad_front(self.scaled(values), self.length), self.length)

    def reading_scores(self, scaled: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Each row's seasonal reading difference in standard deviations above its past (``-inf`` where no
        reading lies a season back, or where readings are not compared), and the lag of the closest reading
        a season back (−1 where none). ``scaled``: rows × sensors, as :meth:`scaled` gives them."""
        from aeflow.evaluation.thresholds import relative_to_history, seasonal_difference

        out = np.full(len(scaled), -np.inf)
        if self.reading_ref is None:
            return out, np.full(len(scaled), -1, dtype=np.int64)
        diff, lag = seasonal_difference(scaled, self.seasons, self.season_tolerance)
        has = np.flatnonzero(lag >= 0)
        if len(has):  # every row from the first one with a reading a season back has one
            first = int(has[0])
            out[first:] = relative_to_history(
                diff[first:],
                self.smoothing,
                self.history,
                self.reading_ref,
                outlier=self.history_outlier,
                outlier_rows=self.history_outlier_rows,
            )
        return out, lag

    def per_sensor(self, values: np.ndarray) -> np.ndarray:
        """Unsmoothed per-sensor errors of every row (rows × sensors)."""
        return self.window_errors(self.windows_of(values))

    def repair_drops(self, windows: np.ndarray, batch_size: int = 1024) -> np.ndarray:
        """For each window and sensor, how much of the window's error goes away when that sensor's readings
        are replaced by the model's reconstruction of them, all else kept (windows × sensors)."""
        k, n = self.score_steps, len(self.sensors)
        members = members_of(self.model)
        out = np.zeros((len(windows), n), dtype=np.float64)
        with torch.inference_mode():
            for i in range(0, len(windows), batch_size):
                x = torch.from_numpy(np.ascontiguousarray(windows[i : i + batch_size]))
                for member in members:  # each member repairs with its own reconstruction; drops averaged
                    recon = member(x)
                    base = ((recon[..., -k:] - x[..., -k:]) ** 2).mean(dim=(-1, -2))
                    for j in range(n):
                        repaired = x.clone()
                        repaired[:, j, :] = recon[:, j, :]
                        err = ((member(repaired)[..., -k:] - repaired[..., -k:]) ** 2).mean(dim=(-1, -2))
                        out[i : i + len(x), j] += (base - err).double().numpy() / len(members)
        return out

    def errors(self, values: np.ndarray) -> np.ndarray:
        """Raw (unsmoothed) error of every row, averaged over sensors, float64."""
        return self.per_sensor(values).mean(axis=1, dtype=np.float64)

    def score(self, values: np.ndarray) -> np.ndarray:
        """Anomaly score of every row (raised above the threshold where a sensor is stuck)."""
        return self._scored(values).score

    def _scored(self, values: np.ndarray) -> _Scored:
        """Every row's score with what explaining it needs (see :class:`_Scored`)."""
        x = np.asarray(values, dtype=np.float32)
        scaled = self.scaled(x)
        windows = make_windows(pad_front(scaled, self.length), self.length)
        by_member = self.member_errors(windows)
        runs = flat_runs(x)
        errors = self.score_members(by_member.mean(axis=2, dtype=np.float64))
        readings, lag = self.reading_scores(scaled)
        score = self.flatline_boost(np.maximum(errors, readings), runs)
        return _Scored(score, windows, by_member.mean(axis=0), runs, readings > errors, scaled, lag)

    def score_and_shares(self, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Every row's score and each sensor's share of it (rows × sensors, each row summing to 1): the
        question a plant operator asks first is *which* sensor.

        A flagged reading's shares answer "which sensor, if it read what the model expects, would explain
        the error away": each sensor's readings in the window are replaced by their reconstruction in
        turn (:meth:`repair_drops`) and the drops in error are the shares. Reading each sensor's own error
        instead blames the wrong one once a fault lasts: the model, encoding all sensors jointly, bends its
        reconstruction of the sensors correlated with the faulty one towards the fault (on the simulator, a
        37-reading level shift of the motor current was put on vibration or pressure for 17 of its
        readings; by repair, none). That costs one pass per sensor, so only flagged readings pay it.
        Other readings share by their reconstruction error, smoothed as the score is, in units of the
        sensor's own normal error (``sensor_error_scale``, measured where the threshold is fitted). A
        stuck sensor (see :meth:`flatline_boost`) is reconstructed *well*, so where sensors are stuck they
        share the row.

        A row scored by its readings' difference from a season back (``season_readings``) is shared by
        each sensor's part in that difference: the sensors that read unlike the same time before.
        """
        s = self._scored(values)
        shares = self.shares(s.per_sensor, s.runs)
        flagged = self.flags(s.score) & ~self.stuck(s.runs).any(axis=1)  # what an alarm needs explained
        rows = np.flatnonzero(flagged & ~s.by_readings)
        if len(rows):
            shares[rows] = _repair_shares(self.repair_drops(s.windows[rows]), shares[rows])
        rows = np.flatnonzero(flagged & s.by_readings)
        if len(rows):
            apart = np.abs(s.scaled[rows] - s.scaled[rows - s.lag[rows]])
            shares[rows] = _repair_shares(apart, shares[rows])
        return s.score, shares

    def shares(self, per_sensor: np.ndarray, runs: np.ndarray) -> np.ndarray:
        """Each sensor's share of each row's error, unflagged rows' rule (see :meth:`score_and_shares`)."""
        from aeflow.evaluation.thresholds import smooth

        normalised = np.asarray(per_sensor, dtype=np.float64) / self.error_scale[None, :]
        if self.smoothing > 1:
            normalised = np.stack(
                [smooth(normalised[:, j], self.smoothing) for j in range(normalised.shape[1])], axis=1
            )
        return _attribute(normalised, self.stuck(runs))

    def stuck(self, runs: np.ndarray) -> np.ndarray:
        """Rows × sensors: repeating one reading longer than the sensor ever did in training."""
        limits = self.config.get("flat_limits")
        if not limits:
            return np.zeros(np.shape(runs), dtype=bool)
        return np.asarray(runs) >= np.asarray(limits, dtype=np.int64)[None, :]

    def top_sensors(self, shares: np.ndarray, k: int = 2) -> list[list[tuple[str, float]]]:
        """The ``k`` sensors with the largest share per row, largest first, with their shares."""
        k = min(k, len(self.sensors))
        order = np.argsort(-shares, axis=1, kind="stable")[:, :k]
        return [
            [(self.sensors[j], float(row[j])) for j in idx] for idx, row in zip(order, shares, strict=True)
        ]

    def score_errors(self, errors: np.ndarray, reference: tuple[float, float] | None = None) -> np.ndarray:
        """Scores from raw errors: smoothed, relative to their past when ``history`` is set, and above the
        same time one season earlier when ``season_rows`` is set.

        ``reference`` replaces ``history_ref`` (the normal level while the past is short), so that other
        raw scores, e.g. a baseline's, go through exactly this rule on their own scale.
        """
        return self._seasonal(
            self._relative(errors, reference if reference is not None else self.history_refs[0])
        )

    def score_members(self, errors: np.ndarray) -> np.ndarray:
        """Scores from each member's raw errors (members × rows): the mean of the members' smoothed,
        history-relative errors (each on its own ``history_ref``), then the seasonal step."""
        relative = [self._relative(e, ref) for e, ref in zip(errors, self.history_refs, strict=True)]
        return self._seasonal(np.mean(relative, axis=0))

    def _relative(self, errors: np.ndarray, reference: tuple[float, float] | None) -> np.ndarray:
        from aeflow.evaluation.thresholds import relative_to_history, smooth

        if self.history:
            assert reference is not None  # history_ref checked in __init__
            return relative_to_history(
                errors,
                self.smoothing,
                self.history,
                reference,
                outlier=self.history_outlier,
                outlier_rows=self.history_outlier_rows,
            )
        return smooth(errors, self.smoothing)

    def _seasonal(self, scores: np.ndarray) -> np.ndarray:
        from aeflow.evaluation.thresholds import seasonal_excess

        return seasonal_excess(scores, self.seasons, self.season_tolerance) if self.seasons else scores

    def alarms(self, flags: np.ndarray) -> np.ndarray:
        """Rows that raise an alarm: flagged, and no alarm within the previous ``cooldown`` rows."""
        from aeflow.evaluation.thresholds import alarm_points

        return alarm_points(flags, self.cooldown)

    def flatline_boost(self, score: np.ndarray, runs: np.ndarray) -> np.ndarray:
        """Lift the score to twice the threshold where a sensor repeats one reading longer than it ever did
        in training (``flat_limits``).

        A stuck sensor is the one fault a reconstruction error cannot see: a frozen, plausible value is
        *easier* to reconstruct than live, noisy readings, so the error falls instead of rising. Exact
        repeats are the tell-tale (live sensors carry noise); the limit per sensor is twice the longest run
        on the training segment, so sensors that legitimately repeat values (counts, quantised readings)
        are left alone.
        """
        if not self.config.get("flat_limits") or not np.isfinite(self.threshold):
            return score
        stuck = self.stuck(runs).any(axis=1)
        lifted = 2.0 * self.threshold if self.threshold > 0 else self.threshold + 1.0
        return np.where(stuck, np.maximum(score, lifted), score)

    def flags(self, scores: np.ndarray) -> np.ndarray:
        return np.asarray(scores) > self.threshold

    def check_columns(self, columns: list[str], where: str) -> None:
        missing = [s for s in self.sensors if s not in columns]
        if missing:
            raise DataError(
                f"{where}: missing sensor column(s) {', '.join(missing)}; the model expects "
                f"{', '.join(self.sensors)} (found {', '.join(map(str, columns))}). Fix: rename the columns."
            )


class _Scored(NamedTuple):
    """What :meth:`AnomalyDetector._scored` finds for every row."""

    score: np.ndarray
    windows: np.ndarray
    per_sensor: np.ndarray  # the members' mean per-sensor errors (rows × sensors)
    runs: np.ndarray  # repeat runs (rows × sensors)
    by_readings: np.ndarray  # the seasonal reading difference gave the score, not the errors
    scaled: np.ndarray  # scaled readings (rows × sensors)
    lag: np.ndarray  # rows back to the closest reading a season earlier (−1: none)


#: the smallest normal error a sensor's share is measured in (a sensor reconstructed perfectly in
#: training would otherwise take every row's whole share for the least error)
MIN_SCALE = 1e-6


def _attribute(normalised: np.ndarray, stuck: np.ndarray) -> np.ndarray:
    """Shares from normalised per-sensor errors; rows with stuck sensors are theirs alone."""
    total = normalised.sum(axis=1, keepdims=True)
    n = normalised.shape[1]
    shares = np.where(total > 0, normalised / np.where(total > 0, total, 1.0), 1.0 / n)
    any_stuck = stuck.any(axis=1)
    if any_stuck.any():
        counts = stuck.sum(axis=1, keepdims=True)
        shares[any_stuck] = (stuck / np.maximum(counts, 1))[any_stuck]
    return shares


def _repair_shares(drops: np.ndarray, fallback: np.ndarray) -> np.ndarray:
    """Positive error drops as shares; a row where no sensor's repair lowers the error keeps ``fallback``."""
    gain = np.clip(drops, 0.0, None)
    total = gain.sum(axis=1, keepdims=True)
    return np.where(total > 0, gain / np.where(total > 0, total, 1.0), fallback)


def sensor_error_scale(per_sensor: np.ndarray) -> list[float]:
    """Each sensor's normal reconstruction error (mean over normal rows), the unit of its share."""
    return [float(max(v, MIN_SCALE)) for v in np.asarray(per_sensor, dtype=np.float64).mean(axis=0)]


def season_repeat(scaled: np.ndarray, seasons: list[int]) -> float | None:
    """How closely readings repeat one season later: the highest, over the ``seasons`` (in rows) that
    ``scaled`` holds at least twice, of the mean over sensors of the correlation between each reading and
    the reading one season before it; None where no season fits or no sensor varies.

    Why: comparing readings with a season back only tells news where the series repeats at that season (a
    city's taxi demand, a building's temperature). Where it does not (a server's CPU load), the readings a
    season back are as far from today's as any others, their difference is noise, and its highest
    values are false alarms.
    """
    x = np.asarray(scaled, dtype=np.float64)
    best: float | None = None
    for p in seasons:
        if 2 * p > len(x):
            continue
        now, before = x[p:], x[:-p]
        varies = (now.std(axis=0) > 0) & (before.std(axis=0) > 0)
        if not varies.any():
            continue
        r = np.mean([np.corrcoef(now[:, j], before[:, j])[0, 1] for j in np.flatnonzero(varies)])
        best = float(r) if best is None else max(best, float(r))
    return best


def season_readings_ref(
    scaled: np.ndarray, seasons: list[int], tolerance: int, normal: slice, min_correlation: float
) -> tuple[list[float] | None, float | None]:
    """The seasonal reading difference's normal level (μ, σ) on the rows ``normal`` of ``scaled`` (the
    readings before them are the seasons back), and how closely the readings up to the end of ``normal``
    repeat one season later (:func:`season_repeat`). The level is None — readings are then not compared —
    where they repeat less than ``min_correlation`` (or cannot be measured: data shorter than two seasons),
    or where fewer than 2 normal rows have a reading a season back."""
    from aeflow.evaluation.thresholds import history_stats, seasonal_difference

    if not seasons:
        return None, None
    repeat = season_repeat(scaled[: normal.stop], seasons)
    if repeat is None or repeat < min_correlation:
        return None, repeat
    diff, lag = seasonal_difference(scaled[: normal.stop], seasons, tolerance)
    found = diff[normal][lag[normal] >= 0]
    return (list(history_stats(found)) if len(found) >= 2 else None), repeat


def flat_runs(values: np.ndarray) -> np.ndarray:
    """Per row and sensor, how many consecutive readings up to that row repeat exactly one value.

    A fresh reading counts 1; a missing reading (NaN) counts 0 and restarts the count, so gaps that are
    carried forward for scoring never look like a stuck sensor.
    """
    x = np.asarray(values, dtype=np.float64)
    if x.ndim == 1:
        x = x[:, None]
    finite = np.isfinite(x)
    same = np.zeros_like(finite)
    same[1:] = finite[1:] & finite[:-1] & (x[1:] == x[:-1])
    runs = np.zeros(x.shape, dtype=np.int64)
    for j in range(x.shape[1]):  # sensors are few; rows are vectorised
        idx = np.arange(len(x))
        reset = np.where(~same[:, j], idx, 0)
        start = np.maximum.accumulate(reset)
        runs[:, j] = np.where(finite[:, j], idx - start + 1, 0)
    return runs


def flat_limits(train_values: np.ndarray, min_run: int, risk: float = 1e-4) -> list[int] | None:
    """Per-sensor run length that counts as stuck (``min_run`` 0 turns the guard off).

    The longest of: ``min_run``; twice the longest exact repeat in training; and the shortest run a live
    sensor makes by chance less often than ``risk`` per reading. The last one matters for quantised sensors
    (counts, readings rounded to one decimal): a sensor that repeats its previous reading with probability
    ``q`` (measured on training) starts a run of ``r`` equal readings with probability about ``q**(r-1)``,
    so a sensor that hit its most common value 5 times in a row now and then is not "stuck" even if the
    short training segment never showed it.
    """
    if min_run <= 0:
        return None
    x = np.asarray(train_values, dtype=np.float64)
    if x.ndim == 1:
        x = x[:, None]
    if not len(x):
        return [int(min_run)] * x.shape[1]
    longest = flat_runs(x).max(axis=0)
    limits = []
    for j in range(x.shape[1]):
        col = x[:, j]
        pairs = np.isfinite(col[1:]) & np.isfinite(col[:-1])
        q = float(np.mean(col[1:][pairs] == col[:-1][pairs])) if pairs.any() else 0.0
        chance = 1 + math.ceil(math.log(risk) / math.log(q)) if 0.0 < q < 1.0 else 0
        limits.append(int(max(2 * int(longest[j]), min_run, chance)))
    return limits


class StreamScorer:
    """Online scoring with constant memory: the last ``length`` readings and ``smoothing`` errors (with
    ``history``: each member's last ``history`` errors before those, the ones kept; with a season: the last
    ``season_rows + season_tolerance`` scores, and with ``season_readings`` as many readings and the
    reading difference's own past).

    Gives the same scores and alarms as :meth:`AnomalyDetector.score` and :meth:`AnomalyDetector.alarms` on
    the whole series (tested), one row at a time; ``alarm`` says whether the last pushed row raised one.
    """

    def __init__(self, detector: AnomalyDetector) -> None:
        from aeflow.evaluation.thresholds import ErrorHistory

        self.d = detector
        self.window: deque[np.ndarray] = deque(maxlen=detector.length)
        self.recent: deque[np.ndarray] = deque(maxlen=detector.smoothing)  # the last errors by member
        #: each member's past errors (with ``history``), kept by the same rule as batch scoring
        self.pasts = (
            [
                ErrorHistory(
                    detector.history,
                    detector.smoothing,
                    ref,  # type: ignore[arg-type]  # history_ref checked in the detector
                    outlier=detector.history_outlier,
                    outlier_rows=detector.history_outlier_rows,
                )
                for ref in detector.history_refs
            ]
            if detector.history
            else []
        )
        self.recent_sensors: deque[np.ndarray] = deque(maxlen=detector.smoothing)
        #: each sensor's share of the last pushed row's score (as :meth:`AnomalyDetector.score_and_shares`)
        self.shares = np.full(len(detector.sensors), 1.0 / len(detector.sensors))
        self.past_scores: deque[float] = deque(
            maxlen=max(detector.seasons, default=0) + detector.season_tolerance
        )
        compare = detector.reading_ref is not None
        #: the last season of scaled readings (with ``season_readings``), past[-k] is k rows back
        self.past_readings: deque[np.ndarray] = deque(
            maxlen=max(detector.seasons) + detector.season_tolerance if compare else 0
        )
        self.recent_differences: deque[float] = deque(maxlen=detector.smoothing)
        #: the seasonal reading difference's past, kept by the same rule as the errors'
        self.difference_past = (
            ErrorHistory(
                detector.history,
                detector.smoothing,
                detector.reading_ref,  # type: ignore[arg-type]  # set: compare
                outlier=detector.history_outlier,
                outlier_rows=detector.history_outlier_rows,
            )
            if compare
            else None
        )
        self.rows = 0
        self.last_alarm: int | None = None
        self.alarm = False
        self.last: np.ndarray | None = None
        self.raw_last: np.ndarray | None = None  # the previous raw reading and its repeat counts
        self.runs = np.zeros(len(detector.sensors), dtype=np.int64)

    def push(self, reading: np.ndarray) -> tuple[float, bool]:
        """Score one reading (NaN sensors carry the previous value forward, as in batch scoring)."""
        x = np.asarray(reading, dtype=np.float32).copy()
        finite = np.isfinite(x)
        same = finite & (x == self.raw_last) if self.raw_last is not None else np.zeros_like(finite)
        self.runs = np.where(finite, np.where(same, self.runs + 1, 1), 0)
        self.raw_last = x.copy()
        if self.last is not None:
            x = np.where(np.isnan(x), self.last, x)
        x = np.where(np.isnan(x), self.d.scaler.center, x)
        self.last = x
        scaled = self.d.scaler.transform(x[None])[0]
        if not self.window:
            self.window.extend([scaled] * (self.d.length - 1))
        self.window.append(scaled)
        win = np.stack(self.window, axis=1)[None]  # (1, C, L)
        by_member = self.d.member_errors(win)[:, 0]  # (members, sensors)
        per = by_member.mean(axis=0)
        self.recent.append(by_member.mean(axis=1, dtype=np.float64))
        self.recent_sensors.append(per.astype(np.float64) / self.d.error_scale)
        smoothed = np.mean(np.stack(self.recent_sensors), axis=0)  # as smooth(): the kept rows' mean
        stuck = self.d.stuck(self.runs[None])
        self.shares = _attribute(smoothed[None, :], stuck)[0]
        errors = self._seasonal(self._score())
        readings, apart = self._readings(scaled)
        score = float(self.d.flatline_boost(np.array([max(errors, readings)]), self.runs[None])[0])
        flag = score > self.d.threshold
        if flag and not stuck.any():  # as in batch: a flagged reading's shares by repair ...
            if readings > errors:  # ... or by each sensor's part in the difference from a season back
                self.shares = _repair_shares(apart[None], self.shares[None])[0]
            else:
                self.shares = _repair_shares(self.d.repair_drops(win), self.shares[None])[0]
        self.alarm = flag and (self.last_alarm is None or self.rows - self.last_alarm > self.d.cooldown)
        if self.alarm:
            self.last_alarm = self.rows
        self.rows += 1
        return score, flag

    def _score(self) -> float:
        """The newest row's score (as :meth:`AnomalyDetector.score_members`, before the season): the
        members' smoothed errors, each relative to its own past when ``history`` is set."""
        smoothed = np.stack(self.recent).mean(axis=0)  # (members,)
        if not self.pasts:
            return float(smoothed.mean())
        newest = self.recent[-1].tolist()
        z = [past.push(e, s) for past, e, s in zip(self.pasts, newest, smoothed.tolist(), strict=True)]
        return float(np.mean(z))

    def _seasonal(self, score: float) -> float:
        """The score above the highest one a season earlier (as :func:`seasonal_excess`), then kept."""
        if not self.d.seasons:
            return score
        tol = self.d.season_tolerance
        past = self.past_scores  # past[-k] is the score k rows back
        # rows i-period-tol .. i-period+tol are k = period+tol .. period-tol rows back
        back = [past[-k] for p in self.d.seasons for k in range(p - tol, p + tol + 1) if k <= len(past)]
        self.past_scores.append(score)
        return score - max(max(back), 0.0) if back else score

    def _readings(self, scaled: np.ndarray) -> tuple[float, np.ndarray]:
        """The newest row's seasonal reading difference relative to its past (as
        :meth:`AnomalyDetector.reading_scores`; ``-inf`` where none) and each sensor's absolute difference
        from the closest reading a season back."""
        x = np.asarray(scaled, dtype=np.float64)
        if self.difference_past is None:
            return -math.inf, np.zeros_like(x)
        tol, past = self.d.season_tolerance, self.past_readings
        best, closest = math.inf, None
        for p in self.d.seasons:  # the order of seasonal_difference: seasons as given, lags ascending
            for k in range(p - tol, p + tol + 1):
                if k <= len(past):
                    d = float(np.abs(x - past[-k]).mean())
                    if d < best:
                        best, closest = d, past[-k]
        past.append(x)
        if closest is None:
            return -math.inf, np.zeros_like(x)
        self.recent_differences.append(best)
        smoothed = float(np.mean(self.recent_differences))
        return self.difference_past.push(best, smoothed), np.abs(x - closest)

    def run(self, rows: Iterator[np.ndarray]) -> Iterator[tuple[float, bool]]:
        for row in rows:
            yield self.push(row)


class RowStream:
    """``aeflow monitor`` for a sensor detector: CSV rows (column → text) into :class:`StreamScorer`; an
    empty cell is a missing reading (carried over, as in batch scoring), any other text is an error."""

    def __init__(self, detector: AnomalyDetector) -> None:
        self.detector = detector
        self.scorer = StreamScorer(detector)
        self.columns = detector.sensors

    @property
    def alarm(self) -> bool:
        return self.scorer.alarm

    def push(self, row: dict[str, Any]) -> tuple[float, bool, str]:
        reading = []
        for s in self.columns:
            cell = row.get(s)
            try:
                reading.append(float(cell) if cell not in ("", None) else math.nan)
            except ValueError:
                raise DataError(f"column {s!r}: {cell!r} is not a number. Fix the value.") from None
        score, flag = self.scorer.push(np.asarray(reading))
        top = self.detector.top_sensors(self.scorer.shares[None, :])[0]
        return score, bool(flag), ", ".join(f"{name} {share:.0%}" for name, share in top)

    def summary(self) -> str:
        d = self.detector
        return f"threshold {d.threshold:.6g}, cooldown {d.cooldown} rows"
