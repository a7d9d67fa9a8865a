"""Held-out-frame denoising score: a PSNR-gain estimate that needs no ground truth.

Split a movie into even frames ``A`` (0, 2, 4, ...) and odd frames ``B`` (1, 3, 5, ...), denoise ``A`` alone
(a model trained on ``A`` only, or a filter applied to ``A``), and compare ``D(A)`` with a target built from
``B``, whose noise is independent of everything ``D(A)`` saw. The result estimates
``psnr(D(A), clean_A) - psnr(A, clean_A)``, the PSNR gain of ``D(A)`` over the raw frames ``A``.

Base estimator (``method="paired"``)
    With the target ``B_k`` itself, ``I = mean((A - B)**2)`` (about twice the noise variance when the signal
    changes slowly between adjacent frames) and ``MSE = mean((D(A) - B)**2)``::

        gain_db = 10 log10((I / 2) / (MSE - I / 2))

Default estimator (``method="cubic"``)
    The target for ``A_k`` (frame ``2k``) is the cubic interpolation of the four odd frames around it,
    ``T_k = (-B_{k-2} + 9 B_{k-1} + 9 B_k - B_{k+1}) / 16`` (frames ``2k-3, 2k-1, 2k+1, 2k+3``). Its noise
    variance is ``r = sum(w**2) = 164/256`` times that of one frame, so with ``I = mean((A - T)**2)`` and
    ``MSE = mean((D(A) - T)**2)``::

        noise_var = I / (1 + r)
        gain_db = 10 log10(noise_var / (MSE - r * noise_var))

    The paired formula is the case ``T_k = B_k``, ``r = 1``. Only ``A_2 .. A_{n-2}`` have all four neighbours,
    so the first two and the last even frame are left out of both means.

Why cubic: the target's clean part differs from ``clean_A`` by ``e`` (the signal change between the frames),
and ``MSE - r * noise_var`` then misses the error of ``D(A)`` by about ``e**2 / (1 + r) + 2 mean(bias * e)``,
where ``bias = D(A) - clean_A`` without the noise. With ``B_k`` (first-order ``e``) the sum is large and its
sign depends on the filter; with the linear mean of ``B_{k-1}`` and ``B_k`` the ``e**2`` term is small
but ``e`` is a temporal average like the smoothers being scored, so ``mean(bias * e)`` favours temporal
smoothing. Measured on :func:`livedenoise.models.synthetic.simulate_calcium_movie` (600 x 128 x 128, several
seeds; estimate minus true gain, mean over seeds, for moving averages and 3-D gaussians on ``A``): paired
-0.42 to +0.18 dB, linear 0.0 to +0.61 dB, cubic 0.0 to +0.24 dB (the largest for the strongest temporal
smoothers at 10 photons/pixel; 0.16 dB or less at 2 photons). Six interpolation taps gained under 0.05 dB
more: what is left comes from event onsets, where the calcium trace has a kink, and grows with the signal to
noise ratio. The random error adds to this and shrinks as one over the square root of the number of pixels
scored; it is largest for large gains and bright, sparse cells (their pixels dominate the noise power). Largest
error over 12 seeds of 400 x 96 x 96: cubic 0.25 dB at 2 photons and 0.38 dB at 10 (paired 0.44 and 0.49);
on 200 x 64 x 64 at 2 photons both were off by 0.6 to 2 dB on 3 seeds of 8 for gains above 15 dB.

Cap: when ``MSE - r * noise_var`` is at or below ``noise_var * 10**(-GAIN_CAP_DB / 10)`` the estimate is within
sampling noise of a perfect denoiser, and :func:`heldout_gain_db` returns :data:`GAIN_CAP_DB` (60 dB) rather
than ``inf`` or a meaningless huge number: gains are written to JSON and tables, where ``inf`` is not valid
JSON, and the random error of the denominator (about ``noise_var / sqrt(pixels)``) means no real measurement
on a movie of under ``10**12`` pixels resolves gains anywhere near 60 dB. Any value equal to the cap reads as
"at or beyond what this movie can measure".

Everything here is numpy only (no torch, no scipy at import time) so the server can use it; the default
filter bank of :func:`score_filters` is :data:`livedenoise.models.metrics.CLASSICAL_FILTERS`, imported when
it is first needed.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray

__all__ = [
    "GAIN_CAP_DB",
    "MIN_FRAMES",
    "HeldoutMethod",
    "HeldoutReport",
    "best_filter",
    "heldout_gain_db",
    "heldout_report",
    "score_filters",
    "split_even_odd",
]

GAIN_CAP_DB: float = 60.0
"""The largest gain :func:`heldout_gain_db` reports (see the module docstring)."""

MIN_FRAMES: int = 8
"""Fewest frames :func:`split_even_odd` accepts: 4 even/odd pairs, the fewest the cubic target needs."""

HeldoutMethod = Literal["cubic", "paired"]

# Target weights on B_{k+offset}; the cubic ones interpolate frames 2k-3, 2k-1, 2k+1, 2k+3 at frame 2k.
_TARGETS: dict[str, tuple[tuple[float, ...], tuple[int, ...]]] = {
    "cubic": ((-1 / 16, 9 / 16, 9 / 16, -1 / 16), (-2, -1, 0, 1)),
    "paired": ((1.0,), (0,)),
}

# Frames per chunk are chosen so one float64 chunk stays near this many elements (~32 MB), whatever the movie.
_CHUNK_ELEMENTS = 1 << 22


def split_even_odd(movie: NDArray[Any]) -> tuple[NDArray[Any], NDArray[Any]]:
    """Split a movie into its even and odd frames.

    Parameters
    ----------
    movie : NDArray
        ``[T, H, W]`` (any ``[T, ...]``) movie, time on axis 0.

    Returns
    -------
    tuple of NDArray
        ``(A, B)``: frames ``0, 2, 4, ...`` and ``1, 3, 5, ...``, both of length ``T // 2`` (a trailing unpaired
        frame is dropped). They are views of ``movie``, not copies.

    Raises
    ------
    ValueError
        If ``movie`` has no time axis or fewer than :data:`MIN_FRAMES` frames.
    """
    m = np.asarray(movie)
    if m.ndim < 1:
        raise ValueError("movie must have a time axis ([T, H, W]), got a scalar")
    if m.shape[0] < MIN_FRAMES:
        raise ValueError(
            f"movie has {m.shape[0]} frames; the held-out split needs at least {MIN_FRAMES} "
            f"({MIN_FRAMES // 2} even/odd pairs)"
        )
    n = m.shape[0] // 2
    return m[0 : 2 * n : 2], m[1 : 2 * n : 2]


def heldout_gain_db(
    denoised_a: NDArray[Any],
    a: NDArray[Any],
    b: NDArray[Any],
    *,
    method: HeldoutMethod = "cubic",
) -> float:
    """Estimated PSNR gain (dB) of ``denoised_a`` over the raw frames ``a``, judged against ``b``.

    Parameters
    ----------
    denoised_a : NDArray
        ``D(A)``: the even frames denoised by something that never saw ``b``; same shape as ``a``.
    a, b : NDArray
        Even and odd frames from :func:`split_even_odd`, ``[n, H, W]`` each (any ``[n, ...]``), same shape.
    method : {"cubic", "paired"}
        Target built from ``b``: the cubic interpolation of the four odd frames around each even frame
        (default, less biased), or the next odd frame ``B_k`` (the base formula); see the module docstring.

    Returns
    -------
    float
        ``10 log10(noise_var / (MSE - r * noise_var))`` in dB, accumulated in float64: 0 for the identity,
        negative for an estimate worse than the raw frames, at most :data:`GAIN_CAP_DB`.

    Raises
    ------
    ValueError
        On mismatched shapes, too few frames for ``method``, an unknown ``method``, ``a`` and ``b`` without
        any difference (no noise to measure), or non-finite values.
    """
    if method not in _TARGETS:
        raise ValueError(f"method must be one of {sorted(_TARGETS)}, got {method!r}")
    weights, offsets = _TARGETS[method]
    d_arr, a_arr, b_arr = np.asarray(denoised_a), np.asarray(a), np.asarray(b)
    if a_arr.shape != b_arr.shape:
        raise ValueError(f"a (even frames) has shape {a_arr.shape} but b (odd frames) has shape {b_arr.shape}")
    if d_arr.shape != a_arr.shape:
        raise ValueError(f"denoised_a has shape {d_arr.shape} but a has shape {a_arr.shape}; denoise a itself")
    if a_arr.ndim < 1 or a_arr.size == 0:
        raise ValueError(f"a and b must be non-empty with a time axis ([n, H, W]), got shape {a_arr.shape}")
    n = a_arr.shape[0]
    lo, hi = -min(offsets), n - max(offsets)
    need = max(offsets) - min(offsets) + 1
    if hi <= lo:
        raise ValueError(
            f"method={method!r} needs at least {need} frames in a and b (2 * {need} in the movie), got {n}"
        )

    r = float(np.sum(np.square(weights)))
    frame_size = max(1, int(np.prod(a_arr.shape[1:])))
    step = max(1, _CHUNK_ELEMENTS // frame_size)
    sum_id = 0.0
    sum_d = 0.0
    for start in range(lo, hi, step):
        stop = min(hi, start + step)
        target = np.zeros((stop - start, *a_arr.shape[1:]), dtype=np.float64)
        for w, off in zip(weights, offsets):
            target += w * b_arr[start + off : stop + off].astype(np.float64)
        sum_id += float(np.sum(np.square(a_arr[start:stop].astype(np.float64) - target)))
        sum_d += float(np.sum(np.square(d_arr[start:stop].astype(np.float64) - target)))
    count = (hi - lo) * frame_size
    identity_mse, mse = sum_id / count, sum_d / count
    if not (math.isfinite(identity_mse) and math.isfinite(mse)):
        raise ValueError("denoised_a, a or b contains non-finite values (nan or inf)")
    noise_var = identity_mse / (1.0 + r)
    if noise_var <= 0:
        raise ValueError("a and b are identical over the scored frames: there is no noise to measure a gain against")
    error = mse - r * noise_var
    if error <= noise_var * 10.0 ** (-GAIN_CAP_DB / 10.0):
        return GAIN_CAP_DB
    return float(10.0 * math.log10(noise_var / error))


def score_filters(
    a: NDArray[Any],
    b: NDArray[Any],
    filters: Mapping[str, Callable[[NDArray[Any]], NDArray[Any]]] | None = None,
    *,
    method: HeldoutMethod = "cubic",
) -> dict[str, float]:
    """Held-out gain (dB) of each filter applied to ``a``, judged against ``b``.

    Parameters
    ----------
    a, b : NDArray
        Even and odd frames from :func:`split_even_odd`.
    filters : Mapping of str to callable, optional
        ``name -> f(movie) -> movie`` of the same shape. ``None`` means
        :data:`livedenoise.models.metrics.CLASSICAL_FILTERS` (imported here, as it needs scipy).
    method : {"cubic", "paired"}
        Passed to :func:`heldout_gain_db`.

    Returns
    -------
    dict of str to float
        ``{name: gain_db}`` in the order of ``filters``.

    Raises
    ------
    ValueError
        If ``filters`` is empty, or as :func:`heldout_gain_db` does (a filter that changes the shape included).
    """
    if filters is None:
        from livedenoise.models.metrics import CLASSICAL_FILTERS

        filters = CLASSICAL_FILTERS
    if not filters:
        raise ValueError("filters is empty: give at least one name -> filter(movie) entry")
    return {name: heldout_gain_db(fn(a), a, b, method=method) for name, fn in filters.items()}


def best_filter(scores: Mapping[str, float]) -> tuple[str, float]:
    """The highest-scoring filter as ``(name, gain_db)`` (the first one listed on a tie).

    Parameters
    ----------
    scores : Mapping of str to float
        From :func:`score_filters`.

    Returns
    -------
    tuple of (str, float)

    Raises
    ------
    ValueError
        If ``scores`` is empty.
    """
    if not scores:
        raise ValueError("scores is empty: score at least one filter with score_filters(a, b)")
    name = max(scores, key=lambda k: scores[k])
    return name, float(scores[name])


@dataclass(frozen=True)
class HeldoutReport:
    """A model's held-out gain against the best classical filter on the same frames.

    Attributes
    ----------
    model_gain_db : float
        Held-out gain of the model (dB).
    best_filter : str
        Name of the best filter (the floor).
    best_filter_gain_db : float
        Its held-out gain (dB).
    margin_db : float
        ``model_gain_db - best_filter_gain_db``.
    min_margin_db : float
        Margin the model had to exceed.
    beats_floor : bool
        ``margin_db > min_margin_db``.
    """

    model_gain_db: float
    best_filter: str
    best_filter_gain_db: float
    margin_db: float
    min_margin_db: float
    beats_floor: bool

    def to_dict(self) -> dict[str, Any]:
        """JSON-able dict of the fields (all gains are finite, see :data:`GAIN_CAP_DB`)."""
        return asdict(self)


def heldout_report(
    model_gain_db: float, filter_scores: Mapping[str, float], *, min_margin_db: float = 0.0
) -> HeldoutReport:
    """Compare a model's held-out gain with the best classical filter's.

    Parameters
    ----------
    model_gain_db : float
        From :func:`heldout_gain_db` on the model's ``D(A)``.
    filter_scores : Mapping of str to float
        From :func:`score_filters` on the same ``a`` and ``b`` (and the same ``method``).
    min_margin_db : float
        The model beats the floor only if it is more than this far above it. The estimates carry a random
        error of about 0.1 to 0.5 dB on small movies (module docstring), so a caller deciding something on
        the result may want a positive margin.

    Returns
    -------
    HeldoutReport

    Raises
    ------
    ValueError
        If ``filter_scores`` is empty or a gain is not finite.
    """
    name, floor = best_filter(filter_scores)
    if not (math.isfinite(model_gain_db) and math.isfinite(floor) and math.isfinite(min_margin_db)):
        raise ValueError(
            f"gains must be finite, got model_gain_db={model_gain_db!r}, {name}={floor!r}, "
            f"min_margin_db={min_margin_db!r}"
        )
    margin = float(model_gain_db) - floor
    return HeldoutReport(
        model_gain_db=float(model_gain_db),
        best_filter=name,
        best_filter_gain_db=floor,
        margin_db=margin,
        min_margin_db=float(min_margin_db),
        beats_floor=margin > min_margin_db,
    )
