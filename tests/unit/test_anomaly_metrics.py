"""Anomaly metrics on hand-made arrays, baselines on a synthetic sensor series, window-to-point mapping."""

from __future__ import annotations

import numpy as np
import pytest

from aeflow.errors import DataError, ParamsError
from aeflow.evaluation.anomaly import (
    event_metrics,
    isolation_forest_scores,
    pca_scores,
    point_metrics,
    ranking_metrics,
    rolling_zscore_scores,
    window_errors_to_points,
)

N_TRAIN = 2000


@pytest.fixture(scope="module")
def spiky() -> tuple[np.ndarray, np.ndarray]:
    """4 phase-shifted sines + noise (4,000 × 4); 30 single-sensor spikes in the test part (after 2,100)."""
    rng = np.random.default_rng(0)
    n, c = 4000, 4
    t = np.arange(n)
    x = np.sin(2 * np.pi * t[:, None] / 50 + rng.uniform(0, 2 * np.pi, c)) + 0.1 * rng.normal(size=(n, c))
    labels = np.zeros(n, dtype=bool)
    idx = rng.choice(np.arange(2100, n), 30, replace=False)
    x[idx, rng.integers(0, c, 30)] += rng.choice([-1.0, 1.0], 30) * rng.uniform(1.5, 3.0, 30)
    labels[idx] = True
    return x, labels


# ---------------------------------------------------------------------------------------------- point
def test_point_metrics_known_counts():
    labels = np.array([0, 0, 0, 0, 1, 1, 1, 0, 0, 0], bool)
    flags = np.array([0, 1, 0, 0, 0, 1, 1, 1, 0, 0], bool)
    m = point_metrics(labels, flags)
    assert (m["tp"], m["fp"], m["fn"], m["tn"]) == (2, 2, 1, 5)
    assert m["precision"] == pytest.approx(0.5)
    assert m["recall"] == pytest.approx(2 / 3)
    assert m["f1"] == pytest.approx(2 * 0.5 * (2 / 3) / (0.5 + 2 / 3))
    assert m["far"] == pytest.approx(2 / 7)
    assert m["mar"] == pytest.approx(1 / 3)


def test_point_metrics_undefined_rates_are_none():
    m = point_metrics(np.zeros(5, bool), np.zeros(5, bool))
    assert m["precision"] is None and m["recall"] is None and m["mar"] is None and m["f1"] is None
    assert m["far"] == 0.0 and m["tn"] == 5
    with pytest.raises(ValueError, match="lengths differ"):
        point_metrics(np.zeros(5, bool), np.zeros(4, bool))


# ---------------------------------------------------------------------------------------------- events
def test_event_metrics_recall_and_delay():
    labels = np.zeros(30, bool)
    labels[5:10] = True  # event A, flagged at 7 -> delay 2
    labels[15:18] = True  # event B, flagged only at 19 (after its end)
    labels[25:27] = True  # event C, missed
    flags = np.zeros(30, bool)
    flags[[2, 7, 8, 19]] = True  # 2 is a false alarm before A

    strict = event_metrics(labels, flags)
    assert strict["events_total"] == 3 and strict["events_detected"] == 1
    assert strict["event_recall"] == pytest.approx(1 / 3)
    assert strict["mean_detection_delay"] == pytest.approx(2.0)
    assert [e["delay"] for e in strict["events"]] == [2, None, None]
    assert strict["events"][0] == {"start": 5, "end": 10, "length": 5, "detected": True, "delay": 2}
    assert strict["alarm_events"] == 3 and strict["false_alarm_events"] == 2  # runs at 2 and at 19

    tolerant = event_metrics(labels, flags, tolerance=2)  # B's window becomes [15, 20): 19 counts
    assert tolerant["events_detected"] == 2
    assert [e["delay"] for e in tolerant["events"]] == [2, 4, None]
    assert tolerant["mean_detection_delay"] == pytest.approx(3.0)
    assert tolerant["false_alarm_events"] == 1


def test_event_metrics_flags_before_start_do_not_count():
    labels = np.array([0, 0, 1, 1, 0], bool)
    flags = np.array([0, 1, 0, 0, 0], bool)
    m = event_metrics(labels, flags, tolerance=5)
    assert m["events_detected"] == 0 and m["mean_detection_delay"] is None
    none = event_metrics(np.zeros(4, bool), np.zeros(4, bool))
    assert none["event_recall"] is None and none["events"] == []


# ---------------------------------------------------------------------------------------------- ranking
def test_ranking_metrics_perfect_random_and_single_class():
    rng = np.random.default_rng(0)
    labels = rng.random(20_000) < 0.05
    perfect = ranking_metrics(labels, labels.astype(float) + 0.01 * rng.random(20_000))
    assert perfect["roc_auc"] == pytest.approx(1.0) and perfect["pr_auc"] == pytest.approx(1.0)
    chance = ranking_metrics(labels, rng.random(20_000))
    assert chance["roc_auc"] == pytest.approx(0.5, abs=0.03)
    assert chance["pr_auc"] == pytest.approx(chance["pr_auc_chance"], abs=0.02)
    single = ranking_metrics(np.zeros(10, bool), rng.random(10))
    assert single["roc_auc"] is None and single["pr_auc"] is None


# ---------------------------------------------------------------------------------------------- baselines
def test_baselines_find_spikes(spiky):
    x, labels = spiky
    train = x[:N_TRAIN]
    scores = {
        "isolation_forest": isolation_forest_scores(train, x, seed=0),
        "rolling_zscore": rolling_zscore_scores(x, 50),
        "pca": pca_scores(train, x, 2),
    }
    for name, s in scores.items():
        assert s.shape == (len(x),), name
        auc = ranking_metrics(labels[N_TRAIN:], s[N_TRAIN:])["roc_auc"]
        assert auc > 0.8, f"{name}: ROC-AUC {auc:.3f}"


def test_isolation_forest_deterministic_and_windowed(spiky):
    x, _ = spiky
    train = x[:N_TRAIN]
    a = isolation_forest_scores(train, x, seed=7, n_estimators=50)
    b = isolation_forest_scores(train, x, seed=7, n_estimators=50)
    c = isolation_forest_scores(train, x, seed=8, n_estimators=50)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    w = isolation_forest_scores(train, x, seed=7, window=5, n_estimators=50)
    assert w.shape == (len(x),) and np.all(w[:4] == w[4])


def test_rolling_zscore_is_causal_and_exact(spiky):
    x, _ = spiky
    s = rolling_zscore_scores(x, 50)
    changed = x.copy()
    changed[3000:] += 100.0 * np.random.default_rng(1).random((1000, x.shape[1]))
    np.testing.assert_array_equal(rolling_zscore_scores(changed, 50)[:3000], s[:3000])
    # against a direct computation from the 50 previous readings
    for t in (2, 10, 49, 50, 51, 3333):
        past = x[max(0, t - 50) : t]
        expected = np.max(np.abs(x[t] - past.mean(axis=0)) / past.std(axis=0))
        assert s[t] == pytest.approx(expected, rel=1e-7)
    assert s[0] == 0.0 and s[1] == 0.0


def test_rolling_zscore_large_offset_keeps_precision():
    rng = np.random.default_rng(0)
    x = 1e6 + rng.normal(size=(5000, 2))
    s = rolling_zscore_scores(x, 100)
    past = x[4899:4999]
    assert s[4999] == pytest.approx(np.max(np.abs(x[4999] - past.mean(0)) / past.std(0)), rel=1e-6)


def test_pca_fitted_on_train_only(spiky):
    x, _ = spiky
    train = x[:N_TRAIN]
    s = pca_scores(train, x, 2)
    other = x.copy()
    other[N_TRAIN:] = np.random.default_rng(5).normal(scale=10, size=(len(x) - N_TRAIN, x.shape[1]))
    np.testing.assert_allclose(pca_scores(train, other, 2)[:N_TRAIN], s[:N_TRAIN], rtol=0, atol=1e-12)
    with pytest.raises(ParamsError, match="pca_components"):
        pca_scores(train, x, 4)


def test_baselines_refuse_nan():
    x = np.ones((10, 2))
    x[3, 1] = np.nan
    with pytest.raises(DataError, match="NaN"):
        rolling_zscore_scores(x, 4)


# --------------------------------------------------------------------------------------- window mapping
def test_window_errors_to_points_last():
    e = np.array([1.0, 2.0, 3.0, 4.0])  # 4 windows of length 3, stride 1, over 6 points
    np.testing.assert_array_equal(window_errors_to_points(e, 6, 3), [1, 1, 1, 2, 3, 4])
    # stride 2: windows end at 2, 4, 6, 8 of 10 points; in-between points keep the latest window
    np.testing.assert_array_equal(window_errors_to_points(e, 10, 3, stride=2), [1, 1, 1, 1, 2, 2, 3, 3, 4, 4])
    per_sensor = np.stack([e, 3 * e], axis=1)  # (W, C) -> mean over sensors
    out = window_errors_to_points(per_sensor, 6, 3)
    assert out.shape == (6,)
    np.testing.assert_array_equal(out, [2, 2, 2, 4, 6, 8])


def test_window_errors_to_points_last_is_causal():
    rng = np.random.default_rng(0)
    e = rng.random(98)  # length 3 over 100 points
    f = e.copy()
    f[60:] = 99.0  # windows 60.. end at point 62 and later
    a, b = window_errors_to_points(e, 100, 3), window_errors_to_points(f, 100, 3)
    np.testing.assert_array_equal(a[:62], b[:62])
    assert b[62] == 99.0


def test_window_errors_to_points_mean():
    e = np.array([1.0, 2.0, 3.0, 4.0])
    # point p is covered by windows max(0, p-2)..min(3, p)
    expected = [1.0, 1.5, 2.0, 3.0, 3.5, 4.0]
    np.testing.assert_allclose(window_errors_to_points(e, 6, 3, reduce="mean"), expected)
    # stride 2, length 3 over 10 points: windows [0,3) [2,5) [4,7) [6,9); point 9 takes point 8's value
    out = window_errors_to_points(e, 10, 3, stride=2, reduce="mean")
    np.testing.assert_allclose(out, [1, 1, 1.5, 2, 2.5, 3, 3.5, 4, 4, 4])
    with pytest.raises(ValueError, match="reduce"):
        window_errors_to_points(e, 6, 3, reduce="max")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="n_points"):
        window_errors_to_points(e, 5, 3)
