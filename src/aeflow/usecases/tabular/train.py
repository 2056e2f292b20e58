"""What the tabular train stage fits: one autoencoder on the encoded training rows (the normal rows of the
training split under the semi-supervised protocol), with the threshold set on the validation rows and the
encoder inside the model, registered as a pyfunc (``aeflow-tabular``) that answers with the top columns."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pytorch_lightning as pl

from aeflow.errors import DataError
from aeflow.tracking.callbacks import EpochFigure
from aeflow.training.service import TrainingJob, TrainingPlan
from aeflow.usecases.tabular.corrupt import read_split, split_info

if TYPE_CHECKING:
    from aeflow.config import Params

#: How the pyfunc detector is registered, here and by ``aeflow sync`` for a model trained offline.
REGISTRAR = "aeflow.usecases.tabular.serving:register_scorer_file"


def encoded_splits(params: Params, inputs: Path) -> tuple[Any, dict[str, np.ndarray]]:
    """The encoder fitted on the training rows, and every split encoded with it."""
    from aeflow.usecases.tabular.encoding import Encoder

    info = split_info(inputs)
    frames = {name: read_split(inputs, name)[0] for name in ("train", "val", "test")}
    enc = params.tabular.encoding
    encoder = Encoder.fit(
        frames["train"], info["numeric"], info["categorical"], enc.scaler, enc.max_categories
    )
    return encoder, {
        name: encoder.transform(f, str(inputs / f"{name}.parquet")) for name, f in frames.items()
    }


class EveryNthEpoch(EpochFigure):
    """:class:`~aeflow.tracking.callbacks.EpochFigure` drawn only at the first, every ``every``-th and the
    last epoch: a table trains for many short epochs, and one chart per epoch would cost more than them."""

    def __init__(self, render: Any, out_dir: Path, every: int) -> None:
        super().__init__(render, out_dir)
        self.every = max(1, every)

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        epoch = trainer.current_epoch + 1
        if epoch == 1 or epoch % self.every == 0 or epoch == trainer.max_epochs:
            super().on_train_epoch_end(trainer, pl_module)


def model_for(model: Any, width: int, latent_fraction: float) -> Any:
    """The ``model`` section with ``latent_dim: auto`` resolved for a table: ``latent_fraction`` of the
    encoded ``width`` (at least 1, below the width), not the images' log2 rule."""
    if model.latent_dim != "auto":
        return model
    return model.model_copy(update={"latent_dim": max(1, min(width - 1, round(width * latent_fraction)))})


def training_plan(params: Params, data: Path, inputs: Path) -> TrainingPlan:
    """One job: the autoencoder over the encoded training rows."""
    from aeflow.evaluation.thresholds import choose_threshold
    from aeflow.usecases.tabular.scorer import USE_CASE, TabularScorer

    cfg = params.tabular
    encoder, x = encoded_splits(params, inputs)
    if len(x["train"]) < 10:
        raise DataError(
            f"{inputs}: {len(x['train'])} training rows, too few to train on. Fix: use a larger table or a "
            "smaller tabular.split.test_fraction."
        )
    protocol = split_info(inputs)["protocol"]
    shown = x["val"][:2000]

    def render(module: Any, epoch: int) -> bytes:
        """What the model gets wrong after this epoch: the validation rows' error per column."""
        import torch

        from aeflow.report.figures import bar_chart

        v = torch.from_numpy(shown).to(module.device)
        squared = ((module(v) - v) ** 2).cpu().numpy()
        per_column = encoder.column_sums(squared).mean(axis=0).tolist()
        return bar_chart(
            encoder.columns,
            {"validation rows": per_column},
            "mean squared error",
            f"epoch {epoch}: reconstruction error per column",
        )

    def finish(model: Any, result: Any) -> tuple[dict[str, Any], dict[str, float]]:
        model.data_config = {"use_case": USE_CASE, "encoder": encoder.to_json(), "threshold": None}
        scorer = TabularScorer(model, model.data_config)
        val_scores = scorer.scores_of(scorer.column_errors(x["val"]))
        threshold, details = choose_threshold(val_scores, cfg.threshold)
        model.data_config["threshold"] = float(threshold)
        model.data_config["threshold_details"] = details
        summary = {
            "threshold": float(threshold),
            "threshold_details": details,
            "train_rows": len(x["train"]),
            "columns": len(encoder.columns),
            "encoded_width": encoder.width,
            "protocol": protocol,
        }
        return summary, {"threshold/value": float(threshold), "train/rows": float(len(x["train"]))}

    def describe(model: Any, result: Any) -> str:
        c = model.data_config
        explanation = c["threshold_details"].get("explanation", "")
        return (
            f"{model.variant_name} autoencoder over {len(encoder.columns)} columns "
            f"({encoder.width} encoded), "
            f"{protocol.replace('_', '-')} protocol; threshold {c['threshold']:.4g} ({explanation})."
        )

    job = TrainingJob(
        model=model_for(cfg.model, encoder.width, cfg.encoding.latent_fraction),
        train=cfg.train,
        input_shape=[encoder.width],
        run_name=f"tabular-{cfg.model.variant}-train",
        description=describe,
        output="identity",
        arrays=(x["train"], None, x["val"], None),
        data_digest=[x["train"], x["val"]],
        figures=lambda folder: [EveryNthEpoch(render, folder, every=max(1, cfg.train.epochs // 10))],
        finish=finish,
        hparams={
            "seed": params.seed,
            **cfg.model_dump(include={"model", "train", "encoding", "threshold"}),
        },
        registrar=REGISTRAR,
        unit="rows",
    )
    return TrainingPlan(USE_CASE, [job])
