from __future__ import annotations

import math

import numpy as np
import pytest

from livedenoise.models import metrics
from livedenoise.models.synthetic import simulate_calcium_movie


def test_psnr_known_value_uses_ground_truth_range() -> None:
    clean = np.linspace(10.0, 110.0, 5 * 6 * 7).reshape(5, 6, 7)  # range 100
    assert metrics.psnr(clean + 1.0, clean) == pytest.approx(40.0)
    assert metrics.psnr(clean - 10.0, clean) == pytest.approx(20.0)
    assert metrics.psnr(clean, clean) == math.inf


def test_psnr_rejects_mismatch_and_constant_truth() -> None:
    with pytest.raises(ValueError, match="shape"):
        metrics.psnr(np.zeros((2, 3, 4)), np.zeros((2, 3, 5)))
    with pytest.raises(ValueError, match="constant"):
        metrics.psnr(np.zeros((2, 3, 4)), np.ones((2, 3, 4)))


def test_ssim_identity_and_degradation() -> None:
    rng = np.random.default_rng(0)
    clean = np.cumsum(rng.standard_normal((3, 32, 32)), axis=2)
    assert metrics.ssim(clean, clean) == pytest.approx(1.0)
    noisy = clean + rng.standard_normal(clean.shape) * 2
    worse = clean + rng.standard_normal(clean.shape) * 6
    assert 0 < metrics.ssim(worse, clean) < metrics.ssim(noisy, clean) < 1


def test_moving_average_is_centred_and_reflects() -> None:
    movie = np.zeros((9, 2, 2), dtype=np.float32)
    movie[4] = 3.0
    out = metrics.moving_average(movie, 3)
    np.testing.assert_allclose(out[:, 0, 0], [0, 0, 0, 1, 1, 1, 0, 0, 0])
    const = np.full((5, 2, 2), 7.0)
    np.testing.assert_allclose(metrics.moving_average(const, 5), const)
    with pytest.raises(ValueError, match="odd"):
        metrics.moving_average(movie, 4)


def test_baselines_beat_noisy_and_best_is_the_max() -> None:
    movie = simulate_calcium_movie(frames=60, size=32, seed=4, photons=2.0)
    scores = metrics.baseline_scores(movie.noisy, movie.clean)
    assert set(scores) == {"noisy", *metrics.BASELINES}
    for name in metrics.BASELINES:
        assert scores[name] > scores["noisy"] + 3.0, name
    name, value = metrics.best_baseline(movie.noisy, movie.clean)
    assert value == max(v for k, v in scores.items() if k != "noisy") == scores[name]
    assert metrics.best_baseline(scores=scores) == (name, value)
