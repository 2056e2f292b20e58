"""Helpers shared by tests (importable, unlike conftest fixtures)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np

from aeflow.usecases.mnist.idx import write_idx_gz


def write_idx_folder(folder: Path, images: np.ndarray, labels: np.ndarray, prefix: str = "train") -> Path:
    """Write an images/labels IDX .gz pair as torchvision stores MNIST."""
    folder.mkdir(parents=True, exist_ok=True)
    write_idx_gz(folder / f"{prefix}-images-idx3-ubyte.gz", images.astype(np.uint8))
    write_idx_gz(folder / f"{prefix}-labels-idx1-ubyte.gz", labels.astype(np.uint8))
    return folder


def copy_project(dest: Path, skip: tuple[str, ...] = ()) -> Path:
    """Copy the project's files (tracked, plus untracked ones git does not ignore) into ``dest``, leaving out
    the committed results (``dvc.lock``, ``metrics/``, ``results/``, ``plots/``) so a test's ``dvc repro``
    starts clean, and any other path prefixes in ``skip``."""
    import shutil
    import subprocess

    repo = Path(__file__).resolve().parents[1]
    files = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
        cwd=repo,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split("\0")
    prefixes = ("metrics/", "results/", "plots/", "scratch/", *skip)
    for rel in filter(None, files):
        if rel == "dvc.lock" or rel.startswith(prefixes) or not (repo / rel).is_file():
            continue
        (dest / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(repo / rel, dest / rel)
    return dest


def dead_pid() -> int:
    """The id of a process that has exited: what a killed writer leaves its files named after."""
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid
