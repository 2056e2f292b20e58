"""Reading and writing the IDX format MNIST is distributed in (``*-idx3-ubyte[.gz]``).

Parsing checks the header against the payload so that a truncated, empty or foreign file fails with a
message naming the file and what was wrong, instead of a reshape error deep inside numpy.
"""

from __future__ import annotations

import gzip
import struct
import zlib
from pathlib import Path

import numpy as np

from aeflow.errors import DataError

_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: np.dtype(">i2"), 0x0C: np.dtype(">i4"), 0x0D: np.dtype(">f4")}
_CODES = {np.dtype(np.uint8): 0x08}


def parse_idx(raw: bytes, name: str = "<bytes>") -> np.ndarray:
    """Decode IDX bytes (already decompressed) into an array; ``name`` is used in error messages."""
    if len(raw) < 4:
        raise DataError(
            f"{name}: {len(raw)} bytes is too short to be an IDX file (needs a 4-byte magic number). "
            "Fix: the file is empty or truncated; download it again."
        )
    zero, dtype_code, ndim = raw[0] << 8 | raw[1], raw[2], raw[3]
    if zero != 0 or dtype_code not in _DTYPES or not 1 <= ndim <= 4:
        raise DataError(
            f"{name}: not an IDX file (magic bytes {raw[:4].hex()}, expected 0000 08 01/03 for MNIST labels/"
            "images). Fix: point at the original *-idx?-ubyte(.gz) files."
        )
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise DataError(
            f"{name}: truncated IDX header ({len(raw)} of {header} bytes). Fix: download it again."
        )
    shape = struct.unpack(">" + "I" * ndim, raw[4:header])
    dtype = np.dtype(_DTYPES[dtype_code])
    expected = int(np.prod(shape)) * dtype.itemsize
    got = len(raw) - header
    if got != expected:
        raise DataError(
            f"{name}: IDX header announces shape {tuple(shape)} ({expected} payload bytes) but the file "
            "holds "
            f"{got}. The file is truncated or corrupt. Fix: download it again."
        )
    return np.frombuffer(raw, dtype=dtype, offset=header).reshape(shape).astype(dtype.newbyteorder("="))


def read_idx(path: Path | str) -> np.ndarray:
    """Read an IDX file, gzip-compressed or not."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: file not found.")
    data = path.read_bytes()
    if not data:
        raise DataError(f"{path}: the file is empty (0 bytes). Fix: download it again.")
    if data[:2] == b"\x1f\x8b":
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError, zlib.error) as exc:
            raise DataError(
                f"{path}: gzip stream is truncated or corrupt ({exc}). Fix: download the file again."
            ) from None
    return parse_idx(data, str(path))


def encode_idx(array: np.ndarray) -> bytes:
    """Encode a uint8 array as IDX bytes (used for tests and for serving fixtures)."""
    array = np.ascontiguousarray(array)
    if array.dtype not in _CODES:
        raise ValueError("encode_idx supports uint8 arrays only")
    head = bytes([0, 0, _CODES[array.dtype], array.ndim]) + struct.pack(">" + "I" * array.ndim, *array.shape)
    return head + array.tobytes()


def write_idx_gz(path: Path | str, array: np.ndarray) -> None:
    """Write ``array`` as a gzip-compressed IDX file with a fixed header time (byte-stable output)."""
    with open(path, "wb") as raw, gzip.GzipFile(filename="", fileobj=raw, mode="wb", mtime=0) as fh:
        fh.write(encode_idx(array))
