"""Audio files in and out, and the conditioning every clip gets (mono, one rate, one level).

Files are read and written with ``soundfile`` (torchaudio's own I/O needs torchcodec, which is not part
of this stack); resampling uses ``torchaudio.functional.resample`` (windowed sinc). Everything here works
on float32 NumPy arrays in [-1, 1]; the functions that touch files raise :class:`DataError` naming the file.
"""

from __future__ import annotations

import math
import struct
from pathlib import Path

import numpy as np

from aeflow.errors import DataError
from aeflow.io import atomic_file

AUDIO_SUFFIXES = (".wav", ".flac")
#: Peak level that conditioning never exceeds, so writing 16-bit PCM cannot clip.
MAX_PEAK = 0.99


def read_audio(path: Path | str) -> tuple[np.ndarray, int]:
    """Read a WAV/FLAC file as float32 mono (channels averaged) and its sample rate.

    Raises:
        DataError: the file is missing, empty, not a readable audio file, a truncated WAV, or holds NaN/inf
            samples.
    """
    import soundfile as sf

    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: audio file not found.")
    if path.stat().st_size == 0:
        raise DataError(
            f"{path}: the file is empty (0 bytes), so it holds no audio. Fix: copy or export the recording "
            "again, or remove the file."
        )
    try:
        data, rate = sf.read(str(path), dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError, ValueError, TypeError) as exc:
        raise DataError(
            f"{path}: not a readable audio file ({exc}). Fix: re-export it as WAV or FLAC, or remove it."
        ) from None
    truncated = wav_truncation(path)
    if truncated:
        raise DataError(
            f"{path}: the WAV file is truncated: {truncated}, so the end of the recording is missing "
            "(an interrupted copy or download). Fix: copy or download the file again; to keep only the part "
            "that is there, re-save it with an audio editor, which rewrites the header."
        )
    if data.shape[0] == 0:
        raise DataError(f"{path}: the file holds no samples (0 frames). Fix: remove it or record it again.")
    if not np.isfinite(data).all():
        raise DataError(f"{path}: the file holds NaN or infinite samples. Fix: re-export it.")
    return data.mean(axis=1).astype(np.float32), int(rate)


def wav_truncation(path: Path | str) -> str | None:
    """Why a RIFF/WAVE file is cut short (its ``data`` chunk announces more bytes than follow), else None.

    Why: libsndfile reads a truncated WAV without complaint, returning only the samples present, so an
    interrupted download would silently become a shorter clip that may end mid-word. Sizes 0 and
    0xFFFFFFFF mean "unknown" (streaming writers) and are not judged; other formats return None.
    """
    path = Path(path)
    size = path.stat().st_size
    with path.open("rb") as fh:
        head = fh.read(12)
        if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
            return None
        pos = 12
        while pos + 8 <= size:
            fh.seek(pos)
            chunk_id, chunk_size = struct.unpack("<4sI", fh.read(8))
            if chunk_id == b"data":
                available = size - pos - 8
                if chunk_size in (0, 0xFFFFFFFF) or chunk_size <= available:
                    return None
                return (
                    f"its header announces {chunk_size} bytes of samples but only {available} follow "
                    f"({100 * available / chunk_size:.0f} %)"
                )
            pos += 8 + chunk_size + (chunk_size & 1)
    return None


def resample(x: np.ndarray, orig_rate: int, rate: int) -> np.ndarray:
    """Resample a 1-D signal with torchaudio's band-limited sinc interpolation (identity if rates match)."""
    if orig_rate == rate:
        return np.asarray(x, dtype=np.float32)
    import torch
    import torchaudio.functional as AF

    g = math.gcd(int(orig_rate), int(rate))
    out = AF.resample(torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)), orig_rate // g, rate // g)
    return out.numpy().astype(np.float32)


def rms_dbfs(x: np.ndarray) -> float:
    """RMS level in dB relative to full scale (−inf for silence)."""
    rms = float(np.sqrt(np.mean(np.square(x, dtype=np.float64)))) if len(x) else 0.0
    return 20.0 * math.log10(rms) if rms > 0 else -math.inf


def set_level(x: np.ndarray, level_dbfs: float) -> np.ndarray:
    """Scale to ``level_dbfs`` RMS, lowered if needed so the peak stays at or below ``MAX_PEAK``.

    Raises:
        ValueError: the signal is silent (all zeros), so it has no level to set.
    """
    current = rms_dbfs(x)
    if not math.isfinite(current):
        raise ValueError("the signal is silent (all samples are zero)")
    gain = 10 ** ((level_dbfs - current) / 20)
    peak = float(np.max(np.abs(x))) * gain
    if peak > MAX_PEAK:
        gain *= MAX_PEAK / peak
    return (x * gain).astype(np.float32)


def load_clip(path: Path | str, rate: int, level_dbfs: float | None = None) -> np.ndarray:
    """Read ``path``, fold to mono, resample to ``rate`` and (optionally) set its level."""
    x, orig = read_audio(path)
    x = resample(x, orig, rate)
    if level_dbfs is None:
        return x
    try:
        return set_level(x, level_dbfs)
    except ValueError:
        raise DataError(f"{path}: the recording is silent (all samples are zero). Fix: remove it.") from None


def write_wav(path: Path | str, x: np.ndarray, rate: int, subtype: str = "FLOAT") -> None:
    """Write a mono WAV atomically (``FLOAT`` keeps mixtures louder than full scale intact)."""
    import soundfile as sf

    with atomic_file(path, suffix=".wav") as tmp:
        sf.write(str(tmp), np.asarray(x, dtype=np.float32), int(rate), subtype=subtype, format="WAV")


def clipping_ratio(x: np.ndarray, threshold: float = 0.999) -> float:
    """Fraction of samples at or beyond ``threshold`` of full scale (a clipped recording's tell-tale)."""
    return float(np.mean(np.abs(x) >= threshold)) if len(x) else 0.0


def silence_ratio(x: np.ndarray, rate: int, threshold_db: float = -50.0, frame_s: float = 0.02) -> float:
    """Fraction of ``frame_s`` frames whose RMS is below ``threshold_db`` dBFS."""
    n = max(1, int(rate * frame_s))
    frames = len(x) // n
    if frames == 0:
        return 1.0 if rms_dbfs(x) < threshold_db else 0.0
    power = np.mean(np.square(x[: frames * n].reshape(frames, n), dtype=np.float64), axis=1)
    with np.errstate(divide="ignore"):
        level = 10 * np.log10(power)
    return float(np.mean(level < threshold_db))
