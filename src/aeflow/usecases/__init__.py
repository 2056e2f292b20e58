"""The use cases, by name: the only place that names them.

Each use case is one package here (``mnist``, ``speech``, ``sensor``, …) holding everything about its data
and its question: a ``params.py`` whose ``SECTION`` is its part of ``params.yaml``, and a ``USE_CASE``
object (an :class:`aeflow.usecases.base.UseCase`) that generic code asks. The registry is the packages
themselves: adding a folder adds a use case, with no line to edit here. Packages are imported on first use,
so a stage pays only for the use case it runs, and this module imports nothing at its top, so the params
schema can take the names from here without an import circle.
"""

from __future__ import annotations

import importlib
import pkgutil
from pathlib import Path
from typing import Any

#: name → the package that implements it: every sub-package of this one, in alphabetical order.
REGISTRY: dict[str, str] = {
    info.name: f"{__name__}.{info.name}"
    for info in sorted(pkgutil.iter_modules([str(Path(__file__).parent)]), key=lambda i: i.name)
    if info.ispkg
}

NAMES: tuple[str, ...] = tuple(REGISTRY)


def get(name: str) -> Any:
    """The use case called ``name`` (an :class:`aeflow.usecases.base.UseCase`); an unknown name fails
    listing what exists."""
    from aeflow.errors import ParamsError

    if name not in REGISTRY:
        raise ParamsError(f"unknown use case {name!r}; available use cases: {', '.join(NAMES)}")
    return importlib.import_module(REGISTRY[name]).USE_CASE
