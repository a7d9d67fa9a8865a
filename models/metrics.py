"""Image-quality metrics against a ground truth, and classical denoising baselines.

Normalisation (the same for every estimate, so numbers are comparable across methods): the data
range is ``clean.max() - clean.min()`` of the ground truth, and every estimate must be expressed in
the same units as ``clean`` (camera ADU for :mod:`livedenoise.models.synthetic`). Computations are
in float64.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from functools import partial
from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage

__all__ = [
    "psnr",
    "ssim",
    "moving_average",
    "gaussian_3d",
    "BASELINES",
    "CLASSICAL_FILTERS",
    "baseline_scores",
    "best_baseline",
]


def _check_pair(x: NDArray[Any], clean: NDArray[Any]) -> tuple[NDArray[np.float64], NDArray[np.float64], float]:
    if x.shape != clean.shape:
        raise ValueError(f"estimate shape {x.shape} differs from ground-truth shape {clean.shape}")
    c = np.asarray(clean, dtype=np.float64)
    data_range = float(c.max() - c.min())
    if data_range <= 0:
        raise ValueError("ground truth is constant: its data range (max - min) is 0, PSNR/SSIM undefined")
    return np.asarray(x, dtype=np.float64), c, data_range


def psnr(x: NDArray[Any], clean: NDArray[Any]) -> float:
    """Peak signal-to-noise ratio in dB of ``x`` against ``clean``.

    ``10 log10(R**2 / mean((x - clean)**2))`` with ``R = clean.max() - clean.min()`` (see module doc).
    Returns ``inf`` for a perfect estimate.
    """
    xf, c, data_range = _check_pair(x, clean)
    mse = float(np.mean((xf - c) ** 2))
    if mse == 0:
        return float("inf")
    return float(10.0 * np.log10(data_range**2 / mse))


def ssim(x: NDArray[Any], clean: NDArray[Any], *, sigma: float = 1.5) -> float:
    """Mean structural similarity of ``x`` against ``clean``.

    2-D SSIM per frame (Wang et al. 2004: gaussian window ``sigma`` = 1.5, K1 = 0.01, K2 = 0.03, sample
    covariances) averaged over all pixels of all frames; the data range is that of the whole ground
    truth (see module doc). Accepts ``[H, W]`` or ``[T, H, W]``.
    """
    xf, c, data_range = _check_pair(x, clean)
    if xf.ndim == 2:
        xf, c = xf[None], c[None]
    if xf.ndim != 3:
        raise ValueError(f"ssim expects [H, W] or [T, H, W], got {xf.ndim} dimensions")
    sig = (0.0, sigma, sigma)  # no smoothing across time: the SSIM is 2-D per frame

    def blur(a: NDArray[np.float64]) -> NDArray[np.float64]:
        return ndimage.gaussian_filter(a, sigma=sig, mode="reflect", truncate=3.5)

    c1 = (0.01 * data_range) ** 2
    c2 = (0.03 * data_range) ** 2
    mu_x, mu_c = blur(xf), blur(c)
    # Sample (n-1) covariances as in skimage; the window has 2*ceil(3.5*sigma)+1 = 11 taps per axis.
    n = (2 * int(np.ceil(3.5 * sigma)) + 1) ** 2
    cov_norm = n / (n - 1.0)
    var_x = cov_norm * (blur(xf * xf) - mu_x * mu_x)
    var_c = cov_norm * (blur(c * c) - mu_c * mu_c)
    cov = cov_norm * (blur(xf * c) - mu_x * mu_c)
    num = (2 * mu_x * mu_c + c1) * (2 * cov + c2)
    den = (mu_x * mu_x + mu_c * mu_c + c1) * (var_x + var_c + c2)
    return float(np.mean(num / den))


def moving_average(movie: NDArray[Any], n: int) -> NDArray[np.float32]:
    """Centred temporal moving average over ``n`` (odd) frames, reflecting at the movie edges."""
    if n < 1 or n % 2 == 0:
        raise ValueError(f"moving_average window n must be a positive odd number (centred), got {n}")
    return ndimage.uniform_filter1d(np.asarray(movie, dtype=np.float32), size=n, axis=0, mode="reflect")


def gaussian_3d(movie: NDArray[Any], sigma: tuple[float, float, float] = (1.0, 1.0, 1.0)) -> NDArray[np.float32]:
    """3-D gaussian filter with ``sigma = (st, sy, sx)`` in frames/pixels, reflecting at the edges."""
    if len(sigma) != 3 or any(s < 0 for s in sigma):
        raise ValueError(f"sigma must be three non-negative numbers (st, sy, sx), got {sigma!r}")
    return ndimage.gaussian_filter(np.asarray(movie, dtype=np.float32), sigma=tuple(sigma), mode="reflect")


BASELINES: dict[str, Any] = {
    "moving_average_3": lambda m: moving_average(m, 3),
    "moving_average_5": lambda m: moving_average(m, 5),
    "gaussian_1_1_1": lambda m: gaussian_3d(m, (1.0, 1.0, 1.0)),
    "gaussian_2_1_1": lambda m: gaussian_3d(m, (2.0, 1.0, 1.0)),
}

# sigma_t over 0.5-3 frames and sigma_xy over 0.5-1.5 pixels cover the best 3-D gaussian of simulated movies
# from 0.5 to 50 photons/pixel (a sigma_xy of 2 never came within 1 dB of the best); the moving averages
# are the purely temporal floor.
CLASSICAL_FILTERS: dict[str, Callable[[NDArray[Any]], NDArray[np.float32]]] = {
    **{
        f"gaussian_3d({st:g},{sxy:g},{sxy:g})": partial(gaussian_3d, sigma=(st, sxy, sxy))
        for st in (0.5, 1.0, 2.0, 3.0)
        for sxy in (0.5, 1.0, 1.5)
    },
    **{f"moving_average_{n}": partial(moving_average, n=n) for n in (3, 5, 7, 9)},
}
"""The classical filter bank a model must beat (16 filters, each ``movie -> movie`` of the same shape).

Named ``gaussian_3d(st,sy,sx)`` and ``moving_average_<n>``; scored without ground truth by
:func:`livedenoise.models.heldout.score_filters`.
"""


def baseline_scores(noisy: NDArray[Any], clean: NDArray[Any]) -> dict[str, float]:
    """PSNR (dB) of the noisy movie (key ``"noisy"``) and of each classical baseline in :data:`BASELINES`."""
    scores = {"noisy": psnr(noisy, clean)}
    for name, fn in BASELINES.items():
        scores[name] = psnr(fn(noisy), clean)
    return scores


def best_baseline(
    noisy: NDArray[Any] | None = None,
    clean: NDArray[Any] | None = None,
    *,
    scores: Mapping[str, float] | None = None,
) -> tuple[str, float]:
    """The best classical baseline as ``(name, psnr_db)``.

    Give either ``noisy`` and ``clean``, or precomputed ``scores`` from :func:`baseline_scores`
    (the ``"noisy"`` entry is not a baseline and is ignored).
    """
    if scores is None:
        if noisy is None or clean is None:
            raise ValueError("best_baseline needs either noisy and clean, or scores=baseline_scores(...)")
        scores = baseline_scores(noisy, clean)
    candidates = {k: v for k, v in scores.items() if k != "noisy"}
    if not candidates:
        raise ValueError(f"scores has no baseline entries (keys: {sorted(scores)})")
    name = max(candidates, key=lambda k: candidates[k])
    return name, float(candidates[name])
