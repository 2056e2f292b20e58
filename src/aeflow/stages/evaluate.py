"""evaluate: the use case scores its trained model(s) and its baselines on held-out data.

Writes ``metrics/<use case>.json`` (the truth for ``dvc metrics``), figures under ``plots/<use case>/
evaluation``, and logs the same numbers to the training run in MLflow.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from aeflow import usecases
from aeflow.config import Params


def run(
    use_case: str, params: Params, data: Path, noisy: Path, models: Path, metrics: Path, plots: Path
) -> dict[str, Any]:
    """Evaluate ``use_case``; see the module docstring."""
    return usecases.get(use_case).evaluate(params, data, noisy, models, metrics, plots)
