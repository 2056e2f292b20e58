"""DVC stage inject_noise: clean data → noisy inputs for (noisy, clean) denoising pairs."""

import sys
from pathlib import Path

from aeflow.params import load_params
from aeflow.stages import stage_main


def main(argv: list[str] | None = None) -> int:
    def build(p):  # noqa: ANN001, ANN202
        p.add_argument("--data", type=Path, required=True, help="ingested (clean) folder")
        p.add_argument("--out", type=Path, required=True, help="folder for the noisy arrays")

    def run(a):  # noqa: ANN001, ANN202
        from aeflow.stages.noise import run

        info = run(a.use_case, load_params(a.params), a.data, a.out)
        print(f"noise injected: {info}")

    return stage_main("inject_noise", build, run, argv)


if __name__ == "__main__":
    sys.exit(main())
