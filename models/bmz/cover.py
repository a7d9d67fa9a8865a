"""The package's cover image: a raw frame beside the model's denoising of it, as an 8-bit grey PNG.

Written by hand (zlib + struct) so that exporting needs no imaging library. The zoo recommends a 2:1 image
under 500 kB: two square panels side by side, each scaled up by an integer factor to at least 256 pixels.
"""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

__all__ = ["cover_image", "png_bytes", "write_cover"]

#: Smallest panel side in the cover (small test crops are scaled up by whole pixels).
MIN_PANEL = 256
_GAP = 4  # white pixels between the panels


def png_bytes(image: NDArray[np.uint8]) -> bytes:
    """An 8-bit greyscale PNG of ``image`` ``[H, W]``."""
    if image.ndim != 2 or image.dtype != np.uint8:
        raise ValueError(f"a greyscale PNG needs a uint8 [H, W] array, got {image.dtype} {image.shape}")
    height, width = image.shape

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    # Every row starts with filter type 0 (none).
    rows = np.concatenate([np.zeros((height, 1), dtype=np.uint8), image], axis=1)
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)  # 8-bit greyscale, no interlace
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows.tobytes(), 9))
        + chunk(b"IEND", b"")
    )


def _square(frame: NDArray[np.float32]) -> NDArray[np.float32]:
    h, w = frame.shape
    side = min(h, w)
    y0, x0 = (h - side) // 2, (w - side) // 2
    return frame[y0 : y0 + side, x0 : x0 + side]


def cover_image(raw: NDArray[np.float32], denoised: NDArray[np.float32]) -> NDArray[np.uint8]:
    """Raw (left) and denoised (right) frames as one uint8 image, on one shared grey scale.

    The scale spans the 0.5th to 99.8th percentile of the denoised frame, so both panels show the same
    intensities with the same grey and the raw frame's noise is visible as such.
    """
    panels = [_square(np.asarray(raw, dtype=np.float32)), _square(np.asarray(denoised, dtype=np.float32))]
    lo, hi = (float(v) for v in np.percentile(panels[1], [0.5, 99.8]))
    if not hi > lo:
        hi = lo + 1.0
    scale = max(1, -(-MIN_PANEL // panels[0].shape[0]))
    grey = [
        np.kron(
            np.clip((p - lo) / (hi - lo) * 255.0, 0, 255).round().astype(np.uint8), np.ones((scale, scale), np.uint8)
        )
        for p in panels
    ]
    gap = np.full((grey[0].shape[0], _GAP), 255, dtype=np.uint8)
    return np.concatenate([grey[0], gap, grey[1]], axis=1)


def write_cover(path: Path, raw: NDArray[np.float32], denoised: NDArray[np.float32]) -> Path:
    """Write :func:`cover_image` of ``raw`` and ``denoised`` as a PNG at ``path``."""
    path.write_bytes(png_bytes(cover_image(raw, denoised)))
    return path
