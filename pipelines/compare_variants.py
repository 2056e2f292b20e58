"""DVC stage compare_variants: every autoencoder variant on the same data, side by side."""

import sys
from pathlib import Path

from aeflow.params import load_params
from aeflow.stages import stage_main


def main(argv: list[str] | None = None) -> int:
    def build(p):  # noqa: ANN001, ANN202
        p.add_argument("--data", type=Path, required=True, help="ingested (clean) folder")
        p.add_argument("--noisy", type=Path, required=True, help="noisy inputs from inject_noise")
        p.add_argument("--validation", type=Path, required=True, help="validation report (must have passed)")
        p.add_argument("--results", type=Path, required=True, help="folder for one results JSON per variant")
        p.add_argument("--metrics", type=Path, required=True, help="JSON file for the headline numbers")
        p.add_argument("--models", type=Path, required=True, help="folder for the variants' model files")
        p.add_argument("--plots", type=Path, required=True, help="folder for the comparison figures")

    def run(a):  # noqa: ANN001, ANN202
        from aeflow.usecases.mnist.variants import run

        out = run(
            a.use_case,
            load_params(a.params),
            a.data,
            a.noisy,
            a.validation,
            a.results,
            a.metrics,
            a.models,
            a.plots,
        )
        for name, res in out["results"].items():
            print(f"{name:12s} test MSE {res['test']['mse']:.5f}  codes {res['codes']}")
        print(f"denoising: {out['denoising']}")

    return stage_main("compare_variants", build, run, argv)


if __name__ == "__main__":
    sys.exit(main())
