"""What the mnist train stage fits: one autoencoder on the digits (noisy → clean pairs for a variant that
needs them), with the same fixed digits reconstructed after every epoch."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from aeflow.training.service import TrainingJob, TrainingPlan

if TYPE_CHECKING:
    from aeflow.config import Params


def training_plan(params: Params, data: Path, inputs: Path) -> TrainingPlan:
    """One job: the configured variant on ``data`` (and the noisy ``inputs`` when it denoises)."""
    from aeflow.data.images import fixed_indices, load_image_splits, model_inputs
    from aeflow.models.registry import get_variant
    from aeflow.tracking.callbacks import ReconstructionGrid
    from aeflow.usecases.mnist.corrupt import load_noisy

    section = params.mnist
    needs_noisy = get_variant(section.model.variant).needs_noisy_pairs
    splits = load_image_splits(data)
    pairs = model_inputs(splits, load_noisy(inputs) if needs_noisy else None, needs_noisy)
    (train_x, train_t), (val_x, val_t) = pairs["train"], pairs["val"]
    shown = "val" if len(val_x) else "test"
    idx = fixed_indices(splits[shown][1], section.train.num_recon_images)
    shown_in, shown_target = pairs[shown]
    fixed, fixed_target = shown_in[idx], None if shown_target is None else shown_target[idx]
    arrays = (train_x, train_t, val_x, val_t)

    def figures(folder: Path) -> list[object]:
        return [ReconstructionGrid(fixed, folder, targets=fixed_target)]

    def finish(model: object, result: object) -> tuple[dict[str, object], dict[str, float]]:
        return {}, {"train/latent_dim": model.latent_dim}  # type: ignore[attr-defined]

    job = TrainingJob(
        model=section.model,
        train=section.train,
        input_shape=list(train_x.shape[1:]),
        run_name=f"mnist-{section.model.variant}-train",
        description=lambda model, result: f"{model.variant_name} autoencoder, latent {model.latent_dim}.",
        arrays=arrays,
        data_digest=[a for a in arrays if a is not None],
        figures=figures,
        finish=finish,
        hparams={"seed": params.seed, **section.model_dump(include={"model", "train"})},  # what it reads
        unit="images",
    )
    return TrainingPlan("mnist", [job])
