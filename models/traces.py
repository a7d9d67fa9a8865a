"""Per-cell trace fidelity of a denoised movie against a ground truth.

PSNR rewards temporal smoothing even where it blurs fast events away; these metrics look at what a
voltage- or calcium-imaging analysis keeps: each cell's footprint-weighted trace. ``r`` is the Pearson
correlation of the estimate's traces with the ground truth's, and ``r_highpass`` the same after removing a
centred moving average from both, which leaves the fast events (spikes). numpy/scipy only, so it runs
without torch. Computations are in float64.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage

__all__ = ["TraceFidelity", "footprint_traces", "highpass", "trace_fidelity"]

# Frames per matrix product in footprint_traces: bounds the float64 copy to ~64 MiB at 128x128.
_CHUNK = 512


@dataclass(frozen=True)
class TraceFidelity:
    """Mean per-cell Pearson correlations of an estimate's traces with the ground truth's.

    Attributes
    ----------
    r : mean Pearson r of the footprint-weighted traces.
    r_highpass : mean Pearson r after high-passing both traces (see :func:`highpass`).
    n_cells : number of cells averaged into ``r`` (those whose ground-truth trace varies).
    n_cells_highpass : number of cells averaged into ``r_highpass``.
    """

    r: float
    r_highpass: float
    n_cells: int
    n_cells_highpass: int


def footprint_traces(movie: NDArray[Any], footprints: NDArray[Any]) -> NDArray[np.float64]:
    """Footprint-weighted mean trace of each cell.

    Parameters
    ----------
    movie : ``[T, H, W]`` movie.
    footprints : ``[N, H, W]`` non-negative footprints; each is normalised to sum 1 and used as weights.

    Returns
    -------
    NDArray[np.float64]
        ``[T, N]`` traces, in the units of ``movie``.

    Raises
    ------
    ValueError
        If the shapes do not match, or a footprint is negative or sums to zero.
    """
    if movie.ndim != 3:
        raise ValueError(f"movie must be [T, H, W], got shape {movie.shape}")
    if footprints.ndim != 3:
        raise ValueError(f"footprints must be [N, H, W], got shape {footprints.shape}")
    if footprints.shape[1:] != movie.shape[1:]:
        raise ValueError(f"footprints are {footprints.shape[1:]} pixels but movie frames are {movie.shape[1:]}")
    n = footprints.shape[0]
    weights = np.asarray(footprints, dtype=np.float64).reshape(n, -1)
    if (weights < 0).any():
        raise ValueError("footprints must be non-negative (they are used as weights)")
    totals = weights.sum(axis=1)
    if not (totals > 0).all():
        raise ValueError(f"footprints {np.flatnonzero(totals <= 0).tolist()} sum to zero: no weights")
    weights /= totals[:, None]
    t = movie.shape[0]
    flat = movie.reshape(t, -1)
    out = np.empty((t, n), dtype=np.float64)
    for t0 in range(0, t, _CHUNK):
        out[t0 : t0 + _CHUNK] = np.asarray(flat[t0 : t0 + _CHUNK], dtype=np.float64) @ weights.T
    return out


def highpass(traces: NDArray[Any], window: int = 21) -> NDArray[np.float64]:
    """Subtract a centred ``window``-frame moving average along time (axis 0, reflecting at the edges).

    Parameters
    ----------
    traces : ``[T, ...]`` traces, time first.
    window : positive odd number of frames.

    Returns
    -------
    NDArray[np.float64]
        The high-passed traces, same shape.
    """
    if window < 1 or window % 2 == 0:
        raise ValueError(f"highpass window must be a positive odd number of frames (centred), got {window}")
    x = np.asarray(traces, dtype=np.float64)
    return x - ndimage.uniform_filter1d(x, size=window, axis=0, mode="reflect")


def _pearson_columns(
    est: NDArray[np.float64], ref: NDArray[np.float64]
) -> tuple[NDArray[np.float64], NDArray[np.bool_]]:
    """Per-column Pearson r, and which columns of ``ref`` vary (the others are to be ignored)."""
    e = est - est.mean(axis=0)
    c = ref - ref.mean(axis=0)
    ss_e = np.sqrt((e * e).sum(axis=0))
    ss_c = np.sqrt((c * c).sum(axis=0))
    # A relative threshold: float rounding leaves a tiny spread on traces that are constant in exact maths.
    scale = np.abs(ref).max(axis=0) * np.sqrt(ref.shape[0]) + 1e-300
    valid = ss_c > 1e-12 * scale
    # A constant estimate carries no information about a varying truth: score it 0, not NaN.
    with np.errstate(invalid="ignore", divide="ignore"):
        r = np.where(ss_e > 0, (e * c).sum(axis=0) / (ss_e * ss_c), 0.0)
    return r, valid


def trace_fidelity(
    estimate: NDArray[Any],
    clean: NDArray[Any],
    footprints: NDArray[Any],
    *,
    highpass_window: int = 21,
) -> TraceFidelity:
    """Trace fidelity of ``estimate`` against the ground truth ``clean``.

    Parameters
    ----------
    estimate : ``[T, H, W]`` denoised (or noisy) movie, in the units of ``clean``. Pearson r is invariant to
        a per-cell offset and gain, so only the shape of each trace matters.
    clean : ``[T, H, W]`` ground truth.
    footprints : ``[N, H, W]`` cell footprints (e.g. :attr:`SyntheticMovie.footprints`).
    highpass_window : moving-average window (odd, frames) removed before ``r_highpass``.

    Returns
    -------
    TraceFidelity
        Mean over cells of the Pearson r of the traces, and of the high-passed traces. Cells whose
        ground-truth trace (respectively high-passed trace) has zero variance are left out.

    Raises
    ------
    ValueError
        If the shapes do not match, or no cell has a varying ground-truth trace.
    """
    if estimate.shape != clean.shape:
        raise ValueError(f"estimate shape {estimate.shape} differs from ground-truth shape {clean.shape}")
    est = footprint_traces(estimate, footprints)
    ref = footprint_traces(clean, footprints)
    r, valid = _pearson_columns(est, ref)
    r_hp, valid_hp = _pearson_columns(highpass(est, highpass_window), highpass(ref, highpass_window))
    if not valid.any() or not valid_hp.any():
        raise ValueError(
            f"trace fidelity is undefined: of {footprints.shape[0]} cells, {int(valid.sum())} have a varying"
            f" ground-truth trace and {int(valid_hp.sum())} a varying high-passed one (window {highpass_window});"
            " at least one of each is needed"
        )
    return TraceFidelity(
        r=float(r[valid].mean()),
        r_highpass=float(r_hp[valid_hp].mean()),
        n_cells=int(valid.sum()),
        n_cells_highpass=int(valid_hp.sum()),
    )
