"""``AutoencoderEnsemble``: ``members`` autoencoders of one variant, trained side by side from their own
initial weights (``model.members`` in params).

Why: a model fitted on a few hundred readings depends on its initial weights. On NAB, whether a detector
catches a second anomaly soon after a large first one changed with the seed alone (one file's window scored
4.8 σ with one seed, 2.4 σ with another), so single models' corpus scores spread 7.9 points over five
seeds; with three models per file, their scores averaged, 2.5 (``benchmarks/sensor_detection.py``). A use
case that scores by reconstruction error reads each member's output (:meth:`member_outputs`) and combines
what it derives from them; everything else sees one autoencoder whose reconstruction is the members' mean
and whose code is the members' codes side by side.

Training is one Lightning module: the loss is the sum of the members' losses, so each member's gradient
is exactly what it would be alone (AdamW works per parameter), all members see the same batches, and one
pass over the data trains them all. The logged losses are the members' means, on the scale of one model's,
so the best epoch is the one where the members are best on average.
"""

from __future__ import annotations

from typing import Any

import pytorch_lightning as pl
import torch
from torch import nn

from aeflow.models.base import BaseAutoencoder, Batch, DataLoss
from aeflow.models.configs import AEConfig


class AutoencoderEnsemble(pl.LightningModule):
    """``config.members`` autoencoders of class ``member_class`` (``config.variant``'s, from the registry),
    built one after another from the current random state (the first has the weights a single model would
    start from), saved and loaded as one model (same hyperparameters as a single one: ``config``,
    ``input_shape``, ``optim``, ``output``)."""

    def __init__(
        self,
        member_class: type[BaseAutoencoder],
        config: AEConfig,
        input_shape: list[int],
        optim: dict[str, Any] | None = None,
        output: str = "sigmoid",
    ) -> None:
        super().__init__()
        self.cfg = config
        single = config.model_copy(update={"members": 1})
        self.members = nn.ModuleList(
            member_class(config=single, input_shape=list(input_shape), optim=optim, output=output)
            for _ in range(self.cfg.members)
        )
        self.save_hyperparameters(
            {
                "config": self.cfg.model_dump(),
                "input_shape": list(input_shape),
                "optim": optim,
                "output": output,
            }
        )
        first: BaseAutoencoder = self.members[0]
        self.variant_name = first.variant_name
        self.needs_noisy_pairs = first.needs_noisy_pairs
        self.input_shape = first.input_shape
        self.input_size = first.input_size
        self.output = output
        self.optim = first.optim
        #: the members' codes side by side
        self.latent_dim = first.latent_dim * len(self.members)
        self.data_config: dict[str, Any] | None = None

    @property
    def data_loss(self) -> DataLoss | None:
        return self.members[0].data_loss

    @data_loss.setter
    def data_loss(self, loss: DataLoss | None) -> None:
        for m in self.members:
            m.data_loss = loss

    # ----------------------------------------------------------------- inference API
    def member_outputs(self, x: torch.Tensor) -> torch.Tensor:
        """Every member's reconstruction of ``x``: (members, *x.shape)."""
        return torch.stack([m(x) for m in self.members])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The members' mean reconstruction."""
        return self.member_outputs(x).mean(dim=0)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """The members' codes side by side (feature axis 1)."""
        return torch.cat([m.encode(x) for m in self.members], dim=1)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """The mean of each member's decoding of its part of ``z`` (as :meth:`encode` lays it out)."""
        parts = torch.chunk(z, len(self.members), dim=1)
        return torch.stack([m.decode(p) for m, p in zip(self.members, parts, strict=True)]).mean(dim=0)

    def variant_diagnostics(self, x: torch.Tensor, *, iwae_samples: int = 100) -> dict[str, float]:
        """Each of the variant's own numbers, averaged over the members."""
        each = [m.variant_diagnostics(x, iwae_samples=iwae_samples) for m in self.members]
        return {k: sum(d[k] for d in each) / len(each) for k in each[0]}

    # ----------------------------------------------------------------- Lightning
    def model_step(self, batch: Batch) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """The sum of the members' losses (what is optimised) and the mean of their logs."""
        steps = [m.model_step(batch) for m in self.members]
        total = torch.stack([loss for loss, _ in steps]).sum()
        logs = {k: torch.stack([lg[k] for _, lg in steps]).mean() for k in steps[0][1]}
        return total, logs

    def training_step(self, batch: Batch, batch_idx: int) -> torch.Tensor:
        loss, logs = self.model_step(batch)
        BaseAutoencoder._log_all(self, "train", logs, batch[0].shape[0])
        return loss

    def validation_step(self, batch: Batch, batch_idx: int) -> None:
        _, logs = self.model_step(batch)
        BaseAutoencoder._log_all(self, "val", logs, batch[0].shape[0])

    def configure_optimizers(self) -> Any:
        return BaseAutoencoder.configure_optimizers(self)


def member_outputs(model: Any, x: torch.Tensor) -> torch.Tensor:
    """Each member's reconstruction of ``x`` (members, *x.shape); a single model is one member."""
    if isinstance(model, AutoencoderEnsemble):
        return model.member_outputs(x)
    return model(x).unsqueeze(0)


def members_of(model: Any) -> list[Any]:
    """The autoencoders a model consists of: an ensemble's members, or the model itself."""
    return list(model.members) if isinstance(model, AutoencoderEnsemble) else [model]
