"""Contractive autoencoder: penalise how much the code moves when the input moves.

The penalty is λ‖J_f(x)‖²_F, the squared Frobenius norm of the encoder's Jacobian, computed exactly for any
encoder with one vectorised backward pass per code unit (see
:func:`aeflow.models.penalties.encoder_jacobian_sq_norm`). It costs about one extra backward pass per
code unit, which is cheap for the small codes this variant is meant for.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch
from torch import nn

from aeflow.models.base import BaseAutoencoder
from aeflow.models.configs import ContractiveAEConfig
from aeflow.models.penalties import encoder_jacobian_sq_norm
from aeflow.models.registry import register


@register("contractive", config=ContractiveAEConfig)
class ContractiveAutoencoder(BaseAutoencoder):
    """Vanilla reconstruction plus λ‖J_f(x)‖²_F."""

    cfg: ContractiveAEConfig
    undercomplete = True
    needs_flat_code = True

    def reg_loss(self, x: torch.Tensor, z: torch.Tensor, extras: dict[str, torch.Tensor]) -> torch.Tensor:
        if self.cfg.contractive_weight == 0:
            return z.new_zeros(())
        n = self.cfg.jacobian_examples
        if self.training and 0 < n < x.shape[0]:
            x = x[torch.randperm(x.shape[0], device=x.device)[:n]]
        with frozen_running_stats(self.encoder):
            sq = encoder_jacobian_sq_norm(self.encode, x, create_graph=self.training)
        return self.cfg.contractive_weight * sq.mean()


@contextlib.contextmanager
def frozen_running_stats(module: nn.Module) -> Iterator[None]:
    """Keep BatchNorm running statistics unchanged (momentum 0) during an extra forward pass."""
    norms = [m for m in module.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    saved = [m.momentum for m in norms]
    for m in norms:
        m.momentum = 0.0
    try:
        yield
    finally:
        for m, momentum in zip(norms, saved, strict=True):
            m.momentum = momentum
