"""mnist evaluate: the trained model on the test digits beside PCA with the same number of components.

Writes ``results/mnist/evaluation/scores.json`` (every number; the stage picks the headline for
``metrics/``), an AE-vs-PCA reconstruction figure, and logs the same numbers as ``test/*`` metrics to the
training run in MLflow.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from aeflow.errors import DataError
from aeflow.io import atomic_file, read_json, write_json
from aeflow.layout import SCORES

if TYPE_CHECKING:
    from aeflow.config import Params


def evaluate(
    params: Params, data: Path, noisy: Path, models: Path, results: Path, plots: Path
) -> dict[str, Any]:
    """Score the AE and PCA on the test split (noisy inputs for a denoising model)."""
    from aeflow import tracking
    from aeflow.data.images import fixed_indices, load_image_splits, model_inputs
    from aeflow.evaluation.baselines import compare_with_pca
    from aeflow.evaluation.diagnostics import code_diagnostics
    from aeflow.evaluation.metrics import reconstruction_metrics
    from aeflow.models.registry import load_model
    from aeflow.report.figures import image_rows
    from aeflow.usecases.mnist.corrupt import load_noisy

    model_file, run_file = models / "model.pt", models / "run.json"
    for f in (model_file, run_file):
        if not f.is_file():
            raise DataError(f"{f}: missing. Fix: run the train stage first (dvc repro).")
    section = params.mnist
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
    write_json(results / SCORES, report)

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
        artifacts=[(figure, "evaluation"), (results / SCORES, "evaluation")],
    )
    return report
