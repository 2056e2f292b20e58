"""Bounded, verifiable downloads shared by every download source (MNIST mirrors, FSDD, NAB).

Each file is tried on every mirror, each mirror up to ``retries`` times with a per-request timeout and a
short back-off, and written atomically; a file already present (and matching its checksum) is reused.
When nothing works the error lists every attempt and how to get the data another way.
"""

from __future__ import annotations

import hashlib
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from pathlib import Path

from aeflow.errors import DownloadError
from aeflow.io import atomic_file


def md5_of(path: Path) -> str:
    """Hex MD5 of a file (the checksum torchvision publishes for its mirrors)."""
    digest = hashlib.md5(usedforsecurity=False)
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def fetch(
    filename: str,
    mirrors: Sequence[str],
    dest_dir: Path,
    *,
    timeout_s: float,
    retries: int,
    md5: str | None = None,
    backoff_s: float = 0.5,
    fallback_hint: str = "",
) -> Path:
    """Download ``filename`` from the first mirror that serves it; return the local path."""
    dest = Path(dest_dir) / filename
    if dest.is_file() and dest.stat().st_size > 0 and (md5 is None or md5_of(dest) == md5):
        return dest
    attempts: list[str] = []
    for mirror in mirrors:
        url = mirror.rstrip("/") + "/" + filename
        for attempt in range(1, retries + 1):
            try:
                with atomic_file(dest) as tmp:
                    with urllib.request.urlopen(url, timeout=timeout_s) as resp, tmp.open("wb") as out:
                        while chunk := resp.read(1 << 20):
                            out.write(chunk)
                    if md5 is not None and (got := md5_of(tmp)) != md5:
                        raise DownloadError(f"checksum mismatch (md5 {got}, expected {md5})")
                return dest
            except DownloadError as exc:
                attempts.append(f"{url} (try {attempt}): {exc}")
                break  # a wrong file will not get right by asking again
            except (urllib.error.URLError, TimeoutError, OSError, ValueError) as exc:
                reason = getattr(exc, "reason", exc)
                attempts.append(f"{url} (try {attempt}): {reason}")
                if attempt < retries:
                    time.sleep(backoff_s * 2 ** (attempt - 1))
    raise DownloadError(
        f"could not download {filename} (timeout {timeout_s:g} s, {retries} tries per mirror):\n    "
        + "\n    ".join(attempts)
        + (f"\n  Fix: {fallback_hint}" if fallback_hint else "")
    )
