"""What the speech train stage fits: one spectrogram denoiser on patches of the featurized mixtures, with
one fixed validation utterance drawn (noisy | denoised | clean) after every epoch."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from aeflow.errors import DataError
from aeflow.io import load_arrays, read_json
from aeflow.training.service import TrainingJob, TrainingPlan

if TYPE_CHECKING:
    import torch

    from aeflow.config import Params
    from aeflow.usecases.speech.params import SpectrogramParams
    from aeflow.usecases.speech.spectrogram import FeatureStats


@dataclass(frozen=True)
class CompressedMagnitudeLoss:
    """The power-law compressed magnitude error of a log-mask network, in its own output units.

    The network outputs ``o = m̂ / mask_scale`` (a log ratio mask); the estimate is ``|Ŝ| = |Y|·exp(m̂)``.
    ``Σ |Y|^{2c}·(exp(κ·o) − exp(κ·t))² / Σ |Y|^{2c}`` with ``κ = c · mask_scale`` is then exactly
    ``Σ (|Ŝ|^c − |S̃|^c)²`` over the batch, divided by the weights' sum, where ``S̃ = |Y|·M`` is the
    clean magnitude as far as a mask within ``[mask_floor_db, 0]`` reaches. The weight ``|Y|^{2c}`` is the
    featurize stage's ``noisy_power`` weight at exponent c (normalised per utterance, as for the log loss).
    A module-level class rather than a closure: it must pickle for multi-process training.
    """

    kappa: float

    def __call__(
        self, output: torch.Tensor, target: torch.Tensor, weight: torch.Tensor | None
    ) -> torch.Tensor:
        import torch

        from aeflow.models.base import weighted_mse

        if weight is None:
            raise ValueError("compressed_magnitude loss needs the noisy_power weights of featurize")
        return weighted_mse(torch.exp(self.kappa * output), torch.exp(self.kappa * target), weight)


def training_loss(params: SpectrogramParams, stats: FeatureStats) -> CompressedMagnitudeLoss | None:
    """The loss ``params.loss`` asks for (``None``: the model's weighted MSE of the log mask)."""
    if params.loss == "compressed_magnitude":
        return CompressedMagnitudeLoss(params.loss_weight_exponent * stats.mask_scale)
    return None


def _snapshot(processed: Path, info: dict[str, Any], p: Any) -> Any:
    """``render(module, epoch)`` of the first validation utterance (train's if there is no validation)."""
    import torch

    from aeflow.report.figures import spectrograms
    from aeflow.usecases.speech.spectrogram import FeatureStats, apply_patchwise, estimate_from_output

    stats = FeatureStats.from_json(info["stats"])
    split = "val" if info["frames"].get("val") else "train"
    arrays = load_arrays(processed / f"{split}.npz")
    n = int(arrays["lengths"][0])
    inputs, targets = arrays["inputs"][:, :n], arrays["targets"][:, :n]
    inputs = np.asarray(inputs, dtype=np.float32)
    noisy_log = inputs * stats.std[:, None] + stats.mean[:, None]
    clean_log = estimate_from_output(noisy_log, targets, stats, p.target, p.mask_floor_db)

    def render(module: Any, epoch: int) -> bytes:
        def predict(batch: np.ndarray) -> np.ndarray:
            return module(torch.from_numpy(batch).to(module.device)).cpu().numpy()

        output = apply_patchwise(inputs, predict, p.patch_frames, p.cleaning_hop)
        denoised = estimate_from_output(noisy_log, output, stats, p.target, p.mask_floor_db)
        panels = [
            ("noisy", noisy_log),
            ("denoised", denoised),
            ("clean" if p.target == "magnitude" else "target", clean_log),
        ]
        return spectrograms(panels, info["sample_rate"], p.hop_length, f"epoch {epoch}")

    return render


def training_plan(params: Params, data: Path, processed: Path) -> TrainingPlan:
    """One job: the denoiser on the patches of ``processed`` (written by featurize)."""
    from aeflow.data.datamodules import PatchDataModule, PatchDataset
    from aeflow.tracking.callbacks import EpochFigure
    from aeflow.training.engine import fingerprint
    from aeflow.usecases.speech.spectrogram import FeatureStats, patch_starts

    cfg = params.speech
    p = cfg.spectrogram
    stats_file = processed / "stats.json"
    if not stats_file.is_file():
        raise DataError(f"{stats_file}: missing. Fix: run the featurize stage first (dvc repro).")
    info = read_json(stats_file)
    sets = {}
    for split, hop in (("train", p.patch_hop), ("val", p.patch_frames)):
        arrays = load_arrays(processed / f"{split}.npz")
        starts = patch_starts(arrays["lengths"], p.patch_frames, hop)
        sets[split] = PatchDataset(
            arrays["inputs"], arrays["targets"], starts, p.patch_frames, weights=arrays.get("weights")
        )
    if not len(sets["train"]):
        raise DataError(
            f"{processed / 'train.npz'}: no training patch of {p.patch_frames} frames fits in the clips. "
            "Fix: lower speech.spectrogram.patch_frames or use longer clips."
        )
    render = _snapshot(processed, info, p)
    digest = [
        fingerprint(*(load_arrays(processed / f"{s}.npz")[k] for k in ("inputs", "targets"))) for s in sets
    ]

    def finish(model: Any, result: Any) -> tuple[dict[str, Any], dict[str, float]]:
        model.data_config = {
            "use_case": "speech",
            "sample_rate": info["sample_rate"],
            "spectrogram": info["spectrogram"],
            "stats": info["stats"],
        }
        return {"target": p.target, "train_patches": len(sets["train"])}, {}

    job = TrainingJob(
        model=cfg.model,
        train=cfg.train,
        input_shape=[1, int(info["bins"]), p.patch_frames],
        run_name=f"speech-{cfg.model.variant}-train",
        description=lambda model, result: (
            f"{model.variant_name} spectrogram autoencoder ({p.target} target), latent {model.latent_dim}, "
            f"{info['sample_rate']} Hz."
        ),
        output="identity",
        datamodule=lambda: PatchDataModule(sets["train"], sets["val"], cfg.train.batch_size),
        data_digest=digest,
        figures=lambda folder: [EpochFigure(render, folder)],
        finish=finish,
        data_loss=training_loss(p, FeatureStats.from_json(info["stats"])),
        hparams={"seed": params.seed, **cfg.model_dump(include={"model", "train", "spectrogram"})},
        unit="patches",
    )
    return TrainingPlan("speech", [job])
