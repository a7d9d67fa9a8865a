"""A camera faster than the engine: in live mode latency stays bounded and every dropped frame is a counted
``skipped`` reply; in lossless mode nothing is dropped and the backlog is reported while it grows."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pytest

from livedenoise.clients.model_spec import WindowSpec
from livedenoise.server.engine.loader import load_engine
from livedenoise.server.settings import ServerSettings

FRAMES = 300
CAMERA_FPS = 300.0  # the camera: 1 s of frames
CALL_S = 0.03  # the engine: 2 frames per 30 ms call, at most ~66 frames/s, a fifth of the camera
BACKLOG = 8


@pytest.fixture
def slow_engine(tmp_path: Path, onnx_models: ModuleType, gated_engine_cls: Any) -> Any:
    path = onnx_models.make_mix_model(tmp_path / "m.onnx", WindowSpec(2, 2, 1), seed=1)
    engine = gated_engine_cls(load_engine(path, "cpu", "m", threads=1), delay_s=CALL_S)
    engine.gate.set()
    return engine


def stream_at_camera_rate(service: Any, sender: Any, mode: str) -> tuple[list[Any], int]:
    """Send :data:`FRAMES` frames paced at :data:`CAMERA_FPS`; the replies, and the largest backlog the status
    reported meanwhile."""
    movie = np.random.default_rng(4).integers(0, 3000, (FRAMES, 16, 16)).astype(np.uint16)
    sender.start("cam", mode, movie.shape[1:], "<u2", mode=mode)
    start = time.monotonic()
    largest_backlog = 0
    for i, frame in enumerate(movie):
        time.sleep(max(0.0, start + i / CAMERA_FPS - time.monotonic()))
        sender.frame("cam", mode, i, frame)
        if i % 25 == 24:
            largest_backlog = max(largest_backlog, service.status().streams["cam"].backlog)
    sender.end("cam", mode)
    return sender.until_end("cam", mode, timeout_s=60)[:-1], largest_backlog


def test_live_mode_keeps_latency_bounded_and_counts_every_skip(
    settings: ServerSettings, slow_engine: Any, run_service: Callable[..., Any], make_sender: Callable[[str], Any]
) -> None:
    config = {"max_batch": 1, "live_max_backlog_frames": BACKLOG}
    service = run_service(settings.model_copy(update=config), engine=slow_engine)
    replies, _ = stream_at_camera_rate(service, make_sender(service.zmq_endpoint), "live")

    assert [r.header.index for r in replies] == list(range(FRAMES)), "one reply per frame, in order"
    denoised = [r for r in replies if r.type == "frame"]
    skipped = [r for r in replies if r.type == "skipped"]
    assert len(denoised) + len(skipped) == FRAMES and len(skipped) > FRAMES // 2
    cam = service.status().streams["cam"]
    assert (cam.frames_out, cam.skipped, cam.backlog) == (len(denoised), len(skipped), 0)
    # Bounded: a frame waits for at most the backlog budget and a block in flight (~0.2 s at the engine's rate),
    # late in the series as early. Lossless at the same rates reaches seconds (below).
    latencies = [r.header.latency_ms for r in denoised]
    third = len(latencies) // 3
    assert max(latencies) < 1000.0, latencies
    assert max(latencies[-third:]) < max(latencies[:third]) + 500.0, "latency grew with time"


def test_lossless_mode_drops_nothing_and_reports_the_backlog(
    settings: ServerSettings, slow_engine: Any, run_service: Callable[..., Any], make_sender: Callable[[str], Any]
) -> None:
    service = run_service(settings.model_copy(update={"max_batch": 1}), engine=slow_engine)
    replies, largest_backlog = stream_at_camera_rate(service, make_sender(service.zmq_endpoint), "lossless")

    assert [r.header.index for r in replies] == list(range(FRAMES))
    assert all(r.type == "frame" for r in replies), "lossless mode never skips"
    # Reported while it grew: about 4/5 of the frames sent by the end of sending were still waiting.
    assert largest_backlog > FRAMES // 3, largest_backlog
    latencies = [r.header.latency_ms for r in replies]
    assert latencies[-1] > 1500.0 and latencies[-1] > 5 * latencies[0]
    cam = service.status().streams["cam"]
    assert (cam.frames_out, cam.skipped, cam.backlog) == (FRAMES, 0, 0)
