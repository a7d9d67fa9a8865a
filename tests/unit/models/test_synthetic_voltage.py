from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest
from scipy import signal

from livedenoise.models.synthetic import simulate_calcium_movie
from livedenoise.models.synthetic_voltage import simulate_voltage_movie
from livedenoise.models.traces import footprint_traces, highpass


def test_same_seed_same_movie_other_seed_differs() -> None:
    a = simulate_voltage_movie(frames=100, size=32, seed=5)
    b = simulate_voltage_movie(frames=100, size=32, seed=5)
    c = simulate_voltage_movie(frames=100, size=32, seed=6)
    np.testing.assert_array_equal(a.noisy, b.noisy)
    np.testing.assert_array_equal(a.clean, b.clean)
    np.testing.assert_array_equal(a.footprints, b.footprints)
    assert a.params == b.params
    assert not np.array_equal(a.noisy, c.noisy)


def test_dtypes_shapes_and_params() -> None:
    movie = simulate_voltage_movie(frames=300, size=(32, 40), seed=1, n_neurons=3)
    assert movie.noisy.dtype == np.uint16 and movie.clean.dtype == np.float32
    assert movie.noisy.shape == movie.clean.shape == (300, 32, 40)
    assert movie.footprints is not None
    assert movie.footprints.dtype == np.float32 and movie.footprints.shape == (3, 32, 40)
    np.testing.assert_allclose(movie.footprints.max(axis=(1, 2)), 1.0)
    json.dumps(movie.params)
    assert movie.params["kind"] == "voltage" and movie.params["fps"] == 1000.0


@pytest.mark.parametrize("photons", [2.0, 8.0, 30.0])
def test_mean_photon_level_and_scmos_noise(photons: float) -> None:
    movie = simulate_voltage_movie(frames=300, size=32, seed=2, photons=photons)
    p = movie.params
    expected_photons = (movie.clean - p["offset"]) / p["gain"]
    assert expected_photons.mean() == pytest.approx(photons, rel=1e-3)
    resid = movie.noisy.astype(np.float64) - movie.clean
    assert abs(resid.mean()) < 0.05 * p["gain"]
    # Poisson shot noise, gaussian read noise given in electrons, and the rounding to integer ADU.
    var_expected = p["gain"] ** 2 * expected_photons.mean() + (p["gain"] * p["read_noise_e"]) ** 2 + 1 / 12
    assert resid.var() == pytest.approx(var_expected, rel=0.05)
    assert p["read_noise"] == pytest.approx(p["gain"] * p["read_noise_e"])


def test_footprints_are_membrane_rings() -> None:
    movie = simulate_voltage_movie(frames=5, size=64, seed=0, n_neurons=6)
    assert movie.footprints is not None
    yy, xx = np.mgrid[0:64, 0:64]
    inside = 0
    for fp in movie.footprints:
        if max(fp[0].max(), fp[-1].max(), fp[:, 0].max(), fp[:, -1].max()) > 0.05:
            continue  # cut by the frame edge: its centroid is not the cell centre
        inside += 1
        w = fp / fp.sum()
        cy, cx = int(round(float((w * yy).sum()))), int(round(float((w * xx).sum())))
        assert fp[cy, cx] < 0.25 * fp.max()
    assert inside >= 2


def test_spikes_last_one_to_three_frames() -> None:
    movie = simulate_voltage_movie(frames=400, size=32, seed=0, n_neurons=3, spike_rate_hz=20.0)
    assert movie.footprints is not None
    fast = highpass(footprint_traces(movie.clean, movie.footprints))
    widths = []
    for k in range(fast.shape[1]):
        peaks, _ = signal.find_peaks(fast[:, k], height=0.5 * fast[:, k].max())
        widths.extend(signal.peak_widths(fast[:, k], peaks, rel_height=0.5)[0])
    assert len(widths) >= 10
    assert 0.5 <= min(widths) and max(widths) <= 3.0


def test_photobleaching_is_a_slow_decay_of_the_indicator() -> None:
    # bleach_fraction draws nothing from the rng, so both movies share every other draw.
    bleached = simulate_voltage_movie(frames=300, size=32, seed=1, bleach_fraction=0.2)
    steady = simulate_voltage_movie(frames=300, size=32, seed=1, bleach_fraction=0.0)
    ratio = (bleached.clean - 100.0).mean(axis=(1, 2)) / (steady.clean - 100.0).mean(axis=(1, 2))
    # 20 % of the indicator is lost by the last frame; the unbleached baseline dilutes that slightly.
    assert 0.78 < ratio[-1] / ratio[0] < 0.84


def test_no_neurons_gives_empty_footprints() -> None:
    movie = simulate_voltage_movie(frames=20, size=16, seed=0, n_neurons=0)
    assert movie.footprints is not None and movie.footprints.shape == (0, 16, 16)


@pytest.mark.parametrize(
    "bad",
    [
        {"size": 4},
        {"frames": 0},
        {"photons": 0.0},
        {"n_neurons": -1},
        {"bleach_fraction": 1.0},
        {"subthreshold_corr_s": (0.0, 0.01)},
        {"fps": 0.0},
    ],
)
def test_bad_arguments_name_the_problem(bad: dict) -> None:
    with pytest.raises(ValueError, match=next(iter(bad))):
        simulate_voltage_movie(**{"frames": 10, "size": 16, **bad})


# The calcium simulator gained footprints and params["kind"]; its draws must not change (benchmarks
# and stored results depend on bit-identical movies). Digests taken before footprints were added.
_CALCIUM_NOISY_SHA256 = "2dcc69914e777a582b61e097302736d9efe523017d24c29672d82823b6bf8176"
_CALCIUM_CLEAN_SHA256 = "fb0f4e518885fd9734fcb767e1c7056c448cf58fb18e6596abadf965f0912cf2"


def test_calcium_movie_is_bit_identical_to_before_footprints() -> None:
    movie = simulate_calcium_movie(frames=50, size=32, seed=3)
    assert hashlib.sha256(movie.noisy.tobytes()).hexdigest() == _CALCIUM_NOISY_SHA256
    assert hashlib.sha256(movie.clean.tobytes()).hexdigest() == _CALCIUM_CLEAN_SHA256


def test_calcium_movie_has_footprints_and_kind() -> None:
    movie = simulate_calcium_movie(frames=20, size=(24, 40), seed=1, n_neurons=4)
    assert movie.params["kind"] == "calcium"
    assert movie.footprints is not None
    assert movie.footprints.dtype == np.float32 and movie.footprints.shape == (4, 24, 40)
    np.testing.assert_allclose(movie.footprints.max(axis=(1, 2)), 1.0, rtol=1e-6)
