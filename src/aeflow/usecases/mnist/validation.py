"""The expectation suite for ingested image splits (MNIST-format digits).

Images are summarised into one row per image (label, size, pixel range, NaN/inf counts) and one row per
class (count and share of the split) so that great-expectations' column expectations express the rules
directly: 28×28, pixel range, labels 0–9, no NaN, every class at least ``min_class_fraction`` of rows.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

from aeflow.usecases.mnist.params import MnistValidateParams
from aeflow.validation.core import Check, FrameSuite

NUM_CLASSES = 10


def image_frame(images: np.ndarray, labels: np.ndarray) -> pd.DataFrame:
    """One row per image: label, height, width, finite pixel range and NaN/inf counts."""
    n = len(images)
    flat = images.reshape(n, -1).astype(np.float64, copy=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN rows: reported by nan_count instead
        finite = np.where(np.isfinite(flat), flat, np.nan)
        pmin = np.nanmin(finite, axis=1) if flat.size else np.zeros(n)
        pmax = np.nanmax(finite, axis=1) if flat.size else np.zeros(n)
    return pd.DataFrame(
        {
            "label": labels.astype(np.int64),
            "height": np.full(n, images.shape[1] if images.ndim >= 2 else 0),
            "width": np.full(n, images.shape[2] if images.ndim >= 3 else 0),
            "pixel_min": np.nan_to_num(pmin, nan=0.0),
            "pixel_max": np.nan_to_num(pmax, nan=0.0),
            "nan_count": np.isnan(flat).sum(axis=1),
            "inf_count": np.isinf(flat).sum(axis=1),
        }
    )


def class_frame(labels: np.ndarray) -> pd.DataFrame:
    """One row per expected class 0–9 (missing classes get count 0) with its share of the rows."""
    counts = np.bincount(
        labels[(labels >= 0) & (labels < NUM_CLASSES)].astype(np.int64), minlength=NUM_CLASSES
    )
    total = max(len(labels), 1)
    return pd.DataFrame({"label": np.arange(NUM_CLASSES), "count": counts, "fraction": counts / total})


def image_suites(
    splits: dict[str, tuple[np.ndarray, np.ndarray]],
    files: dict[str, str],
    params: MnistValidateParams,
    shape: tuple[int, int] = (28, 28),
) -> list[FrameSuite]:
    """Build the suites for every split; class balance is checked on the training split."""
    suites: list[FrameSuite] = []
    for name, (images, labels) in splits.items():
        frame = image_frame(images, labels)
        checks = [
            Check(
                "ExpectColumnValuesToBeBetween",
                {"column": "height", "min_value": shape[0], "max_value": shape[0]},
                f"images must be {shape[0]}×{shape[1]}; resize or use MNIST-format data",
                "image height",
            ),
            Check(
                "ExpectColumnValuesToBeBetween",
                {"column": "width", "min_value": shape[1], "max_value": shape[1]},
                f"images must be {shape[0]}×{shape[1]}; resize or use MNIST-format data",
                "image width",
            ),
            Check(
                "ExpectColumnValuesToBeBetween",
                {"column": "nan_count", "min_value": 0, "max_value": 0},
                "remove or repair images with NaN pixels at the source",
                "no NaN pixels",
            ),
            Check(
                "ExpectColumnValuesToBeBetween",
                {"column": "inf_count", "min_value": 0, "max_value": 0},
                "remove or repair images with infinite pixels at the source",
                "no infinite pixels",
            ),
            Check(
                "ExpectColumnValuesToBeBetween",
                {"column": "pixel_min", "min_value": params.pixel_min, "max_value": params.pixel_max},
                f"pixels must lie in [{params.pixel_min:g}, {params.pixel_max:g}] (raw 8-bit grey values)",
                "pixel range (minimum)",
            ),
            Check(
                "ExpectColumnValuesToBeBetween",
                {"column": "pixel_max", "min_value": params.pixel_min, "max_value": params.pixel_max},
                f"pixels must lie in [{params.pixel_min:g}, {params.pixel_max:g}] (raw 8-bit grey values)",
                "pixel range (maximum)",
            ),
            Check(
                "ExpectColumnValuesToBeInSet",
                {"column": "label", "value_set": list(range(NUM_CLASSES))},
                "labels must be the digits 0–9; fix or drop the rows shown",
                "labels 0–9",
            ),
        ]
        if name in ("train", "test"):
            checks.append(
                Check(
                    "ExpectTableRowCountToBeBetween",
                    {"min_value": 1},
                    f"the {name} split is empty; add data or lower the held-out fractions",
                    "split not empty",
                )
            )
        suites.append(FrameSuite(name=f"{name}_images", file=files[name], frame=frame, checks=checks))
        if name == "train":
            suites.append(
                FrameSuite(
                    name=f"{name}_classes",
                    file=files[name],
                    frame=class_frame(labels),
                    checks=[
                        Check(
                            "ExpectColumnValuesToBeBetween",
                            {"column": "fraction", "min_value": params.min_class_fraction},
                            "every class needs enough examples; add data for the classes shown "
                            "or lower mnist.validate.min_class_fraction",
                            f"every class ≥ {params.min_class_fraction:.0%} of rows",
                        ),
                    ],
                    row_label="class",
                )
            )
    return suites
