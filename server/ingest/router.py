"""The IO thread: sole owner of the ROUTER (frames/1 in, replies out) and PUB (preview) sockets.

Each client message goes through, in order: part count (``bad_parts``) → :func:`decode_header`
(``bad_json``, ``bad_proto``, ``bad_type``, ``bad_field``, ``bad_dtype``, ``bad_shape``,
``header_too_large``) → size limit (``frame_too_large``) → :func:`check_payload` (``payload_size``) →
validation against the stream (``no_start``, ``shape_mismatch``, ``dtype_mismatch``,
``index_not_increasing``, ``too_many_streams``, ``backlog_full``) → append to the series.

A refused message gets one immediate ``error`` reply (stable ``code``, a message naming the problem,
and the stream/series/index echoed when they could be read) and changes nothing. Refused messages were
never accepted, so they take no place in the in-order reply sequence of the accepted frames of their
stream: their error may arrive before replies to frames sent earlier. Only accepted frames get replies
from the worker, in order.

The receive loop never runs inference; worker replies arrive on an inproc PULL socket and are
forwarded to their ROUTER identity and, with the stream id as topic, to PUB (which may drop).

Raw preview: while someone asked for it over the control channel (:meth:`Router.preview_raw`, a lease the
dashboard renews while it watches), accepted frames are also published as they arrived, at most
:data:`RAW_PREVIEW_FPS` per stream, under the topic :data:`RAW_TOPIC_PREFIX` + stream id. The copy is the
client's own two parts, sent without copying and without waiting (PUB drops for a slow subscriber). Cost on this
thread, measured on one core: one attribute test per frame without a lease (~0.06 us); with one, ~0.4 us per
frame plus ~27 us per copy sent (at most 5 a second per stream).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from typing import Any

import zmq

from livedenoise.clients.protocol import (
    MAX_NAME_CHARS,
    UNKNOWN_STREAM,
    ErrorCode,
    Header,
    MessageType,
    ProtocolError,
    array_from_payload,
    check_payload,
    decode_header,
    parse_json,
)
from livedenoise.server.ingest.auth import peer_key
from livedenoise.server.ingest.replies import error_reply
from livedenoise.server.ingest.streams import StreamTable

__all__ = ["Router"]

logger = logging.getLogger(__name__)

POLL_MS = 50
# Replies forwarded per loop turn before the ROUTER is polled again, so neither side starves.
FORWARD_BURST = 256
# How often open series are checked for the idle timeout.
EXPIRE_EVERY_S = 1.0
UNDELIVERABLE_LOG_EVERY_S = 5.0
#: Raw preview copies per second per stream, at most (a preview, not a recording).
RAW_PREVIEW_FPS = 5.0
#: Topic prefix of raw preview copies: byte 0xFF never occurs in UTF-8, so no stream id's topic starts with it
#: and a viewer subscribed to a stream never receives them.
RAW_TOPIC_PREFIX = b"\xffraw:"
#: Longest raw preview lease one request grants.
MAX_RAW_PREVIEW_S = 60.0

Message = list[Any]  # [identity, header, payload]: bytes, memoryview or zmq.Frame parts


def _nbytes(part: Any) -> int:
    if isinstance(part, zmq.Frame):
        return int(part.buffer.nbytes)
    return memoryview(part).nbytes


class Router:
    """Receive, validate and accept client messages; forward worker replies.

    Parameters
    ----------
    table
        The shared stream table.
    frontend
        Bound ROUTER socket (created by the service, used only by this thread once started).
    pub
        Bound PUB socket.
    replies
        Bound inproc PULL socket the worker pushes ``[identity, stream, header, payload]`` to.
    authenticated
        The ROUTER is a CURVE server: series are owned by their peer's public key.
    """

    def __init__(
        self, table: StreamTable, frontend: zmq.Socket[Any], pub: zmq.Socket[Any], replies: zmq.Socket[Any],
        *, authenticated: bool = False, instance: str | None = None,
    ) -> None:  # fmt: skip
        self.table = table
        self.instance = instance
        self.authenticated = authenticated  # CURVE: each message carries its peer's public key
        self.frontend = frontend
        self.pub = pub
        self.replies = replies
        self._pause = threading.Event()
        self._paused = threading.Event()  # set by the loop once it no longer reads client messages
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="ingest-router", daemon=True)
        # Replies waiting for peers whose pipe is full (they do not read), in order, per peer.
        self._parked: dict[bytes, deque[tuple[Message, int]]] = {}
        self._next_expiry = 0.0
        self._unlogged = 0
        self._last_undeliverable_log = -UNDELIVERABLE_LOG_EVERY_S
        # Raw preview lease: a monotonic deadline written by the control thread (a float store, atomic), read
        # here; and when each stream's last copy went out.
        self._raw_until = 0.0
        self._raw_sent: dict[str, float] = {}

    def start(self) -> None:
        self._thread.start()

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def pause_input(self, timeout_s: float = 5.0) -> None:
        """Stop reading client messages (shutdown); replies keep flowing.

        Returns once the loop has finished the message it was handling, so that nothing is accepted
        after this call (a series closed right after it cannot receive another frame).
        """
        self._pause.set()
        if self._thread.is_alive():
            self._paused.wait(timeout_s)

    def preview_raw(self, seconds: float) -> float:
        """Publish decimated raw copies of accepted frames for the next ``seconds`` (at most
        :data:`MAX_RAW_PREVIEW_S`; 0 stops); returns the lease granted. Safe from any thread."""
        seconds = min(max(float(seconds), 0.0), MAX_RAW_PREVIEW_S)
        self._raw_until = time.monotonic() + seconds if seconds > 0 else 0.0
        return seconds

    def stop(self, timeout_s: float = 5.0) -> None:
        """Forward what the worker already pushed, then close the sockets."""
        self._stop.set()
        self._thread.join(timeout_s)

    # -- loop --------------------------------------------------------------------------------------------
    def _run(self) -> None:
        poller = zmq.Poller()
        poller.register(self.replies, zmq.POLLIN)
        input_registered = False
        try:
            while True:
                if self._pause.is_set():
                    if input_registered:
                        poller.unregister(self.frontend)
                        input_registered = False
                    self._paused.set()
                elif not input_registered:
                    poller.register(self.frontend, zmq.POLLIN)
                    input_registered = True
                events = dict(poller.poll(POLL_MS))
                if self._parked:
                    self._retry_parked()
                if self.replies in events:
                    self._forward(FORWARD_BURST)
                if self.frontend in events:
                    self._receive()
                self._expire_idle()
                if self._stop.is_set() and not events:
                    self._forward(None)
                    if self._parked:
                        logger.warning("closing with replies for %d peers that did not read them", len(self._parked))
                    return
        except Exception:
            logger.exception("ingest router crashed")
            raise
        finally:
            for sock in (self.frontend, self.pub, self.replies):
                sock.close(linger=1000)

    def _forward(self, limit: int | None) -> None:
        n = 0
        while limit is None or n < limit:
            try:
                identity, stream, header, payload = self.replies.recv_multipart(zmq.NOBLOCK, copy=False)
            except zmq.Again:
                return
            self._deliver([identity, header, payload])
            try:
                self.pub.send_multipart([stream, header, payload], zmq.NOBLOCK, copy=False)
            except zmq.Again:  # preview is lossy by design
                pass
            n += 1

    # -- delivery to peers (ROUTER_MANDATORY: an unroutable or full peer is an error, never a silent drop) --
    def _deliver(self, message: Message, *, refusal: bool = False) -> None:
        """Send a reply, or park it behind the peer's earlier ones while the peer does not read.

        Replies to accepted frames are always parked: there is at most one per accepted frame, and frames
        are accepted only within ``max_buffered_bytes`` (parked bytes included), so they are bounded.
        Refusals can be provoked without limit by a peer that sends and never reads: they are parked only
        while the parked bytes are within the budget, then dropped and counted ``undeliverable``.
        """
        identity = bytes(message[0].bytes if isinstance(message[0], zmq.Frame) else message[0])
        if identity in self._parked:  # keep the peer's order: behind what already waits
            self._park(identity, message, refusal)
            return
        try:
            self.frontend.send_multipart(message, zmq.NOBLOCK, copy=False)
        except zmq.Again:  # the peer's pipe is at its high-water mark: it is not reading
            self._park(identity, message, refusal)
        except zmq.ZMQError as exc:  # EHOSTUNREACH: the peer disconnected (a reconnect has a new identity)
            self._undeliverable(1, exc)

    def _park(self, identity: bytes, message: Message, refusal: bool) -> None:
        size = sum(_nbytes(part) for part in message)
        with self.table.cond:
            drop = refusal and self.table.parked_bytes + size > self.table.settings.max_buffered_bytes
            if not drop:
                self.table.parked_bytes += size
        if drop:
            self._undeliverable(1, "a refusal to a peer that does not read, past the memory budget")
            return
        self._parked.setdefault(identity, deque()).append((message, size))

    def _retry_parked(self) -> None:
        for identity in list(self._parked):
            queue = self._parked[identity]
            sent = 0
            while queue:
                message, size = queue[0]
                try:
                    self.frontend.send_multipart(message, zmq.NOBLOCK, copy=False)
                except zmq.Again:
                    break
                except zmq.ZMQError as exc:
                    dropped = sum(s for _, s in queue)
                    self._undeliverable(len(queue), exc)
                    sent += dropped
                    queue.clear()
                    break
                queue.popleft()
                sent += size
            with self.table.cond:
                self.table.parked_bytes -= sent
            if not queue:
                del self._parked[identity]

    def _undeliverable(self, count: int, why: object) -> None:
        with self.table.cond:
            self.table.totals.inc("undeliverable", count)
        # Counted always, logged at most every few seconds: a vanished peer can be owed thousands of replies.
        self._unlogged += count
        now = time.monotonic()
        if now - self._last_undeliverable_log >= UNDELIVERABLE_LOG_EVERY_S:
            logger.warning(
                "%d repl%s could not be delivered (last: %s)",
                self._unlogged,
                "y" if self._unlogged == 1 else "ies",
                why,
            )
            self._unlogged, self._last_undeliverable_log = 0, now

    def _expire_idle(self) -> None:
        now = time.monotonic()
        if now >= self._next_expiry:
            self._next_expiry = now + EXPIRE_EVERY_S
            expired = self.table.expire_idle(now)
            if expired:
                logger.info("closed %d idle series (series_idle_timeout_s)", expired)
            if self._raw_sent and now >= self._raw_until:
                self._raw_sent.clear()  # the lease ended: forget the streams it saw

    def _receive(self) -> None:
        for _ in range(FORWARD_BURST):
            if self._pause.is_set():
                return
            try:
                frames = self.frontend.recv_multipart(zmq.NOBLOCK, copy=False)
            except zmq.Again:
                return
            # Zero-copy: the payload's memory is ZeroMQ's, viewed by the window's arrays while they need it.
            parts: list[Any] = [frame.buffer for frame in frames[1:]]
            peer = peer_key(frames[1]) if self.authenticated and len(frames) > 1 else None
            self._handle(frames[0].bytes, parts, peer)

    # -- one client message ------------------------------------------------------------------------------
    def _handle(self, identity: bytes, parts: list[Any], peer: str | None = None) -> None:
        header: Header | None = None
        try:
            if len(parts) != 2:
                raise ProtocolError(
                    ErrorCode.BAD_PARTS, f"a frames/1 message has 2 parts [header, payload]; got {len(parts)}"
                )
            header = decode_header(parts[0])
            payload = parts[1]
            if header.type is MessageType.FRAME:
                self.table.check_size(header)
            check_payload(header, len(payload))
            if header.type is MessageType.START:
                self.table.start(identity, header, peer)
            elif header.type is MessageType.FRAME:
                self.table.frame(header, array_from_payload(header, payload), identity)
                if self._raw_until:
                    self._publish_raw(header.stream, parts)
            else:
                self.table.end(header, identity)
        except ProtocolError as exc:  # a broken message, or one the stream table refuses (FrameRejected)
            self._refuse(identity, parts, header, exc.code, exc.message)
        except Exception as exc:  # a bug must cost one message an `internal` refusal, never the thread
            logger.exception(
                "internal error on a message from stream %.128r", header.stream if header else UNKNOWN_STREAM
            )
            self._refuse(identity, parts, header, ErrorCode.INTERNAL, f"internal error, message not accepted: {exc!r}")

    def _publish_raw(self, stream: str, parts: list[Any]) -> None:
        """A raw preview copy of an accepted frame, while the lease lasts and at most RAW_PREVIEW_FPS per stream."""
        now = time.monotonic()
        if now >= self._raw_until or now - self._raw_sent.get(stream, -1.0e9) < 1.0 / RAW_PREVIEW_FPS:
            return
        self._raw_sent[stream] = now
        try:
            self.pub.send_multipart([RAW_TOPIC_PREFIX + stream.encode(), *parts], zmq.NOBLOCK, copy=False)
        except zmq.Again:  # lossy by design, like every PUB message
            pass
        except Exception:  # the frame is accepted already: a failed preview copy must never refuse it
            logger.debug("raw preview copy of stream %.128r not sent", stream, exc_info=True)

    def _refuse(self, identity: bytes, parts: list[Any], header: Header | None, code: ErrorCode, message: str) -> None:
        try:
            self._send_refusal(identity, parts, header, code, message)
        except Exception:  # the peer gets no answer to this one message; the thread lives on
            logger.exception("could not send a %s refusal", code)

    def _send_refusal(
        self, identity: bytes, parts: list[Any], header: Header | None, code: ErrorCode, message: str
    ) -> None:
        echo = _echo(header, parts)
        stream = echo.get("stream") or UNKNOWN_STREAM
        logger.debug("refused message from stream %s: %s %s", stream, code, message)
        self.table.record_rejection(echo.get("stream"), code)
        reply = error_reply(
            identity, code, message, stream=stream, series=echo.get("series", ""),
            index=echo.get("index"), t_ns=echo.get("t_ns"), meta=echo.get("meta"), instance=self.instance,
        )  # fmt: skip
        identity_part, stream_part, header_part, payload = reply
        self._deliver([identity_part, header_part, payload], refusal=True)
        try:
            self.pub.send_multipart([stream_part, header_part, payload], zmq.NOBLOCK)
        except zmq.Again:
            pass


def _echo(header: Header | None, parts: list[Any]) -> dict[str, Any]:
    """Stream, series, index, t_ns and meta of a refused message, as far as they can be read."""
    if header is not None:  # decoded, so every field is within its bounds
        return {
            "stream": header.stream,
            "series": header.series,
            "index": header.index,
            "t_ns": header.t_ns,
            "meta": header.meta,
        }
    if not parts:
        return {}
    try:
        obj = parse_json(parts[0], "header")
    except ProtocolError:
        return {}
    if not isinstance(obj, dict):
        return {}
    echo: dict[str, Any] = {}  # what could be read of an undecodable header; never its meta (unbounded)
    if isinstance(obj.get("stream"), str) and 0 < len(obj["stream"]) <= MAX_NAME_CHARS:
        echo["stream"] = obj["stream"]
    if isinstance(obj.get("series"), str) and len(obj["series"]) <= MAX_NAME_CHARS:
        echo["series"] = obj["series"]
    for key in ("index", "t_ns"):
        if isinstance(obj.get(key), int) and not isinstance(obj.get(key), bool) and obj[key] >= 0:
            echo[key] = obj[key]
    return echo
