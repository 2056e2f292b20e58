"""The tabular detector: encoder + autoencoder + threshold, and which columns made a row anomalous.

A row's score is its reconstruction error averaged over its input columns (a categorical column's error is
summed over its one-hot slots, so a column weighs the same however many categories it has). The share of
each column in that error ranks the columns: the attribution the report, the MLflow run, the served model
and ``aeflow monitor`` give with every flagged row. One object serves all of them; its settings travel with
the model (``model.data_config``).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import torch

from aeflow.errors import DataError
from aeflow.usecases.tabular.encoding import Encoder

USE_CASE = "tabular"
#: Columns named per row when the caller asks for no other number (the served model's ``top_k`` param).
DEFAULT_TOP_K = 3


class TabularScorer:
    def __init__(self, model: Any, config: dict[str, Any]) -> None:
        self.model = model.eval()
        self.config = config
        self.encoder = Encoder.from_json(config["encoder"])
        self.threshold = float(config["threshold"]) if config.get("threshold") is not None else float("inf")

    @classmethod
    def from_model(cls, model: Any) -> TabularScorer:
        cfg = getattr(model, "data_config", None)
        if not cfg or cfg.get("use_case") != USE_CASE:
            raise DataError(
                "this model carries no tabular detector settings (data_config); it was not trained by the "
                "tabular train stage. Fix: pass a model registered by `dvc repro` for the tabular use case."
            )
        return cls(model, cfg)

    @property
    def columns(self) -> list[str]:
        return self.encoder.columns

    def column_errors(self, encoded: np.ndarray, batch_size: int = 65536) -> np.ndarray:
        """Per-column squared reconstruction error of encoded rows (rows × columns)."""
        out = np.empty((len(encoded), len(self.columns)), dtype=np.float64)
        with torch.inference_mode():
            for i in range(0, len(encoded), batch_size):
                x = torch.from_numpy(np.ascontiguousarray(encoded[i : i + batch_size], dtype=np.float32))
                squared = ((self.model(x) - x) ** 2).numpy()
                out[i : i + len(x)] = self.encoder.column_sums(squared)
        return out

    @staticmethod
    def scores_of(errors: np.ndarray) -> np.ndarray:
        """Row scores from per-column errors: the mean over columns."""
        return errors.mean(axis=1)

    def score(self, frame: pd.DataFrame, where: str = "table") -> np.ndarray:
        return self.scores_of(self.column_errors(self.encoder.transform(frame, where)))

    def top_columns(self, errors: np.ndarray, k: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """The ``k`` columns with the largest error per row (indices, best first) and their share of it."""
        k = min(k or DEFAULT_TOP_K, errors.shape[1])
        order = np.argsort(-errors, axis=1, kind="stable")[:, :k]
        total = errors.sum(axis=1, keepdims=True)
        shares = np.take_along_axis(errors, order, axis=1) / np.where(total > 0, total, 1.0)
        return order, shares

    def answer(self, frame: pd.DataFrame, where: str = "request", top_k: int = DEFAULT_TOP_K) -> pd.DataFrame:
        """Per row: ``score``, ``flag``, ``threshold`` and the ``top_k`` columns with their share of the
        error (``feature_1``, ``share_1``, ...)."""
        errors = self.column_errors(self.encoder.transform(frame, where))
        scores = self.scores_of(errors)
        order, shares = self.top_columns(errors, top_k)
        names = np.asarray(self.columns, dtype=object)
        out: dict[str, Any] = {"score": scores, "flag": scores > self.threshold, "threshold": self.threshold}
        for j in range(order.shape[1]):
            out[f"feature_{j + 1}"] = names[order[:, j]]
            out[f"share_{j + 1}"] = np.round(shares[:, j], 4)
        return pd.DataFrame(out)


class RowMonitor:
    """``aeflow monitor`` for tables: each row scored as it arrives (rows are independent), flagged rows
    named with their top columns."""

    def __init__(self, scorer: TabularScorer, top_k: int = DEFAULT_TOP_K) -> None:
        self.scorer = scorer
        self.top_k = top_k
        self.columns = scorer.columns
        self.threshold = scorer.threshold
        self.alarm = False

    def push(self, row: dict[str, Any]) -> tuple[float, bool, str]:
        """Score one row (column → text; an empty numeric cell is a missing value, filled as in training)."""
        values: dict[str, Any] = {}
        for c in self.scorer.encoder.numeric:
            cell = row.get(c)
            try:
                values[c] = float(cell) if cell not in ("", None) else np.nan
            except (TypeError, ValueError):
                raise DataError(f"column {c!r}: {cell!r} is not a number. Fix the value.") from None
        for c in self.scorer.encoder.categorical:
            cell = row.get(c)
            values[c] = cell if cell not in ("", None) else None
        answer = self.scorer.answer(pd.DataFrame([values]), "row", self.top_k).iloc[0]
        flag = bool(answer["flag"])
        self.alarm = flag  # rows are independent: every flagged row is its own incident
        k = min(self.top_k, len(self.columns))
        note = ", ".join(f"{answer[f'feature_{j}']} {answer[f'share_{j}']:.0%}" for j in range(1, k + 1))
        return float(answer["score"]), flag, note

    def summary(self) -> str:
        return f"threshold {self.threshold:.6g}; top {self.top_k} columns per row"
