"""ingest: bring a use case's source data into ``<out>`` (its own layout) + ``info.json``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from aeflow import usecases
from aeflow.config import Params


def run(use_case: str, params: Params, out: Path) -> dict[str, Any]:
    """Ingest ``use_case`` into the folder ``out`` (replaced as a whole, only on success)."""
    return usecases.get(use_case).ingest(params, out)
