"""Lightning datamodules over in-memory arrays.

Data for these use cases fits in memory, so batches come from ``TensorDataset`` with no worker processes:
on 2 cores, worker start-up and IPC would cost more than they save.
"""

from __future__ import annotations

import numpy as np
import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader, TensorDataset

from aeflow.data.images import random_affine
from aeflow.sections import AugmentParams


def _pairs(inputs: np.ndarray, targets: np.ndarray | None) -> TensorDataset:
    """One tensor when the target is the input itself (no second copy), else two."""
    x = torch.from_numpy(np.ascontiguousarray(inputs, dtype=np.float32))
    if targets is None:
        return TensorDataset(x)
    return TensorDataset(x, torch.from_numpy(np.ascontiguousarray(targets, dtype=np.float32)))


class PairDataModule(pl.LightningDataModule):
    """Serves ``(input, target)`` pairs; ``targets=None`` means reconstruct the input itself.

    Training batches of images are augmented on the fly (the same random transform for input and target,
    so a denoising pair stays aligned). Validation batches are never augmented.
    """

    def __init__(
        self,
        train: np.ndarray,
        val: np.ndarray | None,
        batch_size: int,
        train_target: np.ndarray | None = None,
        val_target: np.ndarray | None = None,
        augment: AugmentParams | None = None,
    ) -> None:
        super().__init__()
        self.train_set = _pairs(train, train_target)
        self.val_set = _pairs(val, val_target) if val is not None and len(val) else None
        self.batch_size = batch_size
        self.augment = augment

    def train_dataloader(self) -> DataLoader:
        return DataLoader(self.train_set, batch_size=self.batch_size, shuffle=True, drop_last=False)

    def val_dataloader(self) -> DataLoader:
        if self.val_set is None:
            return []  # type: ignore[return-value]  # Lightning skips validation on an empty list
        return DataLoader(self.val_set, batch_size=max(self.batch_size, 256), shuffle=False)

    def on_after_batch_transfer(self, batch: list[torch.Tensor], dataloader_idx: int) -> list[torch.Tensor]:
        trainer = self.trainer
        training = trainer is not None and trainer.training
        if len(batch) == 1:
            x = batch[0]
            if training and self.augment is not None and x.dim() == 4:
                x = random_affine(x, self.augment)
            return [x, x]
        x, y = batch
        if not training or self.augment is None or not self.augment.enabled or x.dim() != 4:
            return batch
        both = random_affine(torch.cat([x, y], dim=1), self.augment)
        return [both[:, : x.shape[1]], both[:, x.shape[1] :]]


class PatchDataset(torch.utils.data.Dataset):
    """Patches of ``patch_frames`` consecutive frames cut on the fly from time-concatenated features.

    ``inputs``/``targets`` are (bins, frames) matrices of many utterances joined in time; ``starts`` are
    the patch start frames (the speech use case's ``patch_starts`` keeps every patch inside one
    utterance). Cutting on the fly keeps memory at one copy of the features instead of one copy per
    overlapping patch (×4 at the default hop).

    With ``weights`` (same layout, e.g. :func:`aeflow.usecases.speech.spectrogram.loss_weights`) an item is
    ``(input, target, weight)`` and the model weights its per-bin loss by it.
    """

    def __init__(
        self,
        inputs: np.ndarray,
        targets: np.ndarray,
        starts: np.ndarray,
        patch_frames: int,
        weights: np.ndarray | None = None,
    ) -> None:
        self.inputs = torch.from_numpy(np.ascontiguousarray(inputs, dtype=np.float32))
        self.targets = torch.from_numpy(np.ascontiguousarray(targets, dtype=np.float32))
        self.weights = (
            None if weights is None else torch.from_numpy(np.ascontiguousarray(weights, dtype=np.float32))
        )
        if self.weights is not None and self.weights.shape != self.targets.shape:
            raise ValueError(
                f"weights {tuple(self.weights.shape)} must match targets {tuple(self.targets.shape)}"
            )
        self.starts = torch.from_numpy(np.asarray(starts, dtype=np.int64))
        self.patch_frames = patch_frames

    def __len__(self) -> int:
        return len(self.starts)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, ...]:
        s = int(self.starts[i])
        sl = slice(s, s + self.patch_frames)
        if self.weights is None:
            return self.inputs[None, :, sl], self.targets[None, :, sl]
        return self.inputs[None, :, sl], self.targets[None, :, sl], self.weights[None, :, sl]


class PatchDataModule(pl.LightningDataModule):
    """Serves (noisy patch, target patch) pairs for the speech denoiser; no augmentation."""

    def __init__(self, train: PatchDataset, val: PatchDataset | None, batch_size: int) -> None:
        super().__init__()
        self.train_set = train
        self.val_set = val if val is not None and len(val) else None
        self.batch_size = batch_size

    def train_dataloader(self) -> DataLoader:
        return DataLoader(self.train_set, batch_size=self.batch_size, shuffle=True)

    def val_dataloader(self) -> DataLoader:
        if self.val_set is None:
            return []  # type: ignore[return-value]
        return DataLoader(self.val_set, batch_size=max(self.batch_size, 256), shuffle=False)
