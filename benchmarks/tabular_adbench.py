"""Benchmark: the tabular autoencoder against PyOD's Isolation Forest, ECOD and AutoEncoder and PCA on the
ADBench classical datasets, under both protocols; the attribution check; the pyfunc's scoring speed.

Reads the ``.npz`` files of ``../shared/datasets/adbench`` in place (X rows × features, y 0/1; see its
README) and runs, per dataset and protocol, the use case's own code: the seeded stratified 70/30 split
(:func:`aeflow.usecases.tabular.corrupt.split_rows`; ``semi_supervised`` fits every method on the normal
rows of the training split, ``unsupervised`` on the whole, contaminated, training split, ADBench's
protocol), the encoder fitted on the training rows, the autoencoder of each variant trained by the one
training service with ``params.yaml``'s ``tabular.model``/``tabular.train``, and the baselines of the
evaluate stage on the same encoded rows. Prints per-dataset ROC-AUC and PR-AUC (average precision), the
mean and the mean rank of every method (rank 1 = best ROC-AUC on a dataset) and the seconds per dataset.

Targets (semi-supervised): the autoencoder's mean ROC-AUC above Isolation Forest's and ECOD's, and the best
mean rank of all methods shown.

Attribution (``--attribution``, semi-supervised): in up to 200 normal test rows per dataset, one column is
replaced by another row's value far from its own (the dependency anomaly of the inject stage,
:func:`~aeflow.usecases.tabular.corrupt.break_dependency`); the share of rows whose corrupted column is
among the autoencoder's top 3 columns, pooled over the rows of every dataset with at least 2 columns: over
the rows the detector flags (target ≥ 80 %: the rows whose answer names columns to a user) and over all.

Throughput (``--throughput``): the registered-model pyfunc (``mlflow.pyfunc.load_model`` of a saved
:class:`~aeflow.usecases.tabular.serving.TabularModel`) scores a 30-column table of 200,000 rows; rows per
second (target ≥ 100,000 on 2 cores), best of 3.

Large files are subsampled to ``--max-rows`` rows (stratified, seeded; the table says which).

    python benchmarks/tabular_adbench.py [--datasets 6_cardio 38_thyroid] [--variants vanilla vae]
        [--protocols semi_supervised unsupervised] [--max-rows 10000] [--no-attribution] [--no-throughput]
        [--json out.json] [--set model.latent_dim=16 train.epochs=60]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
# Absolute: a relative AEFLOW_SHARED_DATASETS (e.g. ../shared/datasets) must survive the runs' chdir.
SHARED = Path(os.environ.get("AEFLOW_SHARED_DATASETS", ROOT.parent / "shared" / "datasets")).absolute()
BASELINES = ("isolation_forest", "ecod", "pyod_autoencoder", "pca")
#: A variant's own options for standardised real-valued columns (the VAE's default likelihood is for [0, 1]).
VARIANT_OPTIONS: dict[str, dict[str, Any]] = {"vae": {"likelihood": "gaussian"}}


def load(path: Path, max_rows: int, seed: int) -> tuple[np.ndarray, np.ndarray, str]:
    with np.load(path, allow_pickle=False) as z:
        x, y = np.asarray(z["X"], dtype=np.float64), np.asarray(z["y"]).astype(np.int8)
    note = ""
    if len(x) > max_rows:
        rng = np.random.default_rng(seed)
        keep = np.sort(
            np.concatenate(
                [
                    rng.choice(idx, size=max(2, round(len(idx) * max_rows / len(x))), replace=False)
                    for idx in (np.flatnonzero(y == 0), np.flatnonzero(y == 1))
                ]
            )
        )
        note = f"sample {len(keep):,} of {len(x):,}"
        x, y = x[keep], y[keep]
    return x, y, note


def run_dataset(
    params: Any, path: Path, protocol: str, variants: list[str], max_rows: int, attribution: bool
) -> dict[str, Any]:
    from aeflow.evaluation import anomaly
    from aeflow.models.configs import with_overrides
    from aeflow.training.service import fit_model
    from aeflow.usecases.tabular.corrupt import break_dependency, split_rows
    from aeflow.usecases.tabular.encoding import Encoder
    from aeflow.usecases.tabular.evaluate import baseline_scores
    from aeflow.usecases.tabular.scorer import TabularScorer
    from aeflow.usecases.tabular.train import model_for

    cfg = params.tabular
    began = time.perf_counter()
    x, y, note = load(path, max_rows, params.seed)
    columns = [f"x{i}" for i in range(x.shape[1])]
    frame = pd.DataFrame(x, columns=columns)
    parts = split_rows(y, cfg.split.test_fraction, cfg.split.val_fraction, protocol, params.seed)
    encoder = Encoder.fit(
        frame.iloc[parts["train"]], columns, [], cfg.encoding.scaler, cfg.encoding.max_categories
    )
    enc = {k: encoder.transform(frame.iloc[rows]) for k, rows in parts.items()}
    labels = y[parts["test"]].astype(bool)
    out: dict[str, Any] = {"rows": len(x), "columns": x.shape[1], "note": note, "methods": {}, "seconds": {}}
    first_scorer = None
    for variant in variants:
        t0 = time.perf_counter()
        model_cfg = model_for(
            with_overrides(cfg.model, variant, VARIANT_OPTIONS.get(variant, {})),
            encoder.width,
            cfg.encoding.latent_fraction,
        )
        model, _ = fit_model(
            params, "tabular", model_cfg, cfg.train, (enc["train"], None, enc["val"], None), "identity"
        )
        scorer = TabularScorer(
            model, {"use_case": "tabular", "encoder": encoder.to_json(), "threshold": None}
        )
        scores = scorer.scores_of(scorer.column_errors(enc["test"]))
        out["methods"][f"ae_{variant}"] = anomaly.ranking_metrics(labels, scores)
        out["seconds"][f"ae_{variant}"] = round(time.perf_counter() - t0, 2)
        first_scorer = first_scorer or scorer
    for name in BASELINES:
        t0 = time.perf_counter()
        (scores,) = baseline_scores(
            name,
            enc["train"],
            [enc["test"]],
            params.seed,
            cfg.evaluate.pyod_epochs,
            cfg.evaluate.pca_variance,
        )
        out["methods"][name] = anomaly.ranking_metrics(labels, scores)
        out["seconds"][name] = round(time.perf_counter() - t0, 2)
    if attribution and first_scorer is not None and x.shape[1] >= 2:
        rng = np.random.default_rng(params.seed)
        normal_test = parts["test"][y[parts["test"]] == 0]
        rows = rng.choice(normal_test, size=min(200, len(normal_test)), replace=False)
        reference = frame.iloc[parts["train"][y[parts["train"]] == 0]]
        corrupted, changed = break_dependency(frame.iloc[rows], reference, 1, rng)
        errors = first_scorer.column_errors(encoder.transform(corrupted))
        order, _ = first_scorer.top_columns(errors, 3)
        hits = np.array([changed[i][0] in {columns[j] for j in order[i]} for i in range(len(rows))])
        out["attribution_top3"] = float(np.mean(hits))
        out["attribution_rows"], out["attribution_hits"] = len(hits), int(hits.sum())
        # the rows the detector flags (above the 99th percentile of normal validation scores): the ones
        # whose answer names columns to a user
        val_scores = first_scorer.scores_of(first_scorer.column_errors(enc["val"]))
        flagged = first_scorer.scores_of(errors) > np.percentile(val_scores, 99)
        out["attribution_flagged"] = int(flagged.sum())
        out["attribution_flagged_hits"] = int(hits[flagged].sum())
        if flagged.any():
            out["attribution_top3_flagged"] = float(np.mean(hits[flagged]))
    out["total_seconds"] = round(time.perf_counter() - began, 2)
    return out


def ranks(rows: dict[str, dict[str, Any]], methods: list[str], key: str) -> dict[str, float]:
    """Mean rank of each method over datasets (1 = best ``key``; ties share the mean rank)."""
    from scipy.stats import rankdata

    per = []
    for r in rows.values():
        values = [r["methods"][m].get(key) for m in methods]
        if any(v is None for v in values):
            continue
        per.append(rankdata([-v for v in values]))
    return {m: float(np.mean([p[i] for p in per])) for i, m in enumerate(methods)} if per else {}


def print_protocol(protocol: str, rows: dict[str, dict[str, Any]], methods: list[str]) -> dict[str, Any]:
    short = {
        m: m.replace("isolation_forest", "IForest").replace("pyod_autoencoder", "PyOD-AE") for m in methods
    }
    print(f"\n## {protocol}: ROC-AUC / PR-AUC on the test split (30 %), seed {PARAMS.seed}\n")
    print("| dataset | rows | cols | " + " | ".join(short[m] for m in methods) + " | s |")
    print("|---|---:|---:|" + "---:|" * (len(methods) + 1))
    for name, r in rows.items():
        cells = [f"{r['methods'][m]['roc_auc']:.3f} / {r['methods'][m]['pr_auc']:.3f}" for m in methods]
        rows_text = f"{r['rows']:,}" + (f" ({r['note']})" if r["note"] else "")
        print(
            f"| {name} | {rows_text} | {r['columns']} | "
            + " | ".join(cells)
            + f" | {r['total_seconds']:.0f} |"
        )
    summary: dict[str, Any] = {}
    for key in ("roc_auc", "pr_auc"):
        means = {m: float(np.mean([r["methods"][m][key] for r in rows.values()])) for m in methods}
        rank = ranks(rows, methods, key)
        summary[key] = {"mean": means, "mean_rank": rank}
        print(f"| **mean {key}** | | | " + " | ".join(f"{means[m]:.4f}" for m in methods) + " | |")
        print(f"| **mean rank ({key})** | | | " + " | ".join(f"{rank[m]:.2f}" for m in methods) + " | |")
    secs = sum(r["total_seconds"] for r in rows.values())
    print(f"\n{len(rows)} datasets, {secs:.0f} s in all ({secs / max(len(rows), 1):.1f} s per dataset).")
    return summary


def throughput(params: Any, rows: int = 200_000, columns: int = 30) -> float:
    """Rows per second of the saved pyfunc on a ``columns``-column table (best of 3 runs)."""
    import mlflow.pyfunc

    from aeflow.training.service import fit_model
    from aeflow.usecases.tabular.encoding import Encoder
    from aeflow.usecases.tabular.serving import save_pyfunc

    rng = np.random.default_rng(params.seed)
    mixing = rng.normal(size=(8, columns))
    frame = pd.DataFrame(rng.normal(size=(rows, 8)) @ mixing, columns=[f"c{i:02d}" for i in range(columns)])
    names = list(frame.columns)
    encoder = Encoder.fit(frame.iloc[:5000], names, [], "standard", 20)
    x = encoder.transform(frame.iloc[:5000])
    train = params.tabular.train.model_copy(update={"epochs": 2})
    model, _ = fit_model(
        params, "tabular", params.tabular.model, train, (x[:4000], None, x[4000:], None), "identity"
    )
    model.data_config = {"use_case": "tabular", "encoder": encoder.to_json(), "threshold": 1.0}
    with tempfile.TemporaryDirectory() as tmp:
        pyfunc = save_pyfunc(model, Path(tmp))
        loaded = mlflow.pyfunc.load_model(str(pyfunc))
        best = float("inf")
        for _ in range(3):
            t0 = time.perf_counter()
            answer = loaded.predict(frame)
            best = min(best, time.perf_counter() - t0)
        assert len(answer) == rows
    return rows / best


def main() -> int:
    global PARAMS
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=SHARED / "adbench")
    ap.add_argument("--datasets", nargs="*", help="file stems, e.g. 6_cardio (default: every .npz)")
    ap.add_argument("--variants", nargs="*", default=["vanilla"])
    ap.add_argument("--protocols", nargs="*", default=["semi_supervised", "unsupervised"])
    ap.add_argument("--max-rows", type=int, default=10_000)
    ap.add_argument("--no-attribution", action="store_true")
    ap.add_argument("--no-throughput", action="store_true")
    ap.add_argument("--json", type=Path, help="also write every number here")
    ap.add_argument(
        "--set", nargs="*", default=[], metavar="KEY=VALUE", help="tabular.KEY=VALUE (YAML value)"
    )
    args = ap.parse_args()

    import yaml

    from aeflow.params import parse_params

    data = yaml.safe_load((ROOT / "params.yaml").read_text(encoding="utf-8"))
    for item in args.set:  # e.g. model.latent_dim=16 train.epochs=60
        key, _, value = item.partition("=")
        *parents, last = key.split(".")
        node = data["tabular"]
        for part in parents:
            node = node[part]
        node[last] = yaml.safe_load(value)
    PARAMS = parse_params(data, ROOT / "params.yaml")
    files = sorted(args.data.glob("*.npz"), key=lambda p: int(p.stem.split("_")[0]))
    if args.datasets:
        files = [f for f in files if f.stem in set(args.datasets)]
    if not files:
        print(
            f"no ADBench .npz files in {args.data} (see ../shared/datasets/adbench/README.md)",
            file=sys.stderr,
        )
        return 2
    methods = [f"ae_{v}" for v in args.variants] + list(BASELINES)
    report: dict[str, Any] = {"protocols": {}}
    for protocol in args.protocols:
        rows = {}
        for f in files:
            rows[f.stem] = run_dataset(
                PARAMS,
                f,
                protocol,
                args.variants,
                args.max_rows,
                protocol == "semi_supervised" and not args.no_attribution,
            )
            r = rows[f.stem]
            print(
                f"[{protocol}] {f.stem}: "
                + ", ".join(f"{m} {r['methods'][m]['roc_auc']:.3f}" for m in methods)
                + f" ({r['total_seconds']:.0f} s)",
                file=sys.stderr,
                flush=True,
            )
        summary = print_protocol(protocol, rows, methods)
        report["protocols"][protocol] = {"datasets": rows, "summary": summary}
        checked = [r for r in rows.values() if "attribution_rows" in r]
        if checked:
            n_rows = sum(r["attribution_rows"] for r in checked)
            n_hits = sum(r["attribution_hits"] for r in checked)
            n_flagged = sum(r["attribution_flagged"] for r in checked)
            n_flagged_hits = sum(r["attribution_flagged_hits"] for r in checked)
            per_set = [r["attribution_top3"] for r in checked]
            report["attribution_top3"] = n_hits / n_rows
            report["attribution_top3_flagged"] = n_flagged_hits / n_flagged if n_flagged else None
            print(
                "\nAttribution: the corrupted column is in the autoencoder's top 3 for "
                f"{n_flagged_hits / max(n_flagged, 1):.1%} of the {n_flagged:,} corrupted rows the detector "
                f"flags (target ≥ 80 %), and for {n_hits / n_rows:.1%} of all {n_rows:,} corrupted rows "
                f"(over {len(checked)} datasets; per dataset {min(per_set):.1%} to {max(per_set):.1%}: a "
                "value moved within what the other columns allow is no anomaly at all)."
            )
        if protocol == "semi_supervised":
            mean = summary["roc_auc"]["mean"]
            rank = summary["roc_auc"]["mean_rank"]
            ae = methods[0]
            print(
                f"\nTarget: {ae} mean ROC-AUC {mean[ae]:.4f} vs IForest {mean['isolation_forest']:.4f} "
                f"(ratio {mean[ae] / mean['isolation_forest']:.3f}) and ECOD {mean['ecod']:.4f} "
                f"(ratio {mean[ae] / mean['ecod']:.3f}); best mean rank: {min(rank, key=rank.get)}"
            )
    if not args.no_throughput:
        rate = throughput(PARAMS)
        report["pyfunc_rows_per_second"] = rate
        print(f"\nThroughput: the pyfunc scores {rate:,.0f} rows/s of a 30-column table (target ≥ 100,000).")
    if args.json:
        args.json.write_text(json.dumps(report, indent=1, default=float), encoding="utf-8")
    return 0


PARAMS: Any = None

if __name__ == "__main__":
    sys.exit(main())
