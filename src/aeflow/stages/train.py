"""train: fit the configured variant with Lightning, log the run to MLflow and register the model.

Outputs (each replaced only when training and registration succeed):

* ``<models>/model.pt`` – weights + plain hyperparameters (``torch.load(weights_only=True)``-safe);
* ``<models>/run.json`` – MLflow run id, registered model and version (evaluate logs into this run);
* ``<models>/checkpoints/`` – Lightning's best and last checkpoints;
* ``<plots>/loss.csv`` – per-epoch losses for ``dvc plots``;
* ``<plots>/recon/epoch_NNN.png`` – the same fixed digits reconstructed after every epoch.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

import numpy as np

from aeflow.config import Params
from aeflow.errors import DataError
from aeflow.io import atomic_dir, atomic_file, read_json, write_json


def check_validation(report: Path) -> None:
    """Refuse to train on data whose validation report is missing or failed."""
    if not report.is_file():
        raise DataError(
            f"{report}: validation report missing. Fix: run the validate stage first (dvc repro)."
        )
    if not read_json(report).get("success"):
        raise DataError(f"{report}: the data failed validation. Fix the data and run dvc repro again.")


def fixed_indices(labels: np.ndarray, n: int) -> np.ndarray:
    """Indices of ``n`` examples ordered by class (0, 1, …, 9, 0, …): the same digits every epoch/run."""
    order: list[int] = []
    by_class = {c: list(np.flatnonzero(labels == c)) for c in np.unique(labels)}
    while len(order) < min(n, len(labels)):
        for c in sorted(by_class):
            if by_class[c] and len(order) < n:
                order.append(by_class[c].pop(0))
    return np.array(order, dtype=np.int64)


def run(
    use_case: str,
    params: Params,
    data: Path,
    validation: Path,
    models: Path,
    plots: Path,
    noisy: Path | None = None,
) -> dict[str, Any]:
    """Train ``use_case`` on the ingested ``data`` (and ``noisy`` inputs for a denoising variant).

    For ``speech``, ``noisy`` is the folder of spectrogram features written by make_spectrograms.
    """
    if use_case == "speech":
        from aeflow.stages.speech import train

        if noisy is None:
            raise DataError("speech training needs --inputs (the folder written by make_spectrograms)")
        return train(params, noisy, validation, models, plots, str(data))
    if use_case == "sensor":
        from aeflow.stages.sensor import train as train_sensor

        if noisy is None:
            raise DataError("sensor training needs --inputs (the folder written by inject_noise)")
        return train_sensor(params, noisy, validation, models, plots, str(data))
    from aeflow import tracking
    from aeflow.data.images import load_image_splits, model_inputs
    from aeflow.models.registry import get_variant, save_model
    from aeflow.stages.noise import load_noisy
    from aeflow.tracking.callbacks import EpochHistory, ReconstructionGrid
    from aeflow.training import fit_autoencoder

    check_validation(validation)
    section = params.use_case(use_case)
    needs_noisy = get_variant(section.model.variant).needs_noisy_pairs
    splits = load_image_splits(data)
    pairs = model_inputs(splits, load_noisy(noisy) if needs_noisy and noisy else None, needs_noisy)
    (train_x, train_t), (val_x, val_t) = pairs["train"], pairs["val"]
    shown = "val" if len(val_x) else "test"
    idx = fixed_indices(splits[shown][1], section.train.num_recon_images)
    shown_in, shown_target = pairs[shown]
    fixed, fixed_target = shown_in[idx], None if shown_target is None else shown_target[idx]

    model_section = section.model.model_dump()
    tags = tracking.lineage_tags(use_case, "train", str(data), {tracking.TAG_VARIANT: section.model.variant})
    logger = tracking.make_logger(
        params.tracking, use_case, f"{use_case}-{section.model.variant}-train", tags, params.dump()
    )
    logger.log_hyperparams(tracking.flatten({"seed": params.seed, **section.model_dump(by_alias=True)}))

    with contextlib.ExitStack() as stack:
        models_tmp = stack.enter_context(atomic_dir(models))
        recon_tmp = stack.enter_context(atomic_dir(plots / "recon"))
        loss_tmp = stack.enter_context(atomic_file(plots / "loss.csv"))
        callbacks = [ReconstructionGrid(fixed, recon_tmp, targets=fixed_target), EpochHistory(loss_tmp)]
        result = fit_autoencoder(
            model_section,
            train_x,
            val_x,
            section.train,
            params.seed,
            train_target=train_t,
            val_target=val_t,
            logger=logger,
            callbacks=callbacks,
            checkpoint_dir=models_tmp / "checkpoints",
            where=f"{use_case}.model",
        )
        save_model(result.model, str(models_tmp / "model.pt"))
        summary = {
            "variant": result.model.variant_name,
            "latent_dim": result.model.latent_dim,
            "input_shape": list(result.model.input_shape),
            "epochs": result.epochs,
            "best_val_loss": result.best_val_loss,
            "train_seconds": round(result.seconds, 2),
            "train_images_per_second": round(result.images_per_second, 1),
        }
        logger.log_metrics(
            {"train/images_per_second": result.images_per_second, "train/latent_dim": result.model.latent_dim}
        )
        registration = tracking.log_and_register_model(
            params.tracking,
            logger.run_id,
            result.model,
            use_case,
            description=f"{result.model.variant_name} autoencoder, latent {result.model.latent_dim}, "
            f"trained {result.epochs} epochs on {data} (DVC hash {tags[tracking.TAG_DATA_HASH]}).",
        )
        write_json(
            models_tmp / "run.json",
            {
                **tracking.run_record(params.tracking, logger, use_case),
                **registration,
                **summary,
            },
        )
    logger.finalize("success")
    from aeflow.tracking.promotion import mark_candidate

    summary["aliases"] = mark_candidate(
        params.tracking, registration["registered_model"], registration["version"]
    )
    return summary
