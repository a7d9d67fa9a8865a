"""A small `frames/1` ROUTER server on 127.0.0.1 that imitates the ingest process, with injectable faults.

It validates with the real protocol module, holds ``lag`` frames per stream like a model that needs
future frames, "denoises" as ``2 * x + 1`` in float32, flushes on ``end`` (then replies ``end``) and
on a new ``start``, and records what it saw so tests can check the client's behaviour from outside.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pytest
import zmq

from livedenoise.clients.protocol import (
    ErrorCode,
    Header,
    MessageType,
    ProtocolError,
    array_from_payload,
    check_payload,
    control_message,
    decode_header,
    frame_message,
)


@dataclass
class Faults:
    """What the imitation should do wrong (or refuse) on purpose."""

    swap: tuple[int, int] | None = None  # reply to these two indices in swapped order
    drop_reply: int | None = None  # never reply to this index
    duplicate: int | None = None  # reply twice to this index
    silent: bool = False  # read everything, reply nothing
    reject: dict[int, str] = field(default_factory=dict)  # index -> code: refuse at once, out of order
    fail: dict[int, str] = field(default_factory=dict)  # index -> code: accepted, then an in-order error
    skip: set[int] = field(default_factory=set)  # indices answered `skipped` (live back-pressure)
    reject_start: str | None = None  # code for refusing every start
    delay_s: float = 0.0  # sleep before each in-order reply (a slow engine)


@dataclass
class Observed:
    frames: list[tuple[str, int]] = field(default_factory=list)  # (series, index) received
    starts: list[Header] = field(default_factory=list)
    max_backlog: int = 0  # most frames received and not yet answered at any moment


class FakeIngest:
    def __init__(self, ctx: zmq.Context[Any], lag: int, faults: Faults) -> None:
        self.lag = lag
        self.faults = faults
        self.seen = Observed()
        self.sock = ctx.socket(zmq.ROUTER)
        self.sock.setsockopt(zmq.LINGER, 0)
        port = self.sock.bind_to_random_port("tcp://127.0.0.1")
        self.endpoint = f"tcp://127.0.0.1:{port}"
        self._stop = threading.Event()
        self._held: dict[bytes, list[tuple[Header, np.ndarray]]] = {}
        self._series: dict[bytes, Header] = {}
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self.sock.close(linger=0)

    # -- sending
    def _send(self, ident: bytes, parts: list[Any]) -> None:
        self.sock.send_multipart([ident, *parts])

    def _error(self, ident: bytes, header: Header, code: str, message: str) -> None:
        reply = Header(
            type=MessageType.ERROR,
            stream=header.stream,
            series=header.series,
            index=header.index,
            code=code,
            message=message,
        )
        self._send(ident, control_message(reply))

    def _answer(self, ident: bytes, header: Header, frame: np.ndarray, again: bool = True) -> None:
        f = self.faults
        if f.delay_s:
            time.sleep(f.delay_s)
        index = header.index
        assert index is not None
        if index == f.drop_reply:
            return
        if index in f.fail:
            self._error(ident, header, f.fail[index], f"engine failed on frame {index}")
        elif index in f.skip:
            self._send(
                ident,
                control_message(replace(header, type=MessageType.SKIPPED, reason="backlog", dtype=None, shape=None)),
            )
        else:
            out = (2.0 * frame.astype(np.float32) + 1.0).astype("<f4")
            self._send(ident, frame_message(replace(header, type=MessageType.FRAME, model="fake", latency_ms=1.5), out))
        if index == f.duplicate and again:
            self._answer(ident, header, frame, again=False)

    def _flush(self, ident: bytes, keep: int) -> None:
        held = self._held.setdefault(ident, [])
        while len(held) > keep:
            if self.faults.swap and len(held) >= 2 and held[0][0].index == self.faults.swap[0]:
                held[0], held[1] = held[1], held[0]
            header, frame = held.pop(0)
            self._answer(ident, header, frame)

    # -- receiving
    def _handle(self, ident: bytes, raw: bytes, payload: bytes) -> None:
        try:
            header = decode_header(raw)
            check_payload(header, len(payload))
        except ProtocolError as exc:
            self._send(
                ident,
                control_message(Header(type=MessageType.ERROR, stream="?", code=exc.code.value, message=str(exc))),
            )
            return
        f = self.faults
        if header.type is MessageType.START:
            self.seen.starts.append(header)
            if f.reject_start:
                self._error(ident, header, f.reject_start, "refused")
                return
            self._flush(ident, 0)
            self._series[ident] = header
            return
        started = self._series.get(ident)
        if started is None or started.series != header.series:
            self._error(ident, header, ErrorCode.NO_START.value, f"series {header.series!r} was never started")
            return
        if header.type is MessageType.END:
            self._flush(ident, 0)
            del self._series[ident]
            self._send(ident, control_message(Header(type=MessageType.END, stream=header.stream, series=header.series)))
            return
        self.seen.frames.append((header.series, header.index or 0))
        if header.index in f.reject:
            self._error(ident, header, f.reject[header.index], f"frame {header.index} refused")
            return
        frame = array_from_payload(header, payload).copy()
        self._held.setdefault(ident, []).append((header, frame))
        self.seen.max_backlog = max(self.seen.max_backlog, sum(len(v) for v in self._held.values()))

    def _run(self) -> None:
        while not self._stop.is_set():
            if not self.sock.poll(20):
                continue
            # Read everything already queued before answering, so the backlog we record is what
            # the client really had in flight.
            while self.sock.poll(0):
                ident, raw, payload = self.sock.recv_multipart()
                self._handle(ident, raw, payload)
            if self.faults.silent:
                continue
            for ident in list(self._held):
                self._flush(ident, self.lag)


@pytest.fixture
def fake_ingest() -> Iterator[Callable[..., FakeIngest]]:
    """``fake_ingest(lag=0, **faults)`` starts an imitation ingest server and returns it."""
    servers: list[FakeIngest] = []
    ctx = zmq.Context.instance()

    def make(lag: int = 0, **faults: Any) -> FakeIngest:
        server = FakeIngest(ctx, lag, Faults(**faults))
        servers.append(server)
        return server

    yield make
    for server in servers:
        server.close()
