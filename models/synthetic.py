"""Seeded synthetic two-photon calcium movies with a noise-free ground truth.

The movie is a low-rank sum, so a 600x128x128 movie builds in about a second:

``expected_photons[t, y, x] = baseline + neuropil(t, y, x) + sum_k footprint_k(y, x) * calcium_k(t)``

scaled so that its mean is ``photons`` per pixel, then recorded by a Poisson-Gaussian detector:
``adu = gain * Poisson(expected_photons) + offset + N(0, read_noise)``, rounded and clipped to uint16.
``clean`` is the expectation of that (``gain * expected_photons + offset``), in the same ADU units.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage, signal

__all__ = ["SyntheticMovie", "simulate_calcium_movie"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class SyntheticMovie:
    """A noisy movie and its ground truth.

    Attributes
    ----------
    noisy : uint16 ``[T, H, W]`` camera ADU.
    clean : float32 ``[T, H, W]`` noise-free expected ADU (same units as ``noisy``).
    params : the JSON-able simulation parameters (enough to regenerate the movie); ``params["kind"]`` names
        the simulator (``"calcium"``, ``"voltage"``).
    footprints : float32 ``[N, H, W]`` spatial footprint of each cell, peak 1 each, or ``None``. Per-cell
        ground-truth traces are recovered from ``clean`` through them (see :mod:`livedenoise.models.traces`).
    """

    noisy: NDArray[np.uint16]
    clean: NDArray[np.float32]
    params: dict[str, Any] = field(default_factory=dict)
    footprints: NDArray[np.float32] | None = None


def _parse_size(size: int | tuple[int, int]) -> tuple[int, int]:
    if isinstance(size, (int, np.integer)) and not isinstance(size, bool):
        h = w = int(size)
    elif isinstance(size, (tuple, list)) and len(size) == 2:
        h, w = (int(s) for s in size)
    else:
        raise ValueError(f"size must be an int or a (height, width) pair, got {size!r}")
    if h < 8 or w < 8:
        raise ValueError(f"size must be at least 8x8 pixels, got {h}x{w}")
    return h, w


def _footprints(rng: np.random.Generator, n: int, h: int, w: int, radius: float) -> NDArray[np.float32]:
    """Soma-like elliptical footprints ``[n, h*w]`` with a dimmer nucleus, peak 1."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    out = np.zeros((n, h, w), dtype=np.float32)
    for k in range(n):
        cy, cx = rng.uniform(0, h), rng.uniform(0, w)
        r = radius * rng.uniform(0.75, 1.3)
        ratio = rng.uniform(0.7, 1.0)
        theta = rng.uniform(0, np.pi)
        c, s = np.cos(theta), np.sin(theta)
        dy, dx = yy - cy, xx - cx
        u = (c * dx + s * dy) / r
        v = (-s * dx + c * dy) / (r * ratio)
        d2 = u * u + v * v
        # A slightly flat-topped soma (generalised gaussian) with a darker nucleus, as GCaMP labels
        # the cytosol.
        body = np.exp(-(d2**1.5))
        nucleus = 1.0 - 0.3 * np.exp(-d2 / 0.25)
        out[k] = body * nucleus
    if n:  # reshape(0, -1) is ambiguous; n_neurons=0 is allowed
        out /= out.reshape(n, -1).max(axis=1)[:, None, None] + 1e-12
    return out.reshape(n, h * w)


def _calcium_traces(
    rng: np.random.Generator, frames: int, n: int, fps: float, rate_hz: float, rise_s: float
) -> NDArray[np.float32]:
    """Sparse events convolved with a rise/decay kernel of peak 1, ``[frames, n]``."""
    rates = rate_hz * rng.lognormal(0.0, 0.6, size=n)
    spikes = rng.poisson(np.clip(rates / fps, 0, 1)[None, :], size=(frames, n)).astype(np.float32)
    # Each event is a burst of variable size (2P events are rarely single spikes).
    spikes *= rng.gamma(2.0, 0.5, size=spikes.shape).astype(np.float32)
    tau_rise = max(rise_s * fps, 1e-3)
    tau_decay = rng.uniform(0.5, 1.0, size=n) * fps
    traces = np.empty((frames, n), dtype=np.float32)
    for k in range(n):
        # Difference of exponentials as two first-order IIR filters: exact and O(T).
        a_d, a_r = np.exp(-1.0 / tau_decay[k]), np.exp(-1.0 / tau_rise)
        t = np.arange(int(10 * tau_decay[k]) + 2)
        peak = float(np.max(a_d**t - a_r**t))
        slow = signal.lfilter([1.0], [1.0, -a_d], spikes[:, k])
        fast = signal.lfilter([1.0], [1.0, -a_r], spikes[:, k])
        traces[:, k] = (slow - fast) / peak
    return traces


def _neuropil(rng: np.random.Generator, frames: int, h: int, w: int, fps: float, rank: int = 3) -> NDArray[np.float32]:
    """Slowly varying, spatially smooth background ``[frames, h*w]`` with mean about 1."""
    spatial = rng.standard_normal((rank, h, w)).astype(np.float32)
    spatial = ndimage.gaussian_filter(spatial, sigma=(0, max(h, w) / 8, max(h, w) / 8), mode="wrap")
    spatial /= spatial.reshape(rank, -1).std(axis=1)[:, None, None] + 1e-12
    temporal = rng.standard_normal((frames, rank)).astype(np.float32)
    temporal = ndimage.gaussian_filter1d(temporal, sigma=2.0 * fps, axis=0, mode="reflect")
    temporal /= temporal.std(axis=0, keepdims=True) + 1e-12
    field_ = 1.0 + 0.15 * temporal @ spatial.reshape(rank, -1)
    return np.clip(field_, 0.2, None).astype(np.float32)


def simulate_calcium_movie(
    frames: int = 600,
    size: int | tuple[int, int] = 128,
    seed: int = 0,
    photons: float = 2.0,
    n_neurons: int | None = None,
    *,
    fps: float = 30.0,
    soma_radius: float = 6.0,
    event_rate_hz: float = 0.15,
    peak_dff: float = 1.75,
    rise_s: float = 0.15,
    neuron_brightness: float = 6.0,
    neuropil_level: float = 1.0,
    baseline_level: float = 0.15,
    gain: float = 10.0,
    offset: float = 100.0,
    read_noise: float = 3.0,
) -> SyntheticMovie:
    """Simulate a two-photon-like calcium imaging movie with ground truth.

    Parameters
    ----------
    frames, size : movie length and frame size (``int`` for square, or ``(height, width)``).
    seed : everything is drawn from ``numpy.random.default_rng(seed)``; equal arguments give equal movies.
    photons : mean expected photon count per pixel over the whole movie (the noise level).
    n_neurons : number of somata; by default about one per 400 pixels (40 on 128x128).
    fps, soma_radius, event_rate_hz, peak_dff, rise_s : frame rate (decay tau 0.5-1 s), soma radius in
        pixels, mean calcium event rate, typical event amplitude in dF/F, and rise time constant (s).
    neuron_brightness, neuropil_level, baseline_level : resting soma, neuropil and uniform baseline
        brightness, relative to each other before the scaling to ``photons``.
    gain, offset, read_noise : detector: ADU per photon, ADU offset and gaussian read noise (ADU).

    Returns
    -------
    SyntheticMovie
        ``noisy`` uint16 ADU, ``clean`` float32 expected ADU, ``params`` (``kind="calcium"``) and the
        ``[N, H, W]`` soma ``footprints``.
    """
    h, w = _parse_size(size)
    if frames < 1:
        raise ValueError(f"frames must be >= 1, got {frames}")
    if not photons > 0:
        raise ValueError(f"photons must be > 0, got {photons}")
    if n_neurons is None:
        n_neurons = max(1, round(h * w / 400))
    if n_neurons < 0:
        raise ValueError(f"n_neurons must be >= 0, got {n_neurons}")
    rng = np.random.default_rng(seed)

    footprints = _footprints(rng, n_neurons, h, w, soma_radius)
    traces = _calcium_traces(rng, frames, n_neurons, fps, event_rate_hz, rise_s)
    resting = neuron_brightness * rng.uniform(0.5, 1.5, size=n_neurons).astype(np.float32)
    activity = resting[None, :] * (1.0 + peak_dff * traces)  # [T, N]

    expected = neuropil_level * _neuropil(rng, frames, h, w, fps)  # [T, H*W]
    expected += activity @ footprints
    expected += baseline_level
    expected *= np.float32(photons / float(expected.mean()))

    clean = (gain * expected + offset).reshape(frames, h, w).astype(np.float32)
    counts = rng.poisson(expected).astype(np.float32)
    adu = gain * counts + offset + rng.normal(0.0, read_noise, size=counts.shape).astype(np.float32)
    noisy = np.clip(np.rint(adu), 0, np.iinfo(np.uint16).max).astype(np.uint16).reshape(frames, h, w)

    params: dict[str, Any] = {
        "kind": "calcium",
        "frames": frames,
        "height": h,
        "width": w,
        "seed": seed,
        "photons": float(photons),
        "n_neurons": int(n_neurons),
        "fps": float(fps),
        "soma_radius": float(soma_radius),
        "event_rate_hz": float(event_rate_hz),
        "peak_dff": float(peak_dff),
        "rise_s": float(rise_s),
        "neuron_brightness": float(neuron_brightness),
        "neuropil_level": float(neuropil_level),
        "baseline_level": float(baseline_level),
        "gain": float(gain),
        "offset": float(offset),
        "read_noise": float(read_noise),
    }
    logger.debug("simulated calcium movie %s", params)
    return SyntheticMovie(
        noisy=noisy, clean=clean, params=params, footprints=footprints.reshape(n_neurons, h, w).copy()
    )
