"""The tabular detector as an MLflow pyfunc model (``aeflow-tabular``): what ``mlflow models serve`` runs.

A request is a frame with exactly the model's columns (numbers in numeric columns, null for a missing
number; any text in categorical ones, unseen values count as ``other``); the answer has one row per
request row: ``score``, ``flag``, ``threshold`` and the top-k columns with their share of the error
(``feature_1``, ``share_1``, ...). A missing or unknown column, or a text in a numeric column, is answered
with HTTP 400 naming it. The only artifact is the weights-only ``model.pt`` (encoder and threshold inside).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import mlflow.pyfunc
import numpy as np
import pandas as pd

from aeflow.errors import DataError
from aeflow.sections import TrackingParams
from aeflow.tracking import SCORING_UNIT, bad_request


class TabularModel(mlflow.pyfunc.PythonModel):
    """pyfunc flavour of :class:`~aeflow.usecases.tabular.scorer.TabularScorer` (needs ``aeflow``)."""

    def load_context(self, context: Any) -> None:
        from aeflow.models.registry import load_model
        from aeflow.usecases.tabular.scorer import TabularScorer

        self.model = load_model(context.artifacts["model"])  # with its settings (aeflow monitor reads them)
        self.scorer = TabularScorer.from_model(self.model)

    def predict(
        self, context: Any, model_input: pd.DataFrame, params: dict[str, Any] | None = None
    ) -> pd.DataFrame:
        """The answer per row; ``params={"top_k": n}`` names n columns per row (default 3)."""
        from aeflow.usecases.tabular.scorer import DEFAULT_TOP_K

        frame = pd.DataFrame(model_input)
        top_k = int((params or {}).get("top_k", DEFAULT_TOP_K))
        try:
            if top_k < 1:
                raise DataError(f"request: params top_k is {top_k}. Fix: ask for at least 1 column per row.")
            self.scorer.encoder.check_columns([str(c) for c in frame.columns], "request", extra_allowed=True)
            return self.scorer.answer(frame, "request", top_k)
        except DataError as exc:
            raise bad_request(str(exc)) from None


#: aeflow score: every row on its own, in any order, split anywhere
METADATA = {SCORING_UNIT: "rows"}


def signature(scorer: Any) -> Any:
    """Input: every column with its type (numbers as double, categories as string); output: the answer;
    params: ``top_k``, the columns named per row."""
    from mlflow.models import infer_signature

    enc = scorer.encoder
    example = pd.DataFrame(
        {
            **{c: np.asarray([float(v)] * 2) for c, v in zip(enc.numeric, enc.fill, strict=True)},
            **{c: [(enc.categories[c] or ["x"])[0]] * 2 for c in enc.categorical},
        }
    )
    from aeflow.usecases.tabular.scorer import DEFAULT_TOP_K

    return infer_signature(example, scorer.answer(example), params={"top_k": DEFAULT_TOP_K}), example


def register_scorer_file(
    tracking: TrackingParams, run_id: str, model_file: Path, use_case: str, description: str
) -> dict[str, str]:
    """Log the detector saved in ``model_file`` as a pyfunc (with its signature and an input example) to
    ``run_id`` and register a new version of the use case's model (the tabular training job's registrar)."""
    import mlflow
    import torch

    from aeflow import __version__
    from aeflow.models.registry import load_model
    from aeflow.tracking import registered, registered_model_name
    from aeflow.usecases.tabular.scorer import TabularScorer

    mlflow.set_tracking_uri(tracking.resolved_uri())
    logging.getLogger("mlflow.pyfunc").setLevel(logging.ERROR)
    name = registered_model_name(tracking, use_case)
    sig, example = signature(TabularScorer.from_model(load_model(str(model_file))))
    with mlflow.start_run(run_id=run_id):
        info = mlflow.pyfunc.log_model(
            name="detector",
            python_model=TabularModel(),
            artifacts={"model": str(model_file)},
            signature=sig,
            input_example=example.head(1),
            metadata=METADATA,
            pip_requirements=[
                f"torch=={torch.__version__.split('+')[0]}",
                f"mlflow=={mlflow.__version__}",
                f"aeflow=={__version__}",
            ],
            registered_model_name=name,
            await_registration_for=30,
        )
    return registered(tracking, name, info, description)


def save_pyfunc(model: Any, folder: Path) -> Path:
    """The detector as a local pyfunc folder, as :func:`register_scorer_file` logs it (``model`` carries
    its ``data_config``): batch scoring and benchmarks without a tracking store."""
    import mlflow.pyfunc

    from aeflow.models.registry import save_model
    from aeflow.usecases.tabular.scorer import TabularScorer

    folder.mkdir(parents=True, exist_ok=True)
    weights = folder / "model.pt"
    save_model(model, str(weights))
    sig, example = signature(TabularScorer.from_model(model))
    mlflow.pyfunc.save_model(
        str(folder / "pyfunc"),
        python_model=TabularModel(),
        artifacts={"model": str(weights)},
        signature=sig,
        input_example=example.head(1),
        metadata=METADATA,
    )
    return folder / "pyfunc"
