"""Accepted frames: one reply each, in order, equal to the offline result with the same engine."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pytest
import zmq

from livedenoise.clients.model_spec import WindowSpec
from livedenoise.clients.protocol import UNKNOWN_STREAM
from livedenoise.server.engine.loader import load_engine
from livedenoise.server.engine.offline import denoise_movie
from livedenoise.server.settings import ServerSettings


@pytest.fixture
def model_path(tmp_path: Path, onnx_models: ModuleType) -> Path:
    # out_frames=2 and a spatial multiple of 4: blocks, partial last blocks and padding are all exercised
    return onnx_models.make_mix_model(tmp_path / "mix.onnx", WindowSpec(3, 1, 2, spatial_multiple=4), levels=2)


def assert_frames(
    replies: list[Any], stream: str, series: str, indices: list[int], expected: np.ndarray, model: str
) -> None:
    frames = [r for r in replies if r.type != "end"]
    assert [r.header.index for r in frames] == indices, "one reply per accepted index, in order"
    assert all(r.type == "frame" for r in frames), [r for r in frames if r.type != "frame"][:3]
    assert all(r.header.stream == stream and r.header.series == series and r.header.model == model for r in frames)
    assert all(r.header.latency_ms is not None and r.header.latency_ms >= 0 for r in frames)
    assert [r.header.t_ns for r in frames] == [1000 * i for i in indices]
    got = np.stack([r.frame for r in frames])
    # Bit-exact: the stream and denoise_movie form identical windows and ORT CPU is deterministic per window.
    np.testing.assert_array_equal(got, expected)
    assert replies[-1].type == "end"


def test_two_streams_at_once_match_offline(
    settings: ServerSettings, model_path: Path, run_service: Callable[..., Any], make_sender: Callable[[str], Any]
) -> None:
    service = run_service(settings.model_copy(update={"max_batch": 4}), model_path, "mix")
    rng = np.random.default_rng(0)
    movie_a = rng.integers(0, 4000, (300, 40, 48)).astype(np.uint16)
    movie_b = rng.integers(0, 255, (301, 33, 31)).astype(np.uint8)
    # camera B drops frames now and then: indices jump, windows use the frames that arrived
    indices_b = np.cumsum(rng.integers(1, 4, 301)).tolist()
    senders = {"A": make_sender(service.zmq_endpoint), "B": make_sender(service.zmq_endpoint)}
    results: dict[str, list[Any]] = {}

    def run(name: str, movie: np.ndarray, indices: list[int]) -> None:
        sender = senders[name]
        sender.start(f"cam{name}", "s1", movie.shape[1:], movie.dtype.str)
        for index, frame in zip(indices, movie):
            sender.frame(f"cam{name}", "s1", index, frame, note=f"{name}{index}")
        sender.end(f"cam{name}", "s1", done=True)
        results[name] = sender.until_end(f"cam{name}", "s1")

    threads = [
        threading.Thread(target=run, args=("A", movie_a, list(range(300)))),
        threading.Thread(target=run, args=("B", movie_b, indices_b)),
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert set(results) == {"A", "B"}

    engine = load_engine(model_path, "cpu", "mix", threads=1)
    assert_frames(results["A"], "camA", "s1", list(range(300)), denoise_movie(engine, movie_a, 8), "mix")
    assert_frames(results["B"], "camB", "s1", indices_b, denoise_movie(engine, movie_b, 8), "mix")
    assert results["A"][0].header.meta == {"note": "A0"}
    assert results["B"][-1].header.meta == {"done": True}

    status = service.status()
    for name, n in (("camA", 300), ("camB", 301)):
        s = status.streams[name]
        assert (s.frames_in, s.frames_out, s.skipped, s.errors, s.rejected, s.backlog) == (n, n, 0, 0, 0, 0)
        assert s.latency_ms_p50 is not None and s.latency_ms_p99 >= s.latency_ms_p50
        assert s.fps_in > 0 and s.fps_out > 0
    assert status.streams["camB"].shape == [33, 31] and status.streams["camB"].dtype == "|u1"
    assert status.totals.frames_out == 601
    assert status.model.id == "mix" and status.model.window.out_frames == 2
    assert status.provider == "cpu"


def test_new_start_flushes_the_previous_series(
    settings: ServerSettings, model_path: Path, run_service: Callable[..., Any], make_sender: Callable[[str], Any]
) -> None:
    service = run_service(settings, model_path, "mix")
    sender = make_sender(service.zmq_endpoint)
    rng = np.random.default_rng(1)
    first = rng.integers(0, 1000, (9, 24, 20)).astype("<u2")
    second = rng.integers(0, 1000, (5, 16, 16)).astype(">u2")
    sender.start("cam", "one", first.shape[1:], first.dtype.str)
    for i, frame in enumerate(first):
        sender.frame("cam", "one", i, frame)
    sender.start("cam", "two", second.shape[1:], second.dtype.str)  # no end for "one"
    for i, frame in enumerate(second):
        sender.frame("cam", "two", i, frame)
    sender.end("cam", "two")
    replies_one = sender.until_end("cam", "one")
    replies_two = sender.until_end("cam", "two")
    engine = load_engine(model_path, "cpu", "mix")
    assert_frames(replies_one, "cam", "one", list(range(9)), denoise_movie(engine, first), "mix")
    assert_frames(replies_two, "cam", "two", list(range(5)), denoise_movie(engine, second), "mix")


def test_single_frame_series(
    settings: ServerSettings, model_path: Path, run_service: Callable[..., Any], make_sender: Callable[[str], Any]
) -> None:
    service = run_service(settings, model_path, "mix")
    sender = make_sender(service.zmq_endpoint)
    frame = np.arange(12 * 10, dtype=np.float32).reshape(12, 10)
    sender.start("cam", "x", frame.shape, "<f4")
    sender.frame("cam", "x", 41, frame)
    sender.end("cam", "x")
    replies = sender.until_end("cam", "x")
    assert_frames(replies, "cam", "x", [41], denoise_movie(load_engine(model_path), frame[None]), "mix")


def test_stop_flushes_open_series(
    settings: ServerSettings, model_path: Path, run_service: Callable[..., Any], make_sender: Callable[[str], Any],
    wait: Callable[..., None],
) -> None:  # fmt: skip
    service = run_service(settings, model_path, "mix")
    sender = make_sender(service.zmq_endpoint)
    movie = np.random.default_rng(2).integers(0, 500, (10, 16, 16)).astype(np.uint16)
    sender.start("cam", "s", movie.shape[1:], movie.dtype.str)
    for i, frame in enumerate(movie):
        sender.frame("cam", "s", i, frame)
    wait(lambda: getattr(service.status().streams.get("cam"), "frames_in", 0) == 10, what="frames accepted")
    service.stop()  # no `end` was sent: the service flushes the series before closing
    replies = sender.until_end("cam", "s", timeout_s=5)
    assert_frames(replies, "cam", "s", list(range(10)), denoise_movie(load_engine(model_path), movie), "mix")


def test_pub_carries_the_replies_with_the_stream_as_topic(
    settings: ServerSettings, model_path: Path, run_service: Callable[..., Any], make_sender: Callable[[str], Any],
    zmq_context: zmq.Context[Any],
) -> None:  # fmt: skip
    service = run_service(settings, model_path, "mix")
    viewer = zmq_context.socket(zmq.SUB)
    viewer.setsockopt(zmq.LINGER, 0)
    viewer.setsockopt(zmq.SUBSCRIBE, b"cam")
    viewer.setsockopt(zmq.SUBSCRIBE, UNKNOWN_STREAM.encode())
    viewer.connect(service.pub_endpoint)
    sender = make_sender(service.zmq_endpoint)
    # Readiness handshake instead of a sleep (PUB/SUB slow joiner): refused probes are published under the
    # unknown-stream topic; the first one the viewer sees proves its subscriptions reached the publisher.
    for _ in range(100):
        sender.raw([b"probe", b""])
        if viewer.poll(50):
            break
    else:
        raise AssertionError("the viewer's subscription never reached the publisher")
    viewer.setsockopt(zmq.UNSUBSCRIBE, UNKNOWN_STREAM.encode())
    movie = np.random.default_rng(8).integers(0, 500, (6, 16, 16)).astype(np.uint16)
    sender.start("cam", "s", movie.shape[1:], "<u2")
    for i, frame in enumerate(movie):
        sender.frame("cam", "s", i, frame)
    sender.end("cam", "s")
    direct = [r for r in sender.until_end("cam", "s") if r.header.stream == "cam"]  # not the probes' refusals
    published = []
    while len(published) < len(direct) and viewer.poll(5000):
        parts = viewer.recv_multipart()
        if parts[0] != UNKNOWN_STREAM.encode():  # probes still queued from the handshake
            published.append(parts)
    viewer.close()
    assert {parts[0] for parts in published} == {b"cam"}
    assert [p[1:] for p in published] == [[r.raw_header, r.raw_payload] for r in direct]
