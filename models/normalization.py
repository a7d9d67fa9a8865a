"""Fit the intensity normalisation on the training movie; the exporter embeds it in the model."""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

from livedenoise.clients.model_spec import Normalization

__all__ = ["NORMALIZATION_KINDS", "fit_normalization"]

NORMALIZATION_KINDS = ("zscore", "mean_sub", "minmax", "percentile")

# Statistics are estimated on at most this many pixels (a strided subset): exact enough, and
# constant-time for long movies.
_MAX_SAMPLES = 4_000_000


def _subsample(movie: NDArray[Any]) -> NDArray[np.float64]:
    flat = np.asarray(movie).reshape(-1)
    step = max(1, flat.size // _MAX_SAMPLES)
    return flat[::step].astype(np.float64)


def fit_normalization(movie: NDArray[Any], kind: str) -> Normalization:
    """Fit ``(x - offset) / scale`` on ``movie``.

    Parameters
    ----------
    movie : ``[T, H, W]`` raw intensities (any real dtype).
    kind : ``zscore`` (global mean and std), ``mean_sub`` (mean, scale 1), ``minmax`` (min, max - min) or
        ``percentile`` (1st percentile, 99.9th - 1st).

    Raises
    ------
    ValueError
        Unknown ``kind``, an empty or non-finite movie, or a constant movie (zero scale).
    """
    if kind not in NORMALIZATION_KINDS:
        raise ValueError(f"unknown normalisation kind {kind!r}; expected one of {', '.join(NORMALIZATION_KINDS)}")
    x = _subsample(movie)
    if x.size == 0:
        raise ValueError("cannot fit a normalisation on an empty movie")
    if not np.all(np.isfinite(x)):
        raise ValueError("movie contains NaN or infinite values; clean it before training")
    if kind == "zscore":
        offset, scale = float(x.mean()), float(x.std())
    elif kind == "mean_sub":
        offset, scale = float(x.mean()), 1.0
    elif kind == "minmax":
        offset, scale = float(x.min()), float(x.max() - x.min())
    else:
        lo, hi = np.percentile(x, [1.0, 99.9])
        offset, scale = float(lo), float(hi - lo)
    if not scale > 0:
        raise ValueError(f"movie is constant (value {offset}); a {kind} normalisation needs some contrast")
    return Normalization(kind=kind, offset=offset, scale=scale)
