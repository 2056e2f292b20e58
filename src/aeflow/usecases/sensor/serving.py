"""The sensor detector as an MLflow pyfunc model: what ``mlflow models serve`` runs.

The pyfunc wraps scaler + windowing + autoencoder + threshold (:class:`~aeflow.usecases.sensor.detector.
AnomalyDetector`). Its only artifact is the weights-only ``model.pt`` written by the train stage (settings
inside), so serving never unpickles a network. A request is a frame of readings, one row per time step in
time order, with one column per sensor (other columns, e.g. a timestamp, are ignored); the answer has one
row per reading: ``score``, ``flag``, ``alarm`` (flagged and outside the previous alarm's cooldown, within
the request), the ``threshold``, and which sensor: ``top_sensor`` and each sensor's share of the score
(``share_<sensor>``, see :meth:`~aeflow.usecases.sensor.detector.AnomalyDetector.score_and_shares`). The
first rows of a request are scored with a
window padded by repeating the first reading, so even a 1-row request gets an answer.
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


class DetectorModel(mlflow.pyfunc.PythonModel):
    """pyfunc flavour of the detector (loaded by reference: needs ``aeflow`` installed)."""

    def load_context(self, context: Any) -> None:
        from aeflow.models.registry import load_model
        from aeflow.usecases.sensor.detector import AnomalyDetector

        self.model = load_model(context.artifacts["model"])  # with its settings (aeflow monitor reads them)
        self.detector = AnomalyDetector.from_model(self.model)

    def predict(
        self, context: Any, model_input: pd.DataFrame, params: dict[str, Any] | None = None
    ) -> pd.DataFrame:
        d = self.detector
        frame = pd.DataFrame(model_input)
        try:
            d.check_columns([str(c) for c in frame.columns], "request")
        except DataError as exc:
            raise bad_request(str(exc)) from None
        values = readings(frame, d.sensors)
        scores, shares = d.score_and_shares(values)
        flags = d.flags(scores)
        return answer_frame(d.sensors, scores, flags, d.alarms(flags), d.threshold, shares)


def answer_frame(
    sensors: list[str],
    scores: np.ndarray,
    flags: np.ndarray,
    alarms: np.ndarray,
    threshold: float,
    shares: np.ndarray,
) -> pd.DataFrame:
    """The served answer: ``score``, ``flag``, ``alarm``, ``threshold``, the ``top_sensor`` (the largest
    share) and every sensor's share of the score (``share_<sensor>``, summing to 1 per row)."""
    top = np.asarray(sensors, dtype=object)[np.argmax(shares, axis=1)] if len(scores) else []
    return pd.DataFrame(
        {
            "score": np.asarray(scores, dtype=np.float64),
            "flag": np.asarray(flags, dtype=bool),
            "alarm": np.asarray(alarms, dtype=bool),
            "threshold": float(threshold),
            "top_sensor": top,
            **{f"share_{s}": np.round(shares[:, j], 4) for j, s in enumerate(sensors)},
        }
    )


def readings(frame: pd.DataFrame, sensors: list[str]) -> np.ndarray:
    """The request's readings as numbers, or a 400 naming the first row and column that is not one.

    A request is a question about readings someone has: a null or a text value is a mistake in it, not a
    gap to fill in (``aeflow monitor`` on a stream carries the last reading over a gap; a served detector
    would answer about a value nobody sent)."""
    numbers = frame[sensors].apply(pd.to_numeric, errors="coerce").astype(np.float64)
    bad = ~np.isfinite(numbers.to_numpy())
    if bad.any():
        row, col = (int(i) for i in np.argwhere(bad)[0])
        value = frame[sensors].iloc[row, col]
        shown = "null" if value is None or (isinstance(value, float) and np.isnan(value)) else repr(value)
        raise bad_request(
            f"request: row {row}, column '{sensors[col]}' is {shown}, not a finite number "
            f"({int(bad.sum())} such value(s) in all). Fix: send a number for every sensor in every row."
        )
    return numbers.to_numpy(dtype=np.float32)


#: aeflow score: readings in time order, one detector state per series
METADATA = {SCORING_UNIT: "series"}


def signature(sensors: list[str]) -> Any:
    """Input: one double column per sensor; output: the answer's columns."""
    from mlflow.models import infer_signature

    example = pd.DataFrame({s: np.zeros(3, dtype=np.float64) for s in sensors})
    even = np.full((3, len(sensors)), 1.0 / len(sensors))
    output = answer_frame(sensors, np.zeros(3), np.zeros(3, bool), np.zeros(3, bool), 1.0, even)
    return infer_signature(example, output)


def save_pyfunc(model: Any, folder: Path) -> Path:
    """The detector as a local pyfunc folder, as :func:`log_detector` logs it (``model`` carries its
    ``data_config``): batch scoring and tests without a tracking store."""
    import mlflow.pyfunc

    from aeflow.models.registry import save_model

    folder.mkdir(parents=True, exist_ok=True)
    weights = folder / "model.pt"
    save_model(model, str(weights))
    mlflow.pyfunc.save_model(
        str(folder / "pyfunc"),
        python_model=DetectorModel(),
        artifacts={"model": str(weights)},
        signature=signature(list(model.data_config["sensors"])),
        metadata=METADATA,
    )
    return folder / "pyfunc"


def log_detector(
    tracking: TrackingParams,
    run_id: str,
    model_file: Path,
    sensors: list[str],
    use_case: str,
    description: str,
) -> dict[str, str]:
    """Log the detector pyfunc (with an input/output signature) to ``run_id`` and register a new version."""
    import mlflow
    import torch

    from aeflow import __version__
    from aeflow.tracking import registered, registered_model_name

    mlflow.set_tracking_uri(tracking.resolved_uri())
    logging.getLogger("mlflow.pyfunc").setLevel(logging.ERROR)
    name = registered_model_name(tracking, use_case)
    with mlflow.start_run(run_id=run_id):
        info = mlflow.pyfunc.log_model(
            name="detector",
            python_model=DetectorModel(),
            artifacts={"model": str(model_file)},
            signature=signature(sensors),
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


def register_detector_file(
    tracking: TrackingParams, run_id: str, model_file: Path, use_case: str, description: str
) -> dict[str, str]:
    """Register the detector saved in ``model_file`` (the sensor training jobs' registrar)."""
    from aeflow.models.registry import load_model

    sensors = load_model(str(model_file)).data_config["sensors"]
    return log_detector(tracking, run_id, model_file, sensors, use_case, description)
