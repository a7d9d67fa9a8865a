"""Messages that once stopped an ingest thread, and internal errors: each costs at most its own message an
error reply; the threads live on and serving goes on."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pytest
import zmq

from livedenoise.clients.model_spec import WindowSpec
from livedenoise.clients.protocol import MAX_META_BYTES
from livedenoise.server.engine.loader import load_engine
from livedenoise.server.ingest.service import IngestService
from livedenoise.server.settings import ServerSettings

SHAPE = (16, 16)


@pytest.fixture
def model_path(tmp_path: Path, onnx_models: ModuleType) -> Path:
    return onnx_models.make_mix_model(tmp_path / "mix.onnx", WindowSpec(1, 1, 1))


def _frame_header(**fields: Any) -> bytes:
    obj = {
        "proto": "frames/1",
        "type": "frame",
        "stream": "cam",
        "series": "s",
        "index": 0,
        "dtype": "<u2",
        "shape": list(SHAPE),
    }
    obj.update(fields)
    return json.dumps(obj, ensure_ascii=False).encode()


def _assert_serves(sender: Any, stream: str) -> None:
    """A fresh series on ``stream`` is answered frame by frame."""
    frames = np.random.default_rng(0).integers(0, 1000, (5, *SHAPE)).astype(np.uint16)
    sender.start(stream, "check", SHAPE, "<u2")
    for i, frame in enumerate(frames):
        sender.frame(stream, "check", i, frame)
    sender.end(stream, "check")
    replies = sender.until_end(stream, "check")
    assert [(r.type, r.header.index) for r in replies] == [("frame", i) for i in range(5)] + [("end", None)]


def test_one_message_stops_are_refusals_and_the_threads_live_on(
    settings: ServerSettings,
    model_path: Path,
    run_service: Callable[..., IngestService],
    make_sender: Callable[[str], Any],
) -> None:
    service = run_service(settings, model_path, "mix")
    sender = make_sender(service.zmq_endpoint)
    payload = np.zeros(SHAPE, np.uint16).tobytes()

    nested = b"[" * 1500 + b"]" * 1500  # ~3 KB: the JSON decoder recursed past Python's limit
    sender.raw([nested, payload])
    reply = sender.recv()
    assert (reply.header.code, reply.header.stream) == ("bad_json", "?")
    assert "deeply" in (reply.header.message or "")

    sender.raw([_frame_header(stream="ghost", series="x" * 2100), payload])  # the refusal outgrew the header limit
    reply = sender.recv()
    assert (reply.header.code, reply.header.stream) == ("bad_field", "ghost")
    assert "'series'" in (reply.header.message or "") and reply.header.series == ""

    too_much = {"note": "é" * 1600}  # 3,200 bytes of UTF-8: over MAX_META_BYTES, under the 4 KiB header limit
    sender.start("cam", "s", SHAPE, "<u2")
    sender.raw([_frame_header(meta=too_much), payload])
    reply = sender.recv()
    assert (reply.header.code, reply.header.index, reply.header.meta) == ("bad_field", 0, {})
    assert str(MAX_META_BYTES) in (reply.header.message or "")

    # An honest client: 1,500 non-ASCII characters of metadata, escaped as \\uXXXX they made a reply of 9 KB.
    meta = {"note": "é" * 1500, "stage": "ü"}
    for i in range(3):
        sender.frame("cam", "s", i + 1, np.full(SHAPE, i, np.uint16), **meta)
    sender.end("cam", "s")
    replies = sender.until_end("cam", "s")
    assert [(r.type, r.header.index) for r in replies] == [("frame", 1), ("frame", 2), ("frame", 3), ("end", None)]
    assert all(r.header.meta == meta for r in replies[:3])

    assert service.threads() == {"router": True, "worker": True, "control": True}
    _assert_serves(sender, "after")
    assert service.status().totals.rejected_by_code == {"bad_json": 1, "bad_field": 2}


def test_an_internal_error_on_one_message_refuses_only_that_message(
    settings: ServerSettings, model_path: Path, run_service: Callable[..., IngestService], make_sender: Callable[[str], Any],
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    service = run_service(settings, model_path, "mix")
    sender = make_sender(service.zmq_endpoint)
    accept = service.table.frame

    def flaky(header: Any, pixels: Any, identity: bytes) -> None:
        if header.index == 2:
            raise RuntimeError("a bug in validation")
        accept(header, pixels, identity)

    monkeypatch.setattr(service.table, "frame", flaky)
    sender.start("cam", "s", SHAPE, "<u2")
    for i in range(5):
        sender.frame("cam", "s", i, np.full(SHAPE, i, np.uint16))
    sender.end("cam", "s")
    replies = sender.until_end("cam", "s")
    refused = [r for r in replies if r.type == "error"]
    assert [(r.header.code, r.header.index) for r in refused] == [("internal", 2)]
    assert "a bug in validation" in (refused[0].header.message or "")
    assert [r.header.index for r in replies if r.type == "frame"] == [0, 1, 3, 4]
    assert service.threads()["router"]


class ShortEngine:
    """A broken backend: returns one output fewer than the windows it was given."""

    def __init__(self, inner: Any) -> None:
        self.inner, self.spec, self.model_id, self.provider = inner, inner.spec, inner.model_id, inner.provider

    def infer(self, windows: np.ndarray) -> np.ndarray:
        out: np.ndarray = self.inner.infer(windows)
        return out[:-1]

    def close(self) -> None:
        self.inner.close()


def test_a_broken_engine_output_still_gives_every_frame_one_reply(
    settings: ServerSettings,
    model_path: Path,
    run_service: Callable[..., IngestService],
    make_sender: Callable[[str], Any],
) -> None:
    service = run_service(
        settings.model_copy(update={"max_batch": 1}), engine=ShortEngine(load_engine(model_path, "cpu", "mix"))
    )
    sender = make_sender(service.zmq_endpoint)
    sender.start("cam", "s", SHAPE, "<u2")
    for i in range(4):
        sender.frame("cam", "s", i, np.full(SHAPE, i, np.uint16))
    sender.end("cam", "s")
    replies = sender.until_end("cam", "s")
    assert [(r.type, r.header.code, r.header.index) for r in replies[:-1]] == [
        ("error", "internal", i) for i in range(4)
    ]
    assert service.threads()["worker"]
    assert service.status().streams["cam"].errors == 4


def test_the_control_socket_answers_malformed_requests_and_keeps_running(
    settings: ServerSettings, run_service: Callable[..., IngestService], zmq_context: zmq.Context[Any]
) -> None:
    service = run_service(settings)

    def ask(*parts: bytes) -> dict[str, Any]:
        sock = zmq_context.socket(zmq.REQ)
        sock.setsockopt(zmq.LINGER, 0)
        sock.connect(service.control_endpoint)
        try:
            sock.send_multipart(list(parts))
            assert sock.poll(5000), "the control socket did not answer"
            reply: dict[str, Any] = json.loads(sock.recv())
            return reply
        finally:
            sock.close()

    ping = b'{"cmd":"ping","secret":"%s"}' % service.control_secret.encode()
    assert ask(ping, b"second part") == {
        "ok": False, "code": "invalid_request", "message": "a control request is one JSON part; got 2 parts",
    }  # fmt: skip
    assert ask(b"[" * 5000 + b"]" * 5000)["code"] == "invalid_request"
    assert ask(b'{"cmd":"shutdown"}')["code"] == "unauthorized"  # any local user reaches the port: not enough
    pong = ask(ping)
    assert pong["ok"] and pong["threads"] == {"router": True, "worker": True, "control": True}
