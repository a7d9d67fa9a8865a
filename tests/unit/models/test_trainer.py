from __future__ import annotations

import numpy as np
import pytest
import torch

from livedenoise.models.config import TrainConfig
from livedenoise.models.data import movie_digest
from livedenoise.models.synthetic import SyntheticMovie
from livedenoise.models.trainer import MIN_DELTA_DB, TrainingStopped, TrainProgress, TrainResult, fit


@pytest.mark.slow
def test_tiny_training_run_learns(tiny_result: TrainResult, tiny_movie: SyntheticMovie) -> None:
    r = tiny_result
    assert len(r.history) == r.config.epochs == 3
    assert r.history[-1] < 0.8 * r.history[0]
    assert r.data_digest == movie_digest(tiny_movie.noisy)
    assert r.recipe.name == "deepcad_rt" and not r.network.training
    assert next(r.network.parameters()).device == torch.device("cpu")
    assert r.normalization.kind == "zscore"
    x = torch.randn(1, 8, 16, 16)
    with torch.no_grad():
        assert r.network(x).shape == x.shape


def test_same_seed_same_run_and_progress_reports(tiny_movie: SyntheticMovie) -> None:
    cfg = TrainConfig(
        patch_t=4,
        patch_xy=16,
        batch_size=1,
        epochs=2,
        patches_per_epoch=2,
        base_channels=2,
        levels=2,
        device="cpu",
        seed=11,
    )
    seen: list[TrainProgress] = []
    a = fit(cfg, tiny_movie.noisy, progress=seen.append)
    b = fit(cfg, tiny_movie.noisy)
    assert a.history == b.history
    fractions = [p.fraction for p in seen]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0
    assert [p.epoch for p in seen if p.epoch_done] == [1, 2]


def test_should_stop_cancels(tiny_movie: SyntheticMovie) -> None:
    cfg = TrainConfig(
        patch_t=4, patch_xy=16, batch_size=1, epochs=5, patches_per_epoch=4, base_channels=2, levels=2, device="cpu"
    )
    calls = iter(range(100))
    with pytest.raises(TrainingStopped, match="stopped at epoch 1, step 3"):
        fit(cfg, tiny_movie.noisy, should_stop=lambda: next(calls) >= 2)


def test_movie_problems_are_named() -> None:
    cfg = TrainConfig(patch_t=8, patch_xy=16, levels=3, device="cpu")
    with pytest.raises(ValueError, match=r"\[T, H, W\]"):
        fit(cfg, np.zeros((16, 16), dtype=np.uint16))
    with pytest.raises(ValueError, match="has 6 frames but training needs at least 8"):
        fit(cfg, np.random.default_rng(0).integers(0, 100, (6, 16, 16)).astype(np.uint16))


def test_cosine_schedule_decays_and_constant_does_not() -> None:
    from livedenoise.models.trainer import _lr_factor

    values = [_lr_factor("cosine", f / 10) for f in range(11)]
    assert values[0] == pytest.approx(1.0) and values[-1] == pytest.approx(0.02)
    assert values == sorted(values, reverse=True)
    assert _lr_factor("constant", 0.9) == 1.0


def test_time_budget_ends_training_early(tiny_movie: SyntheticMovie) -> None:
    cfg = TrainConfig(
        patch_t=4,
        patch_xy=16,
        batch_size=1,
        epochs=1000,
        patches_per_epoch=2,
        base_channels=2,
        levels=2,
        device="cpu",
        time_budget_s=0.5,
    )
    r = fit(cfg, tiny_movie.noisy)
    assert r.stopped_early and 0 < len(r.history) < 1000 and r.steps >= 1


def test_loss_override_replaces_the_recipe_loss(tiny_movie: SyntheticMovie) -> None:
    """The method's `loss` field picks the loss: `l2` trains on MSE: the first step's reported loss is the MSE of the same batch and weights."""
    base = dict(
        patch_t=4,
        patch_xy=16,
        batch_size=1,
        epochs=1,
        patches_per_epoch=1,
        base_channels=2,
        levels=2,
        device="cpu",
        seed=5,
    )
    published = fit(TrainConfig(**base, loss="l1_l2"), tiny_movie.noisy)
    l1_only = fit(TrainConfig(**base, loss="l1"), tiny_movie.noisy)
    mse = fit(TrainConfig(**base, loss="l2"), tiny_movie.noisy)
    # Same seed, same first batch and weights: 0.5 * L1 + 0.5 * L2 of that batch.
    assert published.history[0] == pytest.approx(0.5 * l1_only.history[0] + 0.5 * mse.history[0], rel=1e-5)
    assert mse.config.method_config.loss == "l2"


FAST = dict(patch_t=4, patch_xy=16, batch_size=2, patches_per_epoch=4, base_channels=2, levels=2, device="cpu", seed=2)


def test_validation_keeps_the_best_epoch_and_reports_the_floor() -> None:
    from livedenoise.models.synthetic import simulate_calcium_movie

    movie = simulate_calcium_movie(frames=64, size=24, seed=4, photons=4.0).noisy
    r = fit(TrainConfig(**FAST, epochs=4, lr=3e-3, validation_frames=8), movie)
    v = r.validation
    assert v is not None and v.heldout_frames == 8 and len(r.val_history) == 4
    # The best epoch: an improvement counts from MIN_DELTA_DB on, so a later epoch may be a hair better.
    assert v.model_gain_db == r.val_history[v.best_epoch - 1] >= max(r.val_history) - MIN_DELTA_DB
    assert v.best_filter in v.filters and v.best_filter_gain_db == max(v.filters.values())
    assert v.beats_floor == (v.model_gain_db > v.best_filter_gain_db)
    assert ("does NOT beat" in v.summary()) != v.beats_floor
    # The returned network is the best epoch's (moving-average) weights: scoring it again gives the same figure.
    from livedenoise.models.validation import HeldoutFrames, model_gain_db

    heldout = HeldoutFrames.from_stretch(movie[56:], 56)
    again = model_gain_db(r.recipe.heldout_module(r.network), r.normalization, r.window, heldout, torch.device("cpu"))
    assert again == pytest.approx(v.model_gain_db, abs=1e-4)
    # inference="auto" is decided from the held-out frames' best filter and recorded in the result's config.
    from livedenoise.models.catalogue.neighbour_frame import PARITY_MIN_TEMPORAL_SIGMA, temporal_sigma
    from livedenoise.models.networks.adapters import ParityWindowOutput

    slow = temporal_sigma(v.best_filter) >= PARITY_MIN_TEMPORAL_SIGMA
    assert r.config.method_config.inference == ("parity" if slow else "consecutive")  # type: ignore[attr-defined]
    assert isinstance(r.recipe.export_module(r.network), ParityWindowOutput) is slow


def test_a_budgeted_run_spends_at_most_its_share_on_validation(monkeypatch: pytest.MonkeyPatch) -> None:
    """On a time budget, validation runs only while it has used at most VALIDATION_SHARE of the time, and always
    after the last epoch (whose weights must be considered); fixed-epoch runs validate every epoch (above)."""
    import livedenoise.models.trainer as trainer
    from livedenoise.models.synthetic import simulate_calcium_movie

    movie = simulate_calcium_movie(frames=64, size=24, seed=4, photons=4.0).noisy
    monkeypatch.setattr(trainer, "VALIDATION_SHARE", 0.0)  # after the first validation, none until the end
    r = fit(TrainConfig(**FAST, time_budget_s=1.5, lr=3e-3, validation_frames=8, early_stopping=False), movie)
    assert len(r.history) >= 3 and len(r.val_history) == 2 and r.validation is not None
    monkeypatch.setattr(trainer, "VALIDATION_SHARE", 1e9)  # always within its share: every epoch
    r = fit(TrainConfig(**FAST, time_budget_s=1.0, lr=3e-3, validation_frames=8, early_stopping=False), movie)
    assert len(r.val_history) == len(r.history)


def test_early_stopping_ends_a_run_that_stopped_improving(monkeypatch: pytest.MonkeyPatch) -> None:
    import livedenoise.models.trainer as trainer
    from livedenoise.models.synthetic import simulate_calcium_movie

    monkeypatch.setattr(trainer, "PATIENCE", 2)
    movie = simulate_calcium_movie(frames=64, size=24, seed=4, photons=4.0).noisy
    # lr ~ 0: the held-out score never improves by MIN_DELTA_DB after epoch 1; stop once half the run is over
    r = fit(TrainConfig(**FAST, epochs=20, lr=1e-12, validation_frames=8), movie)
    assert r.stopped_early and len(r.history) == 10 and r.validation.best_epoch == 1
    r = fit(TrainConfig(**FAST, epochs=6, lr=1e-12, early_stopping=False, validation_frames=8), movie)
    assert not r.stopped_early and len(r.history) == 6


def test_short_movies_train_without_validation(tiny_movie: SyntheticMovie) -> None:
    r = fit(TrainConfig(**FAST, epochs=1), tiny_movie.noisy[:40])
    assert r.validation is None and r.val_history == []
    # 48 frames of 32x32: 4 even frames of 1024 pixels would score too noisily to pick an epoch by
    r = fit(TrainConfig(**FAST, epochs=1), tiny_movie.noisy)
    assert r.validation is None
    r = fit(TrainConfig(**FAST, epochs=1, validation_frames=0), tiny_movie.noisy)
    assert r.validation is None
    with pytest.raises(ValueError, match="validation_frames=30 must be 0 .* or between 4 and half the movie"):
        fit(TrainConfig(**FAST, epochs=1, validation_frames=30), tiny_movie.noisy)
