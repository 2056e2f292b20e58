"""``BaseAutoencoder``: the one Lightning module every variant subclasses.

It owns what all autoencoders share (encoder/decoder construction, the training/validation step, logging
and the optimiser). A variant overrides only what makes it different:

* :meth:`encode` – what the code is (a sparse AE squashes it with a sigmoid, a VAE returns the mean);
* :meth:`encode_for_training` – how a code is produced while training (a VAE samples);
* :meth:`prepare_batch` – what the likelihood sees (a Bernoulli VAE binarises);
* :meth:`recon_loss` – the reconstruction term (a VAE uses a proper likelihood);
* :meth:`reg_loss` – the regulariser (sparsity, contraction, KL), zero here.

Hyperparameters are plain dicts/lists/numbers so checkpoints load with ``torch.load(weights_only=True)``.
Tracking is not done here: the module only calls ``self.log``; loggers and callbacks are wired by the
train stage.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, ClassVar

import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from torch import nn

from aeflow.models.components import (
    ConvDecoder1d,
    ConvDecoder2d,
    ConvEncoder1d,
    ConvEncoder2d,
    LSTMDecoder,
    LSTMEncoder,
    MLPDecoder,
    MLPEncoder,
    TemporalConvDecoder,
    TemporalConvEncoder,
)
from aeflow.models.configs import AEConfig

#: ``(input, target)``, or ``(input, target, weight)`` with a per-element loss weight (speech: bin energy).
Batch = tuple[torch.Tensor, ...]
#: A use case's own reconstruction loss in data space: ``(output, target, weight or None) → scalar``.
DataLoss = Callable[[torch.Tensor, torch.Tensor, "torch.Tensor | None"], torch.Tensor]


def weighted_mse(prediction: torch.Tensor, target: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """Σ w·(prediction − target)² / Σ w: an MSE where each element counts ``weight`` times.

    Dividing by the total weight (not the element count) keeps the loss on the scale of a plain MSE, so
    learning rates tuned for it still fit, and equals it when every weight is 1.
    """
    return (weight * (prediction - target) ** 2).sum() / weight.sum().clamp_min(1e-12)


class BaseAutoencoder(pl.LightningModule):
    """Encoder → code → decoder, trained to reconstruct ``target`` from ``input``.

    Batches are ``(input, target)`` pairs: the same tensor twice for a plain autoencoder, (noisy, clean)
    for denoising — the pairing is data, made by the noise stage, not a different model.

    Args:
        config: the variant's config (its ``config_class``, or a mapping as in params.yaml).
        input_shape: shape of one example, e.g. ``[1, 28, 28]``.
        optim: ``lr``, ``weight_decay``, ``scheduler`` ("onecycle" or "constant").
        output: ``"sigmoid"`` for data in [0, 1] (pixels), ``"identity"`` for standardised real values.
    """

    config_class: ClassVar[type[AEConfig]] = AEConfig
    variant_name: ClassVar[str] = "base"
    #: Whether the code must be smaller than the input (checked when the model is built).
    undercomplete: ClassVar[bool] = False
    #: Whether the variant needs one flat code per example (a VAE samples ``(n, latent_dim)`` from its
    #: prior, the contractive penalty differentiates each code unit, the sparse one sets the bias of the
    #: encoder's last Linear), which ``temporal_conv``'s code per time step is not.
    needs_flat_code: ClassVar[bool] = False
    #: Whether training needs (noisy input, clean target) pairs from the noise stage.
    needs_noisy_pairs: ClassVar[bool] = False
    #: Whether the variant generates new examples from a prior (``sample``), which an ensemble of several
    #: such models, each with its own latent space, does not have.
    generative: ClassVar[bool] = False

    def __init__(
        self,
        config: AEConfig | dict[str, Any],
        input_shape: list[int],
        optim: dict[str, Any] | None = None,
        output: str = "sigmoid",
    ) -> None:
        super().__init__()
        # Typed params arrive typed; a mapping (saved hyperparameters, a test) is validated here.
        self.cfg = config if type(config) is self.config_class else self.config_class.model_validate(config)
        # Plain data only: a saved model loads with torch.load(weights_only=True).
        self.save_hyperparameters(
            {
                "config": self.cfg.model_dump(),
                "input_shape": list(input_shape),
                "optim": optim,
                "output": output,
            }
        )
        self.input_shape = tuple(int(s) for s in input_shape)
        self.input_size = math.prod(self.input_shape)
        self.latent_dim = self.cfg.resolved_latent_dim(self.cfg.code_input_size(self.input_shape))
        self.optim = {"lr": 1e-3, "weight_decay": 0.0, "scheduler": "constant", **(optim or {})}
        if output not in ("sigmoid", "identity"):
            raise ValueError(f"output must be 'sigmoid' or 'identity', got {output!r}")
        if self.cfg.loss == "bce" and output != "sigmoid":
            raise ValueError("loss 'bce' needs data in [0, 1] (output 'sigmoid'); use loss 'mse'")
        self.output = output
        #: How raw data becomes model input (e.g. the speech STFT settings and normalisation statistics).
        #: Set by the train stage and saved with the weights, so a registered model is usable on its own.
        self.data_config: dict[str, Any] | None = None
        #: Replaces the variant's reconstruction term when the data define what an error costs (speech: the
        #: error of compressed magnitudes, which the network's log-mask output only reaches through exp).
        #: Set by the training plan for the fit (``TrainingJob.data_loss``); not saved, as inference never
        #: needs it.
        self.data_loss: DataLoss | None = None
        self.encoder, self.decoder = self.build_networks(self.encoder_out_features())

    # ----------------------------------------------------------------- construction
    def encoder_out_features(self) -> int:
        """Width of the encoder's last layer (a VAE needs two per latent unit)."""
        return self.latent_dim

    def build_networks(self, enc_out: int) -> tuple[nn.Module, nn.Module]:
        """Build the encoder/decoder pair the config's ``architecture`` names.

        ``mlp`` takes any input shape (it flattens); the others need the shape they convolve or recur over,
        and a wrong one fails here with the expected layout rather than as a size mismatch mid-forward.
        """
        c = self.cfg
        shape = self.input_shape
        if c.architecture == "mlp":
            return (
                MLPEncoder(shape, c.hidden_dims, self.latent_dim, c.batch_norm, enc_out),
                MLPDecoder(shape, c.hidden_dims, self.latent_dim, c.batch_norm),
            )
        if c.architecture == "temporal_conv":
            if len(shape) < 2:
                raise ValueError(f"architecture 'temporal_conv' needs (…, T) sequences, got {list(shape)}")
            return (
                TemporalConvEncoder(
                    shape, c.hidden_dims, self.latent_dim, c.blocks_per_stage, c.batch_norm, enc_out
                ),
                TemporalConvDecoder(shape, c.hidden_dims, self.latent_dim, c.blocks_per_stage, c.batch_norm),
            )
        expected = {"conv": (3, "image inputs (C, H, W)"), "conv1d": (2, "time-series windows (C, T)")}
        expected["lstm"] = expected["conv1d"]
        dims, layout = expected[c.architecture]
        if len(shape) != dims:
            raise ValueError(
                f"architecture {c.architecture!r} needs {layout}, got input shape {list(shape)}; "
                f"use architecture 'mlp' for other shapes"
            )
        if c.architecture == "lstm":
            return (
                LSTMEncoder(shape, c.hidden_dims, self.latent_dim, c.blocks_per_stage, enc_out),
                LSTMDecoder(shape, c.hidden_dims, self.latent_dim, c.blocks_per_stage),
            )
        encoder_cls, decoder_cls = (
            (ConvEncoder2d, ConvDecoder2d) if c.architecture == "conv" else (ConvEncoder1d, ConvDecoder1d)
        )
        return (
            encoder_cls(
                shape, c.channels, c.blocks_per_stage, c.hidden_dims, self.latent_dim, c.batch_norm, enc_out
            ),
            decoder_cls(shape, c.channels, c.blocks_per_stage, c.hidden_dims, self.latent_dim, c.batch_norm),
        )

    # ----------------------------------------------------------------- inference API
    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """The deterministic code of ``x`` (what downstream tasks and latent plots use)."""
        return self.encoder(x)

    def decode_logits(self, z: torch.Tensor) -> torch.Tensor:
        return self.decoder(z)

    def activate(self, logits: torch.Tensor) -> torch.Tensor:
        """Map decoder logits to data space."""
        return torch.sigmoid(logits) if self.output == "sigmoid" else logits

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return self.activate(self.decode_logits(z))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Reconstruction of ``x`` in data space."""
        return self.decode(self.encode(x))

    # ----------------------------------------------------------------- loss terms (variants override)
    def prepare_batch(self, x: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Map a batch to what the model trains on (identity here)."""
        return x, target

    def encode_for_training(self, x: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Code used in the training step, plus anything ``reg_loss`` needs."""
        return self.encode(x), {}

    def recon_loss(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Mean per-element reconstruction loss (BCE on logits, or MSE in data space)."""
        if self.cfg.loss == "bce":
            return F.binary_cross_entropy_with_logits(logits, target)
        return F.mse_loss(self.activate(logits), target)

    def weighted_recon_loss(
        self, logits: torch.Tensor, target: torch.Tensor, weight: torch.Tensor
    ) -> torch.Tensor:
        """Reconstruction loss of a batch that carries per-element weights (weighted MSE in data space)."""
        if self.cfg.loss != "mse":
            raise ValueError(f"per-element loss weights need loss 'mse', got {self.cfg.loss!r}")
        return weighted_mse(self.activate(logits), target, weight)

    def reg_loss(self, x: torch.Tensor, z: torch.Tensor, extras: dict[str, torch.Tensor]) -> torch.Tensor:
        """Regulariser added to the reconstruction loss; none for a plain autoencoder."""
        return z.new_zeros(())

    def variant_diagnostics(self, x: torch.Tensor, *, iwae_samples: int = 100) -> dict[str, float]:
        """Numbers that show this variant's defining property on inputs ``x`` (none for the base)."""
        return {}

    # ----------------------------------------------------------------- Lightning
    def model_step(self, batch: Batch) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """One loss evaluation shared by training and validation: returns ``(loss, logs)``."""
        x, target, *weight = batch
        x, target = self.prepare_batch(x, target)
        z, extras = self.encode_for_training(x)
        logits = self.decode_logits(z)
        if self.data_loss is not None:
            recon = self.data_loss(self.activate(logits), target, weight[0] if weight else None)
        elif weight:
            recon = self.weighted_recon_loss(logits, target, weight[0])
        else:
            recon = self.recon_loss(logits, target)
        reg = self.reg_loss(x, z, extras)
        loss = recon + reg
        with torch.no_grad():
            mse = F.mse_loss(self.activate(logits), target)
        return loss, {"loss": loss, "recon": recon, "reg": reg, "mse": mse}

    def _log_all(self, stage: str, logs: dict[str, torch.Tensor], batch_size: int) -> None:
        for name, value in logs.items():
            self.log(
                f"{stage}/{name}",
                value.detach(),
                on_step=False,
                on_epoch=True,
                prog_bar=name == "loss",
                batch_size=batch_size,
            )

    def training_step(self, batch: Batch, batch_idx: int) -> torch.Tensor:
        loss, logs = self.model_step(batch)
        self._log_all("train", logs, batch[0].shape[0])
        return loss

    def validation_step(self, batch: Batch, batch_idx: int) -> None:
        _, logs = self.model_step(batch)
        self._log_all("val", logs, batch[0].shape[0])

    def configure_optimizers(self) -> Any:
        opt = torch.optim.AdamW(
            self.parameters(), lr=self.optim["lr"], weight_decay=self.optim["weight_decay"]
        )
        if self.optim["scheduler"] != "onecycle":
            return opt
        sched = torch.optim.lr_scheduler.OneCycleLR(
            opt, max_lr=self.optim["lr"], total_steps=max(1, int(self.trainer.estimated_stepping_batches))
        )
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}
