"""evaluate: score the trained model on the test split beside PCA with the same number of components.

Writes ``metrics/<use_case>.json`` (the truth for ``dvc metrics``), an AE-vs-PCA reconstruction figure,
and logs the same numbers as ``test/*`` metrics to the training run in MLflow.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from aeflow.config import Params
from aeflow.errors import DataError
from aeflow.io import atomic_file, read_json, write_json


def compare_with_pca(
    model: Any, train_x: Any, test_x: Any, batch_size: int, clip_pca: bool, test_target: Any = None
) -> dict[str, Any]:
    """Metrics of the AE and of PCA (same k, fitted on the same clean training images) on ``test_x``.

    ``test_target`` (default: ``test_x``) is what reconstructions are scored against: the clean images
    when ``test_x`` are their noisy versions.
    """
    from aeflow.evaluation.baselines import PCABaseline
    from aeflow.evaluation.metrics import reconstruction_metrics
    from aeflow.training import predict

    target = test_x if test_target is None else test_target
    ae_recon = predict(model, test_x, batch_size)
    pca = PCABaseline(model.latent_dim, clip=(0.0, 1.0) if clip_pca else None).fit(train_x)
    pca_recon = pca.reconstruct(test_x)
    ae = reconstruction_metrics(ae_recon, target)
    base = reconstruction_metrics(pca_recon, target)
    return {
        "ae": ae,
        "pca": base,
        "ae_over_pca_mse": ae["mse"] / base["mse"] if base["mse"] > 0 else None,
        "_recon": {"ae": ae_recon, "pca": pca_recon},
    }


def run(
    use_case: str,
    params: Params,
    data: Path,
    models: Path,
    metrics: Path,
    plots: Path,
    noisy: Path | None = None,
) -> dict[str, Any]:
    """Evaluate ``use_case``; see the module docstring."""
    if use_case == "speech":
        from aeflow.stages.speech import evaluate

        if noisy is None:
            raise DataError("speech evaluation needs --noisy (the folder written by inject_noise)")
        return evaluate(params, data, noisy, models, metrics, plots / "evaluation")
    if use_case == "sensor":
        from aeflow.stages.sensor import evaluate as evaluate_sensor

        if noisy is None:
            raise DataError("sensor evaluation needs --noisy (the folder written by inject_noise)")
        return evaluate_sensor(params, data, noisy, models, metrics, plots / "evaluation")
    from aeflow import tracking
    from aeflow.data.images import load_image_splits, model_inputs
    from aeflow.evaluation.diagnostics import code_diagnostics
    from aeflow.evaluation.metrics import reconstruction_metrics
    from aeflow.models.registry import load_model
    from aeflow.report.figures import image_rows
    from aeflow.stages.noise import load_noisy
    from aeflow.stages.train import fixed_indices

    model_file, run_file = models / "model.pt", models / "run.json"
    for f in (model_file, run_file):
        if not f.is_file():
            raise DataError(f"{f}: missing. Fix: run the train stage first (dvc repro).")
    section = params.use_case(use_case)
    run_info = read_json(run_file)
    model = load_model(str(model_file))
    splits = load_image_splits(data)
    (train_x, _), (test_x, test_y) = splits["train"], splits["test"]
    needs_noisy = model.needs_noisy_pairs
    test_in, _ = model_inputs(splits, load_noisy(noisy) if needs_noisy and noisy else None, needs_noisy)[
        "test"
    ]
    result = compare_with_pca(
        model, train_x, test_in, section.evaluate.batch_size, section.evaluate.clip_pca, test_target=test_x
    )
    recon = result.pop("_recon")
    if needs_noisy:
        result["noisy_input"] = reconstruction_metrics(test_in, test_x)
    v = section.variants
    result["codes"] = code_diagnostics(
        model,
        test_x,
        jacobian_examples=v.jacobian_examples,
        iwae_samples=v.iwae_samples,
        iwae_examples=v.iwae_examples,
    )

    report = {
        "variant": model.variant_name,
        "latent_dim": model.latent_dim,
        "test_rows": len(test_x),
        "test": result,
        "train": {"epochs": run_info.get("epochs"), "best_val_loss": run_info.get("best_val_loss")},
    }
    write_json(metrics, report)

    chosen = fixed_indices(test_y, 12)
    rows = [test_x[chosen], recon["ae"][chosen], recon["pca"][chosen]]
    labels = ["test", "AE", "PCA"]
    if needs_noisy:
        rows.insert(1, test_in[chosen])
        labels.insert(1, "noisy")
    png = image_rows(rows, labels=labels)
    figure = plots / "ae_vs_pca.png"
    with atomic_file(figure) as tmp:
        tmp.write_bytes(png)

    flat = {f"test/{k}": v for k, v in result["ae"].items()}
    flat.update({f"test/pca_{k}": v for k, v in result["pca"].items()})
    flat.update({f"test/{k}": v for k, v in result["codes"].items()})
    flat.update({f"test/noisy_input_{k}": v for k, v in result.get("noisy_input", {}).items()})
    if result["ae_over_pca_mse"] is not None:
        flat["test/ae_over_pca_mse"] = result["ae_over_pca_mse"]
    tracking.log_results(
        params.tracking,
        run_info,
        metrics=flat,
        artifacts=[(figure, "evaluation"), (metrics, "evaluation")],
    )
    return report
