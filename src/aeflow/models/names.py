"""Variant names known without importing Lightning.

A variant is one module in :mod:`aeflow.models.variants`; its module name is its registry name. Listing
the package folder lets params validation reject an unknown variant in milliseconds, while the registry
(which imports the modules, and with them Lightning) is only loaded by stages that build a model.
"""

from __future__ import annotations

import pkgutil
from pathlib import Path


def variant_names() -> list[str]:
    """Names of all variant modules, sorted."""
    folder = Path(__file__).with_name("variants")
    return sorted(m.name for m in pkgutil.iter_modules([str(folder)]) if not m.name.startswith("_"))


def check_variant_name(name: str) -> None:
    """Raise ``ValueError`` naming the available variants when ``name`` is not one of them."""
    names = variant_names()
    if name not in names:
        raise ValueError(f"unknown variant {name!r}; available variants: {', '.join(names)}")
