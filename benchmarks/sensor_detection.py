"""Benchmark: the sensor detector on simulated faults and on NAB, beside its baselines, and its serving speed.

Runs the sensor stages themselves (ingest → validate → inject faults → train → evaluate) in a temporary
folder with ``params.yaml``'s sensor settings, twice:

* the pump simulator with injected faults (targets: event recall ≥ 0.95 at a false-alarm rate ≤ 1 %; the
  faulty sensor named first for ≥ 90 % of the flagged fault readings and in the top 2 for ≥ 98 %);
* NAB from ``--nab-dir`` (any NAB-layout folder; default ``../shared/datasets/nab``: ``realKnownCause`` +
  ``realAWSCloudwatch``, 24 files; one detector per file trained on its probationary period, NAB's own
  label windows; target: NAB standard score ≥ 60 over those files and above every baseline). Prints the
  per-file table, beside the scores NAB published for ARTime, HTM, Random Cut Forest and Windowed
  Gaussian on the same files.

  Real server metrics drift for weeks after a probationary period of a few days and repeat daily and weekly
  jobs, so the NAB run scores every method's output relative to its own past and to the same time one day,
  two days and a week before (``NAB_THRESHOLD``: ``history``, ``season``, a fixed threshold in standard
  deviations, ``cooldown``) and trains longer on the short probationary periods (``NAB_TRAIN``,
  ``NAB_WINDOWS``), three models per file with their scores averaged (``NAB_MODEL``, ``--nab-members``:
  steadier across seeds); the simulator run keeps ``params.yaml``'s settings. ``--nab-set`` changes the
  threshold settings (e.g. ``--nab-set history=0 season=null method=pot`` for the raw-error detector).
  These NAB settings were picked by looking at NAB scores on these files, as NAB's own published scores
  pick each detector's threshold on the whole corpus; so the run also prints cross-validated scores:
  season, reading comparison (on where a series' normal data repeat at a season, or off), history outlier
  level, threshold and cooldown chosen on the other NAB folders (and on the other folds of a 5-fold split
  over files: the files in name order, and the mean over 20 random deals) and scored on each held-out
  group in turn, each seed choosing on its own detectors. With several ``--nab-seeds`` it also chooses one
  setting per held-out group for every seed (the one whose worst seed scores best on the other files: far
  steadier from seed to seed), prints the setting that rule picks on all files, and scores, from those
  runs, detectors that average the scores of 2 and of 3 seeds' models (every combination: how much
  steadier they are).

Then the registered pyfunc detector: scoring throughput in windows/s on CPU with each flagged reading's
sensors attributed (target ≥ 50,000) and the p50/p99 latency of 1-row requests to ``mlflow models serve``.

    python benchmarks/sensor_detection.py [--skip-nab] [--skip-serve] [--days 42] [--nab-dir DIR]
                                            [--nab-set key=value ...] [--nab-seeds 42 1] [--nab-members 3]
                                            [--skip-simulator]
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

import numpy as np
import yaml

ROOT = Path(__file__).resolve().parents[1]
# Absolute: a relative AEFLOW_SHARED_DATASETS (e.g. ../shared/datasets) must survive the runs' chdir.
SHARED = Path(os.environ.get("AEFLOW_SHARED_DATASETS", ROOT.parent / "shared" / "datasets")).absolute()
METHODS = ("autoencoder", "isolation_forest", "rolling_zscore", "pca")
NAB_THRESHOLD = {
    "history": 8640,
    "smoothing": 5,
    "method": "fixed",
    "value": 3.5,
    "cooldown": 150,
    "season": ["1D", "2D", "7D"],
    "season_tolerance": 2,
    "season_readings": True,
    "history_outlier": 50.0,
    "history_outlier_rows": 500,
}
"""``sensor.threshold`` for the NAB run: 30 days of 5-minute history (HTM's anomaly likelihood keeps the
same 8,640 rows), a 5-row mean, 3.5 standard deviations, one alarm per 150 rows, only what rises above
the same time one day, two days and one week before (± 2 rows: a daily job, a weekly batch), and rows
scored above 50 standard deviations kept out of the history (for up to 500 rows), so that a huge first
anomaly does not hide the next. The seasons ``[1D, 2D, 7D]`` replaced ``1D`` after five seeds scored
67.8 / 65.2 / 65.2 (fixed / leave one folder out / 5-fold) against 66.3 / 64.7 / 63.0, the held-out
groups choosing that list in 32 of 35 choices (2026-12-05). ``season_readings`` also compares each reading
with the closest readings at those times (a holiday is shaped like a Sunday: ``nyc_taxi``); on the stored
models of those five seeds it moved the fixed setting from 67.8 to 70.6 and, chosen on or off in the
cross-validation's grid, 65.2 / 65.2 / 63.2 to 65.7 / 66.1 / 66.3 (leave one folder out / 5-fold / 20
deals; 2026-12-05). Compared only where the normal data repeat at a season (``params.yaml``'s
``season_readings_correlation``, 0.5: 6 of the 24 files), five seeds gave 72.6 and 69.1 / 68.4 / 66.5
(2026-12-05), fresh seeds 73.0 (11–15), 72.4 (21–25) and 72.9 (31–35); chosen across seeds (``held_out``)
on all 24 files, it is the setting picked for seeds 42…3, 11–15, 31–35, the first fifteen together and
all twenty (21–25: the same at 20 σ)."""
NAB_TRAIN = {"epochs": 100}
NAB_WINDOWS = {"train_stride": 1}
"""Training for the NAB run: a probationary period is a few hundred readings, so 15 epochs of windows at
stride 2 are about 30 optimiser steps; every window, 100 epochs (a few hundred steps) fits the model."""
NAB_MODEL = {"members": 3}
"""``sensor.model`` for the NAB run: three models per file, each from its own initial weights, their scores
averaged (each relative to its own history). With one model the corpus score moved 7.9 points from seed to
seed (57.5–65.4); with three, 2.5 (61.6–64.2), at about twice the training time (2026-12-04, five seeds).
``--nab-members 1`` runs single models."""
PUBLISHED = ("ARTime", "numenta", "randomCutForest", "windowedGaussian")


def run_stages(data: dict, tmp: Path) -> dict:
    from aeflow.params import parse_params
    from aeflow.stages.pipeline import run_use_case

    data["tracking"].update(tracking_uri=f"sqlite:///{tmp / 'mlflow.db'}", artifact_location=str(tmp / "art"))
    done = run_use_case(parse_params(data), "sensor", tmp)  # the pipeline's stages, on these params
    report = done["evaluate"]
    report["train_seconds"] = done["train_seconds"]
    return report


def table(summary: dict, keys: list[str]) -> None:
    print(f"{'method':<18} | " + " | ".join(f"{k:>14}" for k in keys))
    for m in METHODS:
        if m in summary:
            cells = [summary[m].get(k) for k in keys]
            print(f"{m:<18} | " + " | ".join(f"{c:14.4f}" if c is not None else f"{'—':>14}" for c in cells))


def published_scores(nab: Path, files: list[str]) -> dict[str, dict[str, float | None]]:
    """NAB's published standard-profile results on ``files``, normalised like ours (0 = the null
    detector, 100 = perfect): per file (None for a file without windows) and ``"corpus"`` over all of them.

    The standard profile's null detector scores −1 per window and a perfect one +1, so a file's null
    score gives both ends of its scale.
    """
    import pandas as pd

    null = pd.read_csv(nab / "results" / "null" / "null_standard_scores.csv").set_index("File")["Score"]
    out: dict[str, dict[str, float | None]] = {}
    for det in PUBLISHED:
        table = pd.read_csv(nab / "results" / det / f"{det}_standard_scores.csv").set_index("File")["Score"]
        per: dict[str, float | None] = {}
        raw = null_sum = 0.0
        for f in files:
            lo = float(null[f])
            per[f] = 100.0 * (float(table[f]) - lo) / (-2.0 * lo) if lo else None
            raw, null_sum = raw + float(table[f]), null_sum + lo
        per["corpus"] = 100.0 * (raw - null_sum) / (-2.0 * null_sum)
        out[det] = per
    return out


CV_VALUES = (2.5, 3.0, 3.5, 4.0)
CV_COOLDOWNS = (50, 100, 150, 200, 300)
CV_OUTLIERS: tuple[float | None, ...] = (None, 20.0, 50.0, 100.0)
"""``history_outlier`` settings the cross-validation also chooses from (None: every error joins the past)."""
Season = tuple[str, ...]
"""``season`` as a tuple of durations (``()``: off)."""
CV_SEASONS: tuple[Season, ...] = (("1D",), ("1D", "7D"), ("1D", "2D", "7D"))
"""``season`` settings the cross-validation also chooses from: the day before, and the day before or the
same day a week earlier, or also two days earlier."""
CV_READINGS = (False, True)
"""``season_readings`` settings the cross-validation also chooses from."""
Seasonal = tuple[Season, bool]
"""The season step of a setting: (``season``, ``season_readings``)."""


KFOLD = 5
KFOLD_DEALS = 20
"""Random deals of the files into ``KFOLD`` folds for the repeated k-fold: one deal's score depends on which
files share a fold (the name-order deal puts three of the five lowest-scoring files into fold 4), the mean
over deals less."""


Setting = tuple[Seasonal, float | None, float, int]
"""((season, season_readings), history_outlier, threshold value, cooldown)"""
Table = dict[str, dict[Setting, tuple[float, float, float]]]
"""NAB standard score parts per file and per setting: file -> setting -> (raw, null, perfect), so that
groups of files sum their parts and normalise once, as NAB scores a corpus."""
HeldOut = tuple[str, Setting, list[float]]
"""One held-out group of a cross-validation: (group, setting chosen on the others, its score per seed)."""
Scored = dict[str, tuple[dict[tuple[Seasonal, float | None], np.ndarray], dict[str, Any]]]
"""Per file: its scores under each (season step, ``history_outlier``) setting, and what scoring them
needs."""


def season_key(season: str | list[str] | None) -> Season:
    """``sensor.threshold.season`` as a ``Season``."""
    return () if season is None else (season,) if isinstance(season, str) else tuple(season)


def run_setting(threshold: dict[str, Any]) -> Setting:
    """The setting of a run's ``sensor.threshold`` settings."""
    outlier = threshold.get("history_outlier")
    return seasonal_key(threshold), outlier, float(threshold["value"]), int(threshold["cooldown"])


def seasonal_key(threshold: dict[str, Any]) -> Seasonal:
    """The season step of ``sensor.threshold`` settings."""
    return season_key(threshold.get("season")), bool(threshold.get("season_readings"))


def fmt_season(seasonal: Seasonal) -> str:
    season, readings = seasonal
    text = "no season" if not season else f"season [{', '.join(season)}]"
    return text + (" + readings" if readings and season else "")


def nab_scores(
    tmp: Path,
    outliers: tuple[float | None, ...],
    seasonals: tuple[Seasonal, ...],
    tolerance: int,
    correlation: float,
    errors: bool = True,
) -> Scored:
    """Each file's autoencoder scores (``file_scores``; ``errors`` False: the reading comparison alone)
    under each of ``outliers`` × ``seasonals`` (each season with ``tolerance`` rows, readings compared where
    they repeat at ``correlation``) from the NAB run in ``tmp``, with what scoring them needs (label
    windows, probationary period)."""
    from aeflow.layout import Layout
    from aeflow.usecases.sensor.evaluate import load_detectors, row_windows
    from aeflow.usecases.sensor.nab import PROFILES, null_score, perfect_score, probationary_length
    from aeflow.usecases.sensor.series import sensor_columns
    from aeflow.usecases.sensor.sources import read_series

    profile = PROFILES["standard"]
    layout = Layout("sensor", tmp)
    detectors = load_detectors(layout.models)
    out = {}
    for s in read_series(layout.noisy / "series"):
        d = detectors[s.name]
        d.check_columns(sensor_columns(s.frame), s.name)
        windows = row_windows(s, s.frame["label"].to_numpy().astype(bool))
        probation = probationary_length(len(s.frame))
        out[s.name] = (
            file_scores(d, s, outliers, seasonals, tolerance, correlation, errors),
            {
                "windows": windows,
                "probation": probation,
                "null": null_score(windows, profile, probation),
                "perfect": perfect_score(windows, profile, probation),
                "repeat": d.config.get("season_readings_repeat"),
            },
        )
    return out


def file_scores(
    d: Any,
    s: Any,
    outliers: tuple[float | None, ...],
    seasonals: tuple[Seasonal, ...],
    tolerance: int,
    correlation: float,
    errors: bool = True,
) -> dict[tuple[Seasonal, float | None], np.ndarray]:
    """One file's scores as the detector ``d`` scores its series ``s`` (each member relative to its
    history, averaged, season, readings compared with a season back, flatline guard; before the threshold)
    under each of ``outliers`` × ``seasonals``. The models run once; only the history, season and reading
    steps are redone per setting, the reading reference measured on the same normal rows as in training
    (None, readings not compared, where they repeat less than ``correlation`` one season later).
    ``errors`` False leaves the models' errors out: what comparing readings with a season back finds alone.
    """
    from aeflow.evaluation.thresholds import seasonal_excess
    from aeflow.sections import ThresholdParams
    from aeflow.usecases.sensor.detector import AnomalyDetector, flat_runs, season_readings_ref
    from aeflow.usecases.sensor.series import normal_rows, season_rows

    values = s.frame[d.sensors].to_numpy(dtype=np.float32)
    scaled = d.scaled(values)
    by_member = d.member_errors(d.windows_of(values)).mean(axis=2, dtype=np.float64)
    runs = flat_runs(values)
    normal = normal_rows(s.splits, d.length)
    seasons = {season for season, _ in seasonals}
    rows = {
        season: season_rows(s, ThresholdParams(season=list(season) or None, season_tolerance=tolerance))
        for season in seasons
    }
    refs = {
        season: season_readings_ref(scaled, rows[season], tolerance, normal, correlation)[0]
        for season in seasons
    }
    scores = {}
    for outlier in outliers:
        # the flatline guard lifts a stuck run to twice the threshold: twice the highest one scored here
        config = {
            **d.config,
            "threshold": max(*CV_VALUES, d.threshold),
            "history_outlier": outlier,
            "season_rows": [],
            "season_readings_ref": None,
        }
        relative = (
            AnomalyDetector(d.model, config).score_members(by_member)
            if errors
            else np.full(len(values), -np.inf)
        )
        for season, readings in seasonals:
            top = AnomalyDetector(
                d.model,
                {
                    **config,
                    "season_rows": rows[season],
                    "season_readings_ref": refs[season] if readings else None,
                },
            )
            seasonal = seasonal_excess(relative, rows[season], tolerance) if season and errors else relative
            seasonal = np.maximum(seasonal, top.reading_scores(scaled)[0])
            scores[((season, readings), outlier)] = top.flatline_boost(seasonal, runs)
    return scores


def score_table(scored: Scored, extra: tuple[Setting, ...] = ()) -> Table:
    """Every file scored at every setting of the grid (its (season step, ``history_outlier``) settings ×
    ``CV_VALUES`` × ``CV_COOLDOWNS``) and at ``extra``."""
    from aeflow.evaluation.thresholds import alarm_points
    from aeflow.usecases.sensor.nab import PROFILES, score_file

    profile = PROFILES["standard"]
    table: Table = {}
    for name, (by_step, f) in scored.items():
        settings = {(*k, v, c) for k in by_step for v in CV_VALUES for c in CV_COOLDOWNS} | set(extra)
        for season, outlier, value, cooldown in settings:
            alarms = alarm_points(by_step[(season, outlier)] > value, cooldown)
            raw, _ = score_file(alarms, f["windows"], profile, f["probation"])
            table.setdefault(name, {})[(season, outlier, value, cooldown)] = (raw, f["null"], f["perfect"])
    return table


def cross_validated(tables: list[Table]) -> dict[str, tuple[list[float], list[HeldOut]]]:
    """The corpus score with season, history outlier level, threshold and cooldown *not* chosen on the
    files scored, two ways: ``folder`` (leave one NAB folder out: the setting best on the other folders scores
    the held-out one) and ``kfold`` (the files, in name order, dealt into ``KFOLD`` folds; each fold scored
    with the setting best on the others). The grid: the (season, outlier level) settings the files were
    scored at × ``CV_VALUES`` × ``CV_COOLDOWNS``. ``tables``: one per training seed, the setting chosen
    across them (``held_out``); one table, chosen on that seed's detectors alone. For each way: the score
    over all files per table (every file scored with settings from elsewhere) and per held-out group
    (group, setting chosen, score per table).

    ``NAB_THRESHOLD`` was picked by looking at the whole corpus (as NAB's published scores pick each
    detector's threshold), so these are the numbers to expect on series the settings have not seen.
    """
    names = sorted(tables[0])
    return {
        "folder": held_out(tables, {n: n.split("/")[0] for n in names}),
        "kfold": held_out(tables, {n: f"fold {i % KFOLD + 1}" for i, n in enumerate(names)}),
    }


def repeated_kfold(tables: list[Table], deals: int = KFOLD_DEALS) -> list[list[float]]:
    """``kfold`` of :func:`cross_validated` over ``deals`` random deals of the files into ``KFOLD`` folds
    (deal ``i`` shuffled with seed ``i``): per deal, the score per table."""
    import random

    names = sorted(tables[0])
    out = []
    for deal in range(deals):
        order = random.Random(deal).sample(names, len(names))
        out.append(held_out(tables, {n: f"fold {i % KFOLD + 1}" for i, n in enumerate(order)})[0])
    return out


def cv_scores(tables: list[Table]) -> dict[str, list[float]]:
    """Per table: the ``folder`` and ``kfold`` scores of :func:`cross_validated` and the mean over the
    deals of :func:`repeated_kfold` (``deals``), the setting chosen across ``tables``."""
    cv, deals = cross_validated(tables), repeated_kfold(tables)
    return {
        "folder": cv["folder"][0],
        "kfold": cv["kfold"][0],
        "deals": [float(np.mean(per)) for per in zip(*deals, strict=True)],
    }


def held_out(tables: list[Table], group_of: dict[str, str]) -> tuple[list[float], list[HeldOut]]:
    """Each group of files (``group_of``: file → group) scored with the grid's setting best on the other
    groups: per table, the score over all files and, per group, (group, setting chosen, score per table).

    With several tables (one per training seed, the same files) one setting is chosen for all of them:
    the one whose *worst* seed scores best on the other groups. Each seed choosing on its own picks among
    settings a fraction of a point apart on the other groups by which of its detectors' alarms happen to
    land in a window, and the held-out group pays for the pick by several points (one seed's leave-one-
    folder-out estimate moved 9 points from another's, 2026-12-05); a setting is a property of the
    method, not of one training run, and one that no seed's detectors score badly with is the safe one to
    run on files nobody has labelled. With one table this is that table's best setting.
    """
    from aeflow.usecases.sensor.nab import normalised_score

    names, grid, parts = grid_parts(tables)
    totals, rows = np.zeros((len(tables), 3)), []
    for held in sorted(set(group_of.values())):
        mine = np.array([group_of[f] == held for f in names])
        chosen = safest(parts[:, ~mine].sum(axis=1))
        acc = parts[:, mine, chosen].sum(axis=1)
        totals += acc
        rows.append((held, grid[chosen], [normalised_score(*a) for a in acc]))
    return [normalised_score(*t) for t in totals], rows


def grid_parts(tables: list[Table]) -> tuple[list[str], list[Setting], np.ndarray]:
    """The files, the grid (the tables' (season step, outlier level) settings × ``CV_VALUES`` ×
    ``CV_COOLDOWNS``) and the NAB score parts as an array: table × file × setting × (raw, null, perfect)."""
    names = sorted(tables[0])
    steps = sorted({g[:2] for per in tables[0].values() for g in per}, key=lambda k: (k[0], k[1] or 0.0))
    grid = [(*k, v, c) for k in steps for v in CV_VALUES for c in CV_COOLDOWNS]
    return names, grid, np.array([[[table[f][g] for g in grid] for f in names] for table in tables])


def safest(parts: np.ndarray) -> int:
    """The setting whose worst table scores best: ``parts`` is table × setting × (raw, null, perfect),
    summed over the files chosen on. The first of equals (the grid's order), as with one table."""
    from aeflow.usecases.sensor.nab import normalised_score

    return int(np.argmax([min(normalised_score(*per[i]) for per in parts) for i in range(parts.shape[1])]))


def fmt_outlier(level: float | None) -> str:
    return "every error in the history" if level is None else f"outliers > {level:g} σ kept out"


def seed_ensembles(scored: dict[int, Scored], size: int, fixed: Setting) -> list[dict[str, float]]:
    """NAB scores of detectors that average the scores of ``size`` independently trained detectors (one per
    seed, each relative to its own history), for every ``size``-combination of the seeds in ``scored``
    (``nab_scores`` by seed): ``fixed`` (at ``fixed``, the run's threshold value and cooldown), ``folder``
    and ``kfold`` (``cross_validated``) and ``deals`` (the mean of ``repeated_kfold``).

    Why: each file's detector learns from a few hundred readings, so whether an anomaly window's score
    clears the threshold depends on the initial weights (a second window after a large first anomaly, say);
    the mean of several models' scores is steadier. Measured on the stored runs, with no extra training.
    """
    import itertools

    from aeflow.usecases.sensor.nab import normalised_score

    out = []
    for combo in itertools.combinations(sorted(scored), size):
        first = scored[combo[0]]
        mean = {
            name: ({k: np.mean([scored[s][name][0][k] for s in combo], axis=0) for k in by_step}, f)
            for name, (by_step, f) in first.items()
        }
        table = score_table(mean, (fixed,))
        parts = [sum(per[fixed][i] for per in table.values()) for i in range(3)]
        cv = cv_scores([table])
        out.append({"fixed": normalised_score(*parts), **{how: v[0] for how, v in cv.items()}})
    return out


def serve_latency(tmp: Path, n: int = 200) -> tuple[float, float]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    venv_bin = str(Path(sys.executable).parent)  # mlflow serve execs uvicorn from PATH: this venv's
    env = {
        **os.environ,
        "MLFLOW_TRACKING_URI": f"sqlite:///{tmp / 'mlflow.db'}",
        "PATH": venv_bin + os.pathsep + os.environ.get("PATH", ""),
    }
    mlflow_bin = str(Path(venv_bin) / "mlflow")
    cmd = [
        mlflow_bin,
        "models",
        "serve",
        "-m",
        "models:/aeflow-sensor/1",
        "--env-manager",
        "local",
        "-h",
        "127.0.0.1",
        "-p",
        str(port),
        "-w",
        "1",
    ]
    log = tmp / "serve.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT, cwd=tmp)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 120
        while True:
            try:
                urllib.request.urlopen(f"{base}/health", timeout=2).close()
                break
            except OSError:
                if time.time() > deadline or proc.poll() is not None:
                    tail = log.read_text(errors="replace")[-3000:]
                    raise RuntimeError(f"mlflow models serve did not start:\n{tail}") from None
                time.sleep(0.5)
        from aeflow.usecases.sensor.params import DEFAULT_SENSORS

        body = json.dumps({"dataframe_split": {"columns": DEFAULT_SENSORS, "data": [[1.0] * 5]}}).encode()
        times = []
        for _ in range(n):
            req = urllib.request.Request(
                f"{base}/invocations", data=body, headers={"Content-Type": "application/json"}
            )
            start = time.perf_counter()
            with urllib.request.urlopen(req, timeout=10) as resp:
                resp.read()
            times.append(time.perf_counter() - start)
        return float(np.percentile(times, 50) * 1000), float(np.percentile(times, 99) * 1000)
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def nab_run(
    base: dict, nab_threshold: dict, seed: int, tmp: Path, first: bool, nab: Path
) -> tuple[dict[str, float], Scored, Table]:
    """One NAB run (every file under ``nab``/data, every method) with ``seed``; prints its tables and
    returns the corpus standard scores per method and the autoencoder's cross-validated score (settings
    chosen on this seed's detectors alone), the autoencoder's scores per file (``nab_scores``, for
    ``seed_ensembles``) and its NAB score parts at every setting of the grid (``score_table``, for the
    settings chosen across seeds)."""
    from aeflow.usecases.sensor.nab import normalised_score

    data = json.loads(json.dumps(base))
    data["seed"] = seed
    data["sensor"]["ingest"].update(
        source="csv",
        path=str(nab / "data"),
        labels_json=str(nab / "labels" / "combined_windows.json"),
    )
    data["sensor"]["anomalies"]["inject"] = "never"
    data["sensor"]["threshold"].update(nab_threshold)
    data["sensor"]["train"].update(NAB_TRAIN)
    data["sensor"]["windows"].update(NAB_WINDOWS)
    res = run_stages(data, tmp)
    print(
        f"\n== NAB {' + '.join(sorted({n.split('/')[0] for n in res['series']}))} "
        f"({len(res['series'])} files), seed {seed}, "
        f"{data['sensor']['model'].get('members', 1)} model(s) per file, "
        f"training {res['train_seconds']:.0f} s, sensor.threshold {nab_threshold}, "
        f"sensor.train {NAB_TRAIN}, sensor.windows {NAB_WINDOWS}"
    )
    published = published_scores(nab, sorted(res["series"]))
    if first:
        print("per file: normalised NAB standard score (0 = no detections, 100 = perfect)")
        print(f"{'file':<58} | " + " | ".join(f"{m[:12]:>12}" for m in (*METHODS, *PUBLISHED)))
        for name, per in sorted(res["series"].items()):
            cells = [per.get(m, {}).get("nab_standard") for m in METHODS]
            print(
                f"{name:<58} | "
                + " | ".join(f"{c:12.2f}" if c is not None else f"{'—':>12}" for c in cells)
                + " | "
                + " | ".join(
                    f"{v:12.2f}" if (v := published[d].get(name)) is not None else f"{'—':>12}"
                    for d in PUBLISHED
                )
            )
    table(res["summary"], ["nab_standard", "nab_reward_low_FP_rate", "nab_reward_low_FN_rate"])
    if first:
        print(
            "NAB's published standard scores on the same files (threshold optimised on the corpus): "
            + ", ".join(f"{d} {published[d]['corpus']:.1f}" for d in PUBLISHED)
        )
    outliers = tuple(dict.fromkeys((*CV_OUTLIERS, nab_threshold.get("history_outlier"))))
    seasonals = tuple(
        dict.fromkeys(
            (
                *((season, readings) for season in CV_SEASONS for readings in CV_READINGS),
                seasonal_key(nab_threshold),
            )
        )
    )
    threshold = data["sensor"]["threshold"]  # params.yaml's, with the NAB run's settings
    tolerance, correlation = (
        int(threshold["season_tolerance"]),
        float(threshold["season_readings_correlation"]),
    )
    scored = nab_scores(tmp, outliers, seasonals, tolerance, correlation)
    if first and nab_threshold.get("season_readings"):
        repeats = {name: f["repeat"] for name, (_, f) in scored.items()}
        on = [f"{name} {r:.2f}" for name, r in sorted(repeats.items()) if r is not None and r >= correlation]
        print(
            f"readings compared with a season back on {len(on)} of {len(repeats)} files (their normal data "
            f"repeat at a season with correlation ≥ {correlation:g}): {', '.join(on)}; "
            "the others' correlations "
            + ", ".join(
                f"{r:.2f}" if r is not None else "—"
                for _, r in sorted(repeats.items())
                if r is None or r < correlation
            )
        )
    grid_table = score_table(scored)
    cv = cross_validated([grid_table])
    labels = {"folder": "the other folders", "kfold": f"the other folds (files dealt into {KFOLD})"}
    for how, label in labels.items():
        (score,), groups = cv[how]
        print(
            f"autoencoder with season, reading comparison, history outlier level, threshold and cooldown "
            f"chosen on {label} "
            f"(grid {[fmt_season(k) for k in seasonals]} × {outliers} σ × {CV_VALUES} σ × {CV_COOLDOWNS} "
            "rows): "
            + ", ".join(
                f"{h} {sc:.1f} (chosen {fmt_season(k)}, {fmt_outlier(o)}, {v:g} σ, {c})"
                for h, (k, o, v, c), (sc,) in groups
            )
            + f"; all files {score:.1f}"
        )
    out = {m: float(res["summary"][m]["nab_standard"]) for m in METHODS if m in res["summary"]}
    deals = [score for (score,) in repeated_kfold([grid_table])]
    print(
        f"autoencoder with the same grid chosen on the other folds of {len(deals)} random deals of the files "
        f"into {KFOLD}: mean {np.mean(deals):.1f} (deals {min(deals):.1f}–{max(deals):.1f})"
    )
    out["cross_validated"] = cv["folder"][0][0]
    out["cross_validated_kfold"] = cv["kfold"][0][0]
    out["cross_validated_kfold_deals"] = float(np.mean(deals))
    setting = run_setting(nab_threshold)
    alone = readings_on(
        score_table(nab_scores(tmp, outliers, seasonals, tolerance, correlation, errors=False), (setting,))
    )
    alone_fixed = normalised_score(*np.sum([per[setting] for per in alone.values()], axis=0))
    cv_alone = {how: v[0] for how, v in cv_scores([alone]).items()}
    print(
        "readings compared with a season back alone (no model; the detector's season_readings part): "
        f"at the run's setting {alone_fixed:.1f}; cross-validated: leave one folder out "
        f"{cv_alone['folder']:.1f}, {KFOLD}-fold {cv_alone['kfold']:.1f}, {KFOLD_DEALS} deals "
        f"{cv_alone['deals']:.1f}"
    )
    out["readings_alone"] = alone_fixed
    on = readings_on(grid_table)
    cv_on = {how: v[0] for how, v in cv_scores([on]).items()}
    print(
        "the same with season_readings on for every file (its on/off not chosen in the grid): "
        f"leave one folder out {cv_on['folder']:.1f}, {KFOLD}-fold {cv_on['kfold']:.1f}, "
        f"{KFOLD_DEALS} deals {cv_on['deals']:.1f}"
    )
    out["readings_on"] = cv_on["folder"]
    out["readings_on_kfold"] = cv_on["kfold"]
    out["readings_on_kfold_deals"] = cv_on["deals"]
    return out, scored, grid_table


def cv_target(label: str, seeds: list[int], scores: list[float]) -> str:
    """The issue's target line for one cross-validation: ≥ 67.3 mean, every seed ≥ 64, spread ≤ 3."""
    mean, spread = float(np.mean(scores)), max(scores) - min(scores)
    met = mean >= 67.3 and min(scores) >= 64 and spread <= 3
    return (
        f"target cross-validated ({label}) ≥ 67.3 (ARTime's published score on these files), "
        f"every seed ≥ 64, spread ≤ 3 over seeds {seeds}: "
        + ", ".join(f"{v:.1f}" for v in scores)
        + f" → mean {mean:.1f}, spread {spread:.2f} → {'MET' if met else 'MISSED'}"
    )


def across_seeds(tables: list[Table], seeds: list[int], ways: dict[str, str]) -> None:
    """Print the cross-validations with one setting per held-out group chosen across the seeds' detectors
    (``held_out``: the setting whose worst seed scores best on the other files), the grid's and with
    ``season_readings`` on for every file, and the setting chosen that way on every file."""
    from aeflow.usecases.sensor.nab import normalised_score

    cv = cross_validated(tables)
    print(
        f"settings chosen across the {len(seeds)} seeds (per held-out group, the setting whose worst seed "
        "scores best on the other files; the same setting for every seed):"
    )
    for how, label in (("folder", ways["cross_validated"]), ("kfold", ways["cross_validated_kfold"])):
        print(
            f"  {label}: "
            + "; ".join(
                f"{h} chose {fmt_season(k)}, {fmt_outlier(o)}, {v:g} σ, {c}: "
                + ", ".join(f"{x:.1f}" for x in per)
                for h, (k, o, v, c), per in cv[how][1]
            )
        )
    _, grid, parts = grid_parts(tables)
    chosen = safest(parts.sum(axis=1))
    (k, o, v, c), on_all = grid[chosen], [normalised_score(*per) for per in parts[:, :, chosen].sum(axis=1)]
    print(
        f"  chosen the same way on all {parts.shape[1]} files (the setting to run on new series): "
        f"{fmt_season(k)}, {fmt_outlier(o)}, {v:g} σ, {c}: " + ", ".join(f"{x:.1f}" for x in on_all)
    )
    deals = [float(np.mean(per)) for per in zip(*repeated_kfold(tables), strict=True)]
    for scores, label in zip((cv["folder"][0], cv["kfold"][0], deals), ways.values(), strict=True):
        print(cv_target(f"{label}, chosen across seeds", seeds, scores))
    on = cv_scores([readings_on(t) for t in tables])
    print(
        "the same with season_readings on for every file, chosen across seeds: "
        + "; ".join(
            f"{label} " + ", ".join(f"{x:.1f}" for x in on[how]) + f" → {np.mean(on[how]):.1f}"
            for how, label in zip(("folder", "kfold", "deals"), ways.values(), strict=True)
        )
    )


def readings_on(table: Table) -> Table:
    """``table`` with only the settings that compare readings with a season back (``season_readings``)."""
    return {name: {g: v for g, v in per.items() if g[0][1]} for name, per in table.items()}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--days", type=float, default=42)
    ap.add_argument("--skip-nab", action="store_true")
    ap.add_argument(
        "--skip-simulator", action="store_true", help="NAB only: no simulator run, throughput or serving"
    )
    ap.add_argument("--skip-serve", action="store_true")
    ap.add_argument(
        "--nab-dir",
        type=Path,
        default=SHARED / "nab",
        help="a NAB-layout folder: data/<folder>/*.csv, labels/combined_windows.json, results/<detector>/",
    )
    ap.add_argument("--nab-set", nargs="*", default=[], help="sensor.threshold overrides for the NAB run")
    ap.add_argument(
        "--nab-seeds", nargs="*", type=int, default=[], help="seeds of the NAB runs (default: params.yaml's)"
    )
    ap.add_argument(
        "--nab-members",
        type=int,
        default=None,
        help=f"sensor.model.members for the NAB runs: models per file (default {NAB_MODEL['members']})",
    )
    args = ap.parse_args()
    nab_threshold = dict(NAB_THRESHOLD)
    for item in args.nab_set:
        key, _, value = item.partition("=")
        nab_threshold[key] = yaml.safe_load(value)
    base = yaml.safe_load((ROOT / "params.yaml").read_text())
    base["sensor"]["train"]["progress_bar"] = False
    nab_base = json.loads(json.dumps(base))
    nab_base["sensor"]["model"].update(NAB_MODEL)
    if args.nab_members is not None:
        nab_base["sensor"]["model"]["members"] = args.nab_members
    with tempfile.TemporaryDirectory() as tmp_dir:
        tmp = Path(tmp_dir)
        os.chdir(tmp)
        if not args.skip_simulator:
            simulator(base, args.days, tmp, args.skip_serve)
        if not args.skip_nab:
            nab(nab_base, nab_threshold, args.nab_seeds, args.nab_dir.resolve(), tmp)
    return 0


def simulator(base: dict, days: float, tmp: Path, skip_serve: bool) -> None:
    """The simulator run with its targets, the pyfunc's throughput and (unless ``skip_serve``) the served
    model's latency."""
    keys = ["event_recall", "far", "f1", "roc_auc", "pr_auc", "nab_standard"]
    data = json.loads(json.dumps(base))
    data["sensor"]["ingest"]["days"] = days
    sim = run_stages(data, tmp / "sim")
    print(f"\n== simulator: {days:g} days, faults {sim['events']}, training {sim['train_seconds']:.0f} s")
    table(sim["summary"], keys)
    ae = sim["summary"]["autoencoder"]
    ok = ae["event_recall"] >= 0.95 and ae["far"] <= 0.01
    print(
        f"target event recall ≥ 0.95 at FAR ≤ 1 %: recall {ae['event_recall']:.3f}, "
        f"FAR {ae['far']:.4f} → "
        f"{'MET' if ok else 'MISSED'}"
    )
    top1, top2 = ae.get("attribution_top1"), ae.get("attribution_top2")
    if top1 is not None and top2 is not None:
        kinds = {k: v for per in sim["series"].values() for k, v in
                 per["autoencoder"].get("attribution_top1_by_kind", {}).items()}  # fmt: skip
        print(
            f"target faulty sensor named first for ≥ 90 % and in the top 2 for ≥ 98 % of the "
            f"{ae['attribution_readings']} flagged fault readings: {100 * top1:.1f} %, "
            f"{100 * top2:.1f} % → "
            f"{'MET' if top1 >= 0.9 and top2 >= 0.98 else 'MISSED'} (named first, by kind: "
            + ", ".join(f"{k} {100 * v:.0f} %" for k, v in sorted(kinds.items()))
            + ")"
        )

    # Throughput of the pyfunc (scaler + windows + model + threshold + which sensor) on one long
    # request: the simulated readings with their injected faults, repeated to 200,000 rows (flagged
    # readings pay one extra model pass per sensor for their attribution).
    import mlflow
    import pandas as pd

    from aeflow.usecases.sensor.sources import read_series

    mlflow.set_tracking_uri(f"sqlite:///{tmp / 'sim' / 'mlflow.db'}")
    pyfunc = mlflow.pyfunc.load_model("models:/aeflow-sensor/1")
    sensors = pyfunc.unwrap_python_model().detector.sensors
    readings = read_series(tmp / "sim" / "data" / "interim" / "sensor" / "series")[0].frame[sensors]
    frame = pd.concat([readings] * (200_000 // len(readings) + 1), ignore_index=True).head(200_000)
    pyfunc.predict(frame.iloc[:1000])
    start = time.perf_counter()
    answer = pyfunc.predict(frame)
    rate = len(frame) / (time.perf_counter() - start)
    print(
        f"pyfunc throughput with attribution: {rate:,.0f} windows/s on CPU ({answer['flag'].mean():.1%} "
        f"of the readings flagged and attributed by repair; target ≥ 50,000): "
        f"{'MET' if rate >= 50_000 else 'MISSED'}"
    )
    if not skip_serve:
        p50, p99 = serve_latency(tmp / "sim")
        print(f"served model, 1-row requests over HTTP: p50 {p50:.1f} ms, p99 {p99:.1f} ms")


def nab(base: dict, nab_threshold: dict, seeds: list[int], nab_dir: Path, tmp: Path) -> None:
    """The NAB runs, one per seed, with their targets and the detectors averaging several seeds' scores."""
    seeds = seeds or [int(base["seed"])]
    done = {
        seed: nab_run(base, nab_threshold, seed, tmp / f"nab-{seed}", seed == seeds[0], nab_dir)
        for seed in seeds
    }
    runs = {seed: found for seed, (found, _, _) in done.items()}
    scored = {seed: per_file for seed, (_, per_file, _) in done.items()}
    tables = [grid for _, _, grid in done.values()]
    ae = float(np.mean([r["autoencoder"] for r in runs.values()]))
    best_baseline = max(
        float(np.mean([r[m] for r in runs.values()])) for m in METHODS[1:] if m in runs[seeds[0]]
    )
    ok = ae >= 60 and ae > best_baseline
    print(
        f"\ntarget NAB standard ≥ 60 and above every baseline (mean over seeds {seeds}): autoencoder "
        + ", ".join(f"{r['autoencoder']:.1f}" for r in runs.values())
        + f" → {ae:.1f}; cross-validated "
        + ", ".join(f"{r['cross_validated']:.1f}" for r in runs.values())
        + f"; best baseline {best_baseline:.1f} → {'MET' if ok else 'MISSED'}"
    )
    ways = {
        "cross_validated": "leave one folder out",
        "cross_validated_kfold": f"{KFOLD}-fold over files",
        "cross_validated_kfold_deals": f"{KFOLD}-fold, {KFOLD_DEALS} deals",
    }
    for key, label in ways.items():
        print(cv_target(f"{label}, each seed choosing on its own", seeds, [r[key] for r in runs.values()]))
    if len(seeds) > 1:
        across_seeds(tables, seeds, ways)
    for key, label in {
        "readings_on": "leave one folder out",
        "readings_on_kfold": f"{KFOLD}-fold over files",
        "readings_on_kfold_deals": f"{KFOLD}-fold, {KFOLD_DEALS} deals",
    }.items():
        scores = [r[key] for r in runs.values()]
        print(
            f"cross-validated ({label}) with season_readings on for every file: "
            + ", ".join(f"{v:.1f}" for v in scores)
            + f" → mean {np.mean(scores):.1f}, spread {max(scores) - min(scores):.1f}"
        )
    print(
        "readings compared with a season back alone (no model), at the run's setting: "
        + ", ".join(f"{r['readings_alone']:.1f}" for r in runs.values())
    )
    raw = [r["autoencoder"] for r in runs.values()]
    print(f"seed spread of the (not cross-validated) score: {max(raw) - min(raw):.1f} points")
    fixed = run_setting(nab_threshold)
    labels = {
        "fixed": f"at {fixed[2]:g} σ, cooldown {fixed[3]}",  # and the run's season and history_outlier
        "folder": ways["cross_validated"],
        "kfold": ways["cross_validated_kfold"],
        "deals": ways["cross_validated_kfold_deals"],
    }
    for size in range(2, min(3, len(seeds)) + 1):
        combos = seed_ensembles(scored, size, fixed)
        print(
            f"detectors averaging the scores of {size} of these seeds' detectors "
            f"({len(combos)} combinations; mean, min–max, spread):"
        )
        for key, label in labels.items():
            v = [r[key] for r in combos]
            spread = max(v) - min(v)
            print(f"  {label:<26} {np.mean(v):5.1f}  {min(v):5.1f}–{max(v):5.1f}  spread {spread:4.1f}")


if __name__ == "__main__":
    sys.exit(main())
