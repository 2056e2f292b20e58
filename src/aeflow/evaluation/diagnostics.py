"""One set of code diagnostics for every variant, so their defining properties can be compared.

* ``hoyer_sparsity`` – how concentrated each code is (scale-invariant; 1 = one unit carries everything);
* ``jacobian_norm`` – mean ‖∂f(x)/∂x‖_F of the encoder (eval mode, per example), what a contractive AE
  shrinks;
* ``perturbation_sensitivity`` – mean ‖f(x+ε) − f(x)‖ / ‖ε‖ for ε ~ N(0, 0.05²);
* plus the variant's own numbers (:meth:`BaseAutoencoder.variant_diagnostics`): mean activation for a
  sparse AE, negative ELBO and IWAE NLL for a VAE.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from aeflow.evaluation.latent import hoyer_sparsity, perturbation_sensitivity
from aeflow.models.penalties import encoder_jacobian_sq_norm


def code_diagnostics(
    model: Any,
    x: np.ndarray,
    *,
    jacobian_examples: int = 256,
    iwae_samples: int = 100,
    iwae_examples: int = 500,
) -> dict[str, float]:
    """Diagnostics of ``model``'s code on clean inputs ``x`` (N, C, H, W) in [0, 1]."""
    from aeflow.models.inference import encode

    model.eval()
    codes = encode(model, x)
    xs = torch.from_numpy(np.ascontiguousarray(x[:jacobian_examples]))
    jac = encoder_jacobian_sq_norm(model.encode, xs).sqrt()
    out = {
        "hoyer_sparsity": hoyer_sparsity(codes),
        "jacobian_norm": float(jac.mean()),
        "perturbation_sensitivity": perturbation_sensitivity(model.encode, xs),
        "code_std": float(codes.std(axis=0).mean()),
    }
    with torch.no_grad():
        out.update(
            model.variant_diagnostics(
                torch.from_numpy(np.ascontiguousarray(x[:iwae_examples])), iwae_samples=iwae_samples
            )
        )
    return out
