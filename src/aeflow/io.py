"""File I/O at the edges: atomic writes and the array formats stages exchange.

Every output is first written next to its final place under a temporary name and then renamed. A rename
within one filesystem is atomic, so a reader (or the next ``dvc repro``) sees either the previous complete
output or the new complete one, never half a file, even if the process is killed mid-write.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_file(path: Path | str, suffix: str = "") -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success move it into place, on error delete it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(
        prefix=f".{path.name}.", suffix=suffix or path.suffix + ".tmp", dir=path.parent
    )
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.chmod(tmp_path, 0o666 & ~_umask())  # mkstemp makes 0600; outputs get normal permissions
        os.replace(tmp_path, path)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


@contextlib.contextmanager
def atomic_dir(path: Path | str) -> Iterator[Path]:
    """Yield an empty temporary folder beside ``path``; on success it replaces ``path`` as a whole.

    The old folder is renamed aside first and removed only after the new one is in place, so at any
    instant ``path`` is either the complete old or the complete new folder (at worst briefly absent,
    with the old one still beside it under a ``.old`` name).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    try:
        yield tmp
        os.chmod(tmp, 0o777 & ~_umask())
        old = None
        if path.exists():
            old = path.with_name(f".{path.name}.{os.getpid()}.old")
            os.replace(path, old)
        os.replace(tmp, path)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def write_json(path: Path | str, obj: Any) -> None:
    """Write pretty, key-sorted JSON atomically (stable bytes for ``dvc metrics diff`` and git)."""
    with atomic_file(path) as tmp:
        tmp.write_text(
            json.dumps(obj, indent=2, sort_keys=True, default=_json_default) + "\n", encoding="utf-8"
        )


def read_json(path: Path | str) -> Any:
    """Read a JSON file written by :func:`write_json`."""
    return json.loads(Path(path).read_text(encoding="utf-8"))


def _json_default(obj: Any) -> Any:
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    if hasattr(obj, "isoformat"):  # datetime / pandas Timestamp in validation reports
        return obj.isoformat()
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def save_arrays(path: Path | str, arrays: Mapping[str, np.ndarray]) -> None:
    """Save named arrays as an uncompressed ``.npz`` (fast to load, byte-stable for the same content)."""
    with atomic_file(path, suffix=".npz") as tmp, tmp.open("wb") as fh:
        np.savez(fh, **arrays)


def load_arrays(path: Path | str) -> dict[str, np.ndarray]:
    """Load every array of an ``.npz`` without allowing pickled objects."""
    with np.load(path, allow_pickle=False) as data:
        return {k: data[k] for k in data.files}


def write_text(path: Path | str, text: str) -> None:
    """Write a text file atomically."""
    with atomic_file(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
