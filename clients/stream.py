"""Send a movie through a livedenoise server over `frames/1` (pyzmq DEALER) and check its replies.

The client keeps the server honest: every accepted frame must get exactly one reply (``frame``,
``skipped`` or ``error``), in index order, and a series' ``end`` reply must come after all of them.
Rejections (an ``error`` the server sends at once for a message it refused) take no place in that
order; they are reported separately (:attr:`Reply.rejected`, :attr:`StreamResult.rejections`).

Flow control is credit based: at most ``max_in_flight`` frames without a reply, so a ``lossless``
server is never flooded. ``fps`` paces frames on a monotonic schedule, like a camera.

Replies, the per-series result and the client's errors live in :mod:`livedenoise.clients.stream_result`
and are re-exported here.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections import OrderedDict, deque
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import numpy as np
import zmq
from numpy.typing import NDArray

from livedenoise.clients.keys import ClientKeys
from livedenoise.clients.protocol import (
    ALLOWED_DTYPES,
    UNKNOWN_STREAM,
    Header,
    MessageType,
    ProtocolError,
    StreamMode,
    array_from_payload,
    check_payload,
    control_message,
    decode_header,
    frame_message,
)
from livedenoise.clients.stream_result import (
    ORDERED_ERROR_CODES,
    ProtocolViolation,
    Reply,
    ReplyRecorder,
    ServerRestarted,
    ServerSilent,
    StreamError,
    StreamRejected,
    StreamResult,
)

__all__ = [
    "ORDERED_ERROR_CODES",
    "Reply",
    "StreamResult",
    "StreamClient",
    "StreamError",
    "ProtocolViolation",
    "ServerRestarted",
    "ServerSilent",
    "StreamRejected",
]

logger = logging.getLogger(__name__)


class StreamClient:
    """A `frames/1` sender for one stream (camera), over a ZeroMQ DEALER socket.

    Parameters
    ----------
    endpoint
        The server's ROUTER endpoint, e.g. ``"tcp://127.0.0.1:5555"``.
    stream
        Stream id (1-128 characters); the server keeps one window state per stream.
    context
        A ``zmq.Context`` to share; default the process-wide instance.
    max_in_flight
        Most frames sent without a reply yet; :meth:`send` waits for replies beyond that.
    timeout_s
        How long the client waits for a reply, while frames wait for one, before :class:`ServerSilent`.
    curve
        The server's public key and this client's key pair, for a server with CURVE authentication (any
        server bound beyond loopback): :meth:`ClientKeys.from_files` reads them.
    """

    def __init__(
        self,
        endpoint: str,
        *,
        stream: str = "cam0",
        context: zmq.Context[Any] | None = None,
        max_in_flight: int = 64,
        timeout_s: float = 30.0,
        curve: ClientKeys | None = None,
    ) -> None:
        if not stream or len(stream) > 128:
            raise ValueError(f"stream id must be 1-128 characters, got {stream!r}")
        if max_in_flight < 1:
            raise ValueError(f"max_in_flight must be >= 1, got {max_in_flight}")
        if not timeout_s > 0:
            raise ValueError(f"timeout_s must be > 0, got {timeout_s}")
        self.endpoint = endpoint
        self.stream = stream
        self.max_in_flight = max_in_flight
        self.timeout_s = timeout_s
        self._sock = (context or zmq.Context.instance()).socket(zmq.DEALER)
        self._sock.setsockopt(zmq.LINGER, 0)
        self._sock.setsockopt(zmq.SNDTIMEO, int(timeout_s * 1000))
        if curve is not None:
            curve.apply(self._sock)
        self._sock.connect(endpoint)
        self._series: str | None = None
        self._dtype: str | None = None
        self._shape: tuple[int, ...] | None = None
        self._last_index: int | None = None
        # series -> [(index, send time)] of accepted-so-far frames waiting for their reply, oldest first.
        self._waiting: OrderedDict[str, deque[tuple[int, float]]] = OrderedDict()
        self._ending: set[str] = set()  # series whose `end` was sent and not yet answered
        self._pending: deque[Reply] = deque()  # replies read while send() waited for credit
        self.max_seen_in_flight = 0
        self._instance: str | None = None  # the server instance that answered last

    # ------------------------------------------------------------------ low level

    @property
    def in_flight(self) -> int:
        """Frames sent that have no reply yet (all series of this stream)."""
        return sum(len(q) for q in self._waiting.values())

    @property
    def series(self) -> str | None:
        return self._series

    def start(
        self,
        series: str,
        dtype: str | np.dtype[Any],
        shape: tuple[int, int] | list[int],
        mode: str | None = None,
        meta: dict[str, Any] | None = None,
    ) -> None:
        """Begin a series: frames that follow must have this dtype and ``[y, x]`` shape.

        A new ``start`` makes the server flush the previous series of this stream first. ``mode``
        (``"live"`` or ``"lossless"``) goes in ``meta``; ``None`` leaves the server's default.
        """
        dt = np.dtype(dtype).str
        if dt not in ALLOWED_DTYPES:
            raise ValueError(f"dtype {dt!r} cannot be streamed; use one of {sorted(ALLOWED_DTYPES)}")
        if len(shape) != 2 or not all(int(s) > 0 for s in shape):
            raise ValueError(f"shape must be [y, x] with positive sizes, got {list(shape)}")
        modes = [m.value for m in StreamMode]
        if mode is not None and mode not in modes:
            raise ValueError(f"mode must be one of {modes}, got {mode!r}")
        if not series:
            raise ValueError("series id must be a non-empty string")
        full_meta = dict(meta or {})
        if mode is not None:
            full_meta["mode"] = mode
        header = Header(
            type=MessageType.START,
            stream=self.stream,
            series=series,
            dtype=dt,
            shape=(int(shape[0]), int(shape[1])),
            meta=full_meta,
        )
        self._send_parts(control_message(header))
        if self._series is not None:
            self._ending.add(self._series)  # the server flushes a series that a new start replaces
        self._series = series
        self._dtype, self._shape = dt, header.shape
        self._last_index = None
        self._waiting.setdefault(series, deque())

    def send(
        self, frame: NDArray[Any], index: int, t_ns: int | None = None, meta: dict[str, Any] | None = None
    ) -> None:
        """Send one frame of the current series; waits for replies while ``max_in_flight`` frames wait.

        ``index`` must increase strictly; a gap tells the server the camera dropped frames.
        """
        if self._series is None:
            raise StreamError("send() before start(): start a series first")
        if self._last_index is not None and index <= self._last_index:
            raise ValueError(f"frame index must increase strictly: {index} after {self._last_index}")
        if index < 0:
            raise ValueError(f"frame index must be >= 0, got {index}")
        while self.in_flight >= self.max_in_flight:
            reply = self._receive(self.timeout_s)
            if reply is None:
                raise self._silent(f"waiting for credit to send frame {index}")
            self._pending.append(reply)
        header = Header(
            type=MessageType.FRAME,
            stream=self.stream,
            series=self._series,
            index=index,
            t_ns=time.time_ns() if t_ns is None else t_ns,
            meta=dict(meta or {}),
        )
        frame = np.asarray(frame)
        if frame.dtype.str != self._dtype or frame.shape != self._shape:
            raise ValueError(
                f"frame {index} is {frame.dtype.str} {list(frame.shape)} but series {self._series!r} was started "
                f"as {self._dtype} {list(self._shape or ())}"
            )
        parts = frame_message(header, frame)
        self._send_parts(parts)
        self._last_index = index
        self._waiting[self._series].append((index, time.monotonic()))
        self.max_seen_in_flight = max(self.max_seen_in_flight, self.in_flight)

    def end(self, meta: dict[str, Any] | None = None) -> None:
        """End the current series: the server flushes its last frames, then replies ``end``."""
        if self._series is None:
            raise StreamError("end() before start(): there is no series to end")
        header = Header(type=MessageType.END, stream=self.stream, series=self._series, meta=dict(meta or {}))
        self._send_parts(control_message(header))
        self._ending.add(self._series)
        self._series = None
        self._last_index = None

    def recv(self, timeout: float | None = None) -> Reply | None:
        """Next reply (checked for order), or ``None`` when none arrives within ``timeout`` seconds.

        ``timeout=None`` waits up to the client's ``timeout_s``.
        """
        if self._pending:
            return self._pending.popleft()
        return self._receive(self.timeout_s if timeout is None else timeout)

    def replies(self, timeout: float | None = None) -> Iterator[Reply]:
        """Yield replies until none arrives within ``timeout`` seconds."""
        while (reply := self.recv(timeout)) is not None:
            yield reply

    def close(self) -> None:
        self._sock.close(linger=0)

    def __enter__(self) -> StreamClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ high level

    def denoise(
        self,
        movie: NDArray[Any],
        *,
        series: str | None = None,
        fps: float | None = None,
        mode: str | None = None,
        meta: dict[str, Any] | None = None,
        on_reply: Callable[[Reply], None] | None = None,
        progress: Callable[[float], None] | None = None,
    ) -> StreamResult:
        """Stream a ``[T, Y, X]`` movie as one series and collect the denoised movie.

        Parameters
        ----------
        movie
            ``[T, Y, X]`` frames (or one ``[Y, X]`` frame) in a streamable pixel type (8/16/32-bit
            integers, float32/64).
        series
            Series id; default a fresh random id.
        fps
            Send at this frame rate on a monotonic schedule (a camera); ``None`` sends as fast as
            the credit allows.
        mode
            ``"live"`` or ``"lossless"`` for this series; ``None`` uses the server default.
        meta
            Extra ``start.meta`` fields.
        on_reply
            Called with every reply, rejections and the final ``end`` included.
        progress
            Called with the fraction of frames answered so far.

        Returns
        -------
        StreamResult
            ``frames`` is float32 ``[T, Y, X]`` with NaN where a frame was skipped, failed or rejected.

        Raises
        ------
        ProtocolViolation, ServerSilent, StreamRejected
        """
        movie = np.asarray(movie)
        if movie.ndim == 2:
            movie = movie[np.newaxis]
        if movie.ndim != 3 or movie.shape[0] == 0:
            raise ValueError(f"movie must be [T, Y, X] with T >= 1, got shape {movie.shape}")
        return self.stream_frames(
            iter(movie),
            dtype=movie.dtype,
            shape=(int(movie.shape[1]), int(movie.shape[2])),
            total=int(movie.shape[0]),
            series=series,
            fps=fps,
            mode=mode,
            meta=meta,
            on_reply=on_reply,
            progress=progress,
        )

    def stream_frames(
        self,
        frames: Iterable[NDArray[Any]],
        *,
        dtype: str | np.dtype[Any],
        shape: tuple[int, int],
        total: int | None = None,
        series: str | None = None,
        fps: float | None = None,
        mode: str | None = None,
        meta: dict[str, Any] | None = None,
        on_reply: Callable[[Reply], None] | None = None,
        progress: Callable[[float], None] | None = None,
        keep_frames: bool = True,
        stop: Callable[[], bool] | None = None,
    ) -> StreamResult:
        """Stream frames from any iterable (indices 0, 1, 2, …) as one series; :meth:`denoise` for arrays.

        ``total`` (when known) drives ``progress``; ``keep_frames=False`` keeps counts and latencies
        but not the pixels (long camera runs); ``stop()`` returning true ends the series early.
        """
        if fps is not None and not fps > 0:
            raise ValueError(f"fps must be > 0, got {fps}")
        series = series or f"{self.stream}-{uuid.uuid4().hex[:12]}"
        rec = ReplyRecorder(series, (int(shape[0]), int(shape[1])), keep_frames, on_reply, progress, total)

        def pump(timeout: float) -> bool:
            reply = self.recv(timeout)
            if reply is None:
                return False
            rec.handle(reply)
            while self._pending:
                rec.handle(self._pending.popleft())
            return True

        self.start(series, dtype, shape, mode=mode, meta=meta)
        t0 = time.monotonic()
        period = 1.0 / fps if fps else 0.0
        late = 0
        for i, frame in enumerate(frames):
            if stop is not None and stop():
                break
            if fps:
                # The schedule is t0 + i * period (not "sleep one period"), so pacing never drifts.
                due = t0 + i * period
                while (now := time.monotonic()) < due:
                    pump(due - now)
                if time.monotonic() - due > period:
                    late += 1
            rec.sent(i)
            self.send(frame, i)
            while self._pending:
                rec.handle(self._pending.popleft())
            while pump(0):  # take what is already there without waiting
                pass
        self.end()
        while not rec.end_seen:
            if not pump(self.timeout_s):
                raise self._silent(f"waiting for the end of series {series!r}")
        return rec.result(wall_s=time.monotonic() - t0, late_frames=late)

    # ------------------------------------------------------------------ internals

    def _send_parts(self, parts: list[Any]) -> None:
        try:
            self._sock.send_multipart(parts, copy=False)
        except zmq.Again:
            raise ServerSilent(
                f"could not send to {self.endpoint} within {self.timeout_s} s (server not reachable?)"
            ) from None

    def _silent(self, doing: str) -> ServerSilent:
        oldest = [(s, q[0][0]) for s, q in self._waiting.items() if q]
        what = f"; oldest frame without a reply: index {oldest[0][1]} of series {oldest[0][0]!r}" if oldest else ""
        return ServerSilent(f"no reply from {self.endpoint} for {self.timeout_s} s while {doing}{what}")

    def _receive(self, timeout: float) -> Reply | None:
        if not self._sock.poll(max(0, int(timeout * 1000))):
            return None
        parts = self._sock.recv_multipart(copy=True)
        if len(parts) != 2:
            raise ProtocolViolation(f"reply has {len(parts)} parts; frames/1 replies are [header, payload]")
        raw_header, payload = parts
        try:
            header = decode_header(raw_header, replies=True)
        except ProtocolError as exc:
            raise ProtocolViolation(f"malformed reply header ({exc.code.value}): {exc}") from None
        self._check_instance(header)
        if header.type is MessageType.ERROR and header.stream == UNKNOWN_STREAM:
            # The server could not read which stream a message was for; ours are always readable.
            logger.warning("server refused a message it could not attribute: %s: %s", header.code, header.message)
            return Reply(header=header, rejected=True)
        if header.stream != self.stream:
            raise ProtocolViolation(f"reply for stream {header.stream!r} on the connection of stream {self.stream!r}")
        return self._account(header, payload)

    def _check_instance(self, header: Header) -> None:
        """A reply from a new server instance while frames wait: the old instance's frames are lost."""
        if header.instance is None or header.instance == self._instance:
            return
        previous, self._instance = self._instance, header.instance
        lost = {series: [i for i, _ in queue] for series, queue in self._waiting.items() if queue}
        if previous is not None and lost:
            self._waiting.clear()
            self._ending.clear()
            raise ServerRestarted(
                f"the server at {self.endpoint} restarted (instance {previous} -> {header.instance}); "
                f"{sum(map(len, lost.values()))} frames it had accepted will never be answered: send them again",
                lost,
            )

    def _account(self, header: Header, payload: bytes) -> Reply:
        """Check a reply against the frames waiting for one and take it off the books."""
        now = time.monotonic()
        queue = self._waiting.get(header.series)
        if header.type is MessageType.END:
            if queue is None or header.series not in self._ending:
                raise ProtocolViolation(f"'end' reply for series {header.series!r}, which this client did not end")
            if queue:
                missing = [i for i, _ in queue]
                raise ProtocolViolation(
                    f"'end' reply for series {header.series!r} while frames {missing[:10]} have no reply "
                    "(every accepted frame must get exactly one reply before 'end')"
                )
            del self._waiting[header.series]
            self._ending.discard(header.series)
            return Reply(header=header)
        if header.type is MessageType.ERROR:
            return self._account_error(header, queue, now)
        if header.type not in (MessageType.FRAME, MessageType.SKIPPED):
            raise ProtocolViolation(f"server sent a {header.type.value!r} message; replies are frame/skipped/error/end")
        if header.index is None:
            raise ProtocolViolation(f"'{header.type.value}' reply without an index (series {header.series!r})")
        sent_at = self._take_head(header, queue)
        frame = None
        if header.type is MessageType.FRAME:
            if header.dtype is None or header.shape is None:
                raise ProtocolViolation(f"frame reply for index {header.index} has no dtype/shape")
            try:
                check_payload(header, len(payload))
            except ProtocolError as exc:
                raise ProtocolViolation(f"frame reply for index {header.index}: {exc}") from None
            frame = array_from_payload(header, payload).astype(np.float32, copy=False)
        elif payload:
            raise ProtocolViolation(f"'skipped' reply for index {header.index} carries {len(payload)} payload bytes")
        return Reply(header=header, frame=frame, rtt_ms=(now - sent_at) * 1e3)

    def _take_head(self, header: Header, queue: deque[tuple[int, float]] | None) -> float:
        index = header.index
        if not queue:
            raise ProtocolViolation(
                f"'{header.type.value}' reply for index {index} of series {header.series!r}, "
                "but no frame of that series is waiting for a reply (duplicate or never sent)"
            )
        head, sent_at = queue[0]
        if index != head:
            if any(i == index for i, _ in queue):
                raise ProtocolViolation(
                    f"reply for index {index} of series {header.series!r} arrived before the reply for index {head}: "
                    "replies must come in frame order"
                )
            raise ProtocolViolation(
                f"'{header.type.value}' reply for index {index} of series {header.series!r}, which is not waiting "
                f"for a reply (duplicate or never sent); the oldest waiting index is {head}"
            )
        queue.popleft()
        return sent_at

    def _account_error(self, header: Header, queue: deque[tuple[int, float]] | None, now: float) -> Reply:
        index = header.index
        if index is None:
            # A refused start/end (or a message the server could not parse): nothing waits on it.
            logger.warning("stream %s: server refused a message: %s: %s", self.stream, header.code, header.message)
            return Reply(header=header, rejected=True)
        if not queue:
            raise ProtocolViolation(
                f"'error' reply for index {index} of series {header.series!r}, but no frame of that series "
                "is waiting for a reply (duplicate or never sent)"
            )
        head = queue[0][0]
        if index == head and header.code in ORDERED_ERROR_CODES:
            sent_at = queue.popleft()[1]
            return Reply(header=header, rtt_ms=(now - sent_at) * 1e3)
        for pos, (i, sent_at) in enumerate(queue):
            if i == index:
                # A rejected frame was never accepted, so it has no place in the reply order.
                del queue[pos]
                logger.debug("stream %s: frame %d rejected: %s: %s", self.stream, index, header.code, header.message)
                return Reply(header=header, rejected=True, rtt_ms=(now - sent_at) * 1e3)
        raise ProtocolViolation(
            f"'error' reply for index {index} of series {header.series!r}, which is not waiting for a reply "
            f"(duplicate or never sent); the oldest waiting index is {head}"
        )
