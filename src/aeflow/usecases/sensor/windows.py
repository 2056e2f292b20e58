"""Scaling and sliding windows for sensor series.

The scaler is fitted on the normal training segment only (:meth:`Scaler.fit` sees nothing else), so no
statistic of validation or test data leaks into the model; windows are views over the scaled series, shaped
(windows, sensors, length) as the Conv1d/LSTM encoders expect.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True)
class Scaler:
    """Per-sensor ``(x - center) / scale``: standard (mean/std), robust (median/IQR) or min-max."""

    kind: str
    center: np.ndarray
    scale: np.ndarray

    @classmethod
    def fit(cls, train: np.ndarray, kind: str = "robust") -> Scaler:
        """Fit on training readings (rows × sensors); NaNs are ignored."""
        x = np.asarray(train, dtype=np.float64)
        if kind == "standard":
            center, scale = np.nanmean(x, axis=0), np.nanstd(x, axis=0)
        elif kind == "robust":
            q25, center, q75 = np.nanpercentile(x, [25, 50, 75], axis=0)
            scale = (q75 - q25) / 1.349  # IQR of a normal distribution in units of σ
        elif kind == "minmax":
            lo, hi = np.nanmin(x, axis=0), np.nanmax(x, axis=0)
            center, scale = lo, hi - lo
        else:
            raise ValueError(f"unknown scaler {kind!r}")
        # A constant sensor (e.g. a set-point) would divide by zero; give it unit scale instead.
        fallback = np.nanstd(x, axis=0)
        scale = np.where(scale > 1e-12, scale, np.where(fallback > 1e-12, fallback, 1.0))
        return cls(kind, center.astype(np.float32), scale.astype(np.float32))

    def transform(self, x: np.ndarray) -> np.ndarray:
        return ((np.asarray(x, dtype=np.float32) - self.center) / self.scale).astype(np.float32)

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "center": self.center.tolist(), "scale": self.scale.tolist()}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Scaler:
        return cls(
            data["kind"], np.asarray(data["center"], np.float32), np.asarray(data["scale"], np.float32)
        )


def fill_missing(values: np.ndarray, leading: np.ndarray | None = None) -> np.ndarray:
    """Carry the last reading forward over NaNs, per sensor (causal: online monitoring can do the same).

    NaNs before a sensor's first reading take ``leading`` (e.g. the scaler's centre), else 0. The validate
    stage bounds how many readings may be missing; the model needs complete windows.
    """
    x = np.array(values, dtype=np.float32, copy=True)
    for c in range(x.shape[1]):
        col = x[:, c]
        bad = np.isnan(col)
        if not bad.any():
            continue
        idx = np.where(~bad, np.arange(len(col)), -1)
        np.maximum.accumulate(idx, out=idx)
        first = float(leading[c]) if leading is not None else 0.0
        x[:, c] = np.where(idx >= 0, col[np.maximum(idx, 0)], first)
    return x


def make_windows(values: np.ndarray, length: int, stride: int = 1) -> np.ndarray:
    """Sliding windows (W, sensors, length) over readings (rows × sensors); window i ends at row
    ``i * stride + length - 1``."""
    x = np.asarray(values, dtype=np.float32)
    if len(x) < length:
        return np.zeros((0, x.shape[1], length), dtype=np.float32)
    view = np.lib.stride_tricks.sliding_window_view(x, length, axis=0)  # (N - L + 1, C, L)
    return np.ascontiguousarray(view[::stride])


def pad_front(values: np.ndarray, length: int) -> np.ndarray:
    """Repeat the first reading so that every row, even the first, ends a full window."""
    x = np.asarray(values, dtype=np.float32)
    if len(x) == 0:
        return x
    return np.concatenate([np.repeat(x[:1], length - 1, axis=0), x], axis=0)
