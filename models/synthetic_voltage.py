"""Seeded synthetic voltage-imaging (GEVI) movies at 1 kHz with a noise-free ground truth.

The indicator is positive-going (brighter on depolarisation, like QuasAr/Archon; Voltron and ASAP dim
instead, and analyses usually flip their sign), which keeps dF/F and the spike amplitude positive. The
movie is a low-rank sum, so 2000x128x128 builds in a few seconds:

``expected_photons[t, y, x] = bleach(t) * (background(t, y, x) + sum_k ring_k(y, x) * F_k * (1 + dff_k(t))) + baseline``

where ``ring_k`` is a membrane-like annulus (peak 1) and ``dff_k`` is slow subthreshold noise plus 1-3 frame
spikes. It is scaled so that its mean is ``photons`` per pixel and recorded by an sCMOS-like detector:
``adu = gain * Poisson(expected_photons) + offset + N(0, gain * read_noise_e)``, rounded and clipped to uint16.
``clean`` is the expectation of that (``gain * expected_photons + offset``), in the same ADU units.
Per-cell ground-truth traces are not stored: recover them from ``clean`` with the returned footprints
(:func:`livedenoise.models.traces.footprint_traces`).
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage, signal

from .synthetic import SyntheticMovie, _parse_size

__all__ = ["simulate_voltage_movie"]

logger = logging.getLogger(__name__)

# Sub-frame time steps used to place spikes and integrate them over each frame's exposure.
_UPSAMPLE = 10


def _harmonics(
    phi: NDArray[np.float64], amp: NDArray[np.float64], phase: NDArray[np.float64], first: int
) -> NDArray[np.float64]:
    """``sum_m amp[m] * cos((first + m) * phi + phase[m])``: a smooth angular modulation."""
    order = np.arange(first, first + len(amp))[:, None, None]
    total: NDArray[np.float64] = np.sum(amp[:, None, None] * np.cos(order * phi + phase[:, None, None]), axis=0)
    return total


def _ring_footprints(
    rng: np.random.Generator, n: int, h: int, w: int, radius: float, width: float
) -> NDArray[np.float32]:
    """Membrane-like ring footprints ``[n, h, w]``: irregular elliptical annuli, peak 1.

    Parameters
    ----------
    rng : random generator (consumed in a fixed order).
    n, h, w : number of cells and frame size.
    radius : mean cell radius in pixels (to the membrane).
    width : membrane full width at half maximum in pixels.

    Returns
    -------
    NDArray[np.float32]
        ``[n, h, w]`` footprints, each with maximum 1.
    """
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    sigma = width / 2.3548
    out = np.zeros((n, h, w), dtype=np.float32)
    centres: list[tuple[float, float]] = []
    for k in range(n):
        # Rejection sampling keeps cells mostly apart, as in sparse GEVI labelling; give up after a few
        # tries so dense requests still terminate.
        for _ in range(20):
            cy, cx = rng.uniform(0, h), rng.uniform(0, w)
            if all((cy - y) ** 2 + (cx - x) ** 2 > (1.6 * radius) ** 2 for y, x in centres):
                break
        centres.append((cy, cx))
        r = radius * rng.uniform(0.8, 1.25)
        ratio = rng.uniform(0.7, 1.0)
        theta = rng.uniform(0, np.pi)
        # Low angular harmonics make the outline irregular and the membrane brightness patchy.
        shape_amp = rng.uniform(0.0, 0.08, size=3)
        shape_phase = rng.uniform(0, 2 * np.pi, size=3)
        bright_amp = rng.uniform(0.0, 0.25, size=2)
        bright_phase = rng.uniform(0, 2 * np.pi, size=2)
        interior = rng.uniform(0.08, 0.2)
        c, s = np.cos(theta), np.sin(theta)
        dy, dx = yy - cy, xx - cx
        u = c * dx + s * dy
        v = (-s * dx + c * dy) / ratio
        rho = np.hypot(u, v)
        phi = np.arctan2(v, u)
        outline = r * (1.0 + _harmonics(phi, shape_amp, shape_phase, first=2))
        patchy = 1.0 + _harmonics(phi, bright_amp, bright_phase, first=1)
        membrane = patchy * np.exp(-0.5 * ((rho - outline) / sigma) ** 2)
        # Some indicator stays in internal membranes: a dim, soft-edged fill inside the ring.
        fill = interior / (1.0 + np.exp((rho - outline) / sigma))
        fp = membrane + fill
        out[k] = fp / fp.max()
    return out


def _lowpass_std(sigma: float) -> float:
    """Std of unit white noise after ``scipy.ndimage.gaussian_filter1d`` with ``sigma`` samples.

    Normalising by this, not by the sample std, keeps the fluctuation size independent of the movie
    length: on movies shorter than the correlation time the sample std is tiny and would blow them up.
    """
    radius = int(4.0 * sigma + 0.5)  # scipy's default truncate=4.0
    x = np.arange(-radius, radius + 1, dtype=np.float64)
    kernel = np.exp(-0.5 * (x / sigma) ** 2)
    kernel /= kernel.sum()
    return float(np.sqrt(np.sum(kernel**2)))


def _subthreshold(
    rng: np.random.Generator, frames: int, n: int, fps: float, dff: float, corr_s: tuple[float, float]
) -> NDArray[np.float32]:
    """Smooth subthreshold dF/F ``[frames, n]``: gaussian low-pass noise, std ``dff`` per cell."""
    out = np.empty((frames, n), dtype=np.float32)
    noise = rng.standard_normal((frames, n))
    sigmas = rng.uniform(*corr_s, size=n) * fps
    for k in range(n):
        x = ndimage.gaussian_filter1d(noise[:, k], sigma=sigmas[k], mode="reflect")
        out[:, k] = dff * x / _lowpass_std(sigmas[k])
    return out


def _spike_trains(
    rng: np.random.Generator,
    drive: NDArray[np.float32],
    fps: float,
    rate_hz: float,
    refractory_s: float,
) -> NDArray[np.float32]:
    """Spike trains on a sub-frame grid ``[frames * _UPSAMPLE, n]`` (one 1.0 per spike).

    Spikes are more likely during depolarisations (``drive``, the subthreshold dF/F), as in real cells,
    and respect an absolute refractory period.
    """
    frames, n = drive.shape
    rates = np.clip(rate_hz * rng.lognormal(0.0, 0.5, size=n), 1.0, 25.0)
    z = (drive - drive.mean(axis=0)) / (drive.std(axis=0) + 1e-12)
    # exp(z - 1/2) has mean 1 for gaussian z, so the mean rate stays ``rates``.
    p = np.clip(rates[None, :] / fps * np.exp(z - 0.5), 0.0, 1.0)
    hits = rng.random((frames, n)) < p
    offsets = rng.integers(0, _UPSAMPLE, size=(frames, n))
    gap = refractory_s * fps * _UPSAMPLE
    fine = np.zeros((frames * _UPSAMPLE, n), dtype=np.float32)
    for k in range(n):
        last = -np.inf
        for t in np.flatnonzero(hits[:, k]):
            pos = t * _UPSAMPLE + offsets[t, k]
            if pos - last >= gap:
                fine[pos, k] = 1.0
                last = pos
    return fine


def _double_exponential(x: NDArray[Any], a_decay: float, a_rise: float) -> NDArray[np.float64]:
    """Convolve ``x`` along its last axis with ``a_decay**t - a_rise**t``."""
    # Two first-order IIR filters, as in the calcium simulator: exact and O(T).
    return signal.lfilter([1.0], [1.0, -a_decay], x) - signal.lfilter([1.0], [1.0, -a_rise], x)


def _spike_waveforms(
    fine: NDArray[np.float32], fps: float, rise_s: float, decay_s: NDArray[np.float64]
) -> NDArray[np.float32]:
    """Frame-integrated spike waveforms ``[frames, n]`` from sub-frame spike trains.

    Each spike is a difference of exponentials (fast rise, ``decay_s`` decay), averaged over the frame
    exposure; scaled so that the best-aligned spike peaks at exactly 1 in its frame (others a bit less).
    """
    n = fine.shape[1]
    frames = fine.shape[0] // _UPSAMPLE
    out = np.empty((frames, n), dtype=np.float32)
    dt = 1.0 / (fps * _UPSAMPLE)
    for k in range(n):
        a_d, a_r = np.exp(-dt / decay_s[k]), np.exp(-dt / rise_s)
        wave = _double_exponential(fine[:, k], a_d, a_r)
        impulses = np.zeros((_UPSAMPLE, 12 * _UPSAMPLE))
        impulses[np.arange(_UPSAMPLE), np.arange(_UPSAMPLE)] = 1.0  # one spike per sub-frame onset
        peak = _double_exponential(impulses, a_d, a_r).reshape(_UPSAMPLE, -1, _UPSAMPLE).mean(axis=2).max()
        out[:, k] = wave.reshape(frames, _UPSAMPLE).mean(axis=1) / peak
    return out


def _background(
    rng: np.random.Generator, frames: int, h: int, w: int, fps: float, tau_s: float, rank: int = 3
) -> NDArray[np.float32]:
    """Slowly varying, spatially smooth background ``[frames, h*w]`` with mean about 1."""
    spatial = rng.standard_normal((rank, h, w))
    spatial = ndimage.gaussian_filter(spatial, sigma=(0, max(h, w) / 8, max(h, w) / 8), mode="wrap")
    spatial /= spatial.reshape(rank, -1).std(axis=1)[:, None, None] + 1e-12
    temporal = rng.standard_normal((frames, rank))
    temporal = ndimage.gaussian_filter1d(temporal, sigma=tau_s * fps, axis=0, mode="reflect")
    temporal /= _lowpass_std(tau_s * fps)
    field_ = 1.0 + 0.15 * temporal.astype(np.float32) @ spatial.reshape(rank, -1).astype(np.float32)
    return np.asarray(np.clip(field_, 0.2, None), dtype=np.float32)


def simulate_voltage_movie(
    frames: int = 2000,
    size: int | tuple[int, int] = 128,
    seed: int = 0,
    photons: float = 8.0,
    n_neurons: int | None = None,
    *,
    fps: float = 1000.0,
    cell_radius: float = 7.0,
    membrane_width: float = 2.5,
    spike_rate_hz: float = 10.0,
    spike_dff: float = 0.3,
    spike_rise_s: float = 0.0002,
    spike_decay_s: float = 0.0015,
    refractory_s: float = 0.004,
    subthreshold_dff: float = 0.03,
    subthreshold_corr_s: tuple[float, float] = (0.01, 0.05),
    bleach_fraction: float = 0.05,
    cell_brightness: float = 5.0,
    background_level: float = 1.0,
    background_tau_s: float = 0.5,
    baseline_level: float = 0.1,
    gain: float = 2.0,
    offset: float = 100.0,
    read_noise_e: float = 1.5,
) -> SyntheticMovie:
    """Simulate a 1 kHz voltage-imaging movie (positive-going GEVI) with ground truth.

    Parameters
    ----------
    frames, size : movie length and frame size (``int`` for square, or ``(height, width)``).
    seed : everything is drawn from ``numpy.random.default_rng(seed)``; equal arguments give equal movies.
    photons : mean expected photon count per pixel over the whole movie (the noise level).
    n_neurons : number of cells; by default about one per 800 pixels (20 on 128x128).
    fps : frame rate in Hz; the spike waveform is defined in seconds, so 1 kHz gives 1-3 frame spikes.
    cell_radius, membrane_width : mean cell radius and membrane FWHM, in pixels.
    spike_rate_hz : typical firing rate (per cell x lognormal spread, clipped to 1-25 Hz).
    spike_dff : typical spike amplitude in dF/F (per cell x 0.6-1.4, per spike x 0.9-1.1).
    spike_rise_s, spike_decay_s : spike rise and decay time constants (decay x 0.7-1.3 per cell).
    refractory_s : minimum interval between spikes of one cell.
    subthreshold_dff, subthreshold_corr_s : std (dF/F) and the range of gaussian correlation times (s)
        of the smooth subthreshold fluctuations; spikes are more likely while depolarised.
    bleach_fraction : fraction of the indicator fluorescence lost, exponentially, by the last frame.
    cell_brightness, background_level, background_tau_s, baseline_level : resting membrane brightness,
        out-of-focus background brightness and its time scale (s), and a uniform baseline (not bleached),
        relative to each other before the scaling to ``photons``.
    gain, offset, read_noise_e : sCMOS-like detector: ADU per photo-electron, ADU offset and gaussian
        read noise in electrons (``params["read_noise"]`` holds it in ADU, as for the calcium simulator).

    Returns
    -------
    SyntheticMovie
        ``noisy`` uint16 ADU, ``clean`` float32 expected ADU, ``params`` (``kind="voltage"``) and the
        ``[N, H, W]`` ring ``footprints``.

    Raises
    ------
    ValueError
        If an argument is out of range; the message names it.
    """
    h, w = _parse_size(size)
    if frames < 1:
        raise ValueError(f"frames must be >= 1, got {frames}")
    if not photons > 0:
        raise ValueError(f"photons must be > 0, got {photons}")
    if not fps > 0:
        raise ValueError(f"fps must be > 0, got {fps}")
    if n_neurons is None:
        n_neurons = max(1, round(h * w / 800))
    if n_neurons < 0:
        raise ValueError(f"n_neurons must be >= 0, got {n_neurons}")
    if not 0 <= bleach_fraction < 1:
        raise ValueError(f"bleach_fraction must be in [0, 1), got {bleach_fraction}")
    if not background_tau_s > 0:
        raise ValueError(f"background_tau_s must be > 0, got {background_tau_s}")
    lo, hi = subthreshold_corr_s
    if not 0 < lo <= hi:
        raise ValueError(f"subthreshold_corr_s must be (low, high) with 0 < low <= high, got {subthreshold_corr_s!r}")
    rng = np.random.default_rng(seed)

    footprints = _ring_footprints(rng, n_neurons, h, w, cell_radius, membrane_width)
    sub = _subthreshold(rng, frames, n_neurons, fps, subthreshold_dff, (lo, hi))
    fine = _spike_trains(rng, sub, fps, spike_rate_hz, refractory_s)
    fine *= rng.uniform(0.9, 1.1, size=fine.shape).astype(np.float32)
    decay = spike_decay_s * rng.uniform(0.7, 1.3, size=n_neurons)
    spikes = _spike_waveforms(fine, fps, spike_rise_s, decay)
    amplitude = spike_dff * rng.uniform(0.6, 1.4, size=n_neurons).astype(np.float32)
    resting = cell_brightness * rng.uniform(0.6, 1.4, size=n_neurons).astype(np.float32)
    activity = resting[None, :] * (1.0 + sub + amplitude[None, :] * spikes)  # [T, N]

    expected = background_level * _background(rng, frames, h, w, fps, background_tau_s)  # [T, H*W]
    expected += activity @ footprints.reshape(n_neurons, h * w)
    if bleach_fraction > 0 and frames > 1:
        bleach = (1.0 - bleach_fraction) ** (np.arange(frames) / (frames - 1))
        expected *= bleach.astype(np.float32)[:, None]
    expected += baseline_level
    expected *= np.float32(photons / float(expected.mean()))

    clean = (gain * expected + offset).reshape(frames, h, w).astype(np.float32)
    counts = rng.poisson(expected).astype(np.float32)
    adu = gain * counts + offset + rng.normal(0.0, gain * read_noise_e, size=counts.shape).astype(np.float32)
    noisy = np.clip(np.rint(adu), 0, np.iinfo(np.uint16).max).astype(np.uint16).reshape(frames, h, w)

    params: dict[str, Any] = {
        "kind": "voltage",
        "frames": frames,
        "height": h,
        "width": w,
        "seed": seed,
        "photons": float(photons),
        "n_neurons": int(n_neurons),
        "fps": float(fps),
        "indicator": "positive-going",
        "cell_radius": float(cell_radius),
        "membrane_width": float(membrane_width),
        "spike_rate_hz": float(spike_rate_hz),
        "spike_dff": float(spike_dff),
        "spike_rise_s": float(spike_rise_s),
        "spike_decay_s": float(spike_decay_s),
        "refractory_s": float(refractory_s),
        "subthreshold_dff": float(subthreshold_dff),
        "subthreshold_corr_s": [float(lo), float(hi)],
        "bleach_fraction": float(bleach_fraction),
        "cell_brightness": float(cell_brightness),
        "background_level": float(background_level),
        "background_tau_s": float(background_tau_s),
        "baseline_level": float(baseline_level),
        "gain": float(gain),
        "offset": float(offset),
        "read_noise_e": float(read_noise_e),
        "read_noise": float(gain * read_noise_e),
        "n_spikes": int(np.count_nonzero(fine)),
    }
    logger.debug("simulated voltage movie %s", params)
    return SyntheticMovie(noisy=noisy, clean=clean, params=params, footprints=footprints)
