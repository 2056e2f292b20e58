"""inject_noise: write the noisy half of the (noisy, clean) pairs that denoising trains on.

For images: ``<out>/{train,val,test}.npz`` hold ``noisy`` (float32 in [0, 1], shaped like the unit-scaled
clean images, same row order as ``data/raw``) and ``info.json`` records the noise and the measured MSE
between noisy and clean per split. Each split gets its own seeded stream, so the bytes depend only on
the seed, the noise settings and the clean data.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from aeflow.config import Params
from aeflow.io import atomic_dir, save_arrays, write_json

SPLIT_STREAM = {"train": 0, "val": 1, "test": 2}


def run(use_case: str, params: Params, data: Path, out: Path) -> dict[str, Any]:
    """Corrupt every split of ``data`` and write the noisy arrays to ``out``."""
    if use_case == "speech":
        from aeflow.stages.speech import inject_noise

        return inject_noise(params, data, out)
    if use_case == "sensor":
        from aeflow.stages.sensor import inject

        return inject(params, data, out)
    if use_case != "mnist":
        raise NotImplementedError(use_case)
    from aeflow.data.images import load_image_splits
    from aeflow.data.noise import corrupt_images

    cfg = params.mnist.noise
    splits = load_image_splits(data)
    info: dict[str, Any] = {
        "kind": cfg.kind,
        "level": cfg.level,
        "seed": params.seed,
        "mse_noisy_vs_clean": {},
    }
    with atomic_dir(out) as tmp:
        for name, (clean, _) in splits.items():
            rng = np.random.default_rng([params.seed, SPLIT_STREAM[name]])
            noisy = corrupt_images(clean, cfg.kind, cfg.level, rng)
            save_arrays(tmp / f"{name}.npz", {"noisy": noisy})
            info["mse_noisy_vs_clean"][name] = float(np.mean((noisy - clean) ** 2)) if len(clean) else None
        write_json(tmp / "info.json", info)
    return info


def load_noisy(folder: Path) -> dict[str, np.ndarray]:
    """The noisy arrays written by :func:`run`, by split."""
    from aeflow.io import load_arrays

    return {name: load_arrays(Path(folder) / f"{name}.npz")["noisy"] for name in SPLIT_STREAM}
