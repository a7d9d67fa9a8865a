"""replay_movie: a recorded movie played as a camera into a real ROUTER socket (the imitation ingest)."""

from __future__ import annotations

import numpy as np
import pytest

from livedenoise.clients.movie_io import write_movie
from livedenoise.clients.replay import replay_movie


@pytest.fixture
def movie() -> np.ndarray:
    return np.random.default_rng(3).integers(0, 255, size=(12, 24, 20)).astype(np.uint8)


def test_replay_from_tif_file(tmp_path, fake_ingest, movie):
    path = write_movie(tmp_path / "cam.ome.tif", movie)
    server = fake_ingest(lag=2)
    fps = 120.0
    result = replay_movie(path, server.endpoint, fps, stream="scope-1", mode="live", timeout_s=5)
    np.testing.assert_array_equal(result.frames, 2.0 * movie.astype(np.float32) + 1.0)
    assert result.summary()["frames_in"] == result.summary()["frames_out"] == 12
    assert [i for _, i in server.seen.frames] == list(range(12))
    assert server.seen.starts[0].stream == "scope-1" and server.seen.starts[0].dtype == "|u1"
    assert result.wall_s >= 0.8 * 11 / fps  # paced like a camera (loose lower bound only)


def test_replay_loops_past_the_end_of_the_movie(fake_ingest, movie):
    server = fake_ingest(lag=1)
    fractions: list[float] = []
    result = replay_movie(
        movie, server.endpoint, 500.0, loop=True, max_frames=30, progress=fractions.append, timeout_s=5
    )
    assert result.frames_in == result.frames_out == 30
    assert result.frames.shape == (0, 24, 20)  # looping runs keep counts and latencies, not pixels
    assert [i for _, i in server.seen.frames] == list(range(30))
    assert fractions[-1] == pytest.approx(1.0)


def test_replay_stops_when_asked(fake_ingest, movie):
    server = fake_ingest(lag=0)
    sent = []
    result = replay_movie(
        movie, server.endpoint, 500.0, loop=True, stop=lambda: len(sent) >= 7, on_reply=sent.append, timeout_s=5
    )
    assert 7 <= result.frames_in < 12 * 10 and result.frames_out == result.frames_in
    assert len(server.seen.frames) == result.frames_in


def test_replay_refuses_endless_loop_and_bad_rate(movie):
    with pytest.raises(ValueError, match="max_frames or a stop"):
        replay_movie(movie, "tcp://127.0.0.1:1", 10.0, loop=True)
    with pytest.raises(ValueError, match="fps must be > 0"):
        replay_movie(movie, "tcp://127.0.0.1:1", 0.0)
