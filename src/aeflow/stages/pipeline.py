"""The stages of one use case in a row, outside DVC: what ``dvc repro evaluate@<use case>`` runs, for scripts
that vary params (benchmarks) and must not wire the stages by hand."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any


def run_use_case(params: Any, use_case: str, root: Path, until: str = "evaluate") -> dict[str, Any]:
    """ingest → validate → inject_noise → (featurize) → train → evaluate for one use case, in ``root`` with
    the paths of :mod:`aeflow.layout`: what ``dvc repro evaluate@<use case>`` runs, for scripts that vary
    params (benchmarks). Returns each stage's result by stage name."""
    from aeflow import usecases
    from aeflow.layout import Layout
    from aeflow.stages import evaluate, features, ingest, noise, train, validate

    layout, uc = Layout(use_case, root), usecases.get(use_case)
    inputs = layout.features if uc.has_features else layout.noisy
    steps = [
        ("ingest", lambda: ingest.run(use_case, params, layout.raw)),
        ("validate", lambda: validate.run(use_case, params, layout.raw, layout.validation)),
        ("inject_noise", lambda: noise.run(use_case, params, layout.raw, layout.noisy)),
        ("featurize", lambda: features.run(use_case, params, layout.raw, layout.noisy, layout.features)),
        (
            "train",
            lambda: train.run(
                use_case, params, layout.raw, layout.validation, layout.models, layout.plots, inputs
            ),
        ),
        (
            "evaluate",
            lambda: evaluate.run(
                use_case,
                params,
                layout.raw,
                layout.noisy,
                layout.models,
                layout.evaluation_results,
                layout.metrics,
                layout.evaluation_plots,
            ),
        ),
    ]
    done: dict[str, Any] = {}
    for name, step in steps:
        if name == "featurize" and not uc.has_features:
            continue
        start = time.perf_counter()
        done[name] = step()
        done[f"{name}_seconds"] = time.perf_counter() - start
        if name == until:
            break
    return done
