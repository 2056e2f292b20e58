"""What a code looks like: sparsity, sensitivity to the input, and low-dimensional views.

These are computed the same way for every variant, so a sparse or contractive model can be compared with
the vanilla one on the same data.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import torch


def hoyer_sparsity(codes: np.ndarray) -> float:
    """Mean Hoyer sparsity of |code| vectors: 0 when all units are equal, 1 when one unit carries all.

    Scale-invariant, so codes of different ranges (a sigmoid code, a linear code) can be compared.
    """
    a = np.abs(np.asarray(codes, dtype=np.float64))
    n = a.shape[1]
    if n < 2:
        return 0.0
    l1 = a.sum(axis=1)
    l2 = np.sqrt((a**2).sum(axis=1)) + 1e-12
    return float(np.mean((np.sqrt(n) - l1 / l2) / (np.sqrt(n) - 1)))


def perturbation_sensitivity(
    encode: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, sigma: float = 0.05, seed: int = 0
) -> float:
    """Mean ‖f(x + ε) − f(x)‖ / ‖ε‖ for small Gaussian ε: how much the code moves when the input jiggles."""
    gen = torch.Generator().manual_seed(seed)
    eps = torch.randn(x.shape, generator=gen) * sigma
    with torch.no_grad():
        dz = encode(x + eps) - encode(x)
    return float((dz.flatten(1).norm(dim=1) / eps.flatten(1).norm(dim=1)).mean())


def project(codes: np.ndarray, dims: int = 2) -> tuple[np.ndarray, str]:
    """Codes themselves when they have ``dims`` columns or fewer, else their first principal components."""
    c = np.asarray(codes, dtype=np.float64)
    if c.shape[1] <= dims:
        return c, "code"
    centred = c - c.mean(axis=0)
    _, _, vt = np.linalg.svd(centred, full_matrices=False)
    return centred @ vt[:dims].T, f"PCA of the {c.shape[1]}-d code"


def knee(rows: Sequence[Mapping[str, Any]], tolerance: float = 0.10) -> int | None:
    """Smallest latent size ``k`` whose AE MSE is within ``tolerance`` of the best AE MSE of the sweep.

    Beyond the knee extra code units buy little; below it the code visibly drops detail. 10 % is the
    tolerance the sweep stage reports, so the report and this check name the same ``k``. Rows whose
    ``ae_mse`` is missing or not finite are ignored; ``None`` when no row is usable.
    """
    usable = [(int(r["k"]), float(r["ae_mse"])) for r in rows if _finite(r.get("ae_mse"))]
    if not usable:
        return None
    best = min(mse for _, mse in usable)
    return min(k for k, mse in usable if mse <= (1.0 + tolerance) * best)


def _finite(value: Any) -> bool:
    return value is not None and bool(np.isfinite(float(value)))
