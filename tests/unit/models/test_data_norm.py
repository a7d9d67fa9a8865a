from __future__ import annotations

import numpy as np
import pytest
import torch

from livedenoise.models.data import fit_patch_shape, movie_digest, sample_patches
from livedenoise.models.device import resolve_device
from livedenoise.models.normalization import fit_normalization


def _raw(t: int) -> int:
    return 2 * t


def test_patch_is_clamped_to_the_movie_on_multiples() -> None:
    shape = fit_patch_shape((40, 30, 100), patch_t=32, patch_xy=64, multiple=4, raw_frames=_raw)
    assert (shape.patch_t, shape.raw_t, shape.h, shape.w) == (20, 40, 28, 64)


def test_too_short_movie_names_the_minimum() -> None:
    with pytest.raises(ValueError, match="7 frames but training needs at least 8"):
        fit_patch_shape((7, 64, 64), patch_t=32, patch_xy=64, multiple=4, raw_frames=_raw)
    with pytest.raises(ValueError, match="3x64 pixels"):
        fit_patch_shape((64, 3, 64), patch_t=8, patch_xy=64, multiple=4, raw_frames=_raw)


def test_sample_patches_are_seeded_crops() -> None:
    movie = np.arange(20 * 10 * 12, dtype=np.uint16).reshape(20, 10, 12)
    a = sample_patches(movie, 3, 6, 4, 5, np.random.default_rng(1))
    b = sample_patches(movie, 3, 6, 4, 5, np.random.default_rng(1))
    np.testing.assert_array_equal(a, b)
    assert a.shape == (3, 6, 4, 5) and a.dtype == np.float32
    # Consecutive frames of one crop differ by exactly one frame's worth of pixels.
    np.testing.assert_array_equal(np.diff(a[0], axis=0), 120.0)


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
