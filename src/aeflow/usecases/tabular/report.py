"""The tabular section of the report: the autoencoder against the baselines, the threshold in words, what
each kind of anomaly costs, which columns made the flagged rows anomalous, validation and serving."""

from __future__ import annotations

import csv
from typing import TYPE_CHECKING

from aeflow.io import read_json
from aeflow.report import html as h
from aeflow.report.sections import ReportInputs, loss_figure, mlflow_link, need, validation_table

if TYPE_CHECKING:
    from aeflow.config import Params

#: How the report, the figures and the threshold explanations name each method.
METHOD_LABELS = {
    "autoencoder": "autoencoder (aeflow)",
    "isolation_forest": "Isolation Forest (PyOD)",
    "ecod": "ECOD (PyOD)",
    "pyod_autoencoder": "AutoEncoder (PyOD)",
    "pca": "PCA reconstruction error",
}
#: The flagged rows with their top columns, beside scores.json (evaluate writes it, the report shows it).
ATTRIBUTION = "attribution.csv"

METRICS = {
    "roc_auc": "ROC-AUC",
    "pr_auc": "PR-AUC",
    "precision_at_n": "precision@n",
    "f1": "F1 at threshold",
    "precision": "precision",
    "recall": "recall",
    "seconds": "fit + score (s)",
}


def section(params: Params, inputs: ReportInputs) -> str:
    uc = "tabular"
    scores = read_json(inputs.scores(uc))
    run = read_json(need(inputs.models / uc / "run.json"))
    validation = read_json(need(inputs.validation / f"{uc}.json"))
    evaluation = need(inputs.plots / uc / "evaluation")
    split, summary, attribution = scores["split"], scores["summary"], scores["attribution"]
    protocol = (
        "trained on the normal rows of the training split only (semi-supervised)"
        if split["protocol"] == "semi_supervised"
        else "trained on the whole training split, anomalies included (unsupervised, ADBench's protocol)"
    )
    injected = ", ".join(f"{k}: {v}" for k, v in split.get("injected", {}).items())
    parts = [
        f"<p>{h.esc(split['origin'])}: {len(split['numeric'])} numeric and {len(split['categorical'])} "
        f"categorical columns ({run.get('encoded_width')} model inputs after one-hot encoding). A "
        f"{h.esc(run['variant'])} autoencoder {protocol}, scored on {split['rows']['test']:,} test rows "
        f"of which {split['anomalies']['test']:,} are anomalies"
        + (f" (injected, of ADBench's kinds: {h.esc(injected)})" if injected else " (the data's own labels)")
        + ". Every baseline fits the same rows and scores the same encoded columns; each method's "
        "threshold is set on the validation rows by the same rule.</p>",
        h.table(
            ["method", *METRICS.values()],
            [[METHOD_LABELS.get(m, m), *[v.get(k) for k in METRICS]] for m, v in summary.items()],
        ),
        '<p class="note">precision@n: the share of true anomalies among the n highest scores, n = the '
        "number of anomalies (threshold-free, like ROC-AUC and PR-AUC). F1, precision and recall count the "
        "rows above each method's own threshold.</p>",
        "<h3>The threshold</h3>",
        f"<p>{h.esc(scores['threshold']['explanation'])}. Change the rule with "
        "<code>tabular.threshold.method</code> (percentile, mean_k_sigma, pot, fixed).</p>",
    ]
    kinds = sorted({k for v in summary.values() for k in v.get("recall_by_kind", {})})
    if kinds:
        parts.append("<h3>Recall by kind of anomaly</h3>")
        parts.append(
            h.table(
                ["method", *kinds],
                [
                    [METHOD_LABELS.get(m, m), *[v["recall_by_kind"].get(k) for k in kinds]]
                    for m, v in summary.items()
                ],
            )
        )
    parts.append("<h3>Which columns made a row anomalous</h3>")
    hit = attribution.get("top3_hit_rate")
    if hit is not None:
        parts.append(
            f"<p>On the {attribution['rows']} dependency anomalies, whose corrupted column is known, the "
            f"autoencoder ranks it first for {attribution['top1_hit_rate']:.0%} of the rows and in its top 3 "
            f"for {hit:.0%}.</p>"
        )
    rows_file = inputs.result(uc, "evaluation") / ATTRIBUTION
    with need(rows_file).open(encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    if rows:
        k = sum(1 for key in rows[0] if key.startswith("feature_"))
        parts.append(
            f"<p>The {len(rows)} highest-scoring of {attribution['flagged_rows']} flagged test rows, "
            "each with "
            f"its {k} columns of largest reconstruction error and their share of it:</p>"
        )
        parts.append(
            h.table(
                ["test row", "score", "kind", *[f"column {j}" for j in range(1, k + 1)]],
                [
                    [
                        r["test_row"],
                        float(r["score"]),
                        r["kind"] + (f" ({r['corrupted']})" if r.get("corrupted") else ""),
                        *[
                            f"{r[f'feature_{j}']} = {r[f'value_{j}']} ({float(r[f'share_{j}']):.0%})"
                            for j in range(1, k + 1)
                        ],
                    ]
                    for r in rows
                ],
            )
        )
    for f in sorted(evaluation.glob("*.png")):
        parts.append(h.img(f.read_bytes(), f.stem, f.stem.replace("_", " ")))
    parts.append("<h3>Training</h3>" + loss_figure(inputs.plots / uc / "loss.csv"))
    parts.append("<h3>Data validation</h3>" + validation_table(validation))
    parts.append(
        "<h3>MLflow and serving</h3>"
        + h.table(
            ["what", "value"],
            [
                ("training run", mlflow_link(params, run.get("experiment_id"), run.get("run_id"))),
                ("registered detector", h.esc(f"{run.get('registered_model')} version {run.get('version')}")),
                (
                    "serve it",
                    f"<code>mlflow models serve -m {h.esc(run.get('model_uri'))} "
                    "--env-manager local -p 5002</code>",
                ),
                (
                    "score a file",
                    f"<code>aeflow monitor --model {h.esc(run.get('model_uri'))} --input rows.csv</code>",
                ),
            ],
            raw_cells=True,
        )
    )
    return "".join(parts)
