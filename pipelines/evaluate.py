"""DVC stage evaluate: test metrics beside the baselines → metrics/<use_case>.json and the MLflow run."""

import sys
from pathlib import Path

from aeflow.params import load_params
from aeflow.stages import stage_main


def main(argv: list[str] | None = None) -> int:
    def build(p):  # noqa: ANN001, ANN202
        p.add_argument("--data", type=Path, required=True, help="ingested folder")
        p.add_argument("--models", type=Path, required=True, help="folder written by train")
        p.add_argument("--metrics", type=Path, required=True, help="metrics JSON to write")
        p.add_argument("--plots", type=Path, required=True, help="folder for evaluation figures")
        p.add_argument("--noisy", type=Path, required=True, help="corrupted data written by inject_noise")

    def run(a):  # noqa: ANN001, ANN202
        from aeflow.stages.evaluate import run

        report = run(a.use_case, load_params(a.params), a.data, a.noisy, a.models, a.metrics, a.plots)
        print(f"test: {report.get('test') or report.get('summary')}")

    return stage_main("evaluate", build, run, argv)


if __name__ == "__main__":
    sys.exit(main())
