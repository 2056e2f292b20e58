"""Thresholds against known distributions and hand-computed arrays; smoothing and alarm events."""

from __future__ import annotations

import math

import numpy as np
import pytest

from aeflow.errors import DataError, ParamsError
from aeflow.evaluation.thresholds import (
    MIN_STD,
    alarm_points,
    choose_threshold,
    detection_events,
    history_stats,
    mean_k_sigma_threshold,
    percentile_threshold,
    pot_threshold,
    relative_to_history,
    seasonal_difference,
    seasonal_excess,
    smooth,
)
from aeflow.sections import ThresholdParams


# ------------------------------------------------------------------------------------------------ smoothing
def test_smooth_trailing_mean_with_expanding_start():
    x = np.array([1.0, 2.0, 3.0, 4.0, 5.0, 6.0])
    np.testing.assert_allclose(smooth(x, 3), [1.0, 1.5, 2.0, 3.0, 4.0, 5.0])
    np.testing.assert_array_equal(smooth(x, 1), x)
    np.testing.assert_allclose(smooth(x, 10), np.cumsum(x) / np.arange(1, 7))  # window longer than series


def test_smooth_is_causal():
    rng = np.random.default_rng(0)
    x = rng.random(500)
    y = x.copy()
    y[300:] = rng.random(200) * 100  # change only the future
    for w in (1, 2, 7, 50):
        np.testing.assert_array_equal(smooth(x, w)[:300], smooth(y, w)[:300])
        # and a prefix smoothed alone (what an online monitor sees) gives the same values
        np.testing.assert_allclose(smooth(x[:300], w), smooth(x, w)[:300], rtol=0, atol=1e-12)


def test_smooth_matches_online_mean_of_last_scores():
    from collections import deque

    x = np.random.default_rng(1).random(200)
    recent: deque[float] = deque(maxlen=9)
    online = []
    for v in x:
        recent.append(float(v))
        online.append(float(np.mean(recent)))
    np.testing.assert_allclose(smooth(x, 9), online, rtol=0, atol=1e-12)


def test_smooth_rejects_bad_window():
    with pytest.raises(ParamsError):
        smooth(np.ones(4), 0)


# ----------------------------------------------------------------------------------- simple thresholds
def test_percentile_threshold_exact():
    x = np.arange(101, dtype=float)  # 0..100: the q-th percentile is q
    assert percentile_threshold(x, 99.5) == pytest.approx(99.5)
    assert percentile_threshold(x, 90) == pytest.approx(90.0)
    assert percentile_threshold(np.array([3.0, 1.0, 2.0, 4.0]), 50) == pytest.approx(2.5)


def test_mean_k_sigma_threshold_exact():
    x = np.array([1.0, 2.0, 3.0, 4.0, 5.0])  # mean 3, population std sqrt(2)
    assert mean_k_sigma_threshold(x, 2.0) == pytest.approx(3.0 + 2.0 * math.sqrt(2.0))
    assert mean_k_sigma_threshold(np.full(10, 7.0), 4.0) == pytest.approx(7.0)


def test_thresholds_refuse_nan_and_empty():
    with pytest.raises(DataError, match="NaN"):
        percentile_threshold(np.array([1.0, np.nan]), 99)
    with pytest.raises(DataError, match="empty"):
        mean_k_sigma_threshold(np.array([]), 3)


# ------------------------------------------------------------------------------------------------------ POT
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_pot_exponential_recovers_true_quantile(seed):
    x = np.random.default_rng(seed).exponential(1.0, 20_000)
    z, d = pot_threshold(x, 0.95, 1e-3)
    truth = -math.log(1e-3)  # 6.91: P(X > z) = exp(-z)
    assert abs(z - truth) / truth < 0.10
    assert d["n_peaks"] == pytest.approx(1000, abs=2)
    assert abs(d["gamma"]) < 0.1  # exponential tail: γ = 0
    assert d["sigma"] == pytest.approx(1.0, rel=0.15)
    assert d["t"] == pytest.approx(-math.log(0.05), rel=0.05)
    assert d["fallback"] is None


def test_pot_gaussian_false_alarm_rate_within_factor_two():
    rng = np.random.default_rng(3)
    z, d = pot_threshold(rng.normal(size=20_000), 0.95, 1e-3)
    fresh = rng.normal(size=2_000_000)
    rate = float(np.mean(fresh > z))
    assert 0.5e-3 < rate < 2e-3
    assert d["gamma"] < 0  # the Gaussian tail is lighter than exponential


def test_pot_few_peaks_falls_back_to_exponential():
    x = np.random.default_rng(0).exponential(1.0, 150)  # 95% quantile leaves ~8 excesses
    z, d = pot_threshold(x, 0.95, 1e-3)
    assert d["gamma"] == 0.0 and "exponential" in d["fallback"]
    assert z == pytest.approx(d["t"] - d["sigma"] * math.log(1e-3 * 150 / d["n_peaks"]))


def test_pot_constant_scores_and_bad_risk():
    z, d = pot_threshold(np.full(1000, 0.25), 0.95, 1e-3)
    assert z == 0.25 and d["n_peaks"] == 0
    with pytest.raises(ParamsError, match="pot_risk"):
        pot_threshold(np.random.default_rng(0).random(1000), 0.98, 0.05)


# ----------------------------------------------------------------------------------------- choose_threshold
@pytest.mark.parametrize("method", ["percentile", "mean_k_sigma", "pot"])
def test_choose_threshold_explains_the_number(method):
    val = np.random.default_rng(0).gamma(2.0, 0.1, 5000)
    p = ThresholdParams(method=method, percentile=99.5, k=4.0, pot_quantile=0.95, pot_risk=1e-3, smoothing=1)
    thr, d = choose_threshold(val, p)
    assert d["method"] == method and d["threshold"] == thr
    assert f"{thr:.4g}" in d["explanation"]
    assert d["explanation"].startswith("flag when the reconstruction error exceeds")
    if method == "percentile":
        assert thr == pytest.approx(np.percentile(val, 99.5))
        assert "99.5th percentile" in d["explanation"] and "0.5 %" in d["explanation"]
        assert d["val_exceedance"] == pytest.approx(0.005)
    elif method == "mean_k_sigma":
        assert thr == pytest.approx(val.mean() + 4 * val.std())
        assert d["k"] == 4.0
    else:
        assert {"t", "gamma", "sigma", "n_peaks"} <= d.keys()
        assert "1 in 1,000" in d["explanation"]
        assert d["val_exceedance"] == pytest.approx(1e-3, abs=1e-3)


def test_choose_threshold_does_not_smooth_again():
    raw = np.random.default_rng(0).gamma(2.0, 0.1, 5000)
    smoothed = smooth(raw, 10)  # callers pass scores already smoothed, as AnomalyDetector.score does
    p = ThresholdParams(method="percentile", percentile=99.0, smoothing=10)
    thr, d = choose_threshold(smoothed, p)
    assert thr == pytest.approx(np.percentile(smoothed, 99.0))
    assert "smoothed" in d["explanation"] and "10 points" in d["explanation"] and d["smoothing"] == 10
    assert np.mean(smoothed > thr) == pytest.approx(0.01, abs=1e-3)


# ------------------------------------------------------------------------------------------------- events
def test_detection_events():
    assert detection_events(np.array([0, 1, 1, 0, 0, 1, 0, 1, 1, 1], bool)) == [(1, 3), (5, 6), (7, 10)]
    assert detection_events(np.ones(3, bool)) == [(0, 3)]
    assert detection_events(np.zeros(4, bool)) == []
    assert detection_events(np.array([], bool)) == []


# ---------------------------------------------------------------------------- scores relative to their past
def test_relative_to_history_hand_computed():
    rng = np.random.default_rng(1)
    e = rng.random(200)
    z = relative_to_history(e, smoothing=3, history=40, reference=(0.5, 0.25))
    i = 150  # judged: mean of e[148..150]; past: e[108..147]
    past = e[i - 3 - 40 + 1 : i - 3 + 1]
    assert math.isclose(z[i], (e[i - 2 : i + 1].mean() - past.mean()) / past.std(ddof=1), rel_tol=1e-9)
    j = 20  # a past of 18 rows (< MIN_HISTORY): the reference stands in
    assert math.isclose(z[j], (e[j - 2 : j + 1].mean() - 0.5) / 0.25, rel_tol=1e-12)
    k = 60  # with a longer history, 58 past rows: all of them
    long = relative_to_history(e, smoothing=3, history=100, reference=(0.5, 0.25))
    past = e[: k - 2]
    assert math.isclose(long[k], (e[k - 2 : k + 1].mean() - past.mean()) / past.std(ddof=1), rel_tol=1e-9)


def test_relative_to_history_flags_a_change_and_then_adapts_to_it():
    """A sustained level change stands out when it starts, and is normal once it fills the history; a raw
    error threshold would alarm for ever."""
    rng = np.random.default_rng(2)
    e = np.concatenate([rng.normal(1.0, 0.1, 1000), rng.normal(3.0, 0.1, 1000)])
    z = relative_to_history(e, smoothing=1, history=200, reference=(1.0, 0.1))
    assert z[1000] > 10  # the first changed row
    assert np.abs(z[1300:]).max() < 5  # 100 rows after the past is all "new level"
    assert np.abs(z[200:1000]).max() < 5  # and never before the change


def test_outliers_kept_out_of_the_history_do_not_hide_the_next_change():
    """A fault a thousand deviations high stays in a plain history and shrinks every later score; kept out,
    the next, smaller fault still stands out. A level that stays joins after ``outlier_rows`` rows."""
    rng = np.random.default_rng(3)
    e = rng.normal(1.0, 0.1, 1500)
    e[300:320] += 100.0  # a huge fault
    e[600:610] += 1.5  # the next one, 15 deviations
    e[1000:] += 10.0  # a new level for good
    plain = relative_to_history(e, smoothing=1, history=800, reference=(1.0, 0.1))
    kept = relative_to_history(
        e, smoothing=1, history=800, reference=(1.0, 0.1), outlier=50, outlier_rows=100
    )
    assert plain[300] > 500 and kept[300] > 500  # the huge fault itself, the same
    assert plain[600:610].max() < 1.0  # hidden behind the huge fault's spread
    assert kept[600] > 10 and kept[600:610].min() > 5  # seen (its own rows join the past: below 50)
    assert np.abs(kept[200:300]).max() < 5 and np.abs(kept[330:600]).max() < 5  # no alarm between
    assert kept[1000:1100].min() > 50  # the new level: kept out for 100 rows, then it joins
    assert np.abs(kept[1250:]).max() < 5  # and is normal soon after
    # a level nothing exceeds is the plain rule, row for row (the past: the last `history` errors)
    never = relative_to_history(
        e, smoothing=3, history=200, reference=(1.0, 0.1), outlier=1e9, outlier_rows=5
    )
    np.testing.assert_allclose(never, relative_to_history(e, smoothing=3, history=200, reference=(1.0, 0.1)),
                               rtol=1e-9, atol=1e-9)  # fmt: skip


def test_history_stats_and_params_checks():
    assert history_stats(np.array([1.0, 3.0])) == (2.0, math.sqrt(2.0))
    assert history_stats(np.ones(10))[1] == MIN_STD  # a flat stretch: floored, never 0
    with pytest.raises(DataError, match="at least 2"):
        history_stats(np.ones(1))
    with pytest.raises(ValueError, match="needs a finite 'value'"):
        ThresholdParams(method="fixed")
    with pytest.raises(ValueError, match="at least twice smoothing"):
        ThresholdParams(history=5, smoothing=3)
    with pytest.raises(ValueError, match=r"history_outlier \(50\).*history is 0.*history_outlier: null"):
        ThresholdParams(history_outlier=50)
    with pytest.raises(ValueError, match=r"not a positive duration.*'1D'"):
        ThresholdParams(season="daily")
    with pytest.raises(ValueError, match="not a positive duration"):
        ThresholdParams(season="-1D")
    with pytest.raises(ValueError, match=r"season 'weekly' is not a positive duration.*\[1D, 7D\]"):
        ThresholdParams(season=["1D", "weekly"])
    assert ThresholdParams(season="12h").season_seconds() == [43200.0]
    assert ThresholdParams(season=["1D", "7D"]).season_seconds() == [86400.0, 604800.0]
    assert ThresholdParams().season_seconds() == [] == ThresholdParams(season=[]).season_seconds()
    thr, d = choose_threshold(np.array([0.0, 1.0, 2.0, 5.0]), ThresholdParams(method="fixed", value=1.5))
    assert thr == 1.5 and d["val_exceedance"] == 0.5 and "threshold.value" in d["explanation"]
    p = ThresholdParams(method="fixed", value=3.0, history=100)
    assert "standard deviations above the 100 errors" in choose_threshold(np.zeros(5), p)[1]["explanation"]
    p = ThresholdParams(method="fixed", value=3.0, history=100, history_outlier=50, history_outlier_rows=20)
    assert (
        "errors before it (less those of rows above 50, up to 20 in a row)"
        in choose_threshold(np.zeros(5), p)[1]["explanation"]
    )
    p = ThresholdParams(method="fixed", value=3.0, history=100, season="1D")
    assert (
        "its highest value at the same time one season (1D) earlier,"
        in choose_threshold(np.zeros(5), p)[1]["explanation"]
    )
    p = ThresholdParams(method="fixed", value=3.0, history=100, season=["1D", "7D"])
    assert (
        "at the same time one season (1D and 7D) earlier,"
        in choose_threshold(np.zeros(5), p)[1]["explanation"]
    )
    p = ThresholdParams(method="fixed", value=3.0, history=100, season="1D", season_readings=True)
    assert (
        "earlier, or the readings' difference from the closest readings at that time, on the same scale, "
        "where higher," in choose_threshold(np.zeros(5), p)[1]["explanation"]
    )
    with pytest.raises(ValueError, match=r"season_readings .* season is None, history 100.*Fix: set season"):
        ThresholdParams(history=100, season_readings=True)
    with pytest.raises(ValueError, match=r"season is '1D', history 0.*season_readings: false"):
        ThresholdParams(season="1D", season_readings=True)


def test_seasonal_excess_hand_computed():
    s = np.array([0.0, 5.0, 1.0, 2.0, -1.0, 4.0, 3.0, 9.0, 0.5, 6.0])
    out = seasonal_excess(s, period=4, tolerance=1)
    # rows 0..2 have no row a season back (i - 4 + 1 < 0): unchanged
    np.testing.assert_array_equal(out[:3], s[:3])
    # row 3: the window s[-2..0] is clipped to s[0] = 0; row 4: max(s[0..1]) = 5
    assert out[3] == 2.0 and out[4] == -1.0 - 5.0
    # row 7: max(s[2..4]) = 2 → 9 − 2; row 9: max(s[4..6]) = 4 → 6 − 4
    assert out[7] == 7.0 and out[9] == 2.0
    # a negative score a season back is no excuse: it counts as 0
    neg = seasonal_excess(np.array([-3.0, -3.0, -3.0, 2.0, 2.0, 2.0]), period=3, tolerance=0)
    np.testing.assert_array_equal(neg[3:], [2.0, 2.0, 2.0])
    with pytest.raises(ParamsError, match="longer than its tolerance"):
        seasonal_excess(s, period=2, tolerance=2)
    with pytest.raises(ParamsError, match="a season of 2 rows must be longer"):
        seasonal_excess(s, period=[4, 2], tolerance=2)
    np.testing.assert_array_equal(seasonal_excess(s, period=[4], tolerance=1), out)  # one season in a list
    # two seasons, 3 and 6 rows, tolerance 0: the higher score of the two rows back
    two = seasonal_excess(s, period=[3, 6], tolerance=0)
    np.testing.assert_array_equal(two[:3], s[:3])  # no row back for either
    assert two[3] == 2.0 and two[5] == 4.0 - 1.0  # only 3 rows back: s[0] = 0, s[2] = 1
    assert two[7] == 9.0 - 5.0 and two[9] == 6.0 - 3.0  # s[4] = -1 (as 0) and s[1] = 5; s[6] = 3 and s[3] = 2


def test_seasonal_difference_hand_computed():
    """The closest reading around one season back, over the seasons: its mean absolute difference over
    sensors and how many rows back it is."""
    x = np.array([[0.0, 0.0], [1.0, 5.0], [2.0, 2.0], [3.0, 1.0], [0.0, 4.0], [9.0, 9.0], [1.0, 2.0]])
    diff, lag = seasonal_difference(x, period=3, tolerance=1)  # 2 to 4 rows back
    assert np.isnan(diff[:2]).all() and (lag[:2] == -1).all()  # no row 2 or more rows back
    assert diff[2] == 2.0 and lag[2] == 2  # only row 0: |2-0| and |2-0|
    assert diff[3] == 2.0 and lag[3] == 3  # row 1 (2 back): (|3-1| + |1-5|) / 2 = 3; row 0 (3 back): 2
    assert diff[4] == 1.0 and lag[4] == 3  # rows 2, 1, 0: (2+2)/2, (1+1)/2, (0+4)/2 → row 1, 3 back
    assert diff[5] == 6.0 and lag[5] == 4  # rows 3, 2, 1: (6+8)/2, (7+7)/2, (8+4)/2
    assert diff[6] == 0.5 and lag[6] == 4  # rows 4, 3, 2: (1+2)/2, (2+1)/2, (1+0)/2
    # one sensor as a 1-d array; two seasons: the closest of both
    one, one_lag = seasonal_difference(np.array([0.0, 5.0, 1.0, 4.0, 5.0]), period=[1, 3], tolerance=0)
    assert np.isnan(one[0]) and one[1] == 5.0 and one[3] == 3.0 and one_lag[3] == 1
    assert one[4] == 0.0 and one_lag[4] == 3  # 1 back: |5-4|; 3 back: |5-5|
    with pytest.raises(ParamsError, match="a season of 1 rows must be longer than its tolerance of 1"):
        seasonal_difference(x, period=[3, 1], tolerance=1)


def test_seasonal_excess_silences_a_daily_job_and_keeps_a_new_fault():
    """A spike at the same time every day is news on the first day only; a fault at another time, or a
    spike twice as high as yesterday's, still stands out."""
    rng = np.random.default_rng(3)
    day = 288
    s = rng.normal(0.0, 0.3, 10 * day)
    for d in range(10):
        s[d * day + 40 + rng.integers(-1, 2)] = 8.0  # a nightly job, ±1 row of jitter
    s[6 * day + 200] = 8.0  # a fault, at a time nothing happens on other days
    s[8 * day + 40] = 20.0  # the job's spike, far higher than before
    out = seasonal_excess(s, period=day, tolerance=2)
    jobs = [d * day + 40 + k for d in range(1, 10) for k in (-1, 0, 1) if d != 8]
    assert out[np.array(jobs)].max() < 2.0  # every later night: within the noise
    assert out[40 + np.arange(-1, 2)].max() > 7.0  # the first night has no yesterday
    assert out[6 * day + 200] > 6.0 and out[8 * day + 40] > 10.0


def test_a_weekly_season_silences_what_recurs_a_week_later_and_keeps_a_new_fault():
    """With a day and a week: a dip every Sunday (no news a week later, though yesterday looked different)
    stops counting after its first week; a fault on a weekday still stands out."""
    rng = np.random.default_rng(4)
    day, week = 48, 7 * 48
    s = rng.normal(0.0, 0.3, 5 * week)
    for w in range(5):
        s[w * week + 6 * day + 10 : w * week + 6 * day + 30] = 6.0  # every Sunday, midday
    s[3 * week + 2 * day + 20] = 8.0  # a Wednesday fault
    daily = seasonal_excess(s, period=day, tolerance=2)
    both = seasonal_excess(s, period=[day, week], tolerance=2)
    sundays = np.concatenate(
        [np.arange(w * week + 6 * day + 10, w * week + 6 * day + 30) for w in range(1, 5)]
    )
    assert daily[sundays].min() > 4.0  # the day before was quiet: every Sunday is news to a daily season
    assert both[sundays].max() < 2.0  # a week before it was as high: no news
    assert both[3 * week + 2 * day + 20] > 6.0  # the fault is news to both
    assert np.all(both <= daily + 1e-12)  # a second season only ever takes away


def test_alarm_points_one_alarm_per_cooldown():
    flags = np.zeros(30, dtype=bool)
    flags[[2, 3, 4, 5, 9, 10, 20, 29]] = True
    assert np.flatnonzero(alarm_points(flags, 0)).tolist() == [2, 3, 4, 5, 9, 10, 20, 29]
    assert np.flatnonzero(alarm_points(flags, 5)).tolist() == [2, 9, 20, 29]  # 9 - 2 > 5, 10 - 9 ≤ 5
    assert np.flatnonzero(alarm_points(flags, 7)).tolist() == [2, 10, 20, 29]  # 9 - 2 = 7: still cooling
    assert not alarm_points(np.zeros(5, dtype=bool), 3).any()
