"""evaluate: the use case scores its trained model(s) and its baselines on held-out data.

Writes every number to ``results/<use case>/evaluation/scores.json`` (what the report renders), the use case's
headline numbers (``UseCase.headline``) to ``metrics/<use case>.json`` (what ``dvc metrics`` and
``dvc exp show`` list: a few columns one compares across experiments, no timings), figures under
``plots/<use case>/evaluation``, and logs the numbers to the training run in MLflow.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from aeflow import usecases
from aeflow.config import Params
from aeflow.io import pick, read_json, write_json
from aeflow.layout import SCORES


def run(
    use_case: str,
    params: Params,
    data: Path,
    noisy: Path,
    models: Path,
    results: Path,
    metrics: Path,
    plots: Path,
) -> dict[str, Any]:
    """Evaluate ``use_case``; see the module docstring."""
    uc = usecases.get(use_case)
    report = uc.evaluate(params, data, noisy, models, results, plots)
    write_json(metrics, pick(read_json(results / SCORES), uc.headline))
    return report
