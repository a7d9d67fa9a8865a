"""Denoise a whole movie with the same windowing code as the streaming path."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from numpy.typing import NDArray

from livedenoise.clients.windowing import denoise_series
from livedenoise.server.engine.base import Engine

__all__ = ["denoise_movie"]


def denoise_movie(
    engine: Engine,
    movie: NDArray[Any],
    batch_size: int = 8,
    progress: Callable[[int, int], None] | None = None,
    estimate: str | None = None,
) -> NDArray[np.float32]:
    """Denoise ``movie`` ``[T, H, W]`` (any pixel dtype) with ``engine`` → float32 ``[T, H, W]``.

    ``estimate`` names one of the model's estimates (``ModelSpec.estimate_names``; default: its first); a name
    the model does not offer raises ``SpecError``.

    Windows are formed by :class:`~livedenoise.clients.windowing.SeriesWindow` exactly as for a streamed
    series that ended after frame ``T - 1``, so a deterministic engine gives the same result either way
    (see :func:`~livedenoise.clients.windowing.denoise_series` for the parameters).
    """
    planes, _ = engine.spec.estimate(estimate)
    return denoise_series(
        engine.infer, engine.spec.window, movie, batch_size=batch_size, progress=progress, planes=planes
    )
