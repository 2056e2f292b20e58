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
    model: Any, train_x: Any, test_x: Any, batch_size: int, clip_pca: bool
) -> dict[str, Any]:
    """Metrics of the AE and of PCA (same k, fitted on the same training images) on ``test_x``."""
    from aeflow.evaluation.baselines import PCABaseline
    from aeflow.evaluation.metrics import reconstruction_metrics
    from aeflow.training import predict

    ae_recon = predict(model, test_x, batch_size)
    pca = PCABaseline(model.latent_dim, clip=(0.0, 1.0) if clip_pca else None).fit(train_x)
    pca_recon = pca.reconstruct(test_x)
    ae = reconstruction_metrics(ae_recon, test_x)
    base = reconstruction_metrics(pca_recon, test_x)
    return {
        "ae": ae,
        "pca": base,
        "ae_over_pca_mse": ae["mse"] / base["mse"] if base["mse"] > 0 else None,
        "_recon": {"ae": ae_recon, "pca": pca_recon},
    }


def run(
    use_case: str, params: Params, data: Path, models: Path, metrics: Path, plots: Path
) -> dict[str, Any]:
    """Evaluate ``use_case``; see the module docstring."""
    from aeflow import tracking
    from aeflow.data.images import load_image_splits
    from aeflow.models.registry import load_model
    from aeflow.report.figures import image_rows
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
    result = compare_with_pca(model, train_x, test_x, section.evaluate.batch_size, section.evaluate.clip_pca)
    recon = result.pop("_recon")

    report = {
        "variant": model.variant_name,
        "latent_dim": model.latent_dim,
        "test_rows": len(test_x),
        "test": result,
        "train": {"epochs": run_info.get("epochs"), "best_val_loss": run_info.get("best_val_loss")},
    }
    write_json(metrics, report)

    chosen = fixed_indices(test_y, 12)
    png = image_rows(
        [test_x[chosen], recon["ae"][chosen], recon["pca"][chosen]], labels=["test", "AE", "PCA"]
    )
    figure = plots / "ae_vs_pca.png"
    with atomic_file(figure) as tmp:
        tmp.write_bytes(png)

    flat = {f"test/{k}": v for k, v in result["ae"].items()}
    flat.update({f"test/pca_{k}": v for k, v in result["pca"].items()})
    if result["ae_over_pca_mse"] is not None:
        flat["test/ae_over_pca_mse"] = result["ae_over_pca_mse"]
    tracking.log_to_run(
        params.tracking,
        run_info["run_id"],
        metrics=flat,
        artifacts=[(figure, "evaluation"), (metrics, "evaluation")],
    )
    return report
