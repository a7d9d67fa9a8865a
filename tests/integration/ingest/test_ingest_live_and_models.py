"""Live back-pressure, hot swap over the control channel, missing/mismatched models, the process entry point."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pytest

from livedenoise.clients.model_spec import WindowSpec
from livedenoise.clients.status import ServedModel, WindowInfo
from livedenoise.clients.windowing import reflect_position
from livedenoise.server.engine.loader import load_engine
from livedenoise.server.engine.offline import denoise_movie
from livedenoise.server.errors import InvalidModel, LiveDenoiseError, UnknownModel
from livedenoise.server.ingest.control import IngestControlClient
from livedenoise.server.ingest.service import IngestService, run_ingest
from livedenoise.server.registry import ModelRegistry
from livedenoise.server.settings import ServerSettings

WINDOW_A = WindowSpec(2, 2, 1)
WINDOW_B = WindowSpec(1, 3, 2, spatial_multiple=2)


@pytest.fixture
def path_a(tmp_path: Path, onnx_models: ModuleType) -> Path:
    return onnx_models.make_mix_model(tmp_path / "a.onnx", WINDOW_A, seed=1)


@pytest.fixture
def path_b(tmp_path: Path, onnx_models: ModuleType) -> Path:
    return onnx_models.make_mix_model(tmp_path / "b.onnx", WINDOW_B, seed=2, levels=1, method="other")


def test_live_mode_skips_whole_blocks_but_answers_every_frame(
    settings: ServerSettings, path_a: Path, run_service: Callable[..., Any], make_sender: Callable[[str], Any],
    gated_engine_cls: Any, wait: Callable[..., None],
) -> None:  # fmt: skip
    engine = gated_engine_cls(load_engine(path_a, "cpu", "a"), delay_s=0.002)
    service = run_service(settings.model_copy(update={"live_max_backlog_frames": 4}), engine=engine)
    sender = make_sender(service.zmq_endpoint)
    movie = np.random.default_rng(5).integers(0, 3000, (60, 20, 24)).astype(np.uint16)
    sender.start("cam", "live", movie.shape[1:], "<u2", mode="live")
    for i, frame in enumerate(movie):
        sender.frame("cam", "live", i, frame)
    # the engine is slow (held here) while the camera keeps going
    wait(lambda: getattr(service.status().streams.get("cam"), "frames_in", 0) == 60, what="all frames accepted")
    engine.gate.set()
    sender.end("cam", "live")
    replies = sender.until_end("cam", "live")[:-1]

    assert [r.header.index for r in replies] == list(range(60)), "one reply per frame, in order"
    kinds = [r.type for r in replies]
    assert set(kinds) == {"frame", "skipped"}
    assert kinds.count("skipped") >= 40
    assert all(r.header.reason == "backlog" for r in replies if r.type == "skipped")
    offline = denoise_movie(engine.inner, movie)
    for r in replies:
        if r.type == "frame":  # what is denoised is denoised with its true context
            np.testing.assert_array_equal(r.frame, offline[r.header.index])
    cam = service.status().streams["cam"]
    assert cam.mode == "live"
    assert (cam.frames_in, cam.frames_out + cam.skipped, cam.backlog) == (60, 60, 0)
    assert cam.skipped == kinds.count("skipped")


def expected_with_swap(movie: np.ndarray, replies: list[Any], engines: dict[str, Any]) -> np.ndarray:
    """Recompute each reply from its own model's window, blocks starting where the swap happened."""
    n = movie.shape[0]
    out = np.empty(movie.shape, dtype=np.float32)
    models = [r.header.model for r in replies]
    p = 0
    while p < n:
        engine = engines[models[p]]
        w = engine.spec.window
        positions = [reflect_position(q, n) for q in range(p - w.before, p + w.out_frames + w.after)]
        block = engine.infer(movie[positions].astype(np.float32)[None])[0]
        count = min(w.out_frames, n - p)
        out[p : p + count] = block[:count]
        p += count
    return out


def test_hot_swap_while_streaming(
    settings: ServerSettings, path_a: Path, path_b: Path, run_service: Callable[..., Any],
    make_sender: Callable[[str], Any], wait: Callable[..., None],
) -> None:  # fmt: skip
    service = run_service(settings, path_a, "a")
    sender = make_sender(service.zmq_endpoint)
    movie = np.random.default_rng(6).integers(0, 3000, (150, 18, 22)).astype(np.uint16)
    swapped = threading.Event()

    def camera() -> None:
        sender.start("cam", "s", movie.shape[1:], "<u2")
        for i, frame in enumerate(movie):
            sender.frame("cam", "s", i, frame)
            if i == 60:
                assert swapped.wait(10)
            time.sleep(0.001)
        sender.end("cam", "s")

    thread = threading.Thread(target=camera)
    thread.start()
    wait(lambda: getattr(service.status().streams.get("cam"), "frames_in", 0) >= 40, what="stream running")
    id_b = ModelRegistry(settings.models_dir).add_path(path_b).id  # the control channel loads registered ids only
    info = IngestControlClient(service.control_endpoint, service.control_secret).load_model(id_b)
    swapped.set()
    thread.join(30)
    stored = str(settings.models_dir / f"{id_b}.onnx")
    assert info == ServedModel(id_b, "other", WindowInfo(before=1, after=3, out_frames=2, spatial_multiple=2), stored)

    replies = sender.until_end("cam", "s")[:-1]
    assert [r.header.index for r in replies] == list(range(150))
    assert all(r.type == "frame" for r in replies)
    models = [r.header.model for r in replies]
    switch = models.index(id_b)
    assert 0 < switch < 150 and models == ["a"] * switch + [id_b] * (150 - switch)
    engines = {"a": load_engine(path_a, "cpu", "a"), id_b: load_engine(path_b, "cpu", id_b)}
    np.testing.assert_array_equal(np.stack([r.frame for r in replies]), expected_with_swap(movie, replies, engines))
    assert service.status().model.id == id_b


def test_control_channel_and_no_model(
    settings: ServerSettings, path_a: Path, tmp_path: Path, onnx_models: ModuleType,
    run_service: Callable[..., Any], make_sender: Callable[[str], Any],
) -> None:  # fmt: skip
    service = run_service(settings)
    control = IngestControlClient(service.control_endpoint, service.control_secret, timeout_s=5)
    assert control.ping()["pid"] == os.getpid()
    with pytest.raises(LiveDenoiseError, match="secret"):
        IngestControlClient(service.control_endpoint, "wrong", timeout_s=5).shutdown()
    assert control.status().model is None
    sender = make_sender(service.zmq_endpoint)
    movie = np.random.default_rng(7).integers(0, 3000, (6, 16, 16)).astype(np.uint16)
    sender.start("cam", "s1", movie.shape[1:], "<u2")
    for i, frame in enumerate(movie):
        sender.frame("cam", "s1", i, frame)
    sender.end("cam", "s1")
    replies = sender.until_end("cam", "s1")[:-1]
    assert [(r.type, r.header.code, r.header.index) for r in replies] == [("error", "no_model", i) for i in range(6)]

    # Only registered ids, from the registry folder: never a path. Files planted there are still checked.
    with pytest.raises(LiveDenoiseError, match="registered model id"):
        control.load_model(str(path_a))
    with pytest.raises(UnknownModel):
        control.load_model("m-00000000abcd")
    settings.models_dir.mkdir(parents=True, exist_ok=True)
    onnx_models.write_corrupt_model(settings.models_dir / "m-0000000000ba.onnx")
    onnx_models.write_model_without_spec(settings.models_dir / "m-0000000000bb.onnx")
    with pytest.raises(InvalidModel, match="not a valid ONNX model"):
        control.load_model("m-0000000000ba")
    with pytest.raises(InvalidModel, match="livedenoise.spec"):
        control.load_model("m-0000000000bb")
    assert control.status().model is None
    id_a = ModelRegistry(settings.models_dir).add_path(path_a).id
    assert control.load_model(id_a).id == id_a

    sender.start("cam", "s2", movie.shape[1:], "<u2")
    for i, frame in enumerate(movie):
        sender.frame("cam", "s2", i, frame)
    sender.end("cam", "s2")
    replies = sender.until_end("cam", "s2")[:-1]
    assert [r.header.model for r in replies] == [id_a] * 6
    np.testing.assert_array_equal(np.stack([r.frame for r in replies]), denoise_movie(load_engine(path_a), movie))
    status = control.status()
    assert status.streams["cam"].errors == 6 and status.streams["cam"].frames_out == 6
    assert status.model.path == str(settings.models_dir / f"{id_a}.onnx")


def test_model_mismatch_answers_each_frame(
    settings: ServerSettings, tmp_path: Path, onnx_models: ModuleType, run_service: Callable[..., Any],
    make_sender: Callable[[str], Any],
) -> None:  # fmt: skip
    path = onnx_models.make_mix_model(tmp_path / "static.onnx", WINDOW_A, static_hw=(16, 16))
    service = run_service(settings, path, "static")
    sender = make_sender(service.zmq_endpoint)
    sender.start("small", "s", (16, 16), "|u1")
    sender.start("wrong", "s", (20, 16), "|u1")
    for i in range(5):
        sender.frame("wrong", "s", i, np.full((20, 16), i, dtype=np.uint8))
        sender.frame("small", "s", i, np.full((16, 16), i, dtype=np.uint8))
    sender.end("wrong", "s")
    sender.end("small", "s")
    replies: list[Any] = []
    while sum(r.type == "end" for r in replies) < 2:
        replies.append(sender.recv())
    wrong = [r for r in replies if r.header.stream == "wrong" and r.type != "end"]
    small = [r for r in replies if r.header.stream == "small" and r.type != "end"]
    assert [(r.type, r.header.code, r.header.index) for r in wrong] == [
        ("error", "model_mismatch", i) for i in range(5)
    ]
    assert "static" in (wrong[0].header.message or "")
    assert [(r.type, r.header.index) for r in small] == [("frame", i) for i in range(5)]


def test_run_ingest_in_a_thread_until_shutdown(
    settings: ServerSettings, path_a: Path, make_sender: Callable[[str], Any], wait: Callable[..., None]
) -> None:
    started: list[IngestService] = []
    ready = threading.Event()

    def on_ready(service: IngestService) -> None:
        started.append(service)
        ready.set()

    thread = threading.Thread(target=run_ingest, args=(settings, path_a, "a", on_ready))
    thread.start()
    assert ready.wait(10)
    service = started[0]
    sender = make_sender(service.zmq_endpoint)
    sender.start("cam", "s", (8, 8), "<f4")
    sender.frame("cam", "s", 0, np.ones((8, 8), dtype=np.float32))
    control = IngestControlClient(service.control_endpoint, service.control_secret, timeout_s=5)
    assert control.status().model.id == "a"
    # messages not yet read when shutdown starts are never accepted (and get no reply): wait for the frame
    wait(lambda: getattr(control.status().streams.get("cam"), "frames_in", 0) == 1, what="frame accepted")
    control.shutdown()
    thread.join(15)
    assert not thread.is_alive()
    # the open series was flushed before the process stopped
    replies = sender.until_end("cam", "s", timeout_s=5)
    assert [(r.type, r.header.index) for r in replies] == [("frame", 0), ("end", None)], [r.header for r in replies]
