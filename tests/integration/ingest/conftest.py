"""Fixtures for ingest integration tests: real ZeroMQ on 127.0.0.1, real ONNX Runtime, a private sender."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import zmq

from livedenoise.clients.protocol import Header, MessageType, control_message, decode_header, frame_message
from livedenoise.server.ingest.service import IngestService
from livedenoise.server.settings import ServerSettings


class Reply:
    """A decoded reply: header plus the float32 frame (None for replies without pixels)."""

    def __init__(self, parts: list[bytes]) -> None:
        assert len(parts) == 2, f"a reply has 2 parts, got {len(parts)}"
        self.raw_header, self.raw_payload = parts
        self.header = decode_header(parts[0], replies=True)
        self.frame: np.ndarray | None = None
        if self.header.type is MessageType.FRAME:
            assert self.header.dtype == "<f4" and self.header.shape is not None
            self.frame = np.frombuffer(parts[1], dtype="<f4").reshape(self.header.shape)
        else:
            assert parts[1] == b""

    @property
    def type(self) -> str:
        return self.header.type.value

    def __repr__(self) -> str:
        h = self.header
        return f"Reply({h.type.value} {h.stream}/{h.series}#{h.index} {h.code or h.reason or h.model or ''})"


class Sender:
    """Minimal frames/1 sender on a DEALER socket (the public StreamClient is tested elsewhere)."""

    def __init__(self, endpoint: str, context: zmq.Context[Any], curve: Any = None) -> None:
        self.sock = context.socket(zmq.DEALER)
        self.sock.setsockopt(zmq.LINGER, 0)
        if curve is not None:  # ClientKeys
            curve.apply(self.sock)
        self.sock.connect(endpoint)

    def start(self, stream: str, series: str, shape: tuple[int, int], dtype: str, **meta: Any) -> None:
        header = Header(type=MessageType.START, stream=stream, series=series, shape=shape, dtype=dtype, meta=meta)
        self.sock.send_multipart(control_message(header))

    def frame(self, stream: str, series: str, index: int, pixels: np.ndarray, **meta: Any) -> None:
        header = Header(type=MessageType.FRAME, stream=stream, series=series, index=index, t_ns=1000 * index, meta=meta)
        self.sock.send_multipart(frame_message(header, pixels))

    def end(self, stream: str, series: str, **meta: Any) -> None:
        self.sock.send_multipart(control_message(Header(type=MessageType.END, stream=stream, series=series, meta=meta)))

    def raw(self, parts: list[bytes]) -> None:
        self.sock.send_multipart(parts)

    def recv(self, timeout_s: float = 10.0) -> Reply:
        if not self.sock.poll(int(timeout_s * 1000)):
            raise TimeoutError(f"no reply within {timeout_s} s")
        return Reply(self.sock.recv_multipart())

    def until_end(self, stream: str, series: str, timeout_s: float = 20.0) -> list[Reply]:
        """Every reply up to and including the ``end`` reply of ``stream``/``series``."""
        out: list[Reply] = []
        deadline = time.monotonic() + timeout_s
        while True:
            reply = self.recv(max(0.01, deadline - time.monotonic()))
            out.append(reply)
            if reply.type == "end" and reply.header.stream == stream and reply.header.series == series:
                return out

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def zmq_context() -> Iterator[zmq.Context[Any]]:
    ctx: zmq.Context[Any] = zmq.Context()
    yield ctx
    ctx.term()


@pytest.fixture
def settings(tmp_path: Path) -> ServerSettings:
    return ServerSettings(home=tmp_path / "home", zmq_port=0, pub_port=0, control_port=0, intra_op_threads=1)


@pytest.fixture
def make_sender(zmq_context: zmq.Context[Any]) -> Iterator[Callable[..., Sender]]:
    senders: list[Sender] = []

    def make(endpoint: str, curve: Any = None) -> Sender:
        senders.append(Sender(endpoint, zmq_context, curve))
        return senders[-1]

    yield make
    for s in senders:
        s.close()


@pytest.fixture
def run_service() -> Iterator[Callable[..., IngestService]]:
    """Start an IngestService; stopped at teardown."""
    services: list[IngestService] = []

    def run(*args: Any, **kwargs: Any) -> IngestService:
        service = IngestService(*args, **kwargs)
        service.start()
        services.append(service)
        return service

    yield run
    for service in services:
        service.stop()


def wait_for(predicate: Callable[[], bool], timeout_s: float = 10.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out waiting for {what}")
        time.sleep(0.005)


@pytest.fixture
def wait() -> Callable[..., None]:
    return wait_for


class GatedEngine:
    """A real engine whose calls wait for ``gate`` and take ``delay_s``: a slow camera-side GPU, on demand."""

    def __init__(self, inner: Any, delay_s: float = 0.0) -> None:
        self.inner = inner
        self.spec = inner.spec
        self.model_id = inner.model_id
        self.provider = inner.provider
        self.gate = threading.Event()
        self.delay_s = delay_s
        self.calls = 0

    def infer(self, windows: np.ndarray) -> np.ndarray:
        self.calls += 1
        self.gate.wait(30)
        time.sleep(self.delay_s)
        out: np.ndarray = self.inner.infer(windows)
        return out

    def close(self) -> None:
        self.inner.close()


@pytest.fixture
def gated_engine_cls() -> type[GatedEngine]:
    return GatedEngine
