"""export_registry: what the MLflow model registry holds for each use case, written to
``registry/<uc>.json``.

Versions (newest first), their aliases, runs and gate records, and the use case's gate
(``<uc>.promotion``): the report's promotion history renders from this file, so ``reports/index.html``
depends only on files ``dvc.yaml`` declares. The stage is rerun by ``dvc repro`` after training, and
``aeflow promote``/``aeflow sync``, which change the registry outside DVC, rewrite their use case's file,
so the next ``dvc repro`` re-renders the report. An unreachable store is written down, not raised: the
report then says so instead of failing.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from aeflow.config import Params
from aeflow.io import write_json


def run(use_cases: list[str], params: Params, out: Path) -> dict[str, Any]:
    """Export the registry of ``use_cases`` into the folder ``out``; returns versions per use case."""
    from aeflow.tracking import describe_error, registered_model_name, store_problem
    from aeflow.tracking.promotion import history

    problem = store_problem(params.tracking, timeout_s=10)
    counts: dict[str, Any] = {}
    for uc in use_cases:
        gate = params.use_case(uc).promotion  # an unknown name fails listing what exists
        name = registered_model_name(params.tracking, uc)
        export: dict[str, Any] = {
            "registered_model": name,
            "gate": gate.model_dump(),  # the rule the report states beside the decisions
            "versions": [],
            "error": problem,
        }
        try:
            if problem is not None:
                raise ConnectionError(problem)
            export["versions"] = history(params.tracking, name)
        except Exception as exc:  # the report must not depend on the tracking server being up
            export["error"] = problem or describe_error(exc)
        write_json(out / f"{uc}.json", export)
        counts[uc] = export["error"] or len(export["versions"])
    return counts
