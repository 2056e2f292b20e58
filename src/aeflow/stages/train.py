"""train: fit what the use case's training plan asks for through the one training service.

Outputs (each replaced only when every model has trained and registered): ``<models>/model.pt`` (or one
folder per model), ``<models>/run.json`` (MLflow run, registered version: evaluate logs into this run),
``<models>/checkpoints/``, ``<plots>/loss.csv`` and ``<plots>/recon/`` (figures of every epoch).

Kills, resumption and tracking outages are the service's business: see :mod:`aeflow.training.service`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from aeflow import usecases
from aeflow.config import Params


def run(
    use_case: str, params: Params, data: Path, validation: Path, models: Path, plots: Path, inputs: Path
) -> dict[str, Any]:
    """Train ``use_case`` on the ingested ``data`` and the model ``inputs`` an earlier stage made."""
    from aeflow.training.service import check_validation, train

    check_validation(validation)
    plan = usecases.get(use_case).training_plan(params, data, inputs)
    return train(params, plan, str(data), models, plots)
