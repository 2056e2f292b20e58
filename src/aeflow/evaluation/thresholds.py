"""Turning anomaly scores into alarms: smoothing, scores relative to their own past, thresholds fitted on
normal data, and alarms with a cooldown.

Every threshold here is fitted on *validation* scores of normal data only, so it answers one question that
users can check: "how often would this fire on data like the validation segment?". ``percentile`` and
``mean_k_sigma`` answer it empirically; ``pot`` (Peaks-Over-Threshold, Siffer et al., KDD 2017) fits a
generalised Pareto tail so that it can extrapolate to false-alarm rates rarer than the validation segment
can measure (1 in 10,000 from 5,000 points). :func:`choose_threshold` also returns a one-sentence
explanation of the number, because "threshold = 0.83" means nothing on its own.

All functions are pure: NumPy arrays in, numbers out.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np

from aeflow.errors import DataError, ParamsError
from aeflow.sections import ThresholdParams, ThresholdRule

__all__ = [
    "ErrorHistory",
    "alarm_points",
    "choose_threshold",
    "detection_events",
    "history_stats",
    "mean_k_sigma_threshold",
    "percentile_threshold",
    "pot_threshold",
    "relative_to_history",
    "smooth",
]

MIN_PEAKS_FOR_GPD = 10
"""Fewer excesses than this cannot pin down a GPD shape; the exponential tail (γ = 0) is used instead."""

MIN_HISTORY = 30
"""Past errors needed before a row is measured against its own past; earlier rows use the reference
(the validation segment's errors), so a 1-row request is scored on the same scale as a long series."""

MIN_STD = 1e-6
"""Floor on the past errors' standard deviation: a perfectly flat past would make any change infinite."""


def _scores_1d(scores: np.ndarray, what: str) -> np.ndarray:
    """``scores`` as a finite, non-empty 1-D float64 array, or a :class:`DataError` that says what is wrong.

    Thresholds silently computed from NaN scores would be NaN and flag nothing, so this fails loudly.
    """
    x = np.asarray(scores, dtype=np.float64)
    if x.ndim == 0:
        x = x.reshape(1)
    elif x.ndim == 2 and x.shape[1] == 1:
        x = x[:, 0]
    if x.ndim != 1:
        raise ValueError(f"{what} must be one score per point (1-D), got shape {np.shape(scores)}")
    if x.size == 0:
        raise DataError(f"{what} are empty: there is no data to fit or apply a threshold to.")
    bad = int(np.count_nonzero(~np.isfinite(x)))
    if bad:
        raise DataError(
            f"{what} contain {bad} NaN/inf value(s) out of {x.size}. Fix: fill or drop missing readings "
            "before scoring, and check that the model's reconstructions are finite."
        )
    return x


def smooth(scores: np.ndarray, window: int) -> np.ndarray:
    """Trailing (causal) moving average of ``scores`` over ``window`` points.

    The smoothed value at ``i`` is the mean of ``scores[i - window + 1 : i + 1]``; the first ``window - 1``
    points average what is available so far. Only past and present values are used, so an online monitor
    that keeps the last ``window`` scores reproduces these values exactly, and smoothing a longer series
    never changes earlier values. ``window = 1`` returns the scores unchanged (as float64).

    Args:
        scores: One score per point, shape ``(N,)``.
        window: Number of points averaged (``>= 1``).

    Returns:
        Smoothed scores, shape ``(N,)``, float64.
    """
    if int(window) != window or window < 1:
        raise ParamsError(f"smoothing window must be a whole number >= 1, got {window!r}")
    window = int(window)
    x = np.asarray(scores, dtype=np.float64).reshape(-1)
    if window == 1 or x.size == 0:
        return x.copy()
    out = np.empty_like(x)
    head = min(window - 1, x.size)
    # Expanding mean over the first points (short, so a cumulative sum carries no drift).
    out[:head] = np.cumsum(x[:head]) / np.arange(1, head + 1)
    if x.size >= window:
        # A mean over each trailing window (not a long cumulative sum) keeps the result free of
        # round-off drift on long series, so it matches an online monitor's mean of its last scores.
        out[window - 1 :] = np.lib.stride_tricks.sliding_window_view(x, window).mean(axis=-1)
    return out


class ErrorHistory:
    """The past one row's error is judged against, kept one row at a time: the last ``history`` errors that
    left the smoothing window and were kept.

    Both :func:`relative_to_history` (with ``outlier``) and the online monitor score through this object,
    so the rule "an outlier stays out of the past" is written once. Its running sums hold plain Python
    floats relative to the reference level (small numbers, little round-off) and are re-added from scratch
    every ``history`` removals, so long series do not drift; a row costs a few float operations (200,000
    rows in well under a second).

    Args:
        history: Past errors kept (``>= 2``).
        smoothing: Rows in the smoothing window; an error joins the past when it leaves that window, so the
            errors being judged never judge themselves.
        reference: ``(mean, std)`` used while fewer than ``min_history`` past errors are kept.
        min_history: Past errors needed before the row's own past is used.
        outlier: ``None`` keeps every error. A number keeps out the error of a row scored above it, up to
            ``outlier_rows`` rows in a row (see :func:`relative_to_history`).
        outlier_rows: The most rows in a row kept out.
    """

    def __init__(
        self,
        history: int,
        smoothing: int,
        reference: tuple[float, float],
        min_history: int = MIN_HISTORY,
        outlier: float | None = None,
        outlier_rows: int = 0,
    ) -> None:
        from collections import deque

        if history < 2:
            raise ParamsError(f"history must be at least 2 rows, got {history}")
        self.history, self.smoothing = int(history), int(smoothing)
        self.reference = (float(reference[0]), float(reference[1]))
        self.need = max(int(min_history), 2)
        self.outlier, self.outlier_rows = outlier, int(outlier_rows)
        self.waiting: deque[tuple[float, bool]] = deque()  # the smoothing window: (error, kept out)
        self.past: deque[float] = deque()  # errors kept, minus the reference level
        self.total = self.squares = 0.0
        self.removed = self.run = 0

    def push(self, error: float, smoothed: float) -> float:
        """Add the newest row's raw ``error`` and return its ``smoothed`` error in standard deviations above
        the past (which the row's error then may join, once it leaves the smoothing window)."""
        if len(self.waiting) == self.smoothing:
            left, kept_out = self.waiting.popleft()
            if not kept_out:
                self._keep(left)
        m = len(self.past)
        if m >= self.need:
            mean = self.total / m
            mu = self.reference[0] + mean
            sd = math.sqrt(max(self.squares - m * mean * mean, 0.0) / (m - 1))
        else:
            mu, sd = self.reference
        z = (smoothed - mu) / (sd if sd > MIN_STD else MIN_STD)
        out = False
        if self.outlier is not None:
            if z <= self.outlier:
                self.run = 0
            elif self.run < self.outlier_rows:
                out, self.run = True, self.run + 1
        self.waiting.append((error, out))
        return z

    def _keep(self, error: float) -> None:
        d = error - self.reference[0]
        self.past.append(d)
        self.total += d
        self.squares += d * d
        if len(self.past) > self.history:
            old = self.past.popleft()
            self.total -= old
            self.squares -= old * old
            self.removed += 1
            if self.removed >= self.history:  # re-add from scratch now and then: no drift on long series
                self.total, self.squares = math.fsum(self.past), math.fsum(v * v for v in self.past)
                self.removed = 0


def history_stats(errors: np.ndarray) -> tuple[float, float]:
    """Mean and standard deviation (ddof = 1, floored at ``MIN_STD``) of a stretch of errors.

    The reference a detector keeps from training: what "normal" looks like when a request brings no past
    of its own.
    """
    x = np.asarray(errors, dtype=np.float64).reshape(-1)
    if x.size < 2:
        raise DataError(f"{x.size} error(s) cannot describe a normal level: need at least 2")
    return float(x.mean()), max(float(x.std(ddof=1)), MIN_STD)


def relative_to_history(
    errors: np.ndarray,
    smoothing: int,
    history: int,
    reference: tuple[float, float],
    min_history: int = MIN_HISTORY,
    outlier: float | None = None,
    outlier_rows: int = 0,
) -> np.ndarray:
    """Each row's smoothed error in standard deviations above the ``history`` errors before it.

    ``z[i] = (mean(e[i-s+1 .. i]) − μ_i) / σ_i`` where ``s = smoothing`` and ``μ_i, σ_i`` are the mean and
    standard deviation (ddof = 1, at least ``MIN_STD``) of ``e[i-s-history+1 .. i-s]``, the past just
    before the smoothing window (so the errors being judged never judge themselves). Rows with fewer than
    ``min_history`` past errors use ``reference`` (μ, σ) instead. Everything looks back only, so an online
    monitor that keeps the last ``history + smoothing`` errors reproduces these values (to round-off).

    Why: an autoencoder trained on a short stretch of normal data sees a real series drift away from it,
    and its error rises everywhere, not only at faults. Measured against its own recent past, the error
    flags *changes*, the way an operator reads a chart, and the scale is re-fitted as the series goes.

    Args:
        errors: Raw (unsmoothed) errors, one per row, shape ``(N,)``.
        smoothing: Rows averaged into the judged value (``>= 1``).
        history: Past rows the judged value is compared with (``>= 2``).
        reference: ``(mean, std)`` used while the past is shorter than ``min_history``.
        min_history: Past rows needed before the row's own past is used.
        outlier: ``None`` keeps every error in the past. A number keeps out of the past the error of every
            row scored more than this many standard deviations above it (up to ``outlier_rows`` rows in a
            row; past them a level that stays is the new normal and joins). Why: the past's standard
            deviation is the scale, and a fault thousands of deviations high would otherwise stay in it for
            ``history`` rows and shrink every later score, hiding the next fault (NAB's second windows).
            The past is then the last ``history`` errors kept, not the last ``history`` rows.
        outlier_rows: The most rows in a row kept out (with ``outlier``).

    Returns:
        ``(N,)`` float64 scores.
    """
    import pandas as pd

    if history < 2:
        raise ParamsError(f"history must be at least 2 rows, got {history}")
    e = np.asarray(errors, dtype=np.float64).reshape(-1)
    smoothed = smooth(e, smoothing)
    if outlier is not None:  # whether a row's error joins the past depends on its score: one row at a time
        past = ErrorHistory(history, smoothing, reference, min_history, outlier, outlier_rows)
        return np.array([past.push(a, b) for a, b in zip(e.tolist(), smoothed.tolist(), strict=True)])
    past = pd.Series(e).shift(smoothing).rolling(history, min_periods=max(int(min_history), 2))
    mu = past.mean().to_numpy(dtype=np.float64, copy=True)
    sd = past.std(ddof=1).to_numpy(dtype=np.float64, copy=True)
    short = np.isnan(mu)
    mu[short], sd[short] = reference
    return (smoothed - mu) / np.maximum(sd, MIN_STD)


def _season_periods(period: int | Sequence[int], tolerance: int) -> list[int]:
    """One season or several, in rows, each longer than ``tolerance`` (so that only the past is used)."""
    periods = [int(period)] if isinstance(period, int | np.integer) else [int(p) for p in period]
    for p in periods:
        if p <= tolerance or tolerance < 0:
            raise ParamsError(f"a season of {p} rows must be longer than its tolerance of {tolerance} rows")
    return periods


def seasonal_excess(scores: np.ndarray, period: int | Sequence[int], tolerance: int) -> np.ndarray:
    """How far each score rises above the highest score one season earlier.

    ``out[i] = s[i] − max(0, max(s[i-period-tolerance .. i-period+tolerance]))`` (indices below 0 are
    left out; rows with no row a season back keep their score). ``period`` is a season in rows (a day of
    readings, say) and must exceed ``tolerance`` so that only the past is used; an online monitor that
    keeps the last ``period + tolerance`` scores reproduces these values. Several periods (a day and a
    week) take the highest score around each of them: a score is news only if it was lower at the same
    time one day *and* one week earlier.

    Why: real systems repeat themselves — a nightly backup, a shift change, a batch job at 03:25 — and a
    detector trained on a short stretch of data flags each repetition afresh (a one-row spike once a day is
    rare in any history of errors). A score that was as high at the same time yesterday is no news, while
    a fault is: yesterday at that time the score was low, so it keeps nearly all of its height.
    """
    import pandas as pd

    periods = _season_periods(period, tolerance)
    s = np.asarray(scores, dtype=np.float64).reshape(-1)
    out = s.copy()
    ref = np.full(len(s), np.nan)  # the highest score around one season back, over the seasons
    around = pd.Series(s).rolling(2 * tolerance + 1, center=True, min_periods=1).max().to_numpy()
    firsts = np.maximum.accumulate(s)  # firsts[k] is the max over s[0 .. k]
    rows = np.arange(len(s))
    for p in periods:
        if len(s) <= p - tolerance:
            continue
        # around[j] is the max over s[j-tol .. j+tol]; row i looks at j = i - p (clipped at the start).
        j = rows - p
        early = (j < 0) & (j + tolerance >= 0)  # the season-back window starts before row 0
        back = np.full(len(s), np.nan)
        back[j >= 0] = around[j[j >= 0]]
        back[early] = firsts[j[early] + tolerance]
        ref = np.fmax(ref, back)  # NaN (no row a season back) takes the other season's
    has = ~np.isnan(ref)
    out[has] = s[has] - np.maximum(ref[has], 0.0)
    return out


def seasonal_difference(
    values: np.ndarray, period: int | Sequence[int], tolerance: int
) -> tuple[np.ndarray, np.ndarray]:
    """How far each reading is from the closest reading around one season earlier, and how far back that
    closest reading is.

    ``out[i] = min over seasons p and lags k in p-tolerance .. p+tolerance of mean_s |x[i, s] − x[i-k, s]|``
    (``values`` rows × sensors, on comparable scales, e.g. scaled; one sensor may be a 1-d array); ``lag[i]``
    is the ``k`` of that minimum (the first one on ties, seasons in the given order, lags ascending). Rows
    with no reading a season back are NaN with lag −1. An online monitor that keeps the last
    ``max(period) + tolerance`` readings reproduces these values.

    Why: a reconstruction error judges a window's *shape*, and a holiday looks like an ordinary Sunday, a
    warm weekend like any warm day: a contextual anomaly is normal in shape and wrong for its time. A series
    that repeats daily or weekly says what to expect at each time: its own readings a season back. A reading
    unlike the readings at the same time yesterday *and* a week ago (the closest of them counts) is news
    even when its window is easy to reconstruct.
    """
    periods = _season_periods(period, tolerance)
    x = np.asarray(values, dtype=np.float64)
    x = x[:, None] if x.ndim == 1 else x
    n = len(x)
    best = np.full(n, np.inf)
    lag = np.full(n, -1, dtype=np.int64)
    for p in periods:
        for k in range(p - tolerance, p + tolerance + 1):
            if k >= n:
                continue
            d = np.abs(x[k:] - x[:-k]).mean(axis=1)
            closer = d < best[k:]
            best[k:][closer] = d[closer]
            lag[k:][closer] = k
    best[lag < 0] = np.nan
    return best, lag


def alarm_points(flags: np.ndarray, cooldown: int) -> np.ndarray:
    """Rows that raise an alarm: flagged rows more than ``cooldown`` rows after the previous alarm.

    A fault keeps a score high for a while; paging an operator for each of its rows buries the one
    message that matters. ``cooldown = 0`` makes every flagged row an alarm. The rule only looks back, so
    an online monitor that remembers its last alarm raises the same ones.
    """
    f = np.asarray(flags, dtype=bool).reshape(-1)
    out = np.zeros_like(f)
    if cooldown <= 0:
        return f.copy()
    last = -cooldown - 1
    for i in np.flatnonzero(f):  # flagged rows are few; a loop keeps the rule obvious
        if i - last > cooldown:
            out[i] = True
            last = int(i)
    return out


def percentile_threshold(val_scores: np.ndarray, q: float) -> float:
    """The ``q``-th percentile (0–100, linear interpolation) of the validation scores.

    About ``100 − q`` % of validation points lie above it, so on data like the validation segment that is
    the expected false-alarm rate; it cannot promise rates rarer than ``1 / len(val_scores)``.
    """
    if not 0 <= q <= 100:
        raise ParamsError(f"threshold.percentile must be within 0..100, got {q}")
    return float(np.percentile(_scores_1d(val_scores, "validation scores"), q))


def mean_k_sigma_threshold(val_scores: np.ndarray, k: float) -> float:
    """``mean + k · std`` (population std, ddof = 0) of the validation scores.

    The classic control-chart rule; it is only a calibrated false-alarm rate if scores are roughly Gaussian,
    which reconstruction errors (skewed, non-negative) rarely are, hence the POT alternative.
    """
    x = _scores_1d(val_scores, "validation scores")
    return float(x.mean() + k * x.std())


def _fit_gpd(excesses: np.ndarray) -> tuple[float, float, str | None]:
    """Maximum-likelihood GPD ``(gamma, sigma)`` with location 0, or the exponential tail with a reason.

    The exponential tail (γ = 0, σ = mean excess, its MLE) is used when there are too few excesses to
    estimate a shape, or when the GPD fit fails or lands where the MLE is not defined (σ ≤ 0, γ ≤ −1).
    """
    exp_sigma = float(excesses.mean()) if excesses.size else 0.0
    if excesses.size < MIN_PEAKS_FOR_GPD:
        return 0.0, exp_sigma, f"only {excesses.size} excesses (< {MIN_PEAKS_FOR_GPD}): exponential tail"
    if float(excesses.max() - excesses.min()) <= 0.0:
        return 0.0, exp_sigma, "all excesses are equal: exponential tail"
    from scipy.stats import genpareto

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            gamma, _, sigma = genpareto.fit(excesses, floc=0.0)
    except (RuntimeError, ValueError, FloatingPointError) as exc:  # pragma: no cover - scipy-internal
        return 0.0, exp_sigma, f"GPD fit failed ({exc}): exponential tail"
    gamma, sigma = float(gamma), float(sigma)
    if not (math.isfinite(gamma) and math.isfinite(sigma)) or sigma <= 0.0 or gamma <= -1.0:
        return 0.0, exp_sigma, f"degenerate GPD fit (gamma={gamma:.3g}, sigma={sigma:.3g}): exponential tail"
    return gamma, sigma, None


def pot_threshold(
    val_scores: np.ndarray, initial_quantile: float, risk: float
) -> tuple[float, dict[str, Any]]:
    """Peaks-Over-Threshold threshold with per-point false-alarm probability ``risk`` (SPOT's initial step).

    By the Pickands–Balkema–de Haan theorem, excesses over a high threshold ``t`` follow a generalised
    Pareto distribution (GPD) whatever the score distribution, so the tail can be extrapolated beyond the
    largest validation scores. Steps (Siffer et al. 2017):

    1. ``t`` = ``initial_quantile`` quantile of the validation scores;
    2. excesses ``y = s − t`` for the ``N_t`` scores ``s > t``;
    3. fit GPD(γ, σ) to ``y`` by maximum likelihood (location fixed at 0); with fewer than 10 excesses or a
       degenerate fit, use the exponential tail (γ = 0, σ = mean excess);
    4. ``z = t + σ/γ · ((risk · n / N_t)^(−γ) − 1)``, or ``z = t − σ · ln(risk · n / N_t)`` when γ = 0,
       which solves ``P(score > z) = (N_t / n) · P(y > z − t) = risk``.

    Args:
        val_scores: Scores of normal validation points, shape ``(n,)``.
        initial_quantile: Quantile (0–1) for ``t``, e.g. 0.95 or 0.98.
        risk: Target probability that a normal point exceeds the threshold; must be below
            ``1 − initial_quantile`` (the tail model only extrapolates beyond ``t``).

    Returns:
        ``(z, details)``; details hold ``t``, ``gamma``, ``sigma``, ``n_peaks`` (``N_t``), ``n``, ``risk``,
        ``initial_quantile``, ``fallback`` (why the exponential tail was used, or None) and
        ``empirical_rate`` (fraction of validation scores above ``z``, for a sanity check).
    """
    x = _scores_1d(val_scores, "validation scores")
    if not 0.0 < initial_quantile < 1.0:
        raise ParamsError(f"threshold.pot_quantile must be strictly between 0 and 1, got {initial_quantile}")
    if not 0.0 < risk < 1.0 - initial_quantile:
        raise ParamsError(
            f"threshold.pot_risk ({risk:g}) must be above 0 and below 1 − pot_quantile "
            f"({1.0 - initial_quantile:g}): POT extrapolates the tail beyond the pot_quantile quantile, so "
            "it can only target rarer false alarms than that. Fix: lower pot_risk or raise pot_quantile."
        )
    n = x.size
    t = float(np.quantile(x, initial_quantile))
    excesses = x[x > t] - t
    n_peaks = int(excesses.size)
    details: dict[str, Any] = {
        "t": t,
        "n": n,
        "n_peaks": n_peaks,
        "initial_quantile": float(initial_quantile),
        "risk": float(risk),
    }
    if n_peaks == 0:
        # Every score ≤ t (e.g. a constant segment): no tail to model; anything above t is unseen.
        details.update(
            gamma=0.0, sigma=0.0, fallback="no scores above the initial quantile", empirical_rate=0.0
        )
        return t, details
    gamma, sigma, fallback = _fit_gpd(excesses)
    ratio = risk * n / n_peaks
    if ratio >= 1.0:
        # Ties at t left fewer peaks than (1 − q)·n, so the target lies inside the observed range: use the
        # empirical quantile rather than extrapolating the tail backwards below t.
        z = float(np.quantile(x, 1.0 - risk))
        fallback = (fallback + "; " if fallback else "") + "risk within observed range: empirical quantile"
    elif abs(gamma) < 1e-9:
        z = t - sigma * math.log(ratio)
    else:
        z = t + sigma / gamma * (ratio ** (-gamma) - 1.0)
    details.update(
        gamma=gamma,
        sigma=sigma,
        fallback=fallback,
        empirical_rate=float(np.mean(x > z)),
    )
    return float(z), details


def _ordinal(q: float) -> str:
    text = f"{q:g}"
    if "." in text or "e" in text:
        return text + "th"
    v = int(text)
    suffix = "th" if 10 <= v % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(v % 10, "th")
    return f"{v}{suffix}"


def _pct(fraction: float) -> str:
    """A fraction as a short percentage, e.g. 0.005 → '0.5 %'."""
    return f"{100.0 * fraction:.2g} %"


def choose_threshold(
    val_scores: np.ndarray, p: ThresholdRule, score: str = "the reconstruction error"
) -> tuple[float, dict[str, Any]]:
    """The anomaly threshold from ``p.method``, fitted on already-smoothed validation scores.

    ``val_scores`` must be on the scale the threshold is applied to, i.e. already smoothed with
    ``p.smoothing`` (as ``AnomalyDetector.score`` does); they are not smoothed again here, or scores would
    be smoothed twice. ``p.smoothing`` is only recorded and named in the explanation. ``score`` names what
    is thresholded in that explanation (a baseline's own score, say).

    Returns:
        ``(threshold, details)``; details hold ``method``, the method's parameters, ``smoothing``,
        ``val_exceedance`` (fraction of validation scores above the threshold), the method-specific numbers
        (e.g. POT's ``gamma``) and ``explanation``: one sentence saying what the number means.
    """
    s = _scores_1d(val_scores, "validation scores")
    what = score
    details: dict[str, Any] = {"method": p.method, "n_val": int(s.size)}
    if isinstance(p, ThresholdParams):  # scores of a time series: how they were made is part of the rule
        if p.smoothing != 1:
            what = f"{score} smoothed (trailing mean over {p.smoothing} points)"
        if p.history:
            what += f", in standard deviations above the {p.history} errors before it"
            if p.history_outlier is not None:
                kept_out = f"rows above {p.history_outlier:g}, up to {p.history_outlier_rows} in a row"
                what += f" (less those of {kept_out})"
        if p.seasons:
            what += (
                f", less its highest value at the same time one season ({' and '.join(p.seasons)}) earlier"
            )
            if p.season_readings:
                what += (
                    ", or the readings' difference from the closest readings at that time, on the same "
                    "scale, where higher"
                )
        if p.history or p.seasons:
            what += ","
        details["smoothing"] = p.smoothing
    if p.method == "percentile":
        thr = percentile_threshold(s, p.percentile)
        details["percentile"] = p.percentile
        explanation = (
            f"flag when {what} exceeds {thr:.4g}, the {_ordinal(p.percentile)} percentile of validation "
            f"scores: about {_pct(1.0 - p.percentile / 100.0)} of normal points would be flagged"
        )
    elif p.method == "mean_k_sigma":
        thr = mean_k_sigma_threshold(s, p.k)
        mean, std = float(s.mean()), float(s.std())
        details.update(k=p.k, mean=mean, std=std)
        explanation = (
            f"flag when {what} exceeds {thr:.4g} = mean {mean:.4g} + {p.k:g} × std {std:.4g} of validation "
            f"scores: {_pct(float(np.mean(s > thr)))} of validation points lie above it"
        )
    elif p.method == "pot":
        thr, pot = pot_threshold(s, p.pot_quantile, p.pot_risk)
        details.update(pot_quantile=p.pot_quantile, pot_risk=p.pot_risk, **pot)
        explanation = (
            f"flag when {what} exceeds {thr:.4g}: a generalised Pareto tail fitted to the top "
            f"{_pct(1.0 - p.pot_quantile)} of validation scores puts the chance that a normal point exceeds "
            f"it at {_pct(p.pot_risk)} (about 1 in {round(1.0 / p.pot_risk):,})"
        )
    elif p.method == "fixed":
        assert p.value is not None  # ThresholdParams requires it for "fixed"
        thr = float(p.value)
        details["value"] = thr
        explanation = (
            f"flag when {what} exceeds {thr:.4g}, a number set in params (threshold.value); "
            f"{_pct(float(np.mean(s > thr)))} of validation points lie above it"
        )
    else:  # pragma: no cover - ThresholdParams validates the literal
        raise ParamsError(f"unknown threshold.method {p.method!r}; use percentile, mean_k_sigma or pot")
    details["threshold"] = float(thr)
    details["val_exceedance"] = float(np.mean(s > thr))
    details["explanation"] = explanation
    return float(thr), details


def detection_events(flags: np.ndarray) -> list[tuple[int, int]]:
    """Contiguous runs of ``True`` in ``flags`` as ``(start, end)`` pairs, ``end`` exclusive.

    Operators act on alarms, not on flagged points, so reports count these runs (and event metrics use the
    same convention for labelled anomalies).
    """
    f = np.asarray(flags, dtype=bool).reshape(-1)
    if f.size == 0:
        return []
    edges = np.diff(np.concatenate([[False], f, [False]]).astype(np.int8))
    starts = np.flatnonzero(edges == 1)
    ends = np.flatnonzero(edges == -1)
    return [(int(a), int(b)) for a, b in zip(starts, ends, strict=True)]
