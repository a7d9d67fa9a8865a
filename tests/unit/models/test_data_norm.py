from __future__ import annotations

import numpy as np
import pytest
import torch

from livedenoise.clients.windowing import reflect_position
from livedenoise.models.data import PatchShape, fit_training_window, movie_digest, sample_patches
from livedenoise.models.device import resolve_device
from livedenoise.models.normalization import fit_normalization
from livedenoise.models.recipes import TrainingWindow


def test_patch_is_clamped_to_the_movie_on_multiples() -> None:
    window = TrainingWindow(frames=64, size=64, spatial_multiple=4, frames_multiple=8, min_frames=8)
    shape = fit_training_window(window, (40, 30, 100))
    assert (shape.frames, shape.h, shape.w, shape.centre) == (40, 28, 64, None)


def test_too_short_movie_names_the_minimum() -> None:
    window = TrainingWindow(frames=64, size=64, spatial_multiple=4, frames_multiple=8, min_frames=8)
    with pytest.raises(ValueError, match="7 frames but training needs at least 8"):
        fit_training_window(window, (7, 64, 64))
    with pytest.raises(ValueError, match="3x64 pixels"):
        fit_training_window(window, (64, 3, 64))


def test_short_movie_falls_back_to_mirrored_windows_when_the_recipe_allows_it() -> None:
    window = TrainingWindow(frames=30, size=16, spatial_multiple=8, frames_multiple=8, min_frames=22)
    assert fit_training_window(window, (40, 16, 16)).frames == 30
    assert (fit_training_window(window, (25, 16, 16)).frames, fit_training_window(window, (25, 16, 16)).centre) == (
        22,
        None,
    )
    with pytest.raises(ValueError, match="15 frames but training needs at least 22"):
        fit_training_window(window, (15, 16, 16))
    mirrored = TrainingWindow(
        frames=30, size=16, spatial_multiple=8, frames_multiple=8, min_frames=22, short_movie_centre=15
    )
    shape = fit_training_window(mirrored, (15, 16, 16))
    assert (shape.frames, shape.centre) == (30, 15)


def test_sample_patches_are_seeded_crops() -> None:
    movie = np.arange(20 * 10 * 12, dtype=np.uint16).reshape(20, 10, 12)
    shape = PatchShape(frames=6, h=4, w=5)
    a = sample_patches(movie, 3, shape, np.random.default_rng(1))
    b = sample_patches(movie, 3, shape, np.random.default_rng(1))
    np.testing.assert_array_equal(a, b)
    assert a.shape == (3, 6, 4, 5) and a.dtype == np.float32
    # Consecutive frames of one crop differ by exactly one frame's worth of pixels.
    np.testing.assert_array_equal(np.diff(a[0], axis=0), 120.0)


def test_centred_windows_are_mirrored_at_the_movie_ends_like_a_served_series() -> None:
    """A 9-frame window centred on every frame of a 5-frame movie: positions reflect as the server's do."""
    movie = np.broadcast_to(np.arange(5, dtype=np.uint16)[:, None, None], (5, 4, 4)).copy()
    shape = fit_training_window(TrainingWindow(frames=9, size=4, spatial_multiple=1, centre=4), movie.shape)
    patches = sample_patches(movie, 64, shape, np.random.default_rng(0))
    seen = set()
    for p in patches:
        t = [int(v) for v in p[:, 0, 0]]
        centre = t[4]
        seen.add(centre)
        assert t == [reflect_position(centre + o, 5) for o in range(-4, 5)]
    assert seen == set(range(5))


def test_digest_depends_on_content_shape_and_dtype() -> None:
    x = np.arange(24, dtype=np.uint16).reshape(2, 3, 4)
    assert movie_digest(x) == movie_digest(x.copy())
    assert movie_digest(x).startswith("sha256:")
    assert len({movie_digest(x), movie_digest(x.reshape(3, 2, 4)), movie_digest(x.astype(np.int16))}) == 3


def test_zscore_normalisation() -> None:
    rng = np.random.default_rng(0)
    movie = rng.normal(300.0, 20.0, size=(10, 16, 16)).astype(np.float32)
    norm = fit_normalization(movie, "zscore")
    assert norm.kind == "zscore"
    assert norm.offset == pytest.approx(movie.mean(), rel=1e-5)
    assert norm.scale == pytest.approx(movie.std(), rel=1e-4)
    z = norm.apply(movie)
    assert abs(z.mean()) < 1e-3 and z.std() == pytest.approx(1.0, rel=1e-3)
    assert fit_normalization(movie, "mean_sub").scale == 1.0


def test_bad_normalisation_inputs() -> None:
    with pytest.raises(ValueError, match="unknown normalisation kind 'max'"):
        fit_normalization(np.ones((2, 2, 2)), "max")
    with pytest.raises(ValueError, match="constant"):
        fit_normalization(np.ones((2, 2, 2)), "zscore")


def test_resolve_device() -> None:
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device("auto").type in ("cpu", "cuda", "mps")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="CUDA is not available"):
            resolve_device("cuda")
