"""DVC stage make_spectrograms: noisy/clean speech → normalised log-spectrogram features."""

import sys
from pathlib import Path

from aeflow.config import load_params
from aeflow.stages import stage_main


def main(argv: list[str] | None = None) -> int:
    def build(p):  # noqa: ANN001, ANN202
        p.add_argument("--data", type=Path, required=True, help="ingested clean speech")
        p.add_argument("--noisy", type=Path, required=True, help="mixtures written by inject_noise")
        p.add_argument("--out", type=Path, required=True, help="folder for features and stats.json")

    def run(a):  # noqa: ANN001, ANN202
        if a.use_case != "speech":
            raise SystemExit("make_spectrograms is for the speech use case only")
        from aeflow.stages.speech import make_spectrograms

        info = make_spectrograms(load_params(a.params), a.data, a.noisy, a.out)
        print(f"features: {info['bins']} bins, frames {info['frames']}")

    return stage_main("make_spectrograms", build, run, argv)


if __name__ == "__main__":
    sys.exit(main())
