"""answer_questions: the seed's four questions, answered with numbers on the user's own data.

1. *Is this just fancy PCA?* and 2. *Which latent size?* — from the latent sweep (``<uc>_sweep.json``):
   AE and PCA test MSE at each k, the round(log2 D) rule and the knee (smallest k within 10 % of the best
   AE error).
3. *Why are my reconstructions blurry?* — :mod:`aeflow.usecases.mnist.questions` checks, each with a verdict
   and its evidence: latent size against the rule and the knee, loss against the data type, train/test
   leakage, under-training and over-fitting (from the training run's ``loss.csv``), and capacity (a wider
   retraining, when ``questions.capacity_check`` asks for it).
4. *Can a vanilla autoencoder generate?* — answered by compare_variants (the report shows both).

Plus what compression buys downstream (logistic regression and a small MLP on raw pixels, PCA codes and
AE codes of the same size: accuracy, fit and predict time) and the codes in two and three dimensions (PNG
and one offline interactive HTML page).

Writes ``results/<uc>/questions.json`` and ``<plots>/questions/``; logs the same numbers (``questions/*``,
``downstream/*``) and figures to the training run in MLflow.
"""

from __future__ import annotations

import csv
import math
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from aeflow.errors import DataError
from aeflow.io import atomic_dir, read_json, write_json

if TYPE_CHECKING:
    from aeflow.config import Params
    from aeflow.models.configs import AEConfig


def _losses(path: Path) -> tuple[list[float], list[float]]:
    if not path.is_file():
        raise DataError(f"{path}: missing (the train stage writes it). Fix: dvc repro train.")
    with path.open(encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    train = [float(r["train_loss"]) for r in rows if r.get("train_loss")]
    val = [float(r["val_loss"]) for r in rows if r.get("val_loss")]
    return train, val


def _wider(model: AEConfig, factor: int) -> AEConfig:
    """The same architecture with every width multiplied by ``factor`` (latent size unchanged)."""
    return model.model_copy(
        update={
            "channels": [c * factor for c in model.channels],
            "hidden_dims": [h * factor for h in model.hidden_dims],
        }
    )


def run(
    use_case: str,
    params: Params,
    data: Path,
    models: Path,
    sweep: Path,
    loss_csv: Path,
    results: Path,
    plots: Path,
) -> dict[str, Any]:
    """Answer the questions for ``use_case``; see the module docstring."""
    from aeflow import tracking
    from aeflow.data.images import load_image_splits
    from aeflow.evaluation.baselines import PCABaseline
    from aeflow.evaluation.metrics import reconstruction_metrics
    from aeflow.layout import Layout
    from aeflow.models.inference import encode, predict
    from aeflow.models.registry import load_model
    from aeflow.report.figures import bar_chart
    from aeflow.report.projection import latent_projections
    from aeflow.training.service import TrainingJob, TrainingPlan, fit_jobs, resume_folder
    from aeflow.usecases.mnist import questions as q
    from aeflow.usecases.mnist.downstream import compare_classifiers

    section = params.use_case(use_case)
    cfg = section.questions
    for f in (models / "model.pt", models / "run.json", sweep):
        if not f.is_file():
            raise DataError(f"{f}: missing. Fix: run the earlier stages first (dvc repro).")
    run_info = read_json(models / "run.json")
    model = load_model(str(models / "model.pt"))
    splits = load_image_splits(data)
    (train_x, train_y), (val_x, _), (test_x, test_y) = splits["train"], splits["val"], splits["test"]
    input_size = math.prod(train_x.shape[1:])
    k = int(model.latent_dim)
    sweep_info = read_json(sweep)
    sweep_rows = [{"k": int(name[1:]), **row} for name, row in sweep_info["by_k"].items()]
    train_losses, val_losses = _losses(loss_csv)
    test_mse = reconstruction_metrics(predict(model, test_x), test_x)["mse"]

    checks = [
        q.check_latent_size(k, input_size, sweep_rows),
        q.check_loss_vs_data(section.model.loss, train_x),
        q.check_leakage(train_x, test_x),
        q.check_under_training(val_losses),
        q.check_over_fitting(train_losses, val_losses),
    ]
    wider_mse = None
    if cfg.capacity_check:  # through the training service: a killed stage resumes this fit
        job = TrainingJob(
            model=_wider(section.model, cfg.capacity_factor),
            train=section.train.model_copy(update={"progress_bar": False}),
            input_shape=list(train_x.shape[1:]),
            run_name=f"{use_case}-capacity-check",
            description=lambda model, fit: "",
            arrays=(train_x, None, val_x, None),
            data_digest=(train_x, val_x),
            registrar=None,
            track=False,  # one number of this stage's run, not a run of its own
            best_weights=False,
        )
        work = Layout(use_case).fits("questions")
        root = resume_folder(work)
        (wide,) = fit_jobs(
            params, TrainingPlan(use_case, [job], stage="answer_questions"), str(data), root, work
        )
        wider_mse = reconstruction_metrics(predict(wide.load(), test_x), test_x)["mse"]
        shutil.rmtree(root, ignore_errors=True)
    checks.append(q.check_capacity(test_mse, wider_mse))
    blur = q.blur_report(checks)

    # Downstream: the same classifiers on raw pixels, PCA codes and AE codes of the same size.
    rng = np.random.default_rng(params.seed)
    rows = rng.permutation(len(train_x))[: cfg.downstream_max_train]
    tr_x, tr_y = train_x[rows], train_y[rows]
    pca = PCABaseline(k).fit(train_x)
    features = {
        f"raw pixels ({input_size})": (
            tr_x.reshape(len(tr_x), -1),
            tr_y,
            test_x.reshape(len(test_x), -1),
            test_y,
        ),
        f"PCA codes ({k})": (pca.encode(tr_x), tr_y, pca.encode(test_x), test_y),
        f"AE codes ({k})": (encode(model, tr_x), tr_y, encode(model, test_x), test_y),
    }
    downstream = compare_classifiers(features, params.seed, mlp_hidden=tuple(cfg.mlp_hidden))
    raw_name = next(iter(features))
    for r in downstream:
        base = next(b for b in downstream if b["features"] == raw_name and b["classifier"] == r["classifier"])
        r["fit_speedup_vs_raw"] = base["fit_seconds"] / r["fit_seconds"] if r["fit_seconds"] > 0 else None
        r["accuracy_change_vs_raw"] = r["accuracy"] - base["accuracy"]

    test_codes = encode(model, test_x)
    views = latent_projections(
        test_codes[: cfg.projection_points], test_y[: cfg.projection_points], f"AE codes (k={k})"
    )

    knee_k = q.knee(sweep_rows)
    summary = {
        "latent_dim": k,
        "input_size": input_size,
        "rule_of_thumb_k": q.rule_of_thumb_latent(input_size),
        "knee_k": knee_k,
        "test_mse": test_mse,
        "blurry": blur,
        "downstream": downstream,
        "projection": {"how_2d": views["how_2d"], "how_3d": views["how_3d"]},
    }
    classifiers = sorted({r["classifier"] for r in downstream})

    def per_classifier(key: str) -> dict[str, list[float]]:
        """``key`` of every feature set, one bar series per classifier."""
        cell = {(r["features"], r["classifier"]): r[key] for r in downstream}
        return {c: [cell[f, c] for f in features] for c in classifiers}

    accuracy_png = bar_chart(
        list(features),
        per_classifier("accuracy"),
        "test accuracy",
        "Classifiers on raw pixels vs codes of the same size",
    )
    fit_png = bar_chart(
        list(features), per_classifier("fit_seconds"), "fit time (s)", "What compression buys: fit time"
    )
    with atomic_dir(plots / "questions") as tmp:
        (tmp / "codes_2d.png").write_bytes(views["png_2d"])
        if views["png_3d"] is not None:
            (tmp / "codes_3d.png").write_bytes(views["png_3d"])
        (tmp / "codes.html").write_text(views["html"], encoding="utf-8")
        (tmp / "downstream_accuracy.png").write_bytes(accuracy_png)
        (tmp / "downstream_fit_time.png").write_bytes(fit_png)
        write_json(results, summary)

    flat: dict[str, float] = {
        "questions/blur_warnings": float(blur["warnings"]),
        "questions/knee_k": float(knee_k) if knee_k is not None else float("nan"),
    }
    for r in downstream:
        key = f"{r['features'].split(' (')[0].replace(' ', '_')}_{r['classifier'].split(' ')[0].lower()}"
        flat[f"downstream/{key}_accuracy"] = r["accuracy"]
        flat[f"downstream/{key}_fit_seconds"] = r["fit_seconds"]
    tracking.log_results(
        params.tracking,
        run_info,
        metrics=flat,
        artifacts=[(f, "questions") for f in sorted((plots / "questions").iterdir())]
        + [(results, "questions")],
        tags={f"aeflow.blur.{c['check']}": c["verdict"] for c in checks},
    )
    return summary
