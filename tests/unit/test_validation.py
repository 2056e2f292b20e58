"""The image suite: clean data passes; each kind of bad data fails naming the file, rule and rows."""

from __future__ import annotations

import numpy as np
import pytest

from aeflow.errors import ValidationFailed
from aeflow.usecases.mnist.params import MnistValidateParams
from aeflow.usecases.mnist.validation import class_frame, image_suites
from aeflow.validation.core import raise_on_failure, run_suites

FILES = {name: f"data/raw/mnist/{name}.npz" for name in ("train", "val", "test")}


@pytest.fixture(scope="module")
def clean(shuffled):
    x, y = shuffled
    return {
        "train": (x[:400].copy(), y[:400].copy()),
        "val": (x[400:450], y[400:450]),
        "test": (x[450:500], y[450:500]),
    }


def _validate(splits, **kw):
    return run_suites(image_suites(splits, FILES, MnistValidateParams(**kw)), "mnist")


def _message(splits, **kw) -> str:
    report = _validate(splits, **kw)
    assert not report["success"]
    with pytest.raises(ValidationFailed) as exc:
        raise_on_failure(report)
    return str(exc.value)


def test_clean_digits_pass(clean):
    report = _validate(clean)
    assert report["success"], [e for e in report["results"] if not e["success"]]
    assert len(report["results"]) >= 8
    raise_on_failure(report)


def test_missing_class_fails_naming_class_and_fix(clean):
    x, y = clean["train"]
    keep = y != 3
    msg = _message({**clean, "train": (x[keep], y[keep])})
    assert "data/raw/mnist/train.npz" in msg
    assert "class 3 = 0.0" in msg
    assert "min_class_fraction" in msg


def test_nan_and_out_of_range_pixels(clean):
    x, y = clean["train"]
    x = x.copy()
    x[7, 3, 3] = np.nan
    x[11, 0, 0] = 300.0
    msg = _message({**clean, "train": (x, y)})
    assert "nan_count" in msg and "row 7 = 1" in msg
    assert "pixel_max" in msg and "row 11 = 300.0" in msg


def test_labels_outside_digits(clean):
    x, y = clean["test"]
    y = y.copy()
    y[5] = 12
    msg = _message({**clean, "test": (x, y)})
    assert "data/raw/mnist/test.npz" in msg and "row 5 = 12" in msg
    assert "labels must be the digits 0–9" in msg


def test_wrong_image_size(clean):
    _, y = clean["val"]
    msg = _message({**clean, "val": (np.zeros((len(y), 28, 27), np.float32), y)})
    assert "width" in msg and "28×28" in msg


def test_class_frame_counts_missing_classes():
    frame = class_frame(np.array([0, 0, 1, 9]))
    assert frame["count"].tolist() == [2, 1, 0, 0, 0, 0, 0, 0, 0, 1]
    assert frame["fraction"].iloc[0] == pytest.approx(0.5)
