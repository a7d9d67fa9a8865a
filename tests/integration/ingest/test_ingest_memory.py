"""Memory the network cannot fill: oversize messages are never buffered, windows are trimmed without a model,
one budget bounds buffered frames and unread replies, and idle series give their slot back."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pytest
import zmq

from livedenoise.clients.model_spec import WindowSpec
from livedenoise.clients.protocol import Header, MessageType, decode_header, frame_message
from livedenoise.clients.windowing import DEFAULT_HISTORY_MARGIN
from livedenoise.server.engine.loader import load_engine
from livedenoise.server.ingest.service import IngestService
from livedenoise.server.settings import ServerSettings


@pytest.fixture
def model_path(tmp_path: Path, onnx_models: ModuleType) -> Path:
    return onnx_models.make_mix_model(tmp_path / "mix.onnx", WindowSpec(1, 1, 1))


def test_an_oversize_payload_closes_its_connection_and_is_never_buffered(
    settings: ServerSettings,
    model_path: Path,
    run_service: Callable[..., IngestService],
    make_sender: Callable[[str], Any],
) -> None:
    service = run_service(settings.model_copy(update={"max_frame_bytes": 16 * 16 * 2}), model_path, "mix")
    attacker, camera = make_sender(service.zmq_endpoint), make_sender(service.zmq_endpoint)
    header = b'{"proto":"frames/1","type":"frame","stream":"cam","series":"s","index":0,"dtype":"<u2","shape":[16,16]}'
    attacker.raw([header, b"\0" * (8 * 1024 * 1024)])
    with pytest.raises(TimeoutError):
        attacker.recv(timeout_s=1.0)
    camera.start("cam", "s", (16, 16), "<u2")
    for i in range(3):
        camera.frame("cam", "s", i, np.full((16, 16), i, np.uint16))
    camera.end("cam", "s")
    assert [r.type for r in camera.until_end("cam", "s")] == ["frame", "frame", "frame", "end"]
    totals = service.status().totals
    assert totals.rejected == 0 and totals.frames_in == 3


def test_without_a_model_only_the_history_margin_is_held(
    settings: ServerSettings, run_service: Callable[..., IngestService], make_sender: Callable[[str], Any],
    wait: Callable[..., None],
) -> None:  # fmt: skip
    service = run_service(settings)
    sender = make_sender(service.zmq_endpoint)
    sender.start("cam", "s", (32, 32), "<u2")
    for i in range(300):
        sender.frame("cam", "s", i, np.full((32, 32), i, np.uint16))
    replies = [sender.recv() for _ in range(300)]
    assert {r.header.code for r in replies} == {"no_model"}
    margin = DEFAULT_HISTORY_MARGIN * 32 * 32 * 2
    wait(lambda: service.status().totals.buffered_bytes == margin, what="the window to keep only its margin")


def test_the_byte_budget_refuses_with_server_busy_and_loses_nothing_accepted(
    settings: ServerSettings, model_path: Path, run_service: Callable[..., IngestService], make_sender: Callable[[str], Any],
    gated_engine_cls: Any,
) -> None:  # fmt: skip
    frame_bytes = 32 * 32 * 2
    engine = gated_engine_cls(load_engine(model_path, "cpu", "mix"))
    service = run_service(settings.model_copy(update={"max_buffered_bytes": 10 * frame_bytes}), engine=engine)
    sender = make_sender(service.zmq_endpoint)
    sender.start("cam", "s", (32, 32), "<u2", mode="lossless")
    for i in range(14):
        sender.frame("cam", "s", i, np.full((32, 32), i, np.uint16))
    refused = [sender.recv() for _ in range(4)]
    assert [(r.header.code, r.header.index) for r in refused] == [("server_busy", i) for i in range(10, 14)]
    assert "max_buffered_bytes" in (refused[0].header.message or "")
    engine.gate.set()
    sender.end("cam", "s")
    replies = sender.until_end("cam", "s")
    assert [r.header.index for r in replies if r.type == "frame"] == list(range(10))


def test_an_idle_series_is_closed_and_frees_its_slot(
    settings: ServerSettings,
    model_path: Path,
    run_service: Callable[..., IngestService],
    make_sender: Callable[[str], Any],
) -> None:
    limits = {"series_idle_timeout_s": 0.3, "max_streams": 1}
    service = run_service(settings.model_copy(update=limits), model_path, "mix")
    squatter, camera = make_sender(service.zmq_endpoint), make_sender(service.zmq_endpoint)
    squatter.start("squat", "s", (16, 16), "<u2")
    squatter.frame("squat", "s", 0, np.zeros((16, 16), np.uint16))
    replies = squatter.until_end("squat", "s", timeout_s=10)  # answered, then closed by the server
    assert [r.type for r in replies] == ["frame", "end"]
    assert replies[-1].header.reason == "idle_timeout" and replies[-1].header.meta == {}
    camera.start("cam", "s", (16, 16), "<u2")  # the single slot is free again
    camera.frame("cam", "s", 0, np.zeros((16, 16), np.uint16))
    camera.end("cam", "s")
    assert [r.type for r in camera.until_end("cam", "s")] == ["frame", "end"]
    assert service.status().totals.expired_series == 1


def test_a_peer_that_does_not_read_is_bounded_then_gets_every_reply_in_order(
    settings: ServerSettings, model_path: Path, run_service: Callable[..., IngestService], zmq_context: zmq.Context[Any]
) -> None:
    shape, n = (64, 64), 1500  # 16 KiB replies: ~24 MiB in all, more than socket buffers hold
    budget = 4 * 1024 * 1024
    service = run_service(settings.model_copy(update={"max_buffered_bytes": budget}), model_path, "mix")
    sock = zmq_context.socket(zmq.DEALER)
    try:
        _fill_then_read(service, sock, shape, n, budget)
    finally:
        sock.close()


def _fill_then_read(service: IngestService, sock: zmq.Socket[Any], shape: tuple[int, int], n: int, budget: int) -> None:
    sock.setsockopt(zmq.LINGER, 0)
    sock.setsockopt(zmq.RCVHWM, 4)
    sock.setsockopt(zmq.RCVBUF, 64 * 1024)
    sock.connect(service.zmq_endpoint)
    sock.send_multipart(
        [b'{"proto":"frames/1","type":"start","stream":"cam","series":"s","dtype":"<u2","shape":[64,64]}', b""]
    )
    pixels = np.zeros(shape, np.uint16)
    for i in range(n):
        sock.send_multipart(frame_message(Header(type=MessageType.FRAME, stream="cam", series="s", index=i), pixels))
    deadline = time.monotonic() + 30
    while service.status().totals.frames_in + service.status().totals.rejected < n:
        assert time.monotonic() < deadline, "the server did not take every message"
        time.sleep(0.05)
    busy = service.status().totals
    accepted = busy.frames_in
    assert busy.rejected_by_code.get("server_busy", 0) > 0  # the budget was reached and said so
    # Unread replies count against the budget, so acceptance stopped short of the 1,500 frames (what ZeroMQ's
    # 32-message pipe and the kernel's socket buffers hold is outside it); the parked replies stay bounded.
    assert accepted < n and busy.buffered_bytes <= 3 * budget

    sock.send_multipart([b'{"proto":"frames/1","type":"end","stream":"cam","series":"s"}', b""])
    frames, refused = [], []
    while True:
        assert sock.poll(20000), "replies stopped"
        header = decode_header(sock.recv_multipart()[0], replies=True)
        if header.type is MessageType.END:
            break
        (frames if header.type is MessageType.FRAME else refused).append(header.index)
    # Every accepted frame answered once, in order. The other messages were refused (server_busy); refusals
    # to a peer that does not read are kept only within the budget, and the rest are counted undeliverable.
    after = service.status().totals
    assert len(frames) == accepted and frames == sorted(frames)
    assert len(set(frames + refused)) == len(frames) + len(refused)
    assert len(frames) + len(refused) + after.undeliverable == n
    assert after.buffered_bytes <= 64 * pixels.nbytes
