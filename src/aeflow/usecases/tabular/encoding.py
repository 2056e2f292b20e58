"""Table → model input, fitted on training rows only, and the checks a request gets.

Numeric columns are scaled (missing values take the training median first); categorical columns become
one-hot slots over their most common training values, plus one ``other`` slot for the rest and for values
never seen in training. The fitted settings are plain JSON, so they travel inside the model file
(``model.data_config``) and a registered version scores a table on its own.

Each input column owns a slice of the encoded row (:attr:`Encoder.groups`): a column's reconstruction error
is the squared error summed over its slice, which is what the attribution ranks.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from aeflow.errors import DataError

OTHER = "(other)"


@dataclass
class Encoder:
    numeric: list[str]
    categorical: list[str]
    fill: np.ndarray  # per numeric column: the training median
    center: np.ndarray
    scale: np.ndarray
    categories: dict[str, list[str]]  # per categorical column: the values with a slot of their own
    scaler: str = "standard"

    @classmethod
    def fit(
        cls, frame: pd.DataFrame, numeric: list[str], categorical: list[str], scaler: str, max_categories: int
    ) -> Encoder:
        x = frame[numeric].to_numpy(dtype=np.float64) if numeric else np.zeros((len(frame), 0))
        fill = np.nan_to_num(np.nanmedian(x, axis=0)) if len(x) else np.zeros(x.shape[1])
        x = np.where(np.isnan(x), fill[None, :], x)
        if scaler == "robust":
            q1, q3 = np.percentile(x, [25, 75], axis=0)
            center, scale = np.median(x, axis=0), q3 - q1
            fallback = x.std(axis=0)
            scale = np.where(scale > 1e-12, scale, fallback)
        elif scaler == "minmax":
            center, scale = x.min(axis=0), x.max(axis=0) - x.min(axis=0)
        else:
            center, scale = x.mean(axis=0), x.std(axis=0)
        scale = np.where(scale > 1e-12, scale, 1.0)
        categories = {}
        for c in categorical:
            counts = frame[c].astype("string").fillna(OTHER).value_counts()
            categories[c] = [str(v) for v in counts.index[:max_categories] if v != OTHER]
        return cls(list(numeric), list(categorical), fill, center, scale, categories, scaler)

    # ------------------------------------------------------------------------------------ structure
    @property
    def columns(self) -> list[str]:
        return [*self.numeric, *self.categorical]

    @property
    def width(self) -> int:
        return len(self.numeric) + sum(len(v) + 1 for v in self.categories.values())

    @property
    def groups(self) -> list[tuple[str, slice]]:
        """Each input column and its slice of the encoded row."""
        out = [(c, slice(i, i + 1)) for i, c in enumerate(self.numeric)]
        start = len(self.numeric)
        for c in self.categorical:
            n = len(self.categories[c]) + 1
            out.append((c, slice(start, start + n)))
            start += n
        return out

    def column_sums(self, squared: np.ndarray) -> np.ndarray:
        """Per-slot squared errors (rows × width) summed per input column (rows × columns)."""
        out = np.empty((len(squared), len(self.columns)), dtype=np.float64)
        n = len(self.numeric)
        out[:, :n] = squared[:, :n]
        for j, (_, sl) in enumerate(self.groups[n:], start=n):
            out[:, j] = squared[:, sl].sum(axis=1)
        return out

    # ------------------------------------------------------------------------------------ encode
    def numbers(self, frame: pd.DataFrame, where: str) -> np.ndarray:
        """The numeric columns as float64, or an error naming the first row and column holding a text."""
        if not self.numeric:
            return np.zeros((len(frame), 0))
        part = frame[self.numeric]
        if all(part[c].dtype.kind in "fiub" for c in self.numeric):
            return part.to_numpy(dtype=np.float64)
        parsed = part.apply(pd.to_numeric, errors="coerce")
        bad = parsed.isna().to_numpy() & part.notna().to_numpy()
        if bad.any():
            row, col = (int(i) for i in np.argwhere(bad)[0])
            raise DataError(
                f"{where}: row {row}, column {self.numeric[col]!r} is {part.iloc[row, col]!r}, not a number "
                f"({int(bad.sum())} such value(s) in all). Fix: send a number (or null) in every numeric "
                "column."
            )
        return parsed.to_numpy(dtype=np.float64)

    def transform(self, frame: pd.DataFrame, where: str = "table") -> np.ndarray:
        """The encoded rows (float32, rows × :attr:`width`)."""
        x = self.numbers(frame, where)
        x = np.where(np.isnan(x), self.fill[None, :], x)
        out = np.zeros((len(frame), self.width), dtype=np.float32)
        n = len(self.numeric)
        out[:, :n] = (x - self.center) / self.scale
        for c, sl in self.groups[n:]:
            known = self.categories[c]
            values = frame[c].astype("string").fillna(OTHER)
            codes = pd.Categorical(values, categories=known).codes  # -1: other / unseen
            codes = np.where(codes < 0, len(known), codes)
            out[np.arange(len(frame)), sl.start + codes] = 1.0
        return out

    def check_columns(self, columns: list[str], where: str, extra_allowed: bool = False) -> None:
        """A clear error for a frame that lacks a column the model needs (or, unless ``extra_allowed``,
        holds one it does not know)."""
        missing = [c for c in self.columns if c not in columns]
        unknown = [c for c in columns if c not in self.columns]
        if missing or (unknown and not extra_allowed):
            what = []
            if missing:
                what.append(f"missing column(s) {', '.join(map(repr, missing))}")
            if unknown and not extra_allowed:
                what.append(f"unknown column(s) {', '.join(map(repr, unknown))}")
            raise DataError(
                f"{where}: {' and '.join(what)}; the model expects exactly "
                f"{', '.join(map(repr, self.columns))}. "
                "Fix: send these columns (rename or drop the others)."
            )

    # ------------------------------------------------------------------------------------ JSON
    def to_json(self) -> dict[str, Any]:
        return {
            "numeric": self.numeric,
            "categorical": self.categorical,
            "fill": self.fill.tolist(),
            "center": self.center.tolist(),
            "scale": self.scale.tolist(),
            "categories": self.categories,
            "scaler": self.scaler,
        }

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Encoder:
        return cls(
            list(d["numeric"]),
            list(d["categorical"]),
            np.asarray(d["fill"], dtype=np.float64),
            np.asarray(d["center"], dtype=np.float64),
            np.asarray(d["scale"], dtype=np.float64),
            {k: list(v) for k, v in d["categories"].items()},
            d.get("scaler", "standard"),
        )
