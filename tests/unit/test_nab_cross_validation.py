"""The NAB benchmark's cross-validation: a setting chosen on the other files, per seed or across seeds.

Constructed score parts, two training seeds, three files in two groups: each seed choosing on its own
picks the setting its own detectors happen to score best with on the other group; chosen across seeds,
every seed gets the setting whose worst seed scores best there.
"""

from __future__ import annotations

import pytest

from benchmarks.sensor_detection import CV_COOLDOWNS, CV_VALUES, cv_scores, held_out

STEP = ((("1D",), True), 50.0)
BOLD = (*STEP, 3.0, 50)  # on group a: seed 1 100, seed 2 50 (mean 75)
SAFE = (*STEP, 3.5, 150)  # on group a: seed 1 70, seed 2 65 (mean 67.5)
GROUPS = {"a/one.csv": "a", "a/two.csv": "a", "b/three.csv": "b"}


def table(raw: dict[str, dict[tuple, float]]) -> dict:
    """Parts (raw, null −1, perfect 1) per file and setting: ``raw`` where given, −1 (no detection
    credit, normalised 0) elsewhere."""
    grid = [(*STEP, v, c) for v in CV_VALUES for c in CV_COOLDOWNS]
    return {f: {g: (raw.get(f, {}).get(g, -1.0), -1.0, 1.0) for g in grid} for f in GROUPS}


SEED_1 = table(
    {
        "a/one.csv": {BOLD: 1.0, SAFE: 0.4},
        "a/two.csv": {BOLD: 1.0, SAFE: 0.4},
        "b/three.csv": {BOLD: 0.9, SAFE: 0.5},
    }
)
SEED_2 = table(
    {
        "a/one.csv": {BOLD: 0.0, SAFE: 0.3},
        "a/two.csv": {BOLD: 0.0, SAFE: 0.3},
        "b/three.csv": {BOLD: -1.0, SAFE: 0.4},
    }
)


def group(rows: list, name: str) -> tuple:
    return next(r for r in rows if r[0] == name)


def test_each_seed_alone_takes_its_own_best_setting_on_the_other_group() -> None:
    _, rows_1 = held_out([SEED_1], GROUPS)
    _, rows_2 = held_out([SEED_2], GROUPS)
    assert group(rows_1, "b")[1] == BOLD  # seed 1: 100 on group a, against 70 for SAFE
    assert group(rows_1, "b")[2] == pytest.approx([95.0])  # raw 0.9 of (−1, 1)
    assert group(rows_2, "b")[1] == SAFE
    assert group(rows_2, "b")[2] == pytest.approx([70.0])


def test_across_seeds_every_seed_gets_the_setting_whose_worst_seed_is_best() -> None:
    scores, rows = held_out([SEED_1, SEED_2], GROUPS)
    _, chosen, per_seed = group(rows, "b")
    # BOLD's worst seed scores 50 on group a, SAFE's 65: SAFE for both seeds (though BOLD's mean is higher)
    assert chosen == SAFE
    assert per_seed == pytest.approx([75.0, 70.0])
    # group a, held out, is scored with the setting chosen on b: BOLD's worst seed scores 0 there (raw −1),
    # SAFE's 70
    assert group(rows, "a")[1] == SAFE
    # every file scored with the setting chosen on the other group: (raw − null) / (perfect − null)
    assert scores == pytest.approx([(0.4 + 0.4 + 0.5 + 3) / 6 * 100, (0.3 + 0.3 + 0.4 + 3) / 6 * 100])


def test_cv_scores_give_one_score_per_seed_for_every_way() -> None:
    tables = [SEED_1, SEED_2]
    cv = cv_scores(tables)
    assert set(cv) == {"folder", "kfold", "deals"}
    assert all(len(v) == 2 for v in cv.values())
    # one seed alone: the same as held_out on that table
    assert (
        cv_scores([SEED_1])["kfold"]
        == held_out([SEED_1], {f: f"fold {i % 5 + 1}" for i, f in enumerate(sorted(GROUPS))})[0]
    )
