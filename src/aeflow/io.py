"""File I/O at the edges: atomic writes and the array formats stages exchange.

Every output is first written next to its final place under a temporary name and then renamed. A rename
within one filesystem is atomic, so a reader (or the next ``dvc repro``) sees either the previous complete
output or the new complete one, never half a file, even if the process is killed mid-write.

A process killed with SIGKILL cannot delete its temporary files. Their names carry the writer's pid
(``.<name>.<pid>.<random>.tmp``), so the next writer of the same output removes those of processes that
no longer exist (:func:`clean_leftovers`); DVC never sees them (they are hidden siblings, not outputs).
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import json
import os
import re
import shutil
import sys
import tempfile
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError):
        return True
    return True


def clean_leftovers(path: Path | str) -> list[Path]:
    """Remove what killed writers of ``path`` left beside it; returns what was removed.

    A ``.old`` folder of a dead writer whose ``path`` is missing (killed between the two renames of the
    non-Linux fallback in :func:`atomic_dir`) is the last complete output: it is moved back instead.
    """
    path = Path(path)
    parent = path.parent
    if not parent.is_dir():
        return []
    pattern = re.compile(rf"^\.{re.escape(path.name)}\.(\d+)\.(?:.+\.tmp|old)$")
    removed: list[Path] = []
    for entry in sorted(parent.iterdir()):
        m = pattern.match(entry.name)
        if not m or _pid_alive(int(m.group(1))):
            continue
        if entry.name.endswith(".old") and not path.exists() and not path.is_symlink():
            os.replace(entry, path)
            continue
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry, ignore_errors=True)
        else:
            entry.unlink(missing_ok=True)
        removed.append(entry)
    return removed


def _exchange(a: Path, b: Path) -> bool:
    """Swap two existing paths in one atomic step (Linux ``renameat2(RENAME_EXCHANGE)``).

    Returns False where the call does not exist or the filesystem does not support it.
    """
    if not sys.platform.startswith("linux"):
        return False
    try:
        renameat2 = ctypes.CDLL(None, use_errno=True).renameat2
    except (OSError, AttributeError):
        return False
    renameat2.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    renameat2.restype = ctypes.c_int
    at_fdcwd, rename_exchange = -100, 2
    if renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP):
        return False
    raise OSError(err, os.strerror(err), str(a), None, str(b))


@contextlib.contextmanager
def atomic_file(path: Path | str, suffix: str = "") -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success move it into place, on error delete it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    clean_leftovers(path)
    fd, tmp = tempfile.mkstemp(
        prefix=f".{path.name}.{os.getpid()}.", suffix=suffix or path.suffix + ".tmp", dir=path.parent
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

    On Linux the two folders are exchanged in one atomic step, so at every instant ``path`` is the complete
    old or the complete new folder. Elsewhere the old folder is renamed aside first and removed only after
    the new one is in place (at worst ``path`` is briefly absent, with the old one beside it under a
    ``.old`` name, which :func:`clean_leftovers` moves back if the writer was killed right then).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    clean_leftovers(path)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.{os.getpid()}.", suffix=".tmp", dir=path.parent))
    try:
        yield tmp
        os.chmod(tmp, 0o777 & ~_umask())
        if path.exists() and _exchange(tmp, path):
            pass  # tmp now holds the old folder: removed below
        else:
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


def pick(data: Mapping[str, Any], keys: Iterable[str]) -> dict[str, Any]:
    """The nested part of ``data`` that the dotted ``keys`` name (``"test.ae.mse"`` keeps
    ``{"test": {"ae": {"mse": …}}}``); keys ``data`` lacks are left out."""
    out: dict[str, Any] = {}
    for key in keys:
        node: Any = data
        parts = key.split(".")
        for part in parts:
            if not isinstance(node, Mapping) or part not in node:
                break
            node = node[part]
        else:
            target = out
            for part in parts[:-1]:
                target = target.setdefault(part, {})
            target[parts[-1]] = node
    return out
