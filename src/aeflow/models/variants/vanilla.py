"""The vanilla (undercomplete) autoencoder: reconstruction loss only, code smaller than the input.

Everything it needs is already in :class:`BaseAutoencoder`; this file exists so that "vanilla" is a
variant like any other (one name in the registry, one config class) and so that its one defining rule,
a bottleneck, is enforced when the model is built.
"""

from __future__ import annotations

from aeflow.models.base import BaseAutoencoder
from aeflow.models.configs import VanillaAEConfig
from aeflow.models.registry import register


@register("vanilla", config=VanillaAEConfig)
class VanillaAutoencoder(BaseAutoencoder):
    """Plain undercomplete autoencoder."""

    undercomplete = True
