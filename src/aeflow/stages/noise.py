"""inject_noise: write the corrupted half of the (corrupted, clean) pairs: image noise, noisy speech
mixtures, sensor faults: whatever the use case's question needs its model to see and undo or flag."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from aeflow import usecases
from aeflow.config import Params


def run(use_case: str, params: Params, data: Path, out: Path) -> dict[str, Any]:
    """Corrupt ``data`` as the use case does and write the result to ``out`` (atomically)."""
    return usecases.get(use_case).inject_noise(params, data, out)
