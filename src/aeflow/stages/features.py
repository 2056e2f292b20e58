"""featurize: model inputs computed from the clean and corrupted data (spectrograms for speech), for the use
cases whose train stage does not read the data directly."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from aeflow import usecases
from aeflow.config import Params


def run(use_case: str, params: Params, data: Path, noisy: Path, out: Path) -> dict[str, Any]:
    """Featurize ``data`` and ``noisy`` into ``out`` (atomically)."""
    return usecases.get(use_case).featurize(params, data, noisy, out)
