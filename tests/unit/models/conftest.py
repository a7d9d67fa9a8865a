"""Shared tiny fixtures: a synthetic movie and one really trained model (trained once per session)."""

from __future__ import annotations

import pytest

from livedenoise.models.config import TrainConfig
from livedenoise.models.synthetic import SyntheticMovie, simulate_calcium_movie
from livedenoise.models.trainer import TrainResult, fit


@pytest.fixture(scope="session")
def tiny_movie() -> SyntheticMovie:
    return simulate_calcium_movie(frames=48, size=32, seed=3, photons=4.0)


@pytest.fixture(scope="session")
def tiny_config() -> TrainConfig:
    return TrainConfig(
        patch_t=8,
        patch_xy=32,
        batch_size=2,
        epochs=3,
        patches_per_epoch=12,
        base_channels=8,
        levels=3,
        device="cpu",
        seed=7,
    )


@pytest.fixture(scope="session")
def tiny_result(tiny_movie: SyntheticMovie, tiny_config: TrainConfig) -> TrainResult:
    return fit(tiny_config, tiny_movie.noisy)
