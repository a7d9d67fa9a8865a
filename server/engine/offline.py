"""Denoise a whole movie with the same windowing code as the streaming path."""

from __future__ import annotations

from typing import Any, Callable

import numpy as np
from numpy.typing import NDArray

from livedenoise.server.engine.base import Engine
from livedenoise.server.windowing import Block, SeriesWindow

__all__ = ["denoise_movie"]


def denoise_movie(
    engine: Engine,
    movie: NDArray[Any],
    batch_size: int = 8,
    progress: Callable[[int, int], None] | None = None,
) -> NDArray[np.float32]:
    """Denoise ``movie`` ``[T, H, W]`` (any pixel dtype) → float32 ``[T, H, W]``.

    Windows are formed by :class:`~livedenoise.server.windowing.SeriesWindow` exactly as for a streamed
    series that ended after frame ``T - 1``, so a deterministic engine gives the same result either way.

    Parameters
    ----------
    engine
        Any :class:`~livedenoise.server.engine.base.Engine`.
    movie
        ``[T, H, W]`` frames, ``T >= 1``.
    batch_size
        Windows per engine call.
    progress
        Called as ``progress(frames_done, T)`` after each engine call.
    """
    if movie.ndim != 3 or movie.shape[0] < 1:
        raise ValueError(f"movie must be [T, H, W] with T >= 1, got shape {movie.shape}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    total = movie.shape[0]
    series = SeriesWindow()
    for frame in movie:
        series.append(frame)
    series.end()
    out = np.empty(movie.shape, dtype=np.float32)
    while not series.done:
        blocks: list[Block] = []
        while len(blocks) < batch_size:
            block = series.next_block(engine.spec.window)
            if block is None:
                break
            blocks.append(block)
        result = engine.infer(np.stack([b.window for b in blocks]))
        for block, frames in zip(blocks, result):
            out[block.start : block.stop] = frames[: block.count]
        if progress is not None:
            progress(blocks[-1].stop, total)
    return out
