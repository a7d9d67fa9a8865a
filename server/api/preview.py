"""Live preview for the dashboard, read from the ingest's PUB side only: never from the frame path.

:class:`PreviewHub` runs one thread in the control plane with a SUB socket on the ingest's PUB port. It
subscribes only while someone looks (a stream is *watched* for ``watch_s`` after its preview was last asked for,
at most :data:`MAX_WATCHED` streams) and then, every ``renew_s``, renews a raw-preview lease with the ingest
process (control command ``preview``: decimated raw copies of accepted frames on PUB, see
:mod:`livedenoise.server.ingest.router`). The reply also names the PUB endpoint, the ingest instance (a restart
means reconnecting) and whether PUB takes CURVE keys: the control plane then connects with the server's own key
pair, which the ingest allows.

It keeps, per watched stream, the latest raw copy, the latest denoised reply, a few raw copies waiting for their
reply, and the latest *pair* (raw and denoised of one frame). Payloads stay in ZeroMQ's buffers (no copy); they
are decoded and encoded (PNG) only when a preview is asked for. PUB drops for a slow subscriber and the SUB queue
is short, so a stalled control plane costs ingest nothing but dropped preview messages.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

import zmq
from numpy.typing import NDArray

from livedenoise.clients.keys import load_key_pair
from livedenoise.clients.protocol import (
    Header,
    MessageType,
    ProtocolError,
    array_from_payload,
    check_payload,
    decode_header,
)
from livedenoise.server.errors import LiveDenoiseError
from livedenoise.server.ingest.control import IngestControlClient
from livedenoise.server.ingest.router import RAW_TOPIC_PREFIX
from livedenoise.server.settings import ServerSettings

__all__ = ["MAX_WATCHED", "PreviewFrame", "PreviewHub", "PreviewSnapshot", "connectable"]

logger = logging.getLogger(__name__)

#: Streams watched at once (each costs ingest one subscription's worth of PUB traffic).
MAX_WATCHED = 4
#: Raw copies held per stream while they wait for their denoised reply (the model's latency, at the raw rate).
PENDING_RAW = 64
PENDING_RAW_BYTES = 64 * 1024**2
#: A pair older than the latest denoised frame by more than this is stale: show the latest frames instead.
PAIR_FRESH_S = 2.0
POLL_MS = 100
DRAIN_BURST = 256
SUB_RCVHWM = 32


@dataclass(frozen=True)
class PreviewFrame:
    """One published frame: its header (validated) and pixels (ZeroMQ's buffer, not copied).

    ``renders`` keeps what was made of it for the page (PNGs by size and range), so a page polling faster than
    the frames change costs no new encoding.
    """

    header: Header
    payload: memoryview
    received: float  # monotonic
    renders: dict[tuple[Any, ...], Any] = field(default_factory=dict, compare=False, repr=False)

    def array(self) -> NDArray[Any]:
        return array_from_payload(self.header, self.payload)


@dataclass(frozen=True)
class PreviewSnapshot:
    """What a preview shows: ``paired`` when raw and denoised are the same frame (same series and index)."""

    stream: str
    raw: PreviewFrame | None
    denoised: PreviewFrame | None
    paired: bool


@dataclass
class _StreamPreview:
    watched_until: float
    raw: PreviewFrame | None = None
    denoised: PreviewFrame | None = None
    pair: tuple[PreviewFrame, PreviewFrame] | None = None
    pending: OrderedDict[tuple[str, int], PreviewFrame] = field(default_factory=OrderedDict)
    pending_bytes: int = 0

    def take_raw(self, frame: PreviewFrame) -> None:
        self.raw = frame
        key = (frame.header.series, frame.header.index or 0)
        self.pending[key] = frame
        self.pending_bytes += frame.payload.nbytes
        while self.pending and (len(self.pending) > PENDING_RAW or self.pending_bytes > PENDING_RAW_BYTES):
            _, dropped = self.pending.popitem(last=False)
            self.pending_bytes -= dropped.payload.nbytes

    def take_denoised(self, frame: PreviewFrame) -> None:
        self.denoised = frame
        key = (frame.header.series, frame.header.index or 0)
        raw = self.pending.get(key)
        if raw is not None:
            self.pair = (raw, frame)
            self.forget_until(key)

    def forget_until(self, key: tuple[str, int]) -> None:
        """Replies come in index order: raw copies of ``key``'s series up to its index will not be answered again."""
        while self.pending:
            first = next(iter(self.pending))
            if first[0] != key[0] or first[1] > key[1]:
                return
            _, dropped = self.pending.popitem(last=False)
            self.pending_bytes -= dropped.payload.nbytes


def connectable(endpoint: str) -> str:
    """A bound endpoint as a local peer connects to it (a wildcard address becomes loopback)."""
    scheme, sep, rest = endpoint.partition("://")
    host, colon, port = rest.rpartition(":")
    if not sep or not colon:
        return endpoint
    if host in ("0.0.0.0", "*"):
        host = "127.0.0.1"
    elif host in ("[::]", "::", "[*]"):
        host = "[::1]"
    return f"{scheme}://{host}:{port}"


class PreviewHub:
    """The control plane's view of the PUB port: the latest raw and denoised frames of the watched streams.

    Parameters
    ----------
    ingest
        The ingest control client (the supervisor re-points it after a restart).
    settings
        For the server's CURVE key pair, when PUB takes keys.
    watch_s
        A stream stays watched this long after :meth:`snapshot` asked for it.
    lease_s, renew_s
        The raw-preview lease asked of the ingest process, and how often it is renewed while anything is watched.
    """

    def __init__(
        self,
        ingest: IngestControlClient,
        settings: ServerSettings,
        *,
        watch_s: float = 15.0,
        lease_s: float = 10.0,
        renew_s: float = 3.0,
    ) -> None:
        if not 0 < renew_s < lease_s:
            raise ValueError(f"need 0 < renew_s < lease_s, got renew_s={renew_s}, lease_s={lease_s}")
        self.ingest = ingest
        self.settings = settings
        self.watch_s = watch_s
        self.lease_s = lease_s
        self.renew_s = renew_s
        self._streams: dict[str, _StreamPreview] = {}
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.instance: str | None = None  # the ingest instance the SUB socket is connected to

    # -- what the routes call ----------------------------------------------------------------------------
    def snapshot(self, stream: str) -> PreviewSnapshot:
        """The preview of ``stream`` (empty until frames arrive); starts or extends watching it."""
        now = time.monotonic()
        with self._lock:
            state = self._streams.get(stream)
            if state is None:
                self._evict_for_one(now)
                state = self._streams[stream] = _StreamPreview(watched_until=now + self.watch_s)
                self._wake.set()
            state.watched_until = now + self.watch_s
            pair = state.pair
            if pair is not None and (
                state.denoised is None or pair[1].received >= state.denoised.received - PAIR_FRESH_S
            ):
                return PreviewSnapshot(stream, pair[0], pair[1], paired=True)
            return PreviewSnapshot(stream, state.raw, state.denoised, paired=False)

    def _evict_for_one(self, now: float) -> None:
        """Make room for one more watched stream: drop expired ones, then the one asked for least recently."""
        for name in [n for n, s in self._streams.items() if s.watched_until <= now]:
            del self._streams[name]
        while len(self._streams) >= MAX_WATCHED:
            oldest = min(self._streams, key=lambda n: self._streams[n].watched_until)
            del self._streams[oldest]

    def watched(self) -> list[str]:
        now = time.monotonic()
        with self._lock:
            return [name for name, s in self._streams.items() if s.watched_until > now]

    # -- lifecycle ---------------------------------------------------------------------------------------
    def start(self) -> None:
        if self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="preview-hub", daemon=True)
        self._thread.start()

    def stop(self, timeout_s: float = 5.0) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout_s)
            self._thread = None

    # -- the SUB thread ----------------------------------------------------------------------------------
    def _run(self) -> None:
        ctx: zmq.Context[Any] = zmq.Context()
        sock: zmq.Socket[Any] | None = None
        subscribed: set[str] = set()
        next_renew = 0.0
        try:
            while not self._stop.is_set():
                watched = set(self.watched())
                if not watched:
                    if sock is not None:  # nobody looks: no subscription, no lease (it runs out by itself)
                        sock.close(linger=0)
                        sock, subscribed, self.instance, next_renew = None, set(), None, 0.0
                    self._wake.wait(1.0)
                    self._wake.clear()
                    continue
                now = time.monotonic()
                if now >= next_renew:
                    next_renew = now + self.renew_s
                    reply = self._renew()
                    if reply is not None and reply.get("instance") != self.instance:
                        if sock is not None:
                            sock.close(linger=0)
                        sock, subscribed = self._connect(ctx, reply), set()
                        self.instance = str(reply.get("instance")) if sock is not None else None
                if sock is None:
                    self._stop.wait(0.5)
                    continue
                for name in watched - subscribed:
                    for topic in (name.encode(), RAW_TOPIC_PREFIX + name.encode()):
                        sock.setsockopt(zmq.SUBSCRIBE, topic)
                for name in subscribed - watched:
                    for topic in (name.encode(), RAW_TOPIC_PREFIX + name.encode()):
                        sock.setsockopt(zmq.UNSUBSCRIBE, topic)
                subscribed = watched
                if sock.poll(POLL_MS):
                    self._drain(sock)
        except Exception:
            logger.exception("the preview thread stopped")
        finally:
            if sock is not None:
                sock.close(linger=0)
            ctx.term()

    def _renew(self) -> dict[str, Any] | None:
        try:
            return self.ingest.preview(self.lease_s, timeout_s=1.0)
        except LiveDenoiseError as exc:  # down, restarting or busy loading a model: try again at the next renewal
            logger.debug("preview lease not renewed: %s", exc.message)
            return None

    def _connect(self, ctx: zmq.Context[Any], reply: dict[str, Any]) -> zmq.Socket[Any] | None:
        endpoint = connectable(str(reply.get("pub", "")))
        sock: zmq.Socket[Any] = ctx.socket(zmq.SUB)
        sock.setsockopt(zmq.LINGER, 0)
        sock.setsockopt(zmq.RCVHWM, SUB_RCVHWM)
        if endpoint.startswith("tcp://["):
            sock.setsockopt(zmq.IPV6, 1)
        try:
            if reply.get("authentication") == "curve":
                keys = load_key_pair(self.settings.resolved_curve_secret_key)
                sock.curve_serverkey = keys.public
                sock.curve_publickey = keys.public
                sock.curve_secretkey = keys.secret
            sock.connect(endpoint)
        except (OSError, ValueError, zmq.ZMQError) as exc:
            logger.warning("the dashboard preview cannot watch %s: %s", endpoint, exc)
            sock.close(linger=0)
            return None
        logger.info("dashboard preview watching %s", endpoint)
        return sock

    def _drain(self, sock: zmq.Socket[Any]) -> None:
        for _ in range(DRAIN_BURST):
            try:
                parts = sock.recv_multipart(zmq.NOBLOCK, copy=False)
            except zmq.Again:
                return
            if len(parts) == 3:
                self._take(parts[0].bytes, parts[1].bytes, parts[2].buffer)

    def _take(self, topic: bytes, raw_header: bytes, payload: memoryview) -> None:
        is_raw = topic.startswith(RAW_TOPIC_PREFIX)
        try:
            stream = (topic[len(RAW_TOPIC_PREFIX) :] if is_raw else topic).decode()
            header = decode_header(raw_header, replies=True)
            if header.stream != stream:
                return
            if header.type is MessageType.FRAME:
                check_payload(header, len(payload))
        except (UnicodeDecodeError, ProtocolError):
            return
        with self._lock:
            state = self._streams.get(stream)  # topics are prefixes: `cam1` also brings `cam10`, not watched
            if state is None:
                return
            if header.type is not MessageType.FRAME:  # a skipped or failed frame: its raw copy will not pair
                if header.index is not None:
                    state.forget_until((header.series, header.index))
                return
            frame = PreviewFrame(header, payload, time.monotonic())
            if is_raw:
                state.take_raw(frame)
            else:
                state.take_denoised(frame)
