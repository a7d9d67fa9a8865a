"""Frames as small 8-bit greyscale PNGs for a browser: block-mean downscaling, a robust display range
(percentiles, so a few hot pixels do not wash the image out) and a PNG writer on :mod:`zlib` (no imaging
library in the server install)."""

from __future__ import annotations

import struct
import zlib
from typing import Any

import numpy as np
from numpy.typing import NDArray

__all__ = ["DisplayRange", "display_range", "downscale", "encode_png", "to_gray8"]

#: Percentiles mapped to black and white: robust to hot pixels and to a few saturated ones.
LOW_PERCENTILE = 0.5
HIGH_PERCENTILE = 99.8

DisplayRange = tuple[float, float]


def downscale(image: NDArray[Any], max_side: int) -> NDArray[np.float32]:
    """``image`` as float32, averaged over square blocks so that neither side exceeds ``max_side``."""
    if max_side < 1:
        raise ValueError(f"max_side must be >= 1, got {max_side}")
    data = np.asarray(image, dtype=np.float32)
    h, w = data.shape
    factor = -(-max(h, w) // max_side)  # ceil
    if factor <= 1:
        return data
    hh, ww = h - h % factor, w - w % factor  # the last partial block row and column are left out
    if hh == 0 or ww == 0:  # a sliver thinner than one block: sample instead
        return np.ascontiguousarray(data[::factor, ::factor])
    blocks = data[:hh, :ww].reshape(hh // factor, factor, ww // factor, factor)
    out: NDArray[np.float32] = blocks.mean(axis=(1, 3), dtype=np.float32)
    return out


def display_range(image: NDArray[Any]) -> DisplayRange:
    """The (low, high) values shown black and white; finite, with high > low."""
    finite = np.asarray(image, dtype=np.float32)
    finite = finite[np.isfinite(finite)]
    if finite.size == 0:
        return 0.0, 1.0
    lo, hi = (float(v) for v in np.percentile(finite, [LOW_PERCENTILE, HIGH_PERCENTILE]))
    if not hi > lo:
        hi = lo + 1.0
    return lo, hi


def to_gray8(image: NDArray[Any], value_range: DisplayRange) -> NDArray[np.uint8]:
    """Map ``value_range`` linearly onto 0-255, clipping outside it (NaN shows black)."""
    lo, hi = value_range
    scaled = (np.asarray(image, dtype=np.float32) - np.float32(lo)) * np.float32(255.0 / (hi - lo))
    scaled = np.nan_to_num(scaled, nan=0.0, posinf=255.0, neginf=0.0)
    out: NDArray[np.uint8] = np.clip(scaled + 0.5, 0, 255).astype(np.uint8)
    return out


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def encode_png(image: NDArray[np.uint8], level: int = 3) -> bytes:
    """An 8-bit greyscale PNG of a 2-D uint8 array (every row unfiltered: fast, and small enough for a preview)."""
    data = np.asarray(image)
    if data.dtype != np.uint8 or data.ndim != 2 or data.size == 0:
        raise ValueError(f"encode_png needs a non-empty 2-D uint8 array, got {data.dtype} {data.shape}")
    h, w = data.shape
    rows = np.zeros((h, w + 1), dtype=np.uint8)  # a leading 0 on each row: filter type "none"
    rows[:, 1:] = data
    header = struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0)  # 8-bit, greyscale, deflate, no filter, no interlace
    return (
        b"\x89PNG\r\n\x1a\n"
        + _chunk(b"IHDR", header)
        + _chunk(b"IDAT", zlib.compress(rows.tobytes(), level))
        + _chunk(b"IEND", b"")
    )
