"""Benchmark: ``aeflow score`` on Spark against the pandas path, rows per second on one table.

A tabular detector (the use case's MLP, briefly trained on a ``--columns``-column table of correlated
columns; speed does not depend on how well it learned) saved as the pyfunc ``aeflow score`` loads, and
``--rows`` rows of the same kind in Parquet files. Then the same input is scored by the pandas engine and by
Spark in local mode on 1 and on 2 cores (``local[1]``, ``local[2]``), each as a user runs it: the
``aeflow score`` command in a new process, timed from start to exit (imports, model load, Spark's JVM and
Python workers, reading, scoring, writing Parquet). Rows/s of each, and Spark's as a ratio of pandas'
measured in the same run; beside it, the time each command reports for its own work after start-up
(pandas: after loading the model; Spark: after its session is up).

Spark runs start from the class archive the first one makes (``aeflow.spark``; that first run is shown on its
own, making the archive included), and once more without it ("no archive", as before the archive).

Target (issue 19): Spark local on 2 cores ≥ 0.5 × the pandas path's rows/s on 1M rows; and how rows/s grows
from 1 to 2 cores: each engine once more with the whole command held to one core (``taskset -c 0``; Spark
``local[1]``), and Spark with one task slot on both cores (``local[1]``: its JVM and one Python worker
already run side by side). Both engines' scores are compared too (largest difference printed).

    python benchmarks/spark_scoring.py [--rows 1000000] [--columns 30] [--files 4] [--repeats 1]
        [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]


def make_inputs(root: Path, rows: int, columns: int, files: int, seed: int) -> tuple[Path, Path]:
    import yaml

    from aeflow.params import parse_params
    from aeflow.training.service import fit_model
    from aeflow.usecases.tabular.encoding import Encoder
    from aeflow.usecases.tabular.serving import save_pyfunc

    params = parse_params(yaml.safe_load((ROOT / "params.yaml").read_text()), ROOT / "params.yaml")
    rng = np.random.default_rng(seed)
    mixing = rng.normal(size=(8, columns))
    names = [f"c{i:02d}" for i in range(columns)]
    train = pd.DataFrame(rng.normal(size=(5000, 8)) @ mixing, columns=names)
    encoder = Encoder.fit(train, names, [], "standard", 20)
    x = encoder.transform(train)
    settings = params.tabular.train.model_copy(update={"epochs": 2})
    model, _ = fit_model(
        params, "tabular", params.tabular.model, settings, (x[:4000], None, x[4000:], None), "identity"
    )
    model.data_config = {"use_case": "tabular", "encoder": encoder.to_json(), "threshold": 1.0}
    pyfunc = save_pyfunc(model, root / "model")
    data = root / "rows"
    data.mkdir()
    per_file = rows // files
    for i in range(files):
        part = pd.DataFrame(rng.normal(size=(per_file, 8)) @ mixing, columns=names)
        part.insert(0, "id", np.arange(i * per_file, (i + 1) * per_file))
        part.to_parquet(data / f"part-{i}.parquet", index=False)
    return pyfunc, data


def timed(
    model: Path,
    data: Path,
    out: Path,
    engine: str,
    master: str = "local[*]",
    archive: str = "off",
    cores: str | None = None,
) -> dict[str, Any]:
    """``aeflow score`` in a new process, as a user runs it; wall time from start to exit. ``archive``:
    Spark's class archive (a path, made by the run if missing; or ``off``). ``cores``: the CPUs the command
    and everything it starts (JVM, Python workers) may run on (``taskset -c``), e.g. ``"0"`` for one."""
    command = [
        str(Path(sys.executable).with_name("aeflow")), "score", "--model", str(model), "--input", str(data),
        "--output", str(out), "--engine", engine, "--master", master,
    ]  # fmt: skip
    if cores is not None:
        command = ["taskset", "-c", cores, *command]
    began = time.perf_counter()
    env = {**os.environ, "AEFLOW_SPARK_CLASS_ARCHIVE": archive}
    done = subprocess.run(command, capture_output=True, text=True, check=False, env=env)
    took = time.perf_counter() - began
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    after_start = result["seconds"] - result.get("session_seconds", 0.0)
    return {
        "rows": result["rows"],
        "seconds": round(took, 2),
        "rows_per_second": result["rows"] / took,
        "work_seconds": round(after_start, 2),
        "rows_per_second_of_work": result["rows"] / after_start,
    }


def best_of(repeats: int, run: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """The fastest of ``repeats`` runs (the machine's noise only ever adds time)."""
    return min((run() for _ in range(repeats)), key=lambda r: r["seconds"])


def spark_copy_seconds(data: Path) -> float:
    """Spark's own floor: read the input Parquet and write it back, no Python, no model (session up)."""
    from aeflow.spark import spark_session

    spark = spark_session("local[2]")
    spark.sparkContext.setLogLevel("ERROR")
    try:
        with tempfile.TemporaryDirectory() as tmp:
            began = time.perf_counter()
            spark.read.parquet(str(data)).write.parquet(str(Path(tmp) / "copy"))
            return time.perf_counter() - began
    finally:
        spark.stop()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--columns", type=int, default=30)
    ap.add_argument("--files", type=int, default=4)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--repeats", type=int, default=1, help="runs per engine; the fastest counts")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        model, data = make_inputs(root, args.rows, args.columns, args.files, args.seed)
        n, archive = args.repeats, str(root / "spark-classes.jsa")
        runs = {
            "pandas": best_of(n, lambda: timed(model, data, root / "pandas.parquet", "pandas")),
            # the first Spark run on a machine archives Spark's classes (aeflow.spark): timed on its own
            "spark first run": timed(model, data, root / "spark0", "spark", "local[2]", archive),
            "spark local[1]": best_of(
                n, lambda: timed(model, data, root / "spark1", "spark", "local[1]", archive)
            ),
            "spark local[2]": best_of(
                n, lambda: timed(model, data, root / "spark2", "spark", "local[2]", archive)
            ),
            "no archive [2]": best_of(n, lambda: timed(model, data, root / "spark3", "spark", "local[2]")),
            # the machine cut to one core (the JVM and the Python workers share it), against both cores
            "pandas 1 core": best_of(
                n, lambda: timed(model, data, root / "pandas1.parquet", "pandas", cores="0")
            ),
            "spark 1 core": best_of(
                n, lambda: timed(model, data, root / "spark4", "spark", "local[1]", archive, cores="0")
            ),
        }
        a = pd.read_parquet(root / "pandas.parquet").sort_values("id")
        b = pd.read_parquet(root / "spark2").sort_values("id")
        max_diff = float(np.abs(a["score"].to_numpy() - b["score"].to_numpy()).max())
        same_flags = bool((a["flag"].to_numpy() == b["flag"].to_numpy()).all())
        os.environ["AEFLOW_SPARK_CLASS_ARCHIVE"] = archive  # made by the first run: not the user's cache
        copy = spark_copy_seconds(data)
    base = runs["pandas"]["rows_per_second"]
    work = runs["pandas"]["rows_per_second_of_work"]
    print(
        f"{args.rows:,} rows × {args.columns} columns in {args.files} Parquet files; each engine as the "
        f"`aeflow score` command, start to exit (best of {args.repeats})"
    )
    for name, r in runs.items():
        print(
            f"  {name:15s} {r['seconds']:8.1f} s  {r['rows_per_second']:>10,.0f} rows/s  "
            f"× {r['rows_per_second'] / base:.2f} of pandas   (its work after start-up: "
            f"{r['work_seconds']:.1f} s, {r['rows_per_second_of_work']:,.0f} rows/s, "
            f"× {r['rows_per_second_of_work'] / work:.2f})"
        )
    one, two = runs["spark local[1]"]["rows_per_second"], runs["spark local[2]"]["rows_per_second"]
    ratio = two / base
    alone = runs["spark 1 core"]["rows_per_second"]
    print(
        f"Spark on 1 core → 2 cores: × {two / alone:.2f} rows/s (pandas × "
        f"{base / runs['pandas 1 core']['rows_per_second']:.2f}); on both cores, 1 → 2 task slots "
        f"(local[1] → local[2]): × {two / one:.2f}"
    )
    print(f"Target: Spark local[2] ≥ 0.5 × pandas: × {ratio:.2f} ({'met' if ratio >= 0.5 else 'NOT met'})")
    print(
        f"For scale: Spark local[2] reading and writing the same Parquet rows with no model at all takes "
        f"{copy:.1f} s ({args.rows / copy:,.0f} rows/s)"
    )
    print(f"Same answers: largest score difference {max_diff:.3g}, flags identical: {same_flags}")
    if args.json:
        found = {
            "runs": runs,
            "max_score_diff": max_diff,
            "same_flags": same_flags,
            "spark_copy_seconds": copy,
        }
        args.json.write_text(json.dumps(found, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
