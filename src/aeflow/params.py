"""The whole ``params.yaml``: the shared top (:class:`aeflow.config.Params`) plus one section per
registered use case, each defined by its own package (``aeflow/usecases/<name>/params.py``, its ``SECTION``).

Composed here, one floor above the use-case registry, so a new use case adds its section without editing
this file, and the floors below (shared code, and the use cases themselves, which see only
:class:`aeflow.config.Params`) never import a use case. Entry points — stages, the ``aeflow`` command,
benchmarks — load params through this module.
"""

from __future__ import annotations

import atexit
import importlib
import os
import sys
from pathlib import Path
from typing import Any

from pydantic import Field, create_model

from aeflow import sections, usecases
from aeflow.config import Params, read_yaml, validate
from aeflow.io import write_json
from aeflow.sections import UseCaseSection

__all__ = ["USE_CASES", "ProjectParams", "load_params", "parse_params"]


def _use_case_sections() -> dict[str, type[UseCaseSection]]:
    """Each registered use case's section class (``SECTION`` of its ``params`` module, which imports only
    :mod:`aeflow.sections`: cheap, and no import circle)."""
    sections = {}
    for name in usecases.NAMES:
        section = importlib.import_module(f"{usecases.REGISTRY[name]}.params").SECTION
        if not (isinstance(section, type) and issubclass(section, UseCaseSection)):
            raise TypeError(f"{usecases.REGISTRY[name]}.params.SECTION must be a UseCaseSection subclass")
        sections[name] = section
    return sections


_SECTIONS = _use_case_sections()

#: The whole ``params.yaml``: the shared top plus one section per use case, in registry order.
ProjectParams: type[Params] = create_model(  # type: ignore[call-overload]
    "ProjectParams",
    __base__=Params,
    __module__=__name__,
    **{name: (section, Field(default_factory=section)) for name, section in _SECTIONS.items()},
)
ProjectParams.__doc__ = "The whole ``params.yaml``."

#: The use cases params.yaml has a section for, in registry order.
USE_CASES: tuple[str, ...] = tuple(_SECTIONS)


#: A folder: every process that loads params writes the keys it read there at exit (see
#: :class:`aeflow.sections.ReadLog`; the pipeline tests hold ``dvc.yaml``'s ``params:`` lists against them).
RECORD_ENV = "AEFLOW_RECORD_PARAMS"


def parse_params(data: Any, path: Path | str = "params.yaml") -> Params:
    """Validate an already-parsed params mapping; raise :class:`~aeflow.errors.ParamsError` listing every
    problem."""
    return _recorded(validate(ProjectParams, data, path))


def load_params(path: Path | str = "params.yaml") -> Params:
    """Read and validate ``params.yaml``. Errors name the file, key, value and what is allowed."""
    return _recorded(validate(ProjectParams, read_yaml(path), path))


def _recorded(params: Params) -> Params:
    folder = os.environ.get(RECORD_ENV)
    if folder:
        first = sections.reads() is None
        log = sections.record_reads(params)
        if first:
            out = Path(folder) / f"{Path(sys.argv[0]).stem}-{os.getpid()}.json"
            atexit.register(
                lambda: write_json(out, {"argv": sys.argv, "reads": sorted(log.keys)}),
            )
    return params
