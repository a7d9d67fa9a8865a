"""Random training patches from a ``[T, H, W]`` movie (numpy, seeded), and the training-data digest."""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from livedenoise.clients.windowing import reflect_position

if TYPE_CHECKING:
    from livedenoise.models.recipes.base import TrainingWindow

__all__ = ["PatchShape", "check_movie", "fit_training_window", "sample_patches", "movie_digest"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class PatchShape:
    """A training window fitted to the movie: ``frames`` x ``h`` x ``w``, centred at slot ``centre`` (or not)."""

    frames: int
    h: int
    w: int
    centre: int | None = None


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


def fit_training_window(window: TrainingWindow, movie_shape: tuple[int, ...]) -> PatchShape:
    """Fit a recipe's :class:`TrainingWindow` to the movie: shorter stacks and smaller crops on small movies.

    Raises
    ------
    ValueError
        The movie is too short for the recipe's minimum or smaller than its spatial multiple; the message
        names the minimum.
    """
    t_len, h_len, w_len = (int(s) for s in movie_shape)
    frames = window.frames
    if window.centre is None and t_len < window.min_frames and window.short_movie_centre is not None:
        logger.info(
            "movie has %d frames, fewer than the %d a training window needs: using windows mirrored at its ends",
            t_len,
            window.min_frames,
        )
        window = replace(window, centre=window.short_movie_centre)
    if window.centre is None:  # consecutive frames inside the movie
        if t_len < window.min_frames:
            raise ValueError(
                f"movie has {t_len} frames but training needs at least {window.min_frames} "
                f"({window.frames} requested); record a longer movie"
            )
        while frames > t_len:
            frames -= window.frames_multiple
    m = window.spatial_multiple
    if h_len < m or w_len < m:
        raise ValueError(f"movie frames are {h_len}x{w_len} pixels but the network needs at least {m}x{m}")
    h = min(window.size, h_len // m * m)
    w = min(window.size, w_len // m * m)
    shape = PatchShape(frames=frames, h=h, w=w, centre=window.centre)
    if (frames, h, w) != (window.frames, window.size, window.size):
        logger.info(
            "movie %s is smaller than the training window (%d frames, %dx%d): using %d frames, %dx%d",
            movie_shape,
            window.frames,
            window.size,
            window.size,
            frames,
            h,
            w,
        )
    return shape


def sample_patches(
    movie: NDArray[Any],
    n: int,
    shape: PatchShape,
    rng: np.random.Generator,
    mean_frame: NDArray[Any] | None = None,
) -> NDArray[np.float32]:
    """``n`` random crops of ``shape`` from ``movie``, float32 ``[n, frames, h, w]``.

    With ``shape.centre`` set, each crop is the window around a uniformly drawn frame, mirrored at the movie's
    ends like a served series; otherwise ``frames`` consecutive frames inside the movie. With ``mean_frame``
    (``[H, W]``) the same crop of it follows as one more plane: ``[n, frames + 1, h, w]``.
    """
    t_len, h_len, w_len = movie.shape
    if shape.h > h_len or shape.w > w_len or (shape.centre is None and shape.frames > t_len):
        raise ValueError(f"patch ({shape.frames}, {shape.h}, {shape.w}) does not fit in movie {movie.shape}")
    if shape.centre is None:
        starts = rng.integers(0, t_len - shape.frames + 1, size=n)
        frames = starts[:, None] + np.arange(shape.frames)[None, :]
    else:
        centres = rng.integers(0, t_len, size=n)
        offsets = np.arange(shape.frames) - shape.centre
        frames = np.array([[reflect_position(int(c + o), t_len) for o in offsets] for c in centres])
    y0 = rng.integers(0, h_len - shape.h + 1, size=n)
    x0 = rng.integers(0, w_len - shape.w + 1, size=n)
    if mean_frame is not None and mean_frame.shape != movie.shape[1:]:
        raise ValueError(f"mean frame {mean_frame.shape} does not match the movie's frames {movie.shape[1:]}")
    planes = shape.frames + (mean_frame is not None)
    out = np.empty((n, planes, shape.h, shape.w), dtype=np.float32)
    for i in range(n):
        ys, xs = slice(y0[i], y0[i] + shape.h), slice(x0[i], x0[i] + shape.w)
        out[i, : shape.frames] = movie[frames[i], ys, xs]
        if mean_frame is not None:
            out[i, -1] = mean_frame[ys, xs]
    return out


def movie_digest(movie: NDArray[Any]) -> str:
    """``sha256:<hex>`` of the movie's shape, dtype and C-order bytes (identifies the training data)."""
    arr = np.ascontiguousarray(movie)
    h = hashlib.sha256()
    h.update(f"{arr.shape}|{arr.dtype.str}|".encode())
    h.update(arr.reshape(-1).view(np.uint8).data)
    return f"sha256:{h.hexdigest()}"
