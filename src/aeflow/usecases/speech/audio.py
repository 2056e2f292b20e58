"""Audio files in and out, and the conditioning every clip gets (mono, one rate, one level).

Files are read and written with ``soundfile`` (torchaudio's own I/O needs torchcodec, which is not part
of this stack); resampling uses ``torchaudio.functional.resample`` (windowed sinc). Everything here works
on float32 NumPy arrays in [-1, 1]; the functions that touch files raise :class:`DataError` naming the file.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import BinaryIO

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
    open_recording(path)
    try:
        data, rate = sf.read(str(path), dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError, ValueError, TypeError) as exc:
        raise DataError(
            f"{path}: not a readable audio file ({exc}). Fix: re-export it as WAV or FLAC, or remove it."
        ) from None
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


#: Frames read from a file at a time by :func:`read_blocks` (about 1.4 s at 48 kHz).
READ_FRAMES = 1 << 16


def open_recording(path: Path | str) -> tuple[int, int]:
    """Sample rate and length of a recording, after the checks every read makes (from its header only).

    Why: the block and stream paths must refuse a bad file before writing any output, and
    :func:`read_audio` runs the same checks so that both name the same faults the same way.

    Raises:
        DataError: as :func:`read_audio` (missing, empty, unreadable, truncated, no samples).
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
        info = sf.info(str(path))
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
    if info.frames == 0:
        raise DataError(f"{path}: the file holds no samples (0 frames). Fix: remove it or record it again.")
    return int(info.samplerate), int(info.frames)


def read_blocks(path: Path | str, frames: int = READ_FRAMES) -> Iterator[np.ndarray]:
    """A recording as float32 mono pieces of ``frames`` samples, read one at a time (constant memory).

    Raises:
        DataError: a piece cannot be decoded, or holds NaN/inf samples (the file is named).
    """
    import soundfile as sf

    try:
        with sf.SoundFile(str(path)) as fh:
            while True:
                data = fh.read(frames, dtype="float32", always_2d=True)
                if not len(data):
                    return
                if not np.isfinite(data).all():
                    raise DataError(f"{path}: the file holds NaN or infinite samples. Fix: re-export it.")
                yield data.mean(axis=1).astype(np.float32)
    except (sf.LibsndfileError, RuntimeError) as exc:
        raise DataError(
            f"{path}: reading the recording failed ({exc}). Fix: re-export it as WAV or FLAC."
        ) from None


_WAV_FORMATS = {(1, 16): "<i2", (1, 24): "i24", (1, 32): "<i4", (3, 32): "<f4", (3, 64): "<f8", (1, 8): "u1"}


def read_wav_stream(stream: BinaryIO, frames: int = 4096) -> tuple[int, Iterator[np.ndarray]]:
    """The rate of a WAV arriving on a pipe, and its samples as float32 mono pieces.

    Why not libsndfile: it needs to seek, and a pipe cannot. PCM (8/16/24/32-bit) and float (32/64-bit)
    WAV are read, including the ``WAVE_FORMAT_EXTENSIBLE`` header and a data size of 0 or 0xFFFFFFFF
    (a streaming writer's "unknown"): samples are then read until the stream ends.

    Raises:
        DataError: not a RIFF/WAVE stream, no ``fmt `` chunk before ``data``, or an unsupported encoding.
    """
    head = _read_exactly(stream, 12)
    if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
        raise DataError("stdin: not a WAV stream (no RIFF/WAVE header). Fix: send WAV, or use --format raw.")
    fmt: tuple[int, int, int, int] | None = None
    while True:
        chunk = _read_exactly(stream, 8)
        if len(chunk) < 8:
            raise DataError(
                "stdin: the WAV stream ended before its data chunk. Fix: send a whole WAV header."
            )
        chunk_id, size = struct.unpack("<4sI", chunk)
        if chunk_id == b"data":
            break
        body = _read_exactly(stream, size + (size & 1))
        if chunk_id == b"fmt ":
            tag, channels, rate = struct.unpack("<HHI", body[:8])
            bits = struct.unpack("<H", body[14:16])[0]
            if tag == 0xFFFE and len(body) >= 26:  # extensible: the sub-format GUID starts with the tag
                tag = struct.unpack("<H", body[24:26])[0]
            fmt = (tag, channels, rate, bits)
    if fmt is None:
        raise DataError("stdin: the WAV stream has no fmt chunk before its data. Fix: send a valid WAV.")
    tag, channels, rate, bits = fmt
    dtype = _WAV_FORMATS.get((tag, bits))
    if dtype is None or channels < 1:
        raise DataError(
            f"stdin: WAV encoding (format {tag}, {bits}-bit, {channels} channels) is not supported. "
            "Fix: send 16-bit PCM or 32-bit float WAV."
        )
    remaining = None if size in (0, 0xFFFFFFFF) else size
    width = bits // 8 * channels

    def pieces() -> Iterator[np.ndarray]:
        nonlocal remaining
        carry = b""
        while remaining is None or remaining > 0:
            want = frames * width if remaining is None else min(frames * width, remaining)
            data = stream.read(want)
            if not data:
                return
            if remaining is not None:
                remaining -= len(data)
            data = carry + data
            usable = len(data) // width * width
            data, carry = data[:usable], data[usable:]
            if data:
                yield _decode(data, dtype, bits, channels)

    return rate, pieces()


def _read_exactly(stream: BinaryIO, n: int) -> bytes:
    out = b""
    while len(out) < n:
        data = stream.read(n - len(out))
        if not data:
            break
        out += data
    return out


def _decode(data: bytes, dtype: str, bits: int, channels: int) -> np.ndarray:
    """Interleaved PCM/float bytes → float32 mono in [-1, 1]."""
    if dtype == "i24":
        raw = np.frombuffer(data, dtype=np.uint8).reshape(-1, 3).astype(np.int32)
        ints = (raw[:, 0] | (raw[:, 1] << 8) | (raw[:, 2] << 16)) << 8 >> 8
        x = ints.astype(np.float64) / 2**23
    elif dtype == "u1":
        x = (np.frombuffer(data, dtype=np.uint8).astype(np.float64) - 128) / 128
    elif dtype.startswith("<f"):
        x = np.frombuffer(data, dtype=dtype).astype(np.float64)
    else:
        x = np.frombuffer(data, dtype=dtype).astype(np.float64) / 2 ** (bits - 1)
    return x.reshape(-1, channels).mean(axis=1).astype(np.float32)


def read_raw_stream(stream: BinaryIO, frames: int = 4096) -> Iterator[np.ndarray]:
    """16-bit little-endian mono PCM from a pipe, as float32 pieces."""
    carry = b""
    while True:
        data = stream.read(frames * 2)
        if not data:
            return
        data = carry + data
        usable = len(data) // 2 * 2
        data, carry = data[:usable], data[usable:]
        if data:
            yield _decode(data, "<i2", 16, 1)


def pcm16(x: np.ndarray) -> bytes:
    """Float samples → 16-bit little-endian PCM bytes (limited to full scale, rounded)."""
    return (np.clip(np.round(np.asarray(x, dtype=np.float64) * 32767), -32768, 32767)).astype("<i2").tobytes()


def write_pcm16(path: Path | str, pieces: Iterable[np.ndarray], rate: int) -> int:
    """Write pieces of a mono signal as one 16-bit WAV, atomically (the file appears only when complete,
    so a failure half-way never leaves a short recording behind); return the number of samples."""
    import soundfile as sf

    written = 0
    with (
        atomic_file(path, suffix=".wav") as tmp,
        sf.SoundFile(str(tmp), "w", samplerate=int(rate), channels=1, subtype="PCM_16", format="WAV") as fh,
    ):
        for piece in pieces:
            fh.write(np.clip(np.asarray(piece, dtype=np.float32), -1.0, 1.0))
            written += len(piece)
    return written


def wav_stream_header(rate: int) -> bytes:
    """Header of a 16-bit mono WAV whose length is not known yet (sizes 0xFFFFFFFF, as streaming
    writers such as ffmpeg and sox emit and read)."""
    fmt = struct.pack("<HHIIHH", 1, 1, rate, rate * 2, 2, 16)
    return (
        b"RIFF"
        + struct.pack("<I", 0xFFFFFFFF)
        + b"WAVE"
        + b"fmt "
        + struct.pack("<I", 16)
        + fmt
        + (b"data" + struct.pack("<I", 0xFFFFFFFF))
    )
