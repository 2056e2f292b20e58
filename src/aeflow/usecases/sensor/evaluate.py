"""sensor evaluate: detections of every series' detector and of the baselines, scored point-wise, by
event and by NAB's rules; ``results/sensor/evaluation/scores.json`` and ``plots/sensor/evaluation/``."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from aeflow.errors import DataError
from aeflow.io import atomic_dir, read_json, write_json
from aeflow.layout import SCORES
from aeflow.usecases.sensor.series import safe_name, segments, sensor_columns

if TYPE_CHECKING:
    from aeflow.config import Params


def load_detectors(models: Path) -> dict[str, Any]:
    """The trained detectors by series name."""
    from aeflow.models.registry import load_model
    from aeflow.usecases.sensor.detector import AnomalyDetector

    run_file = models / "run.json"
    if not run_file.is_file():
        raise DataError(f"{run_file}: missing. Fix: run the train stage first (dvc repro).")
    runs = read_json(run_file)["series"]
    return {
        r["series"]: AnomalyDetector.from_model(load_model(str(models / r["folder"] / "model.pt")))
        for r in runs
    }


# ------------------------------------------------------------------------------------------ evaluate
def row_windows(series: Any, labels: np.ndarray) -> list[tuple[int, int]]:
    """Labelled anomaly windows as (first, last) rows: NAB's own windows, else NAB-style windows built
    around the injected faults (10 % of the series shared between the events, one window centred on each
    event's first row, as NAB labels an anomaly by its onset; counting every labelled row as an anomaly
    would cut a long fault into one-row windows and reward flagging each of its rows)."""
    from aeflow.usecases.sensor.nab import windows_from_labels

    if series.nab:
        import pandas as pd

        ts = pd.to_datetime(series.frame["timestamp"])
        out = []
        for a, b in series.windows:
            idx = np.flatnonzero((ts >= pd.Timestamp(a)) & (ts <= pd.Timestamp(b)))
            if len(idx):
                out.append((int(idx[0]), int(idx[-1])))
        return out
    marked = labels.astype(bool)
    onsets = marked & ~np.concatenate([[False], marked[:-1]])
    return windows_from_labels(onsets) if onsets.any() else []


def recall_by_kind(
    found: list[dict[str, Any]], injected: list[dict[str, Any]], offset: int
) -> dict[str, float]:
    """Event recall per fault kind: which faults a method sees and which it misses (e.g. a sensor stuck at a
    plausible value in a steady regime leaves little to reconstruct wrongly)."""
    detected = {int(e["start"]) + offset: bool(e["detected"]) for e in found}
    by_kind: dict[str, list[bool]] = {}
    for e in injected:
        by_kind.setdefault(e["kind"], []).append(detected.get(int(e["start"]), False))
    return {k: round(float(np.mean(v)), 4) for k, v in sorted(by_kind.items())}


def attribution(
    shares: np.ndarray, flags: np.ndarray, injected: list[dict[str, Any]], sensors: list[str]
) -> dict[str, Any]:
    """How often the detector names the faulty sensor: over the flagged readings inside injected faults
    (each on one sensor), the share where it is the top sensor and where it is in the top 2, overall and
    per fault kind. Counts are kept so that series pool by reading, not by series."""
    if len(sensors) < 2 or not injected:
        return {}
    order = np.argsort(-shares, axis=1, kind="stable")
    hits = {"readings": 0, "top1": 0, "top2": 0}
    by_kind: dict[str, list[int]] = {}
    for e in injected:
        if e.get("sensor") not in sensors:
            continue
        j = sensors.index(e["sensor"])
        rows = np.arange(int(e["start"]), int(e["end"]))
        rows = rows[flags[rows]]
        top1 = int((order[rows, 0] == j).sum())
        top2 = int((order[rows, :2] == j).any(axis=1).sum())
        hits["readings"] += len(rows)
        hits["top1"] += top1
        hits["top2"] += top2
        kind = by_kind.setdefault(e["kind"], [0, 0])
        kind[0] += top1
        kind[1] += len(rows)
    n = hits["readings"]
    return {
        "attribution_readings": n,
        "attribution_top1_hits": hits["top1"],
        "attribution_top2_hits": hits["top2"],
        "attribution_top1": round(hits["top1"] / n, 6) if n else None,
        "attribution_top2": round(hits["top2"] / n, 6) if n else None,
        "attribution_top1_by_kind": {k: round(a / b, 4) for k, (a, b) in sorted(by_kind.items()) if b},
    }


def pooled(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Point and event metrics over every scored reading of every series at once (the mean over series
    weighs a short file like a long one): point F1, false-alarm and missed-alarm rates in percent of
    normal and anomalous readings, event recall over all events, and the faulty sensor named first / in
    the top 2 over all flagged fault readings."""
    tp, fp, fn, tn = (sum(int(r.get(k) or 0) for r in rows) for k in ("tp", "fp", "fn", "tn"))
    events = sum(int(r.get("events_total") or 0) for r in rows)
    found = sum(int(r.get("events_detected") or 0) for r in rows)

    def pct(a: int, b: int) -> float | None:
        return round(100.0 * a / b, 4) if b else None

    out = {
        "pooled_f1": round(2 * tp / (2 * tp + fp + fn), 6) if tp + fp + fn else None,
        "pooled_far_pct": pct(fp, fp + tn),
        "pooled_mar_pct": pct(fn, fn + tp),
        "pooled_event_recall": round(found / events, 6) if events else None,
        "pooled_readings": tp + fp + fn + tn,
    }
    read = sum(int(r.get("attribution_readings") or 0) for r in rows)
    if read:  # which sensor: over every flagged fault reading of every series
        for k in ("top1", "top2"):
            out[f"attribution_{k}"] = round(
                sum(int(r.get(f"attribution_{k}_hits") or 0) for r in rows) / read, 6
            )
        out["attribution_readings"] = read
    return out


def method_scores(
    params: Params, detector: Any, values: np.ndarray, bounds: dict[str, tuple[int, int]]
) -> dict[str, tuple[np.ndarray, float, dict[str, Any]]]:
    """Per-row scores and thresholds of the autoencoder and of every baseline, each fitted on the training
    segment, turned into scores by the detector's rule (smoothing, history, season) and thresholded by
    the same rule (``sensor.threshold``) on the validation segment."""
    from aeflow.evaluation import anomaly
    from aeflow.evaluation.thresholds import choose_threshold, history_stats
    from aeflow.usecases.sensor.windows import fill_missing

    ev = params.sensor.evaluate
    p = params.sensor.threshold
    (t0, t1), (v0, v1) = bounds["train"], bounds["val"]
    ref = slice(v0, v1) if v1 - v0 >= 8 else slice(t0, t1)
    out = {
        "autoencoder": (
            detector.score(values),
            detector.threshold,
            detector.config.get("threshold_details", {}),
        )
    }
    filled = fill_missing(values)
    train = filled[t0:t1]
    for name in ev.baselines:
        if name == "isolation_forest":
            s = anomaly.isolation_forest_scores(train, filled, params.seed)
        elif name == "rolling_zscore":
            s = anomaly.rolling_zscore_scores(filled, ev.zscore_window)
        else:
            if filled.shape[1] < 2:  # PCA of one sensor has nothing to reconstruct from
                continue
            s = anomaly.pca_scores(train, filled, min(ev.pca_components, filled.shape[1] - 1))
        s = np.asarray(s, dtype=np.float64)
        # The detector's own rule (smoothing, history, season), on the baseline's own normal level.
        s = detector.score_errors(s, reference=history_stats(s[ref]) if detector.history else None)
        thr, details = choose_threshold(s[ref], p)
        out[name] = (s, float(thr), details)
    return out


def _write_timeline(
    path: Path, method: tuple[np.ndarray, float, Any], labels: np.ndarray, start: int
) -> None:
    """The autoencoder's error over the scored segment with its threshold and the true labels (CSV)."""
    score, thr, _ = method
    rows = "".join(f"{i},{score[i]:.6g},{thr:.6g},{int(labels[i])}\n" for i in range(start, len(score)))
    path.write_text("step,score,threshold,anomaly\n" + rows, encoding="utf-8")


def evaluate(
    params: Params, data: Path, inputs: Path, models: Path, results: Path, plots: Path
) -> dict[str, Any]:
    """Score every series with the detector and the baselines; NAB score, point/event metrics, figures."""
    from aeflow import tracking
    from aeflow.evaluation import anomaly
    from aeflow.report.figures import anomaly_timeline, bar_chart
    from aeflow.usecases.sensor.nab import (
        PROFILES,
        normalised_score,
        null_score,
        perfect_score,
        probationary_length,
        score_file,
    )
    from aeflow.usecases.sensor.sources import read_series

    detectors = load_detectors(models)
    runs = {r["series"]: r for r in read_json(models / "run.json")["series"]}
    series = read_series(inputs / "series")
    events = read_json(inputs / "events.json") if (inputs / "events.json").is_file() else {}
    profiles = params.sensor.evaluate.nab_profiles
    report: dict[str, Any] = {"series": {}, "events": {k: len(v) for k, v in events.items()}}
    nab_sums: dict[str, dict[str, list[float]]] = {}
    with atomic_dir(plots) as tmp:
        for s in series:
            if s.name not in detectors:
                raise DataError(
                    f"{models / 'run.json'}: no detector for series {s.name!r}. Fix: dvc repro train."
                )
            d = detectors[s.name]
            sensors = d.sensors
            d.check_columns(sensor_columns(s.frame), f"{inputs / 'series'} ({s.name})")
            values = s.frame[sensors].to_numpy(dtype=np.float32)
            labels = s.frame["label"].to_numpy().astype(bool)
            bounds = segments(s, params)
            a0, a1 = bounds["test"]
            windows = row_windows(s, labels)
            probation = probationary_length(len(values))
            per_method: dict[str, Any] = {}
            methods = method_scores(params, d, values, bounds)
            _, shares = d.score_and_shares(values)
            for name, (score, thr, details) in methods.items():
                flags = score > thr
                # Detections count in the scored segment only (train/val are normal by construction).
                flags[:a0] = False
                m: dict[str, Any] = {"threshold": thr, "threshold_method": details.get("method")}
                grace = d.length  # readings whose window still holds a faulty reading
                m.update(anomaly.point_metrics(labels[a0:a1], flags[a0:a1]))
                m["far_points"] = m.pop("far")
                m["far"] = anomaly.false_alarm_rate(labels[a0:a1], flags[a0:a1], grace)
                m.update(anomaly.event_metrics(labels[a0:a1], flags[a0:a1], tolerance=grace))
                m.update(anomaly.ranking_metrics(labels[a0:a1], score[a0:a1]))
                m["recall_by_kind"] = recall_by_kind(m.pop("events", []), events.get(s.name, []), a0)
                if name == "autoencoder":  # only the autoencoder names sensors
                    m.update(attribution(shares, flags, events.get(s.name, []), sensors))
                # NAB counts alarms: every one outside a window is a false positive, so each method's
                # flags go through the detector's cooldown.
                alarms = d.alarms(flags)
                m["alarms"] = int(alarms[a0:a1].sum())
                for prof in profiles:
                    raw, _ = score_file(alarms, windows, PROFILES[prof], probation)
                    null = null_score(windows, PROFILES[prof], probation)
                    perfect = perfect_score(windows, PROFILES[prof], probation)
                    m[f"nab_{prof}"] = normalised_score(raw, null, perfect) if perfect != null else None
                    sums = nab_sums.setdefault(name, {}).setdefault(prof, [0.0, 0.0, 0.0])
                    sums[0] += raw
                    sums[1] += null
                    sums[2] += perfect
                per_method[name] = {k: (round(v, 6) if isinstance(v, float) else v) for k, v in m.items()}
            report["series"][s.name] = per_method

            stem = safe_name(s.name)
            if s is series[0]:  # data for `dvc plots` (first series): PR curve per method, error timeline
                for name, (sc, _, _) in methods.items():
                    anomaly.write_pr_curve(tmp / f"pr_{name}.csv", labels[a0:a1], sc[a0:a1])
                _write_timeline(tmp / "timeline.csv", methods["autoencoder"], labels, a0)
            score, thr, _ = methods["autoencoder"]
            png = anomaly_timeline(
                s.frame["timestamp"].to_numpy(),
                values,
                sensors,
                score,
                thr,
                windows,
                (score > thr) & (np.arange(len(score)) >= a0),
                f"{s.name}: autoencoder reconstruction error (flagged readings coloured by top sensor)",
                causes=shares.argmax(axis=1) if len(sensors) > 1 else None,
            )
            (tmp / f"{stem}_timeline.png").write_bytes(png)
            contrib = d.per_sensor(values)
            in_event = labels & (np.arange(len(labels)) >= a0)
            normal = ~labels
            bars = {"normal readings": contrib[normal].mean(axis=0).tolist()}
            if in_event.any():
                bars["during anomalies"] = contrib[in_event].mean(axis=0).tolist()
            (tmp / f"{stem}_sensors.png").write_bytes(
                bar_chart(sensors, bars, "mean error", f"{s.name}: per-sensor contribution to the error")
            )
        summary: dict[str, Any] = {}
        names = dict.fromkeys(m for per in report["series"].values() for m in per)
        for name in names:
            rows = [v[name] for v in report["series"].values() if name in v]
            agg: dict[str, Any] = {}
            for key in (
                "precision",
                "recall",
                "f1",
                "event_recall",
                "far",
                "far_points",
                "mar",
                "roc_auc",
                "pr_auc",
                "mean_detection_delay",
            ):
                vals = [r[key] for r in rows if r.get(key) is not None]
                agg[key] = round(float(np.mean(vals)), 6) if vals else None
            agg["alarms"] = int(sum(r.get("alarms", 0) for r in rows))  # a count: summed over series
            agg.update(pooled(rows))
            for prof, (raw, null, perfect) in nab_sums.get(name, {}).items():
                agg[f"nab_{prof}"] = (
                    round(normalised_score(raw, null, perfect), 4) if perfect != null else None
                )
            summary[name] = agg
        report["summary"] = summary
        write_json(tmp / "summary.json", summary)
        write_json(
            results / SCORES, {"summary": summary, "series": report["series"], "events": report["events"]}
        )
        figures = sorted(p.name for p in tmp.glob("*.png"))

    for s in series:
        run = runs.get(s.name)
        if run is None:
            continue
        flat = {
            f"test/{k}": v
            for k, v in report["series"][s.name]["autoencoder"].items()
            if isinstance(v, (int, float)) and not isinstance(v, bool)
        }
        stem = safe_name(s.name)
        tracking.log_results(  # the series' run, or its pending folder when it trained offline
            params.tracking,
            run,
            metrics=flat,
            artifacts=[(plots / f, "figures") for f in figures if f.startswith(stem + "_")]
            + [(results / SCORES, "evaluation")],
        )
    return report
