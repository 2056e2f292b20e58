"""What the regularised variants measure on their codes while they train: the encoder's Jacobian norm (the
contractive penalty) and how active a sigmoid code is (the sparse one). They live with the models, below
evaluation, because a variant's loss needs them; evaluation reports the same quantities on test data.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch


def activation_stats(codes: np.ndarray, threshold: float = 0.5) -> dict[str, float]:
    """Mean activation and the mean fraction of units above ``threshold`` per input (for codes in [0, 1])."""
    c = np.asarray(codes, dtype=np.float64)
    return {"mean_activation": float(c.mean()), "fraction_active": float((c > threshold).mean())}


def encoder_jacobian_sq_norm(
    encode: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, create_graph: bool = False
) -> torch.Tensor:
    """Per-example squared Frobenius norm ‖∂f(x)/∂x‖² of an encoder ``encode`` (shape (N,)).

    Exact: one vectorised backward pass per code unit (``is_grads_batched``), for any encoder. With
    BatchNorm in training mode the examples of a batch interact through the batch statistics, and those
    terms are included (evaluate in eval mode for the per-example Jacobian).
    """
    x = x.detach().requires_grad_(True)
    with torch.enable_grad():
        z = encode(x)
        k = z.shape[1]
        basis = torch.eye(k, dtype=z.dtype, device=z.device).unsqueeze(1).expand(k, *z.shape)
        (jac,) = torch.autograd.grad(
            z, x, grad_outputs=basis, is_grads_batched=True, create_graph=create_graph
        )
    return jac.pow(2).flatten(2).sum(dim=(0, 2))
