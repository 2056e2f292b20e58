"""Stage implementations: read inputs, call pure library functions, write outputs atomically.

``pipelines/<stage>.py`` are the thin DVC entry points (argv → params → one call here). Each stage
dispatches on the use case so that ``dvc.yaml`` can declare it once with ``foreach``.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable, Sequence

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
