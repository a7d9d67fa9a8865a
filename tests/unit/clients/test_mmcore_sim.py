"""The simulated microscope: the sample (numpy only) and, with pymmcore-plus, the Python camera under an MDA."""

from __future__ import annotations

import time

import numpy as np
import pytest

from livedenoise.clients.mmcore_sim import FluorescentSample


def test_sample_frames_are_reproducible_from_seed_and_frame_number():
    sample = FluorescentSample(seed=4)
    a = sample.image((20, 30), 1.5, 7, (10.0, 20.0), "GFP")
    b = FluorescentSample(seed=4).image((20, 30), 1.5, 7, (10.0, 20.0), "GFP")
    assert a.dtype == np.uint16 and a.shape == (20, 30)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, sample.image((20, 30), 1.5, 8, (10.0, 20.0), "GFP")), "fresh noise per frame"


def test_sample_is_shot_noise_limited_around_its_expected_signal():
    sample = FluorescentSample(seed=1, photons=20.0, gain=2.0, offset=100.0, read_noise=1.0)
    expected = sample.expected((32, 32), 0.25, (0.0, 0.0), "GFP")
    frames = np.stack([sample.image((32, 32), 0.25, n, (0.0, 0.0), "GFP") for n in range(300)]).astype(np.float64)
    photons = (frames - 100.0) / 2.0
    np.testing.assert_allclose(photons.mean(axis=0), expected, rtol=0.1, atol=0.3)
    # Poisson: variance in photons ~ mean (read noise adds (1/2)^2 photons^2)
    np.testing.assert_allclose(photons.var(axis=0).mean(), expected.mean() + 0.25, rtol=0.1)
    assert expected.max() > 3 * sample.background_photons, "cells stand out of the background"


def test_positions_and_fluorophores_show_their_own_cells_and_cells_flash():
    sample = FluorescentSample(seed=2)
    here = sample.expected((32, 32), 0.0, (0.0, 0.0), "GFP")
    np.testing.assert_array_equal(here, sample.expected((32, 32), 0.0, (0.2, -0.3), "GFP"))  # same field
    assert not np.allclose(here, sample.expected((32, 32), 0.0, (500.0, 0.0), "GFP"))
    assert not np.allclose(here, sample.expected((32, 32), 0.0, (0.0, 0.0), "mCherry"))
    over_time = np.stack([sample.expected((32, 32), t, (0.0, 0.0), "GFP") for t in np.linspace(0, 5, 50)])
    assert (over_time.max(axis=0) / over_time.min(axis=0)).max() > 2, "activity changes brightness"


def test_sample_refuses_bad_parameters():
    with pytest.raises(ValueError, match="photons must be > 0"):
        FluorescentSample(photons=0)
    with pytest.raises(ValueError, match="read_noise must be >= 0"):
        FluorescentSample(read_noise=-1)


def test_simulated_microscope_runs_an_mda_at_the_exposure_rate():
    pytest.importorskip("pymmcore_plus")
    useq = pytest.importorskip("useq")
    from livedenoise.clients.mmcore_sim import simulated_microscope

    scope = simulated_microscope(shape=(16, 24), exposure_ms=5.0, pixel_size_um=0.4, history=50)
    core = scope.core
    assert core.getPixelSizeUm() == pytest.approx(0.4)
    assert core.getAvailableConfigs("Channel") == ("GFP", "mCherry")
    got = []
    core.mda.events.frameReady.connect(lambda img, event, meta: got.append((img.copy(), event)))
    sequence = useq.MDASequence(
        time_plan={"interval": 0, "loops": 6}, stage_positions=[{"x": 0, "y": 0}, {"x": 90, "y": 0}],
        channels=["GFP", "mCherry"],
    )  # fmt: skip
    core.mda.run(sequence)
    assert len(got) == 24 == scope.camera.frames_acquired
    for (img, _), produced in zip(got, scope.camera.history):
        np.testing.assert_array_equal(img, produced)
        assert img.shape == (16, 24) and img.dtype == np.uint16
    assert {e.channel.config for _, e in got} == {"GFP", "mCherry"}
    timed = []
    core.mda.events.frameReady.connect(lambda *_: timed.append(1))
    t0 = time.monotonic()
    core.mda.run(useq.MDASequence(time_plan={"interval": 0, "loops": 20}))
    assert time.monotonic() - t0 >= 20 * 0.005 * 0.9, "one frame per exposure time"
    assert len(timed) == 20


def test_simulated_microscope_refuses_bad_settings():
    pytest.importorskip("pymmcore_plus")
    from livedenoise.clients.mmcore_sim import simulated_microscope

    with pytest.raises(ValueError, match="at least 8 pixels"):
        simulated_microscope(shape=(4, 4))
    with pytest.raises(ValueError, match="distinct"):
        simulated_microscope(fluorophores=("GFP", "GFP"))
