"""DVC stage validate: great-expectations suite on the ingested data → JSON report (or stop)."""

import sys
from pathlib import Path

from aeflow.params import load_params
from aeflow.stages import stage_main


def main(argv: list[str] | None = None) -> int:
    def build(p):  # noqa: ANN001, ANN202
        p.add_argument("--data", type=Path, required=True, help="ingested folder")
        p.add_argument("--report", type=Path, required=True, help="JSON validation report to write")

    def run(a):  # noqa: ANN001, ANN202
        from aeflow.stages.validate import run

        result = run(a.use_case, load_params(a.params), a.data, a.report)
        print(f"{len(result['results'])} expectations passed on {result['rows']}")

    return stage_main("validate", build, run, argv)


if __name__ == "__main__":
    sys.exit(main())
