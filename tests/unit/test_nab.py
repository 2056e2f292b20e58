"""NAB scorer: synthetic rules, and agreement with NAB's own published results.

The published part scores the detections NAB shipped for numenta, windowedGaussian and randomCutForest on
the 24 files in ``../shared/datasets/nab`` (realKnownCause + realAWSCloudwatch) and compares, for all three
profiles, the raw per-file scores and confusion counts with NAB's ``*_scores.csv`` and the per-row
contributions with the ``S(t)_<profile>`` columns of NAB's result CSVs. The acceptance criterion is
"same numbers to 0.1"; the scorer actually agrees to ~1e-11, and the test holds it to ``TOL``.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from aeflow.usecases.sensor import nab

TOL = 1e-6  # achieved: <= 5e-12 (scores), <= 5e-13 (rows); acceptance: 0.1
DETECTORS = ("numenta", "windowedGaussian", "randomCutForest")
PROFILES = ("standard", "reward_low_FP_rate", "reward_low_FN_rate")
CATEGORIES = ("realKnownCause", "realAWSCloudwatch")
N_FILES = 24

STANDARD = {"tpWeight": 1.0, "fpWeight": 0.11, "fnWeight": 1.0}
LOW_FN = {"tpWeight": 1.0, "fpWeight": 0.11, "fnWeight": 2.0}


# ---------------------------------------------------------------------------------------------------------
# Synthetic rules
# ---------------------------------------------------------------------------------------------------------


def _det(n: int, *rows: int) -> np.ndarray:
    d = np.zeros(n, dtype=bool)
    d[list(rows)] = True
    return d


def test_scaled_sigmoid_anchor_values():
    assert abs(nab.MAX_TP - 0.98661) < 1e-5
    assert nab.scaled_sigmoid(0.0) == 0.0
    assert nab.scaled_sigmoid(1.0) == pytest.approx(-0.98661, abs=1e-5)
    assert nab.scaled_sigmoid(3.0) > -1.0
    assert nab.scaled_sigmoid(3.0001) == -1.0  # NAB's clamp far behind a window
    y = np.linspace(-1, 3, 50)
    assert np.all(np.diff(nab.scaled_sigmoid(y)) < 0)


@pytest.mark.parametrize("n, expected", [(1000, 150), (1243, 186), (4032, 604), (4730, 709), (5315, 750)])
def test_probationary_length_is_15_percent_capped_at_750(n, expected):
    assert nab.probationary_length(n) == expected


@pytest.mark.parametrize("profile", [STANDARD, LOW_FN, {"tpWeight": 2.0, "fpWeight": 0.22, "fnWeight": 1.0}])
def test_detection_on_window_start_scores_tp_weight(profile):
    score, counts = nab.score_file(_det(1000, 400), [(400, 499)], profile, probation=0)
    assert score == pytest.approx(profile["tpWeight"], abs=1e-12)
    assert counts == {"tp": 1, "fp": 0, "fn": 99, "tn": 900, "windows_detected": 1, "windows_missed": 0}


@pytest.mark.parametrize("profile", [STANDARD, LOW_FN])
def test_missed_window_costs_fn_weight(profile):
    score, counts = nab.score_file(np.zeros(1000, bool), [(400, 499), (700, 749)], profile, probation=0)
    assert score == -2 * profile["fnWeight"]
    assert counts["windows_missed"] == 2


def test_false_positive_before_any_window_costs_fp_weight():
    score, counts = nab.score_file(_det(1000, 100), [(400, 499)], STANDARD, probation=0)
    assert score == pytest.approx(-STANDARD["fpWeight"] - STANDARD["fnWeight"])
    assert counts["fp"] == 1
    score, _ = nab.score_file(_det(1000, 100, 200), [], STANDARD, probation=0)
    assert score == pytest.approx(-2 * STANDARD["fpWeight"])


def test_false_positive_after_a_window_costs_less_when_close():
    windows = [(400, 499)]
    base, _ = nab.score_file(_det(1000, 400), windows, STANDARD, probation=0)
    costs = [base - nab.score_file(_det(1000, 400, i), windows, STANDARD, 0)[0] for i in (501, 550, 650, 900)]
    assert 0 < costs[0] < costs[1] < costs[2] < costs[3] <= STANDARD["fpWeight"]
    assert costs[0] < 0.1 * STANDARD["fpWeight"]  # 2 rows after the window: 5 % of the full cost
    assert costs[3] == pytest.approx(STANDARD["fpWeight"], rel=1e-6)  # 4 window widths on: full cost
    # y = (i - right) / (right - left): row 550 is 51/99 of a window past the end.
    assert costs[1] == pytest.approx(-STANDARD["fpWeight"] * nab.scaled_sigmoid(51 / 99))


def test_only_first_detection_in_a_window_counts():
    windows = [(400, 499)]
    early, _ = nab.score_file(_det(1000, 420), windows, STANDARD, 0)
    late, _ = nab.score_file(_det(1000, 480), windows, STANDARD, 0)
    both, counts = nab.score_file(_det(1000, 420, 480, 490), windows, STANDARD, 0)
    assert 0 < late < early < 1
    assert both == early
    assert counts["tp"] == 3 and counts["windows_detected"] == 1
    # y = -(right - i + 1) / width
    assert early == pytest.approx(nab.scaled_sigmoid(-(499 - 420 + 1) / 100) / nab.MAX_TP)


def test_probationary_rows_are_ignored():
    # A false positive in the probationary period costs nothing and is not counted.
    score, counts = nab.score_file(_det(1000, 50), [(400, 499)], STANDARD, probation=150)
    assert score == -1.0
    assert counts["fp"] == 0 and counts["tn"] + counts["fn"] == 850
    # A window straddling the probation boundary: detections before the boundary do not count.
    score, _ = nab.score_file(_det(1000, 120), [(100, 199)], STANDARD, probation=150)
    assert score == -1.0
    score, _ = nab.score_file(_det(1000, 160), [(100, 199)], STANDARD, probation=150)
    assert score == pytest.approx(nab.scaled_sigmoid(-40 / 100) / nab.MAX_TP)
    # A window wholly inside it is neither rewarded nor missed.
    assert nab.score_file(np.zeros(1000, bool), [(10, 50)], STANDARD, probation=150)[0] == 0.0
    assert nab.null_score([(10, 50), (400, 499)], STANDARD, probation=150) == -1.0


def test_row_contributions_layout_and_sum():
    d = _det(1000, 100, 420, 480, 600)
    windows = [(400, 499), (700, 799)]
    rows = nab.row_contributions(d, windows, STANDARD, probation=0)
    assert set(np.flatnonzero(rows)) == {100, 400, 600, 700}  # FP rows, and each window's first row
    assert rows[700] == -1.0 and rows[100] == -STANDARD["fpWeight"]
    assert rows.sum() == pytest.approx(nab.score_file(d, windows, STANDARD, 0)[0], abs=1e-12)


def test_overlapping_or_out_of_range_windows_are_rejected():
    with pytest.raises(ValueError, match="overlap"):
        nab.score_file(np.zeros(100, bool), [(10, 30), (30, 40)], STANDARD, 0)
    with pytest.raises(ValueError, match="outside"):
        nab.score_file(np.zeros(100, bool), [(90, 100)], STANDARD, 0)


def test_normalised_score_perfect_is_100_and_null_is_0():
    profiles = {"standard": STANDARD, "reward_low_FN_rate": LOW_FN}
    n = 2000
    windows = {"a": [(500, 599), (1500, 1599)], "b": [(800, 899)], "c": []}
    perfect = {"a": _det(n, 500, 1500).astype(float), "b": _det(n, 800).astype(float), "c": np.zeros(n)}
    null = {k: np.zeros(n) for k in windows}
    for name in profiles:
        assert nab.score_corpus(perfect, windows, 0.5, name, profiles)["normalised"] == pytest.approx(100.0)
        out = nab.score_corpus(null, windows, 0.5, name, profiles)
        assert out["normalised"] == 0.0
        assert out["null"] == -3 * profiles[name]["fnWeight"] and out["perfect"] == 3.0
    assert nab.normalised_score(46.6344501971, -116.0, 116.0) == pytest.approx(70.10105611943965)


def test_windows_from_labels_centres_merges_and_skips_probation():
    labels = np.zeros(2000, bool)
    labels[[1000]] = True
    assert nab.windows_from_labels(labels) == [(900, 1100)]  # int(0.1 * 2000 / 1) = 200 rows → ±100
    labels[[1050, 1900]] = True  # 3 anomalies → length 66 → ±33; 1000/1050 overlap, 1900 is clipped
    assert nab.windows_from_labels(labels) == [(967, 1083), (1867, 1933)]
    labels[:] = False
    labels[[100, 1000]] = True  # the first window starts in probation (300 rows)
    assert nab.windows_from_labels(labels) == [(950, 1050)]
    assert nab.windows_from_labels(labels, probation_percent=0.0) == [(50, 150), (950, 1050)]
    assert nab.windows_from_labels(np.zeros(10, bool)) == []


def test_load_windows_maps_timestamps_to_rows(tmp_path: Path):
    path = tmp_path / "windows.json"
    path.write_text(json.dumps({"x/a.csv": [["2020-01-01 02:00:00.000000", "2020-01-01 04:00:00.000000"]]}))
    ts = pd.Series(pd.date_range("2020-01-01", periods=10, freq="h").strftime("%Y-%m-%d %H:%M:%S"))
    assert nab.load_windows(path, "x/a.csv", ts) == [(2, 4)]


# ---------------------------------------------------------------------------------------------------------
# NAB's published results
# ---------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def nab_root(shared_datasets: Path) -> Path:
    root = shared_datasets / "nab"
    if not (root / "results").is_dir():
        if os.environ.get("CI"):
            pytest.fail(f"NAB data not found at {root}")
        pytest.skip(f"NAB data not found at {root}")
    return root


@pytest.fixture(scope="module")
def profiles(nab_root: Path) -> dict[str, dict[str, float]]:
    return nab.load_profiles(nab_root / "config" / "profiles.json")


@pytest.fixture(scope="module")
def results(nab_root: Path) -> dict[str, dict[str, tuple[pd.DataFrame, list[tuple[int, int]]]]]:
    """{detector: {file key: (NAB's published result CSV, windows as rows)}}, read once."""
    out: dict[str, dict[str, tuple[pd.DataFrame, list[tuple[int, int]]]]] = {}
    labels = nab_root / "labels" / "combined_windows.json"
    for det in DETECTORS:
        out[det] = {}
        for cat in CATEGORIES:
            for path in sorted((nab_root / "results" / det / cat).glob(f"{det}_*.csv")):
                key = f"{cat}/{path.name[len(det) + 1 :]}"
                df = pd.read_csv(path)
                out[det][key] = (df, nab.load_windows(labels, key, df["timestamp"]))
    return out


def _published_scores(nab_root: Path, det: str, profile: str) -> pd.DataFrame:
    return pd.read_csv(nab_root / "results" / det / f"{det}_{profile}_scores.csv")


@pytest.mark.shared_data
@pytest.mark.parametrize("profile", PROFILES)
@pytest.mark.parametrize("det", DETECTORS)
def test_matches_nab_published_file_scores_counts_and_rows(nab_root, profiles, results, det, profile):
    threshold = nab.load_thresholds(nab_root / "config" / "thresholds.json")[det][profile]
    published = _published_scores(nab_root, det, profile).set_index("File")
    files = results[det]
    assert len(files) == N_FILES
    bad = []
    for key, (df, windows) in files.items():
        row = published.loc[key]
        n = len(df)
        probation = nab.probationary_length(n)
        assert row.Total_Count == n
        # load_windows agrees with NAB's own per-row window labels.
        in_window = np.zeros(n, dtype=int)
        for first, last in windows:
            in_window[first : last + 1] = 1
        np.testing.assert_array_equal(in_window, df["label"].to_numpy(), err_msg=key)

        detections = df["anomaly_score"].to_numpy() >= threshold
        score, counts = nab.score_file(detections, windows, profiles[profile], probation)
        rows = nab.row_contributions(detections, windows, profiles[profile], probation)
        row_err = float(np.abs(rows - df[f"S(t)_{profile}"].to_numpy()).max())
        published_counts = (row.TP, row.FP, row.FN, row.TN)
        if (
            abs(score - row.Score) > TOL
            or row_err > TOL
            or (counts["tp"], counts["fp"], counts["fn"], counts["tn"]) != published_counts
        ):
            bad.append((key, score, row.Score, row_err, counts, published_counts))
    assert not bad, bad


@pytest.mark.shared_data
@pytest.mark.parametrize("profile", PROFILES)
def test_null_detector_and_probation_match_nab(nab_root, profiles, results, profile):
    published = _published_scores(nab_root, "null", profile).set_index("File")
    numenta = _published_scores(nab_root, "numenta", profile).set_index("File")
    for key, (df, windows) in results["numenta"].items():
        probation = nab.probationary_length(len(df))
        assert nab.null_score(windows, profiles[profile], probation) == published.loc[key, "Score"]
        r = numenta.loc[key]
        assert len(df) - probation == r.TP + r.FP + r.FN + r.TN  # NAB's counts leave out probation


@pytest.mark.shared_data
@pytest.mark.parametrize("det", [*DETECTORS, "null"])
def test_normalisation_reproduces_final_results(nab_root, profiles, det):
    """The corpus Totals, normalised, give NAB's published scoreboard (all 58 files, 116 windows)."""
    final = json.loads((nab_root / "results" / "final_results.json").read_text())
    all_windows = json.loads((nab_root / "labels" / "combined_windows.json").read_text())
    n_windows = sum(len(w) for w in all_windows.values())
    assert n_windows == 116
    for profile in PROFILES:
        total = _published_scores(nab_root, det, profile).set_index("Detector").loc["Totals", "Score"]
        null = _published_scores(nab_root, "null", profile).set_index("Detector").loc["Totals", "Score"]
        weights = profiles[profile]
        assert null == -weights["fnWeight"] * n_windows
        got = nab.normalised_score(total, null, weights["tpWeight"] * n_windows)
        assert got == pytest.approx(final[det][profile], abs=1e-6), (det, profile)


@pytest.mark.shared_data
def test_score_corpus_on_real_known_cause(nab_root, profiles, results):
    """The worked figure in nab/PROVENANCE.md: numenta, standard, the 7 realKnownCause files."""
    files = {k: v for k, v in results["numenta"].items() if k.startswith("realKnownCause/")}
    assert len(files) == 7
    out = nab.score_corpus(
        {k: df["anomaly_score"].to_numpy() for k, (df, _) in files.items()},
        {k: w for k, (_, w) in files.items()},
        threshold=0.5421876907348634,
        profile_name="standard",
        profiles=profiles,
    )
    assert out["raw"] == pytest.approx(2.077950808999, abs=1e-9)
    assert out["null"] == -19.0 and out["perfect"] == 19.0
    assert out["normalised"] == pytest.approx(100 * (2.077950808999 + 19) / 38, abs=1e-6)  # 55.47
    assert out["files"]["realKnownCause/nyc_taxi.csv"]["score"] == pytest.approx(2.43572773247, abs=1e-9)
    assert sum(f["tp"] for f in out["files"].values()) == 44
    assert sum(f["fp"] for f in out["files"].values()) == 35
    assert sum(f["fn"] for f in out["files"].values()) == 6550


@pytest.mark.shared_data
def test_windows_from_labels_reproduces_nab_windows(nab_root):
    """NAB's window rule applied to NAB's point labels gives combined_windows.json for all 24 files."""
    labels = json.loads((nab_root / "labels" / "combined_labels.json").read_text())
    # NAB's labeler hand-edits this file's anomaly rows to [249, 339] (labeler.editPoorLabels) after
    # combined_labels.json was written, and its windows are built from the edited rows.
    edited = {"realAWSCloudwatch/iio_us-east-1_i-a2eb1cd9_NetworkIn.csv": [249, 339]}
    checked = 0
    for cat in CATEGORIES:
        for path in sorted((nab_root / "data" / cat).glob("*.csv")):
            key = f"{cat}/{path.name}"
            ts = pd.read_csv(path, usecols=["timestamp"])["timestamp"]
            point = np.zeros(len(ts), dtype=bool)
            is_label = pd.to_datetime(ts).isin(pd.to_datetime(labels[key]))
            rows = edited.get(key) or list(np.flatnonzero(is_label))
            point[rows] = True
            expected = nab.load_windows(nab_root / "labels" / "combined_windows.json", key, ts)
            assert nab.windows_from_labels(point) == expected, key
            checked += 1
    assert checked == N_FILES
    assert math.isclose(nab.WINDOW_FRACTION, 0.1)


def test_built_in_profiles_equal_nab_config(nab_root):
    assert nab.load_profiles(nab_root / "config" / "profiles.json") == nab.PROFILES
