"""Fit an autoencoder with Lightning: the one training routine behind the train stage, the latent-size
sweep and the benchmarks.

It takes arrays and returns the fitted model; what to do with files and runs is the caller's business
(loggers and callbacks are passed in).
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytorch_lightning as pl
import torch

from aeflow.config import TrainParams
from aeflow.data.datamodules import PairDataModule
from aeflow.errors import ParamsError
from aeflow.models.base import BaseAutoencoder
from aeflow.models.registry import build_model


@dataclass
class FitResult:
    """The fitted model (best validation weights when there is a validation split) and a summary."""

    model: BaseAutoencoder
    epochs: int
    best_val_loss: float | None
    best_checkpoint: str | None
    seconds: float
    images_per_second: float


def quiet_lightning() -> None:
    """Silence Lightning's start-up chatter (GPU/TPU availability, tips) that is noise on CPU-only runs."""
    for name in ("pytorch_lightning", "lightning.pytorch", "lightning_fabric", "lightning"):
        logging.getLogger(name).setLevel(logging.WARNING)
    warnings.filterwarnings("ignore", ".*does not have many workers.*")
    warnings.filterwarnings("ignore", ".*GPU available but not used.*")
    warnings.filterwarnings("ignore", ".*Total length of .* across ranks is zero.*")
    warnings.filterwarnings("ignore", ".*`training_step` returned.*")
    warnings.filterwarnings("ignore", ".*LeafSpec.*is deprecated.*")


def check_strategy(name: str) -> None:
    """Stop on an unknown ``train.strategy`` with the names Lightning knows (before any process starts)."""
    import difflib

    from pytorch_lightning.strategies import StrategyRegistry

    known = ["auto", *StrategyRegistry.available_strategies()]
    if name not in known:
        close = difflib.get_close_matches(name, known, n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise ParamsError(
            f"train.strategy: unknown Lightning strategy {name!r}.{hint} Available: {', '.join(known)}."
        )


def make_trainer(
    train: TrainParams,
    *,
    epochs: int | None = None,
    logger: Any = False,
    callbacks: Sequence[pl.Callback] = (),
    checkpoint_dir: Path | None = None,
    has_val: bool = True,
    progress_bar: bool | None = None,
) -> pl.Trainer:
    """A Trainer configured from params (CPU, one process and deterministic by default).

    ``train.strategy``/``devices``/``num_nodes`` scale the same run out (DDP & co.); Lightning's own
    loggers and checkpointing write from rank 0 only, so a distributed fit still makes one MLflow run.
    """
    from pytorch_lightning.callbacks import ModelCheckpoint, RichProgressBar

    check_strategy(train.strategy)
    cbs = list(callbacks)
    show_progress = train.progress_bar if progress_bar is None else progress_bar
    if show_progress:
        cbs.append(RichProgressBar(leave=True))
    if checkpoint_dir is not None:
        cbs.append(
            ModelCheckpoint(
                dirpath=str(checkpoint_dir),
                filename="best-{epoch:03d}",
                monitor="val/loss" if has_val else "train/loss",
                mode="min",
                save_top_k=1,
                save_last=True,
            )
        )
    return pl.Trainer(
        max_epochs=epochs or train.epochs,
        accelerator=train.accelerator,
        strategy=train.strategy,
        devices=train.devices,
        num_nodes=train.num_nodes,
        deterministic=train.deterministic,
        logger=logger,
        callbacks=cbs,
        enable_checkpointing=checkpoint_dir is not None,
        enable_progress_bar=show_progress,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        log_every_n_steps=10,
    )


def fit_autoencoder(
    model_section: dict[str, Any],
    train_x: np.ndarray | None,
    val_x: np.ndarray | None,
    train: TrainParams,
    seed: int,
    *,
    datamodule: pl.LightningDataModule | None = None,
    input_shape: Sequence[int] | None = None,
    train_target: np.ndarray | None = None,
    val_target: np.ndarray | None = None,
    epochs: int | None = None,
    logger: Any = False,
    callbacks: Sequence[pl.Callback] = (),
    checkpoint_dir: Path | None = None,
    output: str = "sigmoid",
    progress_bar: bool | None = None,
    where: str = "model",
) -> FitResult:
    """Train the variant named in ``model_section`` on ``train_x`` (targets default to the inputs).

    Data that does not fit the in-memory (input, target) arrays (e.g. spectrogram patches cut on the fly)
    comes as a ready ``datamodule`` with the ``input_shape`` of one example instead of ``train_x``/``val_x``.
    """
    import time

    quiet_lightning()
    pl.seed_everything(seed, workers=True, verbose=False)
    if train.num_threads:
        torch.set_num_threads(train.num_threads)
    optim = {"lr": train.lr, "weight_decay": train.weight_decay, "scheduler": train.scheduler}
    if datamodule is None:
        if train_x is None:
            raise ValueError("fit_autoencoder needs train_x or a datamodule")
        input_shape = list(train_x.shape[1:])
        has_val = val_x is not None and len(val_x) > 0
        dm: pl.LightningDataModule = PairDataModule(
            train_x,
            val_x if has_val else None,
            train.batch_size,
            train_target=train_target,
            val_target=val_target,
            augment=train.augment,
        )
        n_train = len(train_x)
    else:
        if input_shape is None:
            raise ValueError("a datamodule needs the input_shape of one example")
        dm = datamodule
        has_val = getattr(dm, "val_set", None) is not None
        n_train = len(dm.train_set)  # type: ignore[attr-defined]
    model = build_model(model_section, list(input_shape), optim=optim, output=output, where=where)
    trainer = make_trainer(
        train,
        epochs=epochs,
        logger=logger,
        callbacks=callbacks,
        checkpoint_dir=checkpoint_dir,
        has_val=has_val,
        progress_bar=progress_bar,
    )
    start = time.perf_counter()
    trainer.fit(model, datamodule=dm)
    seconds = time.perf_counter() - start
    best_path, best_val = None, None
    ckpt = trainer.checkpoint_callback
    if ckpt is not None and getattr(ckpt, "best_model_path", ""):
        best_path = ckpt.best_model_path
        state = torch.load(best_path, map_location="cpu", weights_only=True)["state_dict"]
        model.load_state_dict(state)
        if has_val and ckpt.best_model_score is not None:
            best_val = float(ckpt.best_model_score)
    model.eval()
    n_epochs = trainer.current_epoch
    return FitResult(
        model=model,
        epochs=n_epochs,
        best_val_loss=best_val,
        best_checkpoint=best_path,
        seconds=seconds,
        images_per_second=n_train * max(n_epochs, 1) / max(seconds, 1e-9),
    )


def predict(model: BaseAutoencoder, x: np.ndarray, batch_size: int = 1000) -> np.ndarray:
    """Reconstructions of ``x`` in data space, batched, without gradients."""
    model.eval()
    out = []
    with torch.no_grad():
        for i in range(0, len(x), batch_size):
            out.append(model(torch.from_numpy(np.ascontiguousarray(x[i : i + batch_size]))).cpu().numpy())
    return np.concatenate(out) if out else np.zeros_like(x)


def encode(model: BaseAutoencoder, x: np.ndarray, batch_size: int = 1000) -> np.ndarray:
    """Codes of ``x``, batched, without gradients."""
    model.eval()
    out = []
    with torch.no_grad():
        for i in range(0, len(x), batch_size):
            out.append(
                model.encode(torch.from_numpy(np.ascontiguousarray(x[i : i + batch_size]))).cpu().numpy()
            )
    return np.concatenate(out)
