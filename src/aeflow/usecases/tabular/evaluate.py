"""tabular evaluate: the autoencoder and the baselines on the same split and the same encoded columns,
ranked (ROC-AUC, PR-AUC, precision@n) and thresholded (F1 at each method's own threshold, set on the
validation rows by the same rule), recall per kind of anomaly, and which columns the autoencoder blames;
``results/tabular/evaluation/`` and ``plots/tabular/evaluation/``."""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from aeflow.errors import DataError
from aeflow.io import atomic_dir, read_json, write_json
from aeflow.layout import SCORES
from aeflow.usecases.tabular.report import ATTRIBUTION, METHOD_LABELS

if TYPE_CHECKING:
    from aeflow.config import Params


def precision_at_n(labels: np.ndarray, scores: np.ndarray) -> float | None:
    """Precision among the ``n`` highest scores, ``n`` = the number of true anomalies (R-precision)."""
    n = int(labels.sum())
    if n == 0:
        return None
    top = np.argsort(-scores, kind="stable")[:n]
    return float(labels[top].mean())


def pca_components(train: np.ndarray, variance: float) -> int:
    """How many principal components of the standardised ``train`` rows explain ``variance`` of it (at
    least 1, fewer than the columns, so that a residual is left to score)."""
    from sklearn.decomposition import PCA

    std = train.std(axis=0)
    z = (train - train.mean(axis=0)) / np.where(std > 1e-12, std, 1.0)
    k = int(PCA(n_components=variance, svd_solver="full").fit(z).n_components_)
    return max(1, min(k, train.shape[1] - 1))


def baseline_scores(
    name: str, train: np.ndarray, rows: list[np.ndarray], seed: int, epochs: int, pca_variance: float
) -> list[np.ndarray]:
    """A baseline fitted on ``train`` (encoded rows), scoring each array of ``rows`` (higher = more
    anomalous)."""
    from aeflow.evaluation import anomaly

    if name == "pca":
        k = pca_components(train, pca_variance)
        return [anomaly.pca_scores(train, r, k) for r in rows]
    import logging

    logging.getLogger("pyod").setLevel(logging.ERROR)
    if name == "isolation_forest":
        from pyod.models.iforest import IForest

        model = IForest(random_state=seed, n_jobs=1)
    elif name == "ecod":
        from pyod.models.ecod import ECOD

        model = ECOD()
    else:
        import torch
        from pyod.models.auto_encoder import AutoEncoder

        torch.manual_seed(seed)
        model = AutoEncoder(epoch_num=epochs, random_state=seed, verbose=0, device="cpu")
    model.fit(train)
    return [np.asarray(model.decision_function(r), dtype=np.float64) for r in rows]


def method_metrics(labels: np.ndarray, scores: np.ndarray, threshold: float) -> dict[str, Any]:
    from aeflow.evaluation import anomaly

    m: dict[str, Any] = dict(anomaly.ranking_metrics(labels, scores))
    m.update(anomaly.point_metrics(labels, scores > threshold))
    m["precision_at_n"] = precision_at_n(labels, scores)
    m["threshold"] = float(threshold)
    return m


def recall_by_kind(meta: pd.DataFrame, flags: np.ndarray) -> dict[str, float]:
    kinds = meta["kind"].to_numpy()
    return {str(k): round(float(flags[kinds == k].mean()), 4) for k in pd.unique(kinds) if k != "normal"}


def attribution_hits(meta: pd.DataFrame, order: np.ndarray, columns: list[str], k: int) -> dict[str, Any]:
    """Of the rows whose corrupted columns are known (dependency anomalies): how often one of them is the
    top column, and how often in the top ``k``."""
    corrupted = meta["corrupted"].to_numpy()
    rows = [i for i, c in enumerate(corrupted) if c]
    if not rows:
        return {"rows": 0}
    top1 = top_k = 0
    for i in rows:
        known = set(corrupted[i].split(","))
        named = [columns[j] for j in order[i]]
        top1 += named[0] in known
        top_k += bool(known & set(named[:k]))
    return {
        "rows": len(rows),
        "top1_hit_rate": round(top1 / len(rows), 4),
        f"top{k}_hit_rate": round(top_k / len(rows), 4),
        "k": k,
    }


def evaluate(
    params: Params, data: Path, inputs: Path, models: Path, results: Path, plots: Path
) -> dict[str, Any]:
    """Score the test split with the trained detector and every baseline; figures and the attribution."""
    from aeflow import tracking
    from aeflow.evaluation import anomaly
    from aeflow.evaluation.thresholds import choose_threshold
    from aeflow.models.registry import load_model
    from aeflow.report.figures import bar_chart
    from aeflow.usecases.tabular.corrupt import read_split, split_info
    from aeflow.usecases.tabular.scorer import TabularScorer

    cfg = params.tabular
    run_file = models / "run.json"
    if not run_file.is_file():
        raise DataError(f"{run_file}: missing. Fix: run the train stage first (dvc repro train@tabular).")
    run = read_json(run_file)
    scorer = TabularScorer.from_model(load_model(str(models / "model.pt")))
    frames = {name: read_split(inputs, name) for name in ("train", "val", "test")}
    encoded = {
        name: scorer.encoder.transform(f, str(inputs / f"{name}.parquet")) for name, (f, _) in frames.items()
    }
    test_meta = frames["test"][1]
    labels = test_meta["label"].to_numpy().astype(bool)
    info = split_info(inputs)

    began = time.perf_counter()
    errors = scorer.column_errors(encoded["test"])
    ae_seconds = time.perf_counter() - began
    ae_scores = scorer.scores_of(errors)
    methods: dict[str, tuple[np.ndarray, float, dict[str, Any], float]] = {
        "autoencoder": (ae_scores, scorer.threshold, scorer.config.get("threshold_details", {}), ae_seconds)
    }
    for name in cfg.evaluate.baselines:
        began = time.perf_counter()
        val, test = baseline_scores(
            name,
            encoded["train"],
            [encoded["val"], encoded["test"]],
            params.seed,
            cfg.evaluate.pyod_epochs,
            cfg.evaluate.pca_variance,
        )
        seconds = time.perf_counter() - began
        label = METHOD_LABELS.get(name, name)
        what = "the PCA reconstruction error" if name == "pca" else f"the {label} score"
        thr, details = choose_threshold(val, cfg.threshold, what)
        methods[name] = (test, thr, details, seconds)

    summary: dict[str, Any] = {}
    for name, (scores, thr, details, seconds) in methods.items():
        m = method_metrics(labels, scores, thr)
        flags = scores > thr
        m["recall_by_kind"] = recall_by_kind(test_meta, flags)
        m["seconds"] = round(seconds, 3)
        m["threshold_explanation"] = details.get("explanation", "")
        summary[name] = {k: (round(v, 6) if isinstance(v, float) else v) for k, v in m.items()}

    k = cfg.evaluate.top_k
    order, shares = scorer.top_columns(errors, k)
    top3, _ = scorer.top_columns(errors, 3)  # the attribution check counts the top 3 whatever top_k is
    hits = attribution_hits(test_meta, top3, scorer.columns, min(3, len(scorer.columns)))
    flagged = np.flatnonzero(ae_scores > scorer.threshold)
    shown = flagged[np.argsort(-ae_scores[flagged], kind="stable")][: cfg.evaluate.shown_rows]
    test_frame = frames["test"][0]
    records = []
    for i in shown:
        rec: dict[str, Any] = {
            "test_row": int(i),
            "score": round(float(ae_scores[i]), 6),
            "kind": str(test_meta["kind"].iat[i]),
            "corrupted": str(test_meta["corrupted"].iat[i]),
        }
        for j in range(order.shape[1]):
            column = scorer.columns[order[i, j]]
            rec[f"feature_{j + 1}"] = column
            rec[f"share_{j + 1}"] = round(float(shares[i, j]), 4)
            rec[f"value_{j + 1}"] = test_frame[column].iat[i]
        records.append(rec)
    share_all = errors / np.where(
        errors.sum(axis=1, keepdims=True) > 0, errors.sum(axis=1, keepdims=True), 1.0
    )
    mean_share = {
        "normal rows": share_all[~labels].mean(axis=0).tolist(),
        "anomalies": share_all[labels].mean(axis=0).tolist(),
    }
    report = {
        "summary": summary,
        "split": info,
        "attribution": {
            **hits,
            "top_k": k,
            "flagged_rows": len(flagged),
            "mean_share": dict(zip(scorer.columns, mean_share["anomalies"], strict=True)),
        },
        "threshold": {
            "value": scorer.threshold,
            "explanation": scorer.config.get("threshold_details", {}).get("explanation", ""),
        },
    }
    results.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(records).to_csv(results / ATTRIBUTION, index=False)
    write_json(results / SCORES, report)
    with atomic_dir(plots) as tmp:
        for name, (scores, _, _, _) in methods.items():
            anomaly.write_pr_curve(tmp / f"pr_{name}.csv", labels, scores)
        (tmp / "column_shares.png").write_bytes(
            bar_chart(
                scorer.columns,
                mean_share,
                "share of the row's error",
                "autoencoder: which columns carry the error",
            )
        )
        (tmp / "methods.png").write_bytes(
            bar_chart(
                [METHOD_LABELS.get(n, n) for n in summary],
                {
                    "ROC-AUC": [summary[n]["roc_auc"] or 0.0 for n in summary],
                    "PR-AUC": [summary[n]["pr_auc"] or 0.0 for n in summary],
                },
                "score on the test split",
                "autoencoder against the baselines",
            )
        )
        figures = sorted(p.name for p in tmp.glob("*.png"))
    ae = summary["autoencoder"]
    flat = {
        f"test/{key}": v for key, v in ae.items() if isinstance(v, (int, float)) and not isinstance(v, bool)
    }
    flat.update({f"test/attribution_{key}": v for key, v in hits.items() if key.endswith("hit_rate")})
    for name, m in summary.items():
        if name != "autoencoder" and m.get("roc_auc") is not None:
            flat[f"baseline/{name}_roc_auc"] = m["roc_auc"]
    tracking.log_results(
        params.tracking,
        run,
        metrics=flat,
        artifacts=[(plots / f, "figures") for f in figures]
        + [(results / SCORES, "evaluation"), (results / ATTRIBUTION, "evaluation")],
    )
    return report
