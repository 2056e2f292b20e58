"""DVC stage train: Lightning training, MLflow run, registered model version."""

import sys
from pathlib import Path

from aeflow.params import load_params
from aeflow.stages import stage_main


def main(argv: list[str] | None = None) -> int:
    def build(p):  # noqa: ANN001, ANN202
        p.add_argument("--data", type=Path, required=True, help="ingested folder")
        p.add_argument("--validation", type=Path, required=True, help="validation report (must have passed)")
        p.add_argument(
            "--models", type=Path, required=True, help="folder for model.pt, run.json, checkpoints"
        )
        p.add_argument("--plots", type=Path, required=True, help="folder for loss.csv and recon/")
        p.add_argument(
            "--inputs",
            type=Path,
            required=True,
            help="model inputs made by an earlier stage (inject_noise, or featurize where a use case has it)",
        )

    def run(a):  # noqa: ANN001, ANN202
        from aeflow.stages.train import run

        summary = run(a.use_case, load_params(a.params), a.data, a.validation, a.models, a.plots, a.inputs)
        print(f"trained {summary}")

    return stage_main("train", build, run, argv)


if __name__ == "__main__":
    sys.exit(main())
