"""DVC stage ingest: source data → <out>/{train,val,test}.npz."""

import sys
from pathlib import Path

from aeflow.params import load_params
from aeflow.stages import stage_main


def main(argv: list[str] | None = None) -> int:
    def build(p):  # noqa: ANN001, ANN202
        p.add_argument("--out", type=Path, required=True, help="folder for the split files")

    def run(a):  # noqa: ANN001, ANN202
        from aeflow.stages.ingest import run

        info = run(a.use_case, load_params(a.params), a.out)
        counts = info.get("counts") or {k: v["clips"] for k, v in info.get("splits", {}).items()}
        print(f"ingested {counts} from {info.get('origin')}")

    return stage_main("ingest", build, run, argv)


if __name__ == "__main__":
    sys.exit(main())
