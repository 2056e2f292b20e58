"""The use cases, by name: the only place that names them.

Each use case is one package here (``mnist``, ``speech``, ``sensor``) holding everything about its data and
its question, and one :class:`~aeflow.usecases.base.UseCase` object that generic code asks. Packages are
imported on first use, so a stage pays only for the use case it runs.
"""

from __future__ import annotations

import importlib
from typing import Any

#: name → the module whose ``USE_CASE`` implements it. Adding a use case adds one line here.
REGISTRY: dict[str, str] = {
    "mnist": "aeflow.usecases.mnist",
    "speech": "aeflow.usecases.speech",
    "sensor": "aeflow.usecases.sensor",
}

NAMES: tuple[str, ...] = tuple(REGISTRY)


def get(name: str) -> Any:
    """The use case called ``name`` (an :class:`aeflow.usecases.base.UseCase`); an unknown name fails
    listing what exists. This module imports nothing at its top, so the params schema can take the names
    from here without an import circle."""
    from aeflow.errors import ParamsError

    if name not in REGISTRY:
        raise ParamsError(f"unknown use case {name!r}; available use cases: {', '.join(NAMES)}")
    return importlib.import_module(REGISTRY[name]).USE_CASE
