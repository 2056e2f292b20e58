"""DVC stage featurize: clean + corrupted data → the model inputs of use cases that need them
(speech: normalised log-spectrogram features)."""

import sys
from pathlib import Path

from aeflow.params import load_params
from aeflow.stages import stage_main


def main(argv: list[str] | None = None) -> int:
    def build(p):  # noqa: ANN001, ANN202
        p.add_argument("--data", type=Path, required=True, help="ingested clean data")
        p.add_argument("--noisy", type=Path, required=True, help="corrupted data written by inject_noise")
        p.add_argument("--out", type=Path, required=True, help="folder for the features")

    def run(a):  # noqa: ANN001, ANN202
        from aeflow.stages.features import run

        info = run(a.use_case, load_params(a.params), a.data, a.noisy, a.out)
        print(f"features: {info}")

    return stage_main("featurize", build, run, argv)


if __name__ == "__main__":
    sys.exit(main())
