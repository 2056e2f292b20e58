"""Stage implementations: read inputs, call pure library functions, write outputs atomically.

``pipelines/<stage>.py`` are the thin DVC entry points (argv → params → one call here). Each generic stage
asks the use case (:mod:`aeflow.usecases`) for what differs, so ``dvc.yaml`` declares it once with
``foreach``. :func:`aeflow.stages.pipeline.run_use_case` runs the same chain outside DVC (benchmarks).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable, Sequence

from aeflow.errors import AeflowError


def stage_main(
    name: str,
    build: Callable[[argparse.ArgumentParser], None],
    run: Callable[[argparse.Namespace], None],
    argv: Sequence[str] | None = None,
    every_use_case: bool = False,
) -> int:
    """Parse argv, run the stage, and turn user errors into a clear message and exit code 2.

    A stage of one use case needs ``--use-case``; one over ``every_use_case`` (the report, the registry
    export) takes a comma-separated list and defaults to every registered use case."""
    from aeflow import usecases

    parser = argparse.ArgumentParser(prog=f"pipelines/{name}.py", description=f"aeflow stage: {name}")
    if every_use_case:
        parser.add_argument(
            "--use-case", default=",".join(usecases.NAMES), help="comma-separated (default: every one)"
        )
    else:
        parser.add_argument("--use-case", required=True, help=", ".join(usecases.NAMES))
    parser.add_argument("--params", default="params.yaml", help="params file (default: params.yaml)")
    build(parser)
    args = parser.parse_args(argv)
    start = time.perf_counter()
    try:
        run(args)
    except AeflowError as exc:
        print(
            f"\n[aeflow:{name}] FAILED for use case '{args.use_case}':\n{exc}\n"
            f"Earlier outputs were left untouched.{_experiment_hint(exc, args.params)}",
            file=sys.stderr,
        )
        return 2
    print(f"[aeflow:{name}] {args.use_case}: done in {time.perf_counter() - start:.1f} s", file=sys.stderr)
    return 0


def _experiment_hint(exc: AeflowError, params: str) -> str:
    """Under ``dvc exp run`` (DVC sets ``DVC_EXP_BASELINE_REV``) a rejected ``-S`` value was written into
    the params file before the stage ran, and DVC leaves it there when the run fails: say so, and how to
    put the file back, so the next ``dvc repro`` does not fail the same way."""
    from aeflow.errors import ParamsError

    baseline = os.environ.get("DVC_EXP_BASELINE_REV")
    if not baseline or not isinstance(exc, ParamsError):
        return ""
    return (
        f"\nThis ran under `dvc exp run`: a value set with -S was written into {params} and is still there "
        f"now that the run failed. Undo it with `git checkout -- {params}` (back to the committed baseline "
        f"{baseline[:7]}), or run again with a valid `-S` value."
    )
