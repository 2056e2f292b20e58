"""DVC stage export_registry: the MLflow model registry's versions, aliases and gate records → registry/."""

import sys
from pathlib import Path

from aeflow.params import load_params
from aeflow.stages import stage_main


def main(argv: list[str] | None = None) -> int:
    def build(p):  # noqa: ANN001, ANN202
        p.add_argument("--out", type=Path, required=True, help="folder for one JSON file per use case")

    def run(a):  # noqa: ANN001, ANN202
        from aeflow.stages.registry import run

        counts = run(a.use_case.split(","), load_params(a.params), a.out)
        print(f"registered versions: {counts}")

    return stage_main("export_registry", build, run, argv, every_use_case=True)


if __name__ == "__main__":
    sys.exit(main())
