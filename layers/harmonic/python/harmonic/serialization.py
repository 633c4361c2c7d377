"""A small, safe binary container for templates, fingerprints and indexes (never pickle).

Layout: 4-byte kind tag, ``uint32`` header length, a UTF-8 JSON header (metadata and, per array, its name,
dtype and shape), then the arrays' raw little-endian bytes in header order. Only plain numeric dtypes are
accepted, and every size is checked against the bytes present before anything is allocated.
"""

from __future__ import annotations

import json
import struct
from typing import Any

import numpy as np

VERSION = 1
_DTYPES = {"<f2", "<f4", "<f8", "<i4", "<i8", "<u4", "<u8", "|u1", "|i1"}
_MAX_HEADER = 1 << 20


def pack(kind: bytes, meta: dict[str, Any], arrays: dict[str, np.ndarray]) -> bytes:
    """Serialize ``meta`` (JSON-able) and ``arrays`` under the 4-byte tag ``kind``."""
    entries, blobs = [], []
    for name, array in arrays.items():
        contiguous = np.ascontiguousarray(array)
        dtype = contiguous.dtype.newbyteorder("<") if contiguous.dtype.byteorder == ">" else contiguous.dtype
        contiguous = contiguous.astype(dtype, copy=False)
        if contiguous.dtype.str not in _DTYPES:
            raise TypeError(f"cannot serialize dtype {contiguous.dtype}")
        entries.append({"name": name, "dtype": contiguous.dtype.str, "shape": list(contiguous.shape)})
        blobs.append(contiguous.tobytes())
    header = json.dumps({"version": VERSION, "meta": meta, "arrays": entries}, separators=(",", ":")).encode()
    return kind + struct.pack("<I", len(header)) + header + b"".join(blobs)


def unpack(data: bytes, kind: bytes) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """The ``(meta, arrays)`` packed by :func:`pack`; ValueError when ``data`` is not a valid ``kind``."""
    view = memoryview(data)
    if len(view) < 8 or bytes(view[:4]) != kind:
        raise ValueError(f"not a serialized {kind.decode(errors='replace')} (wrong tag)")
    (header_length,) = struct.unpack_from("<I", view, 4)
    if header_length > min(_MAX_HEADER, len(view) - 8):
        raise ValueError("corrupt serialized data: header length out of range")
    try:
        header = json.loads(bytes(view[8 : 8 + header_length]))
        if header.get("version") != VERSION:
            raise ValueError(f"corrupt serialized data: unsupported version {header.get('version')}")
        offset = 8 + header_length
        arrays: dict[str, np.ndarray] = {}
        for entry in header["arrays"]:
            dtype = np.dtype(entry["dtype"])
            if entry["dtype"] not in _DTYPES:
                raise ValueError(f"dtype {entry['dtype']} not allowed")
            shape = tuple(int(size) for size in entry["shape"])
            if any(size < 0 for size in shape):
                raise ValueError("negative dimension")
            nbytes = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
            if offset + nbytes > len(view):
                raise ValueError("truncated array data")
            arrays[str(entry["name"])] = (
                np.frombuffer(view[offset : offset + nbytes], dtype=dtype).reshape(shape).copy()
            )
            offset += nbytes
        if offset != len(view):
            raise ValueError("trailing bytes")
        return dict(header.get("meta") or {}), arrays
    except (KeyError, TypeError, json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ValueError(f"corrupt serialized data: {error}") from None


def checked_rows(rows: np.ndarray, columns: int, what: str, max_rows: int | None = None) -> np.ndarray:
    """Rows read back from an artifact, ``(n ≥ 1, columns)`` and finite (at most ``max_rows`` of them), as
    float32; ValueError naming ``what`` otherwise. The one check for stored feature rows (speech embeddings,
    Whisper's encoder rows)."""
    if (
        rows.ndim != 2
        or rows.shape[0] < 1
        or (max_rows is not None and rows.shape[0] > max_rows)
        or rows.shape[1] != columns
        or not np.all(np.isfinite(rows))
    ):
        raise ValueError(f"{what} has shape {rows.shape} or is non-finite")
    return rows.astype(np.float32)


def check_format(meta: dict[str, Any], expected: int, what: str, remedy: str) -> None:
    """ValueError unless ``meta`` (from :func:`unpack`) declares format ``expected``; the message names what
    was read and what to do (artifacts written before a format change carry no or an older number)."""
    if meta.get("format") != expected:
        raise ValueError(
            f"{what} format {meta.get('format', 1)} is not supported (expected {expected}): {remedy}"
        )
