"""Lossless under stops, restarts and slow swaps: every accepted frame gets a reply or an explicit error, and a
client can tell that the server restarted."""

from __future__ import annotations

import multiprocessing
import os
import signal
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pytest

from livedenoise.clients.model_spec import WindowSpec
from livedenoise.clients.stream import ServerRestarted, StreamClient
from livedenoise.server.engine.loader import load_engine
from livedenoise.server.errors import EngineError
from livedenoise.server.ingest.service import IngestService, run_ingest
from livedenoise.server.registry import ModelRegistry
from livedenoise.server.settings import ServerSettings

MOVIE = np.random.default_rng(9).integers(0, 3000, (40, 16, 16)).astype(np.uint16)


@pytest.fixture
def model_path(tmp_path: Path, onnx_models: ModuleType) -> Path:
    return onnx_models.make_mix_model(tmp_path / "mix.onnx", WindowSpec(1, 1, 1))


def test_frames_unanswered_at_stop_get_shutdown_errors(
    settings: ServerSettings, model_path: Path, make_sender: Callable[[str], Any], gated_engine_cls: Any,
    wait: Callable[..., None],
) -> None:  # fmt: skip
    engine = gated_engine_cls(load_engine(model_path, "cpu", "mix"), delay_s=0.1)
    engine.gate.set()
    service = IngestService(settings.model_copy(update={"max_batch": 1}), engine=engine)
    service.start()
    sender = make_sender(service.zmq_endpoint)
    sender.start("cam", "s", (16, 16), "<u2", mode="lossless")
    for i, frame in enumerate(MOVIE):
        sender.frame("cam", "s", i, frame)
    wait(lambda: getattr(service.status().streams.get("cam"), "frames_in", 0) == len(MOVIE), what="frames accepted")
    wait(lambda: service.status().totals.frames_out >= 1, what="a first answer")
    service.stop(timeout_s=0.3)  # ~0.1 s per frame: most are still waiting
    replies = sender.until_end("cam", "s", timeout_s=10)
    body, end = replies[:-1], replies[-1]
    assert [r.header.index for r in body] == list(range(len(MOVIE)))  # one reply each, in order
    done = [r for r in body if r.type == "frame"]
    lost = [r for r in body if r.type == "error"]
    assert done and lost and {r.header.code for r in lost} == {"shutdown"}
    assert [r.header.index for r in done] == list(range(len(done)))  # the answered ones are the oldest
    assert end.header.reason == "shutdown"
    assert len({r.header.instance for r in replies}) == 1 and replies[0].header.instance == service.instance


def test_a_client_learns_that_the_server_restarted_and_what_it_lost(
    settings: ServerSettings, model_path: Path, free_port: Callable[[], int]
) -> None:
    """The ingest process is killed with frames in flight; the next reply, from the new instance, says so."""
    fixed = settings.model_copy(update={"zmq_port": free_port()})
    ctx = multiprocessing.get_context("spawn")
    ready = ctx.Event()
    crashed = ctx.Process(target=run_ingest, args=(fixed, model_path, "mix", ready), daemon=True)
    crashed.start()
    assert ready.wait(60), "the ingest process did not start"
    client = StreamClient(f"tcp://127.0.0.1:{fixed.zmq_port}", stream="cam", timeout_s=10)
    try:
        client.start(series="s", dtype="<u2", shape=(16, 16))
        client.send(MOVIE[0], index=0)
        client.send(MOVIE[1], index=1)
        first = client.recv(timeout=10)
        assert first is not None and first.header.index == 0  # index 1 waits for index 2 (the window's `after`)
        os.kill(crashed.pid, signal.SIGKILL)  # type: ignore[arg-type]
        crashed.join(10)
        second = IngestService(fixed, model_path, "mix")
        second.start()
        try:
            client.send(MOVIE[2], index=2)  # reaches the new instance after the reconnect: refused (no_start)
            with pytest.raises(ServerRestarted) as info:
                client.recv(timeout=20)
            assert info.value.lost == {"s": [1, 2]} and second.instance in str(info.value)
            # Nothing is left owed: a new series is served as usual.
            assert client.denoise(MOVIE[:5]).summary()["frames_out"] == 5
        finally:
            second.stop()
    finally:
        client.close()


def test_a_swap_that_times_out_is_withdrawn_and_never_applied_late(
    settings: ServerSettings, model_path: Path, tmp_path: Path, onnx_models: ModuleType, make_sender: Callable[[str], Any],
    gated_engine_cls: Any, wait: Callable[..., None],
) -> None:  # fmt: skip
    engine = gated_engine_cls(load_engine(model_path, "cpu", "mix"))
    service = IngestService(settings, engine=engine)
    service.swap_timeout_s = 0.3
    service.start()
    try:
        other = onnx_models.make_mix_model(tmp_path / "other.onnx", WindowSpec(1, 1, 1), seed=3)
        model_id = ModelRegistry(settings.models_dir).add_path(other).id
        sender = make_sender(service.zmq_endpoint)
        sender.start("cam", "s", (16, 16), "<u2")
        for i in range(4):
            sender.frame("cam", "s", i, MOVIE[i])
        wait(lambda: engine.calls >= 1, what="the worker to be stuck in the gated engine")
        with pytest.raises(EngineError, match="cancelled"):
            service.load_registered(model_id)
        engine.gate.set()
        sender.end("cam", "s")
        replies = sender.until_end("cam", "s")
        assert {r.header.model for r in replies if r.type == "frame"} == {"mix"}
        assert service.status().model.id == "mix"
    finally:
        service.stop()
