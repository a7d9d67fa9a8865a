"""Random training patches from a ``[T, H, W]`` movie (numpy, seeded), and the training-data digest."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

__all__ = ["PatchShape", "check_movie", "fit_patch_shape", "sample_patches", "movie_digest"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class PatchShape:
    """Patch geometry actually used: ``patch_t`` network frames from ``raw_t`` movie frames, ``h`` x ``w``."""

    patch_t: int
    raw_t: int
    h: int
    w: int


def check_movie(movie: NDArray[Any]) -> NDArray[Any]:
    """Check that ``movie`` is a non-empty real ``[T, H, W]`` array; return it as an ndarray."""
    arr = np.asarray(movie)
    if arr.ndim != 3:
        raise ValueError(f"movie must be [T, H, W] (3 dimensions), got shape {arr.shape}")
    if arr.size == 0:
        raise ValueError(f"movie is empty (shape {arr.shape})")
    if not (np.issubdtype(arr.dtype, np.integer) or np.issubdtype(arr.dtype, np.floating)):
        raise ValueError(f"movie dtype must be an integer or float type, got {arr.dtype}")
    return arr


def fit_patch_shape(
    movie_shape: tuple[int, ...],
    patch_t: int,
    patch_xy: int,
    multiple: int,
    raw_frames: Callable[[int], int],
) -> PatchShape:
    """Clamp the requested patch to the movie, keeping every axis a multiple of ``multiple``.

    ``raw_frames(t)`` is the sampler's count of movie frames needed for ``t`` network frames. The time
    axis is clamped to the largest multiple of ``multiple`` whose raw frames fit the movie.

    Raises
    ------
    ValueError
        The movie is shorter than ``raw_frames(multiple)`` frames or smaller than ``multiple`` pixels.
    """
    t_len, h_len, w_len = (int(s) for s in movie_shape)
    min_frames = raw_frames(multiple)
    if t_len < min_frames:
        raise ValueError(
            f"movie has {t_len} frames but training needs at least {min_frames} "
            f"({multiple} network frames of {raw_frames(patch_t)} requested); record a longer movie"
        )
    if h_len < multiple or w_len < multiple:
        raise ValueError(f"movie frames are {h_len}x{w_len} pixels but the network needs at least {multiple}x{multiple}")
    t = patch_t
    while raw_frames(t) > t_len:
        t -= multiple
    h = min(patch_xy, h_len // multiple * multiple)
    w = min(patch_xy, w_len // multiple * multiple)
    shape = PatchShape(patch_t=t, raw_t=raw_frames(t), h=h, w=w)
    if (t, h, w) != (patch_t, patch_xy, patch_xy):
        logger.warning(
            "movie %s is smaller than the requested patch (t=%d, %dx%d): using t=%d, %dx%d",
            movie_shape, patch_t, patch_xy, patch_xy, t, h, w,
        )
    return shape


def sample_patches(
    movie: NDArray[Any], n: int, raw_t: int, h: int, w: int, rng: np.random.Generator
) -> NDArray[np.float32]:
    """``n`` random ``[raw_t, h, w]`` crops of consecutive frames, float32 ``[n, raw_t, h, w]``."""
    t_len, h_len, w_len = movie.shape
    if raw_t > t_len or h > h_len or w > w_len:
        raise ValueError(f"patch ({raw_t}, {h}, {w}) does not fit in movie {movie.shape}")
    t0 = rng.integers(0, t_len - raw_t + 1, size=n)
    y0 = rng.integers(0, h_len - h + 1, size=n)
    x0 = rng.integers(0, w_len - w + 1, size=n)
    out = np.empty((n, raw_t, h, w), dtype=np.float32)
    for i in range(n):
        out[i] = movie[t0[i] : t0[i] + raw_t, y0[i] : y0[i] + h, x0[i] : x0[i] + w]
    return out


def movie_digest(movie: NDArray[Any]) -> str:
    """``sha256:<hex>`` of the movie's shape, dtype and C-order bytes (identifies the training data)."""
    arr = np.ascontiguousarray(movie)
    h = hashlib.sha256()
    h.update(f"{arr.shape}|{arr.dtype.str}|".encode())
    h.update(arr.reshape(-1).view(np.uint8).data)
    return f"sha256:{h.hexdigest()}"
