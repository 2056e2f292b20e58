"""Denoising autoencoder: reconstruct the clean target from a corrupted input.

The model is the plain autoencoder; what makes it denoising is the data: it trains on the (noisy,
clean) pairs written by the ``inject_noise`` stage (``needs_noisy_pairs``). Because the corruption already
stops it from learning the identity, the code may be as large as the input (``undercomplete = False``).
"""

from __future__ import annotations

from aeflow.models.base import BaseAutoencoder
from aeflow.models.configs import DenoisingAEConfig
from aeflow.models.registry import register


@register("denoising", config=DenoisingAEConfig)
class DenoisingAutoencoder(BaseAutoencoder):
    """Trained on (noisy input, clean target) pairs."""

    needs_noisy_pairs = True
