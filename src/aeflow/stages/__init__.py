"""Stage implementations: read inputs, call pure library functions, write outputs atomically.

``pipelines/<stage>.py`` are the thin DVC entry points (argv → params → one call here). Each generic stage
asks the use case (:mod:`aeflow.usecases`) for what differs, so ``dvc.yaml`` declares it once with
``foreach``. :func:`run_use_case` runs the same chain outside DVC (benchmarks, with params overrides).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from aeflow.errors import AeflowError


def stage_main(
    name: str,
    build: Callable[[argparse.ArgumentParser], None],
    run: Callable[[argparse.Namespace], None],
    argv: Sequence[str] | None = None,
) -> int:
    """Parse argv, run the stage, and turn user errors into a clear message and exit code 2."""
    parser = argparse.ArgumentParser(prog=f"pipelines/{name}.py", description=f"aeflow stage: {name}")
    parser.add_argument("--use-case", required=True, help="mnist")
    parser.add_argument("--params", default="params.yaml", help="params file (default: params.yaml)")
    build(parser)
    args = parser.parse_args(argv)
    start = time.perf_counter()
    try:
        run(args)
    except AeflowError as exc:
        print(
            f"\n[aeflow:{name}] FAILED for use case '{args.use_case}':\n{exc}\n"
            "Earlier outputs were left untouched.",
            file=sys.stderr,
        )
        return 2
    print(f"[aeflow:{name}] {args.use_case}: done in {time.perf_counter() - start:.1f} s", file=sys.stderr)
    return 0


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
