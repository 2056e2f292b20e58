"""DVC stage sweep_latent: AE against PCA at several latent sizes."""

import sys
from pathlib import Path

from aeflow.params import load_params
from aeflow.stages import stage_main


def main(argv: list[str] | None = None) -> int:
    def build(p):  # noqa: ANN001, ANN202
        p.add_argument("--data", type=Path, required=True, help="ingested folder")
        p.add_argument("--validation", type=Path, required=True, help="validation report (must have passed)")
        p.add_argument("--results", type=Path, required=True, help="JSON file for the sweep's numbers")
        p.add_argument("--plots", type=Path, required=True, help="folder for sweep.csv and sweep/")

    def run(a):  # noqa: ANN001, ANN202
        from aeflow.stages.sweep import run

        summary = run(a.use_case, load_params(a.params), a.data, a.validation, a.results, a.plots)
        print(f"sweep: {summary['by_k']}")

    return stage_main("sweep_latent", build, run, argv)


if __name__ == "__main__":
    sys.exit(main())
