from __future__ import annotations

import numpy as np
import pytest

from livedenoise.models.metrics import gaussian_3d
from livedenoise.models.synthetic import SyntheticMovie, simulate_calcium_movie
from livedenoise.models.synthetic_voltage import simulate_voltage_movie
from livedenoise.models.traces import TraceFidelity, footprint_traces, highpass, trace_fidelity

# Bright, fast-firing cells: the per-cell traces have a high spike SNR, the regime where a heavy temporal
# filter clearly loses the spikes rather than trading them for less noise.
_SPIKY = {"frames": 400, "size": 32, "n_neurons": 3, "photons": 50.0, "spike_rate_hz": 20.0}


@pytest.fixture(scope="module")
def voltage() -> SyntheticMovie:
    return simulate_voltage_movie(seed=0, **_SPIKY)


def _fidelity(estimate: np.ndarray, movie: SyntheticMovie) -> TraceFidelity:
    assert movie.footprints is not None
    return trace_fidelity(estimate, movie.clean, movie.footprints)


def test_footprint_traces_are_normalised_weighted_means() -> None:
    rng = np.random.default_rng(0)
    movie = rng.normal(size=(7, 4, 5))
    footprints = np.zeros((2, 4, 5))
    footprints[0, 1, 2] = 3.0  # a single pixel: its trace, whatever the footprint's scale
    footprints[1, 0, :2] = [1.0, 3.0]
    traces = footprint_traces(movie, footprints)
    assert traces.shape == (7, 2) and traces.dtype == np.float64
    np.testing.assert_allclose(traces[:, 0], movie[:, 1, 2])
    np.testing.assert_allclose(traces[:, 1], 0.25 * movie[:, 0, 0] + 0.75 * movie[:, 0, 1])


@pytest.mark.parametrize(
    ("movie_shape", "fp_shape", "match"),
    [((5, 4, 4), (2, 4, 3), "pixels"), ((5, 16), (2, 4, 4), r"\[T, H, W\]"), ((5, 4, 4), (4, 4), r"\[N, H, W\]")],
)
def test_footprint_traces_reject_mismatched_shapes(movie_shape: tuple, fp_shape: tuple, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        footprint_traces(np.zeros(movie_shape), np.ones(fp_shape))


def test_footprint_traces_reject_empty_or_negative_footprints() -> None:
    with pytest.raises(ValueError, match="sum to zero"):
        footprint_traces(np.zeros((3, 4, 4)), np.zeros((1, 4, 4)))
    with pytest.raises(ValueError, match="non-negative"):
        footprint_traces(np.zeros((3, 4, 4)), -np.ones((1, 4, 4)))


def test_highpass_removes_the_centred_moving_average() -> None:
    t = np.arange(100, dtype=np.float64)
    np.testing.assert_allclose(highpass(np.full((100, 2), 7.0)), 0.0, atol=1e-12)
    impulse = np.zeros(100)
    impulse[50] = 1.0
    out = highpass(impulse, window=21)
    assert out[50] == pytest.approx(1.0 - 1.0 / 21)
    assert out[40] == pytest.approx(-1.0 / 21) and out[39] == pytest.approx(0.0)
    # A straight line is its own centred average away from the edges.
    np.testing.assert_allclose(highpass(2.0 * t + 1.0)[10:-10], 0.0, atol=1e-9)
    with pytest.raises(ValueError, match="odd"):
        highpass(impulse, window=20)


def test_clean_against_itself_is_perfect_and_affine_invariant(voltage: SyntheticMovie) -> None:
    perfect = _fidelity(voltage.clean, voltage)
    assert perfect.r == pytest.approx(1.0) and perfect.r_highpass == pytest.approx(1.0)
    assert perfect.n_cells == perfect.n_cells_highpass == 3
    rescaled = _fidelity(2.5 * voltage.clean - 40.0, voltage)
    assert rescaled.r == pytest.approx(1.0) and rescaled.r_highpass == pytest.approx(1.0)


def test_noise_lowers_fidelity(voltage: SyntheticMovie) -> None:
    noisy = _fidelity(voltage.noisy, voltage)
    assert 0.5 < noisy.r < 0.999 and 0.5 < noisy.r_highpass < 0.99


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_heavy_temporal_smoothing_keeps_traces_but_loses_spikes(seed: int) -> None:
    movie = simulate_voltage_movie(seed=seed, **_SPIKY)
    raw = _fidelity(movie.noisy, movie)
    smoothed = _fidelity(gaussian_3d(movie.noisy, (3.0, 1.0, 1.0)), movie)
    assert smoothed.r > 0.75
    assert smoothed.r_highpass < raw.r_highpass - 0.15


def test_calcium_footprints_recover_the_ground_truth_traces() -> None:
    movie = simulate_calcium_movie(frames=60, size=32, seed=3)
    assert _fidelity(movie.clean, movie).r == pytest.approx(1.0)
    assert _fidelity(movie.noisy, movie).r < 1.0


def test_cells_without_variance_are_ignored_and_constant_estimates_score_zero() -> None:
    rng = np.random.default_rng(1)
    clean = np.full((50, 8, 8), 10.0)
    clean[:, :4] += rng.normal(size=(50, 4, 8))  # only the top half varies
    footprints = np.zeros((2, 8, 8))
    footprints[0, :4] = 1.0
    footprints[1, 4:] = 1.0
    result = trace_fidelity(clean, clean, footprints)
    assert result.n_cells == result.n_cells_highpass == 1 and result.r == pytest.approx(1.0)
    flat = trace_fidelity(np.full_like(clean, 3.0), clean, footprints)
    assert flat.r == 0.0 and flat.r_highpass == 0.0


def test_trace_fidelity_errors_name_the_problem() -> None:
    clean = np.ones((10, 8, 8))
    with pytest.raises(ValueError, match=r"estimate shape \(10, 8, 7\) differs"):
        trace_fidelity(np.ones((10, 8, 7)), clean, np.ones((1, 8, 8)))
    with pytest.raises(ValueError, match="pixels"):
        trace_fidelity(clean, clean, np.ones((1, 8, 7)))
    with pytest.raises(ValueError, match="undefined"):
        trace_fidelity(clean, clean, np.ones((1, 8, 8)))
