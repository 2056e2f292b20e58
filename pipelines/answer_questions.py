"""DVC stage answer_questions: the seed's questions (PCA?, latent size, blur, downstream, 2-D/3-D)."""

import sys
from pathlib import Path

from aeflow.params import load_params
from aeflow.stages import stage_main


def main(argv: list[str] | None = None) -> int:
    def build(p):  # noqa: ANN001, ANN202
        p.add_argument("--data", type=Path, required=True, help="ingested folder")
        p.add_argument("--models", type=Path, required=True, help="trained model folder (model.pt, run.json)")
        p.add_argument("--sweep", type=Path, required=True, help="the latent sweep's results JSON")
        p.add_argument("--loss", type=Path, required=True, help="loss.csv of the training run")
        p.add_argument("--results", type=Path, required=True, help="JSON file for the answers")
        p.add_argument("--plots", type=Path, required=True, help="folder for questions/")

    def run(a):  # noqa: ANN001, ANN202
        from aeflow.usecases.mnist.answer_questions import run

        out = run(a.use_case, load_params(a.params), a.data, a.models, a.sweep, a.loss, a.results, a.plots)
        print(f"questions: {out['blurry']['summary']} knee k={out['knee_k']}")

    return stage_main("answer_questions", build, run, argv)


if __name__ == "__main__":
    sys.exit(main())
