from __future__ import annotations

import json

import numpy as np
import pytest

from livedenoise.models.synthetic import simulate_calcium_movie


def test_same_seed_same_movie_other_seed_differs() -> None:
    a = simulate_calcium_movie(frames=20, size=24, seed=5)
    b = simulate_calcium_movie(frames=20, size=24, seed=5)
    c = simulate_calcium_movie(frames=20, size=24, seed=6)
    np.testing.assert_array_equal(a.noisy, b.noisy)
    np.testing.assert_array_equal(a.clean, b.clean)
    assert a.params == b.params
    assert not np.array_equal(a.noisy, c.noisy)


@pytest.mark.parametrize("photons", [0.5, 2.0, 10.0])
def test_mean_photon_level_and_units(photons: float) -> None:
    movie = simulate_calcium_movie(frames=40, size=(24, 40), seed=1, photons=photons)
    p = movie.params
    assert movie.noisy.dtype == np.uint16 and movie.clean.dtype == np.float32
    assert movie.noisy.shape == movie.clean.shape == (40, 24, 40)
    expected_photons = (movie.clean - p["offset"]) / p["gain"]
    assert expected_photons.mean() == pytest.approx(photons, rel=1e-3)
    # The noisy movie is an unbiased draw around the clean expectation, with Poisson-Gaussian variance.
    resid = movie.noisy.astype(np.float64) - movie.clean
    assert abs(resid.mean()) < 0.05 * p["gain"]
    var_expected = p["gain"] ** 2 * expected_photons.mean() + p["read_noise"] ** 2 + 1 / 12
    assert resid.var() == pytest.approx(var_expected, rel=0.05)


def test_params_are_json_and_movie_has_transients() -> None:
    movie = simulate_calcium_movie(frames=300, size=48, seed=2)
    json.dumps(movie.params)
    trace = movie.clean.reshape(300, -1)
    # Somata flash: some pixels vary in time far more than the slow neuropil.
    assert (trace.max(axis=0) / trace.min(axis=0)).max() > 2.0


@pytest.mark.parametrize("bad", [{"size": 4}, {"size": (8, 8, 8)}, {"frames": 0}, {"photons": 0.0}])
def test_bad_arguments_name_the_problem(bad: dict) -> None:
    with pytest.raises(ValueError, match=next(iter(bad))):
        simulate_calcium_movie(**{"frames": 10, "size": 16, **bad})
