"""DVC stage evaluate: test metrics beside the baselines → results/<uc>/evaluation/ (every number),
metrics/<uc>.json (the headline) and the MLflow run."""

import sys
from pathlib import Path

from aeflow.params import load_params
from aeflow.stages import stage_main


def main(argv: list[str] | None = None) -> int:
    def build(p):  # noqa: ANN001, ANN202
        p.add_argument("--data", type=Path, required=True, help="ingested folder")
        p.add_argument("--models", type=Path, required=True, help="folder written by train")
        p.add_argument("--results", type=Path, required=True, help="JSON file for every number measured")
        p.add_argument("--metrics", type=Path, required=True, help="JSON file for the headline numbers")
        p.add_argument("--plots", type=Path, required=True, help="folder for evaluation figures")
        p.add_argument("--noisy", type=Path, required=True, help="corrupted data written by inject_noise")

    def run(a):  # noqa: ANN001, ANN202
        from aeflow.stages.evaluate import run

        report = run(
            a.use_case, load_params(a.params), a.data, a.noisy, a.models, a.results, a.metrics, a.plots
        )
        print(f"test: {report.get('test') or report.get('summary')}")

    return stage_main("evaluate", build, run, argv)


if __name__ == "__main__":
    sys.exit(main())
