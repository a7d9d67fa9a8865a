"""Per-series estimates: one FAST model serves its final values and, to a series that asks for it at ``start``,
its causal ones at zero frames of latency; both equal the offline result; a name the model lacks is refused."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from livedenoise.models.config import TrainConfig
from livedenoise.models.pipeline import train_and_export
from livedenoise.models.synthetic import simulate_calcium_movie
from livedenoise.server.engine.loader import load_engine
from livedenoise.server.engine.offline import denoise_movie
from livedenoise.server.settings import ServerSettings

SHAPE = (20, 24)


@pytest.fixture(scope="module")
def movie() -> np.ndarray:
    return simulate_calcium_movie(frames=40, size=SHAPE, seed=2, photons=4.0).noisy


@pytest.fixture(scope="module")
def fast_model(tmp_path_factory: pytest.TempPathFactory, movie: np.ndarray) -> Path:
    path = tmp_path_factory.mktemp("fast") / "fast.onnx"
    config = TrainConfig(
        method="fast", frames=4, features=4, levels=2, patch_xy=16, batch_size=2, out_frames=2,
        epochs=1, patches_per_epoch=4, validation_frames=0, device="cpu", seed=0,
    )  # fmt: skip
    _, spec = train_and_export(movie, config, path)
    assert spec.estimate_names == ("final", "causal") and spec.output_planes == 4
    return path


def _offline(path: Path, movie: np.ndarray, estimate: str | None) -> np.ndarray:
    engine = load_engine(path, provider="cpu", model_id="fast", threads=1)
    try:
        return denoise_movie(engine, movie, batch_size=3, estimate=estimate)
    finally:
        engine.close()


def _frames(replies: list[Any]) -> np.ndarray:
    frames = [r for r in replies if r.type == "frame"]
    assert [r.header.index for r in frames] == list(range(len(frames)))
    return np.stack([r.frame for r in frames])


def test_two_series_with_different_estimates_each_equal_offline(
    settings: ServerSettings, fast_model: Path, movie: np.ndarray, run_service: Callable[..., Any], make_sender: Any
) -> None:
    final, causal = _offline(fast_model, movie, None), _offline(fast_model, movie, "causal")
    assert not np.allclose(final, causal)
    np.testing.assert_array_equal(final, _offline(fast_model, movie, "final"))  # "final" is the default

    service = run_service(settings, fast_model, "fast")
    a, b = make_sender(service.zmq_endpoint), make_sender(service.zmq_endpoint)
    a.start("cam-a", "s", SHAPE, "<u2", mode="lossless")
    b.start("cam-b", "s", SHAPE, "<u2", mode="lossless", estimate="causal")
    for i, frame in enumerate(movie):  # interleaved, so windows of both series share batches
        a.frame("cam-a", "s", i, frame)
        b.frame("cam-b", "s", i, frame)
    a.end("cam-a", "s")
    b.end("cam-b", "s")
    tol = {"rtol": 1e-5, "atol": 1e-5 * float(np.abs(final).max())}
    np.testing.assert_allclose(_frames(a.until_end("cam-a", "s")), final, **tol)
    np.testing.assert_allclose(_frames(b.until_end("cam-b", "s")), causal, **tol)


@pytest.mark.parametrize(("estimate", "future"), [("causal", 0), (None, 3)])
def test_a_frame_is_answered_once_its_estimate_has_its_future_frames(
    estimate: str | None,
    future: int,
    settings: ServerSettings,
    fast_model: Path,
    movie: np.ndarray,
    run_service: Callable[..., Any],
    make_sender: Any,
) -> None:
    """out_frames 2: frame ``i`` of a block ``[s, s + 1]`` needs ``s + 1 + future``; causal: no future frame."""
    service = run_service(settings, fast_model, "fast")
    sender = make_sender(service.zmq_endpoint)
    meta = {"estimate": estimate} if estimate else {}
    sender.start("cam", "s", SHAPE, "<u2", mode="lossless", **meta)
    answered = -1
    for i in range(12):
        sender.frame("cam", "s", i, movie[i])
        # The window's start mirror needs frame 3 (before = 3); after that, whole blocks of 2 frames.
        expected = -1 if i < 3 else (i - future + 1) // 2 * 2 - 1
        while answered < expected:
            reply = sender.recv(10.0)
            assert reply.type == "frame" and reply.header.index == answered + 1
            answered += 1
        assert not sender.sock.poll(150), f"frame {answered + 1} answered before frame {i + 1} arrived"
    sender.end("cam", "s")
    assert len(sender.until_end("cam", "s")) == 12 - answered - 1 + 1


def test_an_estimate_the_served_model_lacks_is_refused_at_start(
    settings: ServerSettings, fast_model: Path, run_service: Callable[..., Any], make_sender: Any
) -> None:
    service = run_service(settings, fast_model, "fast")
    served = service.status().model
    assert served is not None and served.estimates == ["final", "causal"]
    sender = make_sender(service.zmq_endpoint)
    for bad, words in (("centre", "['final', 'causal']"), (3, "string")):
        sender.start("cam", "s", SHAPE, "<u2", estimate=bad)
        reply = sender.recv()
        assert (reply.type, reply.header.code, reply.header.stream) == ("error", "bad_field", "cam")
        assert "estimate" in (reply.header.message or "") and words in (reply.header.message or "")
    assert service.status().totals.rejected_by_code == {"bad_field": 2}


def test_the_cli_denoises_with_the_estimate_asked_for_and_names_a_missing_one(
    fast_model: Path, movie: np.ndarray, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from livedenoise.clients.cli import main

    np.save(tmp_path / "movie.npy", movie)
    args = ["denoise", str(tmp_path / "movie.npy"), "--model", str(fast_model), "--batch", "3"]
    assert main([*args, "--out", str(tmp_path / "causal.npy"), "--estimate", "causal"]) == 0
    np.testing.assert_array_equal(np.load(tmp_path / "causal.npy"), _offline(fast_model, movie, "causal"))
    assert main([*args, "--out", str(tmp_path / "x.npy"), "--estimate", "centre"]) == 2
    assert "has no estimate 'centre'; it offers final, causal" in capsys.readouterr().err
