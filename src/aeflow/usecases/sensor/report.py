"""The sensor section of the report: detector against baselines, the threshold in words, error
timelines, the latent sweep, validation."""

from __future__ import annotations

from typing import TYPE_CHECKING

from aeflow.io import read_json
from aeflow.report import html as h
from aeflow.report.sections import (
    ReportInputs,
    mlflow_link,
    need,
    sweep_block,
    validation_table,
)

if TYPE_CHECKING:
    from aeflow.config import Params

SENSOR_METRICS = {
    "f1": "point F1",
    "event_recall": "event recall",
    "mean_detection_delay": "mean delay (rows)",
    "far": "false-alarm rate",
    "alarms": "alarms",
    "roc_auc": "ROC-AUC",
    "pr_auc": "PR-AUC",
    "pooled_f1": "point F1 (pooled)",
    "pooled_far_pct": "FAR % (pooled)",
    "pooled_mar_pct": "MAR % (pooled)",
    "attribution_top1": "faulty sensor named first",
    "attribution_top2": "faulty sensor in top 2",
    "nab_standard": "NAB standard",
    "nab_reward_low_FP_rate": "NAB low FP",
    "nab_reward_low_FN_rate": "NAB low FN",
}


def section(params: Params, inputs: ReportInputs) -> str:
    """Anomaly detection: detector vs baselines, the threshold explained, error timelines, sensors."""
    uc = "sensor"
    metrics = read_json(inputs.scores(uc))
    run = read_json(need(inputs.models / uc / "run.json"))
    validation = read_json(need(inputs.validation / f"{uc}.json"))
    evaluation = need(inputs.plots / uc / "evaluation")
    summary = metrics["summary"]
    keys = [k for k in SENSOR_METRICS if any(v.get(k) is not None for v in summary.values())]
    first = run["series"][0]
    members = int(first.get("members", 1))
    what = (
        f"An ensemble of {members} {h.esc(first['variant'])} {h.esc(first['architecture'])} autoencoders "
        "(each from its own initial weights, their scores averaged)"
        if members > 1
        else f"A {h.esc(first['variant'])} {h.esc(first['architecture'])} autoencoder"
    )
    parts = [
        f"<p>{what} over "
        f"windows of {first['window_length']} readings, trained on the normal training segment only, "
        "flags a reading when its reconstruction error exceeds a threshold set on normal validation data. "
        f"Series: {h.esc(', '.join(metrics['series']))}; injected faults: "
        f"{h.esc(', '.join(f'{k}: {v}' for k, v in metrics['events'].items()))}.</p>",
        h.table(
            ["method", *[SENSOR_METRICS[k] for k in keys]],
            [[m, *[v.get(k) for k in keys]] for m, v in summary.items()],
        ),
        "<h3>The threshold</h3>",
    ]
    for r in run["series"]:
        explanation = r.get("threshold_details", {}).get("explanation", "")
        parts.append(f"<p><b>{h.esc(r['series'])}</b>: {h.esc(explanation)}</p>")
    parts.append(
        f"<p>Alarms: a flagged reading raises an alarm unless one was raised within the previous "
        f"{first['cooldown']} readings (<code>sensor.threshold.cooldown</code>), so one fault pages once; "
        "NAB "
        "scores and the <i>alarms</i> column count alarms, the other metrics count flagged readings.</p>"
    )
    parts.append(
        '<p class="note">Change the rule with <code>sensor.threshold.method</code> (pot, percentile, '
        "mean_k_sigma, fixed) and its parameters; <code>smoothing</code> averages the error over the last "
        "readings first; <code>history</code> measures that average in standard deviations above the "
        "errors before it, for series that drift after training; <code>season</code> (e.g. 1D) counts "
        "only how far a score rises above the same time one season earlier, so what recurs daily alarms "
        "once. Lower thresholds catch more faults and "
        "raise more false alarms.</p>"
    )
    parts.append("<h3>Error over time</h3>")
    for f in sorted(evaluation.glob("*.png")):
        parts.append(h.img(f.read_bytes(), f.stem, f.stem.replace("_", " ")))
    sweep_file = inputs.result(uc, "sweep.json", required=False)
    if sweep_file.is_file():
        parts.append(sweep_block(read_json(sweep_file), inputs.plots / uc / "sweep", "window values"))
    parts.append("<h3>Data validation</h3>" + validation_table(validation))
    parts.append(
        "<h3>MLflow and serving</h3>"
        + h.table(
            ["what", "value"],
            [
                ("training run", mlflow_link(params, run["experiment_id"], run["run_id"])),
                ("registered detector", h.esc(f"{run['registered_model']} version {run['version']}")),
                (
                    "serve it",
                    f"<code>mlflow models serve -m {h.esc(run['model_uri'])} "
                    "--env-manager local -p 5001</code>",
                ),
                (
                    "monitor a stream",
                    f"<code>aeflow monitor --model {h.esc(run['model_uri'])} --input readings.csv</code>",
                ),
            ],
            raw_cells=True,
        )
    )
    return "".join(parts)
