"""Lightning callbacks that record what happens during training.

They write files under ``plots/`` (for ``dvc plots`` and the report) and, when the Trainer has an
``MLFlowLogger``, log the same files to the run, so models never touch tracking code.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

import numpy as np
import pytorch_lightning as pl
import torch

from aeflow.io import atomic_file
from aeflow.report.figures import image_rows


def _mlflow_logger(trainer: pl.Trainer) -> Any:
    from pytorch_lightning.loggers import MLFlowLogger

    for logger in trainer.loggers:
        if isinstance(logger, MLFlowLogger):
            return logger
    return None


def _save_and_log(trainer: pl.Trainer, path: Path, png: bytes) -> None:
    """Write an epoch's figure and, when the run is tracked, log it under ``reconstructions/``."""
    with atomic_file(path) as tmp:
        tmp.write_bytes(png)
    logger = _mlflow_logger(trainer)
    if logger is None:
        return
    if hasattr(logger, "log_file"):  # aeflow's logger: goes offline if the store fails now
        logger.log_file(path, "reconstructions")
    else:
        logger.experiment.log_artifact(logger.run_id, str(path), "reconstructions")


class ReconstructionGrid(pl.Callback):
    """After every epoch, reconstruct the same fixed examples and save "originals above, recon below".

    Files are ``<out_dir>/epoch_001.png`` …; each is also logged to MLflow under ``reconstructions/``.
    """

    def __init__(self, inputs: np.ndarray, out_dir: Path | str, targets: np.ndarray | None = None) -> None:
        self.inputs = torch.from_numpy(np.asarray(inputs, dtype=np.float32))
        self.targets = None if targets is None else np.asarray(targets, dtype=np.float32)
        self.out_dir = Path(out_dir)

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.sanity_checking:
            return
        was_training = pl_module.training
        pl_module.eval()
        with torch.no_grad():
            recon = pl_module(self.inputs.to(pl_module.device)).cpu().numpy()
        pl_module.train(was_training)
        rows = [self.inputs.numpy()] if self.targets is None else [self.inputs.numpy(), self.targets]
        labels = ["input", "recon"] if self.targets is None else ["input", "target", "recon"]
        png = image_rows([*rows, recon], labels=labels)
        path = self.out_dir / f"epoch_{trainer.current_epoch + 1:03d}.png"
        _save_and_log(trainer, path, png)


class EpochHistory(pl.Callback):
    """Per-epoch means of every logged ``train/*`` and ``val/*`` metric, as a CSV for ``dvc plots``.

    Column names use ``_`` instead of ``/`` (``train_loss``) so the CSV is easy to plot anywhere.
    """

    def __init__(self, csv_path: Path | str) -> None:
        self.csv_path = Path(csv_path)
        self.rows: list[dict[str, float]] = []

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.sanity_checking:
            return
        row: dict[str, float] = {"epoch": trainer.current_epoch + 1}
        for key, value in sorted(trainer.callback_metrics.items()):
            if key.startswith(("train/", "val/")):
                row[key.replace("/", "_")] = float(value)
        self.rows.append(row)
        self.write()

    def state_dict(self) -> dict[str, Any]:  # kept in checkpoints: a resumed fit writes every epoch's row
        return {"rows": [dict(r) for r in self.rows]}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.rows = [dict(r) for r in state_dict.get("rows", [])]

    def write(self) -> None:
        fields = list(dict.fromkeys(k for row in self.rows for k in row))
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=fields, lineterminator="\n")
        writer.writeheader()
        for row in self.rows:
            writer.writerow({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in row.items()})
        with atomic_file(self.csv_path) as tmp:
            tmp.write_text(buf.getvalue(), encoding="utf-8")


class EpochFigure(pl.Callback):
    """After every epoch, draw one figure of what the model does now and save it as ``epoch_NNN.png``.

    The use case says what to draw (``render(module, epoch) -> PNG bytes``, e.g. a fixed validation
    utterance's noisy | denoised | clean spectrograms), so this shared callback knows no use case; the file
    goes to ``out_dir`` and, with an MLflow logger, under ``reconstructions/``.
    """

    def __init__(self, render: Any, out_dir: Path | str) -> None:
        self.render = render
        self.out_dir = Path(out_dir)

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.sanity_checking:
            return
        was_training = pl_module.training
        pl_module.eval()
        epoch = trainer.current_epoch + 1
        with torch.no_grad():
            png = self.render(pl_module, epoch)
        pl_module.train(was_training)
        path = self.out_dir / f"epoch_{epoch:03d}.png"
        _save_and_log(trainer, path, png)
