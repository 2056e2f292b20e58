"""Benchmark: concurrent writers against the MLflow server on PostgreSQL, and every value counted back.

``--writers`` processes (default 8) each open one run on the server and log, the way a training does:
``--params`` params, ``--values`` metric values in ``log_batch`` calls of ``--batch`` (Lightning's
``MLFlowLogger`` logs this way), one text artifact, then end the run. Afterwards every run is read back:
each metric value (step and value), each param and the artifact's bytes must be there exactly once.

Prints the sustained rate: metric values per second from the first writer's first call to the last writer's
last (writers start together behind a barrier, after their imports). Target (issue 19): ≥ 500 logged metric
values/s from 8 writers with none lost.

Without ``--server`` the script starts its own stack the way ``aeflow server`` does (a throw-away
PostgreSQL cluster, ``mlflow server`` with 2 workers, artifacts in a temporary folder) and stops it after.
The test suite runs :func:`load` against its own server with small numbers and checks the counts.

    python benchmarks/tracking_load.py [--writers 8] [--values 2000] [--batch 100] [--server URL] [--json f]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

EXPERIMENT = "aeflow-load"


def _writer(
    base: str, experiment_id: str, index: int, values: int, batch: int, params: int, start: Any, out: Any
) -> None:
    """One writer process: a run with ``params`` params, ``values`` metric values, one artifact."""
    from mlflow.entities import Metric, Param
    from mlflow.tracking import MlflowClient

    c = MlflowClient(tracking_uri=base)
    start.wait()
    began = time.time()
    run = c.create_run(experiment_id, run_name=f"writer-{index}")
    rid = run.info.run_id
    c.log_batch(rid, params=[Param(f"p{j}", str(index * 1000 + j)) for j in range(params)])
    now = int(time.time() * 1000)
    for lo in range(0, values, batch):
        metrics = [
            Metric("load/value", expected_value(index, s), now, s) for s in range(lo, min(values, lo + batch))
        ]
        c.log_batch(rid, metrics=metrics)
    with tempfile.TemporaryDirectory() as tmp:
        note = Path(tmp) / "writer.txt"
        note.write_text(f"writer {index}\n")
        c.log_artifact(rid, str(note))
    c.set_terminated(rid)
    out.put({"index": index, "run_id": rid, "began": began, "ended": time.time()})


def expected_value(index: int, step: int) -> float:
    """The value writer ``index`` logs at ``step``: unique across writers, so a crossed wire shows."""
    return float(index * 1_000_000 + step)


def count_back(base: str, runs: dict[int, str], values: int, params: int) -> dict[str, int]:
    """Read every run back: values and params missing or duplicated, artifacts wrong."""
    import os

    from mlflow.tracking import MlflowClient

    os.environ["MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"] = "false"
    c = MlflowClient(tracking_uri=base)
    lost = duplicated = wrong = params_missing = artifacts_bad = 0
    for index, rid in runs.items():
        history = c.get_metric_history(rid, "load/value")
        seen: dict[int, int] = {}
        for m in history:
            seen[m.step] = seen.get(m.step, 0) + 1
            if m.value != expected_value(index, m.step):
                wrong += 1
        lost += sum(1 for s in range(values) if s not in seen)
        duplicated += sum(n - 1 for n in seen.values())
        got = c.get_run(rid).data.params
        params_missing += sum(1 for j in range(params) if got.get(f"p{j}") != str(index * 1000 + j))
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(c.download_artifacts(rid, "writer.txt", tmp))
            artifacts_bad += int(path.read_text() != f"writer {index}\n")
    return {
        "lost": lost,
        "duplicated": duplicated,
        "wrong_value": wrong,
        "params_missing": params_missing,
        "artifacts_bad": artifacts_bad,
    }


def load(
    base: str, writers: int = 8, values: int = 2000, batch: int = 100, params: int = 20
) -> dict[str, Any]:
    """Run ``writers`` concurrent writers against ``base`` and count everything back."""
    from mlflow.tracking import MlflowClient

    c = MlflowClient(tracking_uri=base)
    found = c.get_experiment_by_name(EXPERIMENT)
    experiment_id = found.experiment_id if found else c.create_experiment(EXPERIMENT)
    ctx = mp.get_context("spawn")  # a fresh interpreter each: no client state shared by fork
    start = ctx.Barrier(writers)
    out = ctx.Queue()
    procs = [
        ctx.Process(target=_writer, args=(base, experiment_id, i, values, batch, params, start, out))
        for i in range(writers)
    ]
    for p in procs:
        p.start()
    results = [out.get(timeout=600) for _ in procs]
    for p in procs:
        p.join(timeout=60)
    failed = [p.exitcode for p in procs if p.exitcode != 0]
    if failed:
        raise RuntimeError(f"{len(failed)} writer(s) failed (exit codes {failed}); see their output above")
    seconds = max(r["ended"] for r in results) - min(r["began"] for r in results)
    runs = {r["index"]: r["run_id"] for r in results}
    counts = count_back(base, runs, values, params)
    total = writers * values
    return {
        "writers": writers,
        "values_per_writer": values,
        "batch": batch,
        "values": total,
        "seconds": round(seconds, 2),
        "values_per_second": round(total / seconds, 1),
        "runs": runs,
        **counts,
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--writers", type=int, default=8)
    ap.add_argument("--values", type=int, default=2000, help="metric values per writer")
    ap.add_argument("--batch", type=int, default=100, help="values per log_batch call")
    ap.add_argument("--params", type=int, default=20, help="params per writer")
    ap.add_argument("--server", help="an MLflow server URL (default: start a PostgreSQL-backed one)")
    ap.add_argument("--workers", type=int, default=2, help="server workers, when the script starts it")
    ap.add_argument("--json", type=Path, help="write the result here")
    args = ap.parse_args()

    def measure(base: str) -> dict[str, Any]:
        return load(base, args.writers, args.values, args.batch, args.params)

    if args.server:
        result = measure(args.server)
        result["server"] = args.server
    else:
        from aeflow.tracking.server import LocalPostgres, free_port, tracking_server

        with tempfile.TemporaryDirectory() as tmp:
            root = Path(tmp)
            began = time.perf_counter()
            with (
                LocalPostgres(root / "pg", port=free_port()).running() as pg,
                tracking_server(
                    pg.url, root / "artifacts", root / "server.log", workers=args.workers
                ) as base,
            ):
                print(f"stack up in {time.perf_counter() - began:.1f} s: {base} on PostgreSQL", flush=True)
                result = measure(base)
            result["server"] = f"mlflow server --workers {args.workers} on a local PostgreSQL"
    print(
        f"{result['writers']} writers × {result['values_per_writer']} values "
        f"(log_batch of {result['batch']}): "
        f"{result['values']:,} values in {result['seconds']} s = {result['values_per_second']:,.0f} values/s "
        f"(target ≥ 500: {'met' if result['values_per_second'] >= 500 else 'NOT met'})"
    )
    print(
        f"counted back: lost {result['lost']}, duplicated {result['duplicated']}, "
        f"wrong {result['wrong_value']}, params missing {result['params_missing']}, "
        f"artifacts wrong {result['artifacts_bad']}"
    )
    if args.json:
        args.json.write_text(json.dumps(result, indent=1))
    bad = result["lost"] + result["duplicated"] + result["wrong_value"] + result["params_missing"]
    return 1 if bad + result["artifacts_bad"] else 0


if __name__ == "__main__":
    sys.exit(main())
