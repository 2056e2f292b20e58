"""DVC stage report: reports/index.html for every use case given."""

import sys
from pathlib import Path

from aeflow.params import load_params
from aeflow.stages import stage_main


def main(argv: list[str] | None = None) -> int:
    def build(p):  # noqa: ANN001, ANN202
        for name in ("results", "plots", "models", "validation", "registry"):
            p.add_argument(f"--{name}", type=Path, required=True, help=f"folder of per-use-case {name}")
        p.add_argument("--out", type=Path, required=True, help="HTML file to write")

    def run(a):  # noqa: ANN001, ANN202
        from aeflow.stages.report import ReportInputs, run

        inputs = ReportInputs(a.results, a.plots, a.models, a.validation, a.registry)
        run(a.use_case.split(","), load_params(a.params), inputs, a.out)
        print(f"wrote {a.out}")

    return stage_main("report", build, run, argv, every_use_case=True)


if __name__ == "__main__":
    sys.exit(main())
